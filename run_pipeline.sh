#!/usr/bin/env bash
# The whole pipeline: raw videos in VIDEO_FOLDER -> clips, scores and train.json in OUTPUT_FOLDER.
# Its settings (every stage script's) come from the environment or --config FILE: 'bash run_pipeline.sh
# --help' says how (video_caption/pipeline.py).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
exec "$PYTHON" -m video_caption.pipeline "$@"
