#!/usr/bin/env bash
# Stage 1: detect shots and cut single-shot clips of MIN_SECONDS..MAX_SECONDS.
# Settings come from the environment; every one has a default.
#   VIDEO_FOLDER   folder of videos (recursive) or a .txt/.csv/.jsonl list   [datasets/demo/videos]
#   OUTPUT_FOLDER  where clips/ and the manifests go                        [datasets/demo/output]
#   DETECTOR (content|adaptive|transnetv2), THRESHOLD, MIN_SCENE_LEN, BLACK_LEVEL, DEVICE
#   MIN_SECONDS [3], MAX_SECONDS [10], MARGIN_FRAMES [2], MIN_SIDE [0]
#   CODEC [libx264], PRESET [veryfast], CRF [22], FAST=1, KEEP_AUDIO=1, WORKERS
#   ENCODER_THREADS [encoder's choice; 1 makes clips byte-reproducible], STALL_TIMEOUT [300 s]
# Rerunning resumes where a previous run stopped.
set -euo pipefail
cd "$(dirname "$0")"
VIDEO_FOLDER="${VIDEO_FOLDER:-datasets/demo/videos}"
OUTPUT_FOLDER="${OUTPUT_FOLDER:-datasets/demo/output}"

args=(--video-folder "$VIDEO_FOLDER" --output-folder "$OUTPUT_FOLDER")
opt() { if [ -n "${!1:-}" ]; then args+=("$2" "${!1}"); fi; }
opt DETECTOR --detector
opt THRESHOLD --threshold
opt MIN_SCENE_LEN --min-scene-len
opt BLACK_LEVEL --black-level
opt DEVICE --device
opt MIN_SECONDS --min-seconds
opt MAX_SECONDS --max-seconds
opt MARGIN_FRAMES --margin-frames
opt MIN_SIDE --min-side
opt CODEC --codec
opt PRESET --preset
opt CRF --crf
opt WORKERS --workers
opt ENCODER_THREADS --encoder-threads
opt STALL_TIMEOUT --stall-timeout
if [ "${FAST:-0}" = "1" ]; then args+=(--fast); fi
if [ "${KEEP_AUDIO:-0}" = "1" ]; then args+=(--keep-audio); fi

exec "${PYTHON:-python3}" -m video_caption.cut "${args[@]}" "$@"
