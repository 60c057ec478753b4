#!/usr/bin/python3 -IS
"""``sampan-runtime``: an OCI runtime with runc's command-line shape (the commands are in
:mod:`sampan.runtime_cli`).

Fast launcher: this file is executable with ``#!/usr/bin/python3 -IS`` (no site, no import
hooks: the runtime needs only the standard library); symlink it as ``sampan-runtime`` or run
``python3 -I -S .../sampan/runtime_main.py``.  The ``sampan-runtime`` entry point installed by
pip works too, at the cost of site's start-up.  Keep this file small: a script run by path is
compiled from source on every start, while the modules it imports come from their bytecode.
"""

import sys


def main(argv: list[str] | None = None) -> int:
    from sampan.runtime_cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    if not __package__:
        # run by path (the fast launcher): import sampan from beside this file, not from inside
        # the package dir (the file may be reached through a symlink, e.g.
        # /usr/local/bin/sampan-runtime)
        import os.path

        sys.path[0] = os.path.realpath(__file__).rsplit("/", 2)[0]
    from sampan.runtime_cli import launch

    launch()
