#!/usr/bin/env bash
# Stage 1: detect shots and cut single-shot clips of MIN_SECONDS..MAX_SECONDS.
#   VIDEO_FOLDER=/data/raw OUTPUT_FOLDER=/data/curated bash stage_1_video_cut.sh [flags]
# Settings come from the environment (relative paths are relative to where you run the script):
#   VIDEO_FOLDER   required: a folder of videos (searched recursively) or a .txt/.csv/.jsonl list;
#                  images (jpg, png, webp) among them are not cut: each is one clip of type image
#   OUTPUT_FOLDER  required: where clips/ and the manifests go
#   DETECTOR (content|adaptive|transnetv2), THRESHOLD, MIN_SCENE_LEN, BLACK_LEVEL
#   DETECTOR_DEVICE  torch device of the transnetv2 detector [cuda if present]
#   TRANSITIONS=0  hard cuts only: no dissolves, fades or wipes kept out of clips [1]
#   MIN_SECONDS [3], MAX_SECONDS [10], MARGIN_FRAMES [2]
#   MIN_SOURCE_SIDE  skip sources whose shorter side is smaller, pixels [0: any]
#   CLIPS=deferred  write no clip files yet: meta_clips.jsonl holds each clip's source and frame range,
#                   stages 2 and 3 read from the sources, and stage 3 encodes only the surviving clips [encoded]
#   CODEC [libx264], PRESET [veryfast], CRF [22], FAST=1, KEEP_AUDIO=1
#   WORKERS  sources cut in parallel [one per core, at most one per 3 GiB of available memory]
#   ENCODER_THREADS [encoder's choice; 1 makes clips byte-reproducible]
#   SOURCE_STALL_TIMEOUT  seconds a source may decode no frame before it is given up [300]
# Rerunning the same command resumes where a previous run stopped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
begin "$0" video_caption.cut "$@"
require VIDEO_FOLDER "the videos to cut: a folder or a list file"
require OUTPUT_FOLDER "where the clips and manifests go"

args=(--video-folder "$VIDEO_FOLDER" --output-folder "$OUTPUT_FOLDER")
opt DETECTOR --detector
opt THRESHOLD --threshold
opt MIN_SCENE_LEN --min-scene-len
opt BLACK_LEVEL --black-level
opt DETECTOR_DEVICE --device
opt MIN_SECONDS --min-seconds
opt MAX_SECONDS --max-seconds
opt MARGIN_FRAMES --margin-frames
opt MIN_SOURCE_SIDE --min-side
opt CLIPS --clips
opt CODEC --codec
opt PRESET --preset
opt CRF --crf
opt WORKERS --workers
opt ENCODER_THREADS --encoder-threads
opt SOURCE_STALL_TIMEOUT --stall-timeout
if [ "${TRANSITIONS:-1}" = "0" ]; then args+=(--no-transitions); fi
flag FAST --fast
flag KEEP_AUDIO --keep-audio
run video_caption.cut "$@"
