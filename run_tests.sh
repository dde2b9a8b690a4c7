#!/usr/bin/env bash
# The project's test command: lint, then the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m ruff check .
"$PYTHON" -m pytest -q "$@"
