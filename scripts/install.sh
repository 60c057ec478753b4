#!/bin/bash
# install.sh: on a fresh Debian 12 machine, as root: install every system package and the
# Python package (editable, from this checkout), then run the main job (scripts/walkthrough.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
exec bash scripts/walkthrough.sh
