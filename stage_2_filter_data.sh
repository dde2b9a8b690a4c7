#!/usr/bin/env bash
# Stage 2: score stage 1's clips and keep those passing every gate (cheap gates first, then
# the scorers in SCORERS order, each on the survivors of the gates before it).
#   OUTPUT_FOLDER=/data/curated bash stage_2_filter_data.sh [flags]
# Settings come from the environment (relative paths are relative to where you run the script):
#   OUTPUT_FOLDER  required: stage 1's output folder (reads meta_clips.jsonl; writes *_score.jsonl,
#                  train.jsonl, gate_decisions.jsonl)
#   SCORERS        comma list, in gate order (dedup always last)  [aesthetic,text,motion,camera_motion,nsfw,dedup]
#   AESTHETIC_MIN [4.0], TEXT_MAX [0.02], MOTION_MIN [3] and MOTION_MAX [8] (open bounds), NSFW_MAX [see --help]
#   TEXT_MAX_BOXES, TEXT_MAX_SINGLE (largest text box's share of the frame), CAMERA_MOTION (labels kept,
#                  comma list)                                                          off unless set
#   KEEP_DUPLICATES=1  dedup marks duplicates (duplicates.jsonl) without dropping them
#   DEDUP_THRESHOLD, DEDUP_CLIP_THRESHOLD, NSFW_CLASSES, NSFW_FRAMES
#   MIN_DURATION, MAX_DURATION, MIN_CLIP_SIDE (pixels, width and height), MIN_FPS   metadata gates, off unless set
#   CLIP_MODEL, CLIP_WEIGHTS, CLIP_CONFIG, AESTHETIC_HEAD, MODELS_FOLDER, TEXT_MAX_SIDE, TEXT_PRESCREEN_SIDE, TEXT_FRAMES, TEXT_ENGINE,
#   MOTION_FAST=1
#   SCORE_BATCH_SIZE [8], NUM_WORKERS, DEVICE, CPU=1
#   CLIP_STALL_TIMEOUT  seconds without a decoded batch before the clip read is given up [300]
#   SKIP_MISSING_MODELS=1  go on without a model that is not on this machine (warned, in summary.json)
#   NUM_PROCESSES  >1: run under 'accelerate launch --multi_gpu --num_processes N' (one per GPU; CPU=1: on CPU)
#   LAUNCHER       a whole launcher command instead, e.g. "accelerate launch --config_file multi_node.yaml"
# Rerunning resumes: clips already scored with the same settings are not scored again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
begin "$0" video_caption.score "$@"
require OUTPUT_FOLDER "stage 1's output folder"

args=(--output-folder "$OUTPUT_FOLDER")
opt SCORERS --scorers
opt AESTHETIC_MIN --aesthetic-min
opt TEXT_MAX --text-max
opt MOTION_MIN --motion-min
opt MOTION_MAX --motion-max
opt TEXT_MAX_BOXES --text-max-boxes
opt TEXT_MAX_SINGLE --text-max-single
opt CAMERA_MOTION --camera-motion
opt NSFW_MAX --nsfw-max
opt NSFW_CLASSES --nsfw-classes
opt NSFW_FRAMES --nsfw-frames
opt DEDUP_THRESHOLD --dedup-threshold
opt DEDUP_CLIP_THRESHOLD --dedup-clip-threshold
opt MIN_DURATION --min-duration
opt MAX_DURATION --max-duration
opt MIN_CLIP_SIDE --min-side
opt MIN_FPS --min-fps
opt CLIP_MODEL --clip-model
opt CLIP_WEIGHTS --clip-weights
opt CLIP_CONFIG --clip-config
opt AESTHETIC_HEAD --aesthetic-head
opt MODELS_FOLDER --models-folder
opt TEXT_MAX_SIDE --text-max-side
opt TEXT_PRESCREEN_SIDE --text-prescreen-side
opt TEXT_FRAMES --text-frames
opt TEXT_ENGINE --text-engine
opt SCORE_BATCH_SIZE --batch-size
opt NUM_WORKERS --num-workers
opt CLIP_STALL_TIMEOUT --stall-timeout
opt DEVICE --device
flag MOTION_FAST --motion-fast
flag KEEP_DUPLICATES --keep-duplicates
flag CPU --cpu
flag SKIP_MISSING_MODELS --skip-missing-models
ranks=1 run video_caption.score "$@"
