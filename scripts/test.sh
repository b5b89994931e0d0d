#!/usr/bin/env bash
# Sets up .venv from nothing, then runs lint, type check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
scripts/typecheck.sh
echo "== pytest"
.venv/bin/python -m pytest -n 2 "$@"
