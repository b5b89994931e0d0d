#!/usr/bin/env bash
# Sets up .venv from nothing, then runs the demo on embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
exec .venv/bin/forecourt demo "$@"
