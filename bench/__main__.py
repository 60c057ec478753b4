"""python -m bench [--peers] [--smoke] [-n N] [SCENARIO ...]

Runs the named scenarios (all by default) for sampan and, with --peers, for the peer engines
started by ../shared/peers/setup.sh, interleaved A B A B, and prints a markdown table with the
median of each and the sampan/peer ratio (< 1.0 means sampan is faster).  --smoke runs every
scenario once and prints no ratios (CI uses it to check the scenarios still work).
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench.engines import Sampand
from bench.scenarios import SCENARIOS, Context


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    p.add_argument("scenarios", nargs="*", help=f"scenarios to run (default: all of {', '.join(SCENARIOS)})")
    p.add_argument("--peers", action="store_true", help="also time the peer engines (docker, podman, ...)")
    p.add_argument("--smoke", action="store_true", help="run each scenario once, print no ratios")
    p.add_argument("-n", type=int, default=11, help="iterations per engine (default 11)")
    args = p.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(unknown)}")
    iterations = 1 if args.smoke else args.n
    rows = []
    failed = False
    with Sampand() as sampand:
        ctx = Context(sampand=sampand, peers=args.peers)
        for name in names:
            try:
                scenario = SCENARIOS[name](ctx)
                samples: dict[str, list[float]] = {engine: [] for engine in scenario.variants}
                for _ in range(iterations):
                    for engine, once in scenario.variants.items():  # interleaved: A B A B
                        samples[engine].append(once())
            except Exception as exc:  # a broken scenario is reported, the others still run
                print(f"bench: {name}: {exc}", file=sys.stderr)
                failed = True
                continue
            medians = {e: statistics.median(v) for e, v in samples.items()}
            rows.append((scenario, medians))
            for engine, med in medians.items():
                print(f"bench: {name} {engine}: median {_value(scenario, med)} over {iterations}", file=sys.stderr)
    print("| scenario | engine | median | sampan / engine |")
    print("|---|---|---|---|")
    for scenario, medians in rows:
        for engine, med in medians.items():
            # "X what" compares with "sampan what" (e.g. "conmon RSS" with "sampan RSS")
            head, sep, rest = engine.partition(" ")
            base = medians.get(f"sampan{sep}{rest}")
            ratio = "" if args.smoke or head == "sampan" or not base or not med else f"{base / med:.2f}"
            print(f"| {scenario.name} | {engine} | {_value(scenario, med)} | {ratio} |")
    return 1 if failed else 0


def _value(scenario: object, median: float) -> str:
    """Seconds print as ms; a scenario with a ``unit`` (memory: "MB") returns values in it."""
    unit = getattr(scenario, "unit", None)
    return f"{median * 1000:.1f} ms" if unit is None else f"{median:.2f} {unit}"


if __name__ == "__main__":
    sys.exit(main())
