#!/usr/bin/env bash
# The project's test command: lint, then the whole test suite.
set -euo pipefail
case "${1:-}" in
    -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
               echo "Other arguments go to pytest (e.g. tests/test_cut_resume.py -x, -m faults)."; exit 0 ;;
esac
cd "$(dirname "$0")"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m ruff check .
"$PYTHON" -m pytest -q "$@"
