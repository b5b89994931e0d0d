#!/usr/bin/env bash
# mypy cannot follow setuptools' package-dir mapping of an editable install, so
# it checks a throwaway tree of symlinks that has the installed layout.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .mypy_src && mkdir -p .mypy_src/forecourt
for d in codecs keys switch simulators console; do ln -s "../../$d" ".mypy_src/forecourt/$d"; done
cd .mypy_src && ../.venv/bin/mypy --config-file ../pyproject.toml -p forecourt
