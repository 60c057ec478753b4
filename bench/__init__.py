"""sampan's benchmarks: named scenarios run for sampan and, where installed, for the peers
(../shared/peers), interleaved A B A B in one run, reported as a markdown table of medians and
sampan/peer ratios.  ``python -m bench --help``."""
