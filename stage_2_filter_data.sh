#!/usr/bin/env bash
# Stage 2: score stage 1's clips and keep those passing every gate.
# Its settings come from the environment: 'bash stage_2_filter_data.sh --help' lists them (video_caption/settings.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
exec "$PYTHON" -m video_caption.launch 2 "$@"
