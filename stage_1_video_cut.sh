#!/usr/bin/env bash
# Stage 1: detect shots and cut single-shot clips.
# Its settings come from the environment: 'bash stage_1_video_cut.sh --help' lists them (video_caption/settings.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
exec "$PYTHON" -m video_caption.launch 1 "$@"
