#!/usr/bin/env bash
# Stage 3: caption the clips that passed stage 2 and write train.json.
# Its settings come from the environment: 'bash stage_3_video_caption.sh --help' lists them (video_caption/settings.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
exec "$PYTHON" -m video_caption.launch 3 "$@"
