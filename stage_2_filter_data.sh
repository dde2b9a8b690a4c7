#!/usr/bin/env bash
# Stage 2: score stage 1's clips and keep those passing every gate (cheap gates first, then
# the scorers in SCORERS order, each on the survivors of the gates before it).
# Settings come from the environment; every one has a default.
#   OUTPUT_FOLDER  stage 1's output folder (reads meta_clips.jsonl, writes *_score.jsonl, train.jsonl)
#                                                                          [datasets/demo/output]
#   SCORERS        comma list, in gate order                               [aesthetic,text,motion]
#   AESTHETIC_MIN [4.0], TEXT_MAX [0.02], MOTION_MIN [3] and MOTION_MAX [8] (open bounds)
#   MIN_DURATION, MAX_DURATION, MIN_SIDE, MIN_FPS   metadata gates, off unless set
#   CLIP_MODEL, CLIP_WEIGHTS, AESTHETIC_HEAD, MODELS_FOLDER, TEXT_MAX_SIDE, TEXT_PRESCREEN_SIDE, TEXT_FRAMES, TEXT_ENGINE,
#   MOTION_FAST=1
#   BATCH_SIZE, NUM_WORKERS, STALL_TIMEOUT (s without a decoded batch: the clip is an error), DEVICE, CPU=1
#   SKIP_MISSING_MODELS=1  go on without a model that is not on this machine (warned, in summary.json)
#   NUM_PROCESSES  >1: run under 'accelerate launch --multi_gpu --num_processes N' (one per GPU; CPU=1: on CPU)
#   LAUNCHER       a whole launcher command instead, e.g. "accelerate launch --config_file multi_node.yaml"
# Rerunning resumes: clips already scored are not scored again.
set -euo pipefail
cd "$(dirname "$0")"
OUTPUT_FOLDER="${OUTPUT_FOLDER:-datasets/demo/output}"

args=(--output-folder "$OUTPUT_FOLDER")
opt() { if [ -n "${!1:-}" ]; then args+=("$2" "${!1}"); fi; }
opt SCORERS --scorers
opt AESTHETIC_MIN --aesthetic-min
opt TEXT_MAX --text-max
opt MOTION_MIN --motion-min
opt MOTION_MAX --motion-max
opt MIN_DURATION --min-duration
opt MAX_DURATION --max-duration
opt MIN_SIDE --min-side
opt MIN_FPS --min-fps
opt CLIP_MODEL --clip-model
opt CLIP_WEIGHTS --clip-weights
opt AESTHETIC_HEAD --aesthetic-head
opt MODELS_FOLDER --models-folder
opt TEXT_MAX_SIDE --text-max-side
opt TEXT_PRESCREEN_SIDE --text-prescreen-side
opt TEXT_FRAMES --text-frames
opt TEXT_ENGINE --text-engine
opt BATCH_SIZE --batch-size
opt NUM_WORKERS --num-workers
opt STALL_TIMEOUT --stall-timeout
opt DEVICE --device
if [ "${MOTION_FAST:-0}" = "1" ]; then args+=(--motion-fast); fi
if [ "${CPU:-0}" = "1" ]; then args+=(--cpu); fi
if [ "${SKIP_MISSING_MODELS:-0}" = "1" ]; then args+=(--skip-missing-models); fi

PYTHON="${PYTHON:-python3}"
if [ -n "${LAUNCHER:-}" ]; then
    read -r -a launcher <<< "$LAUNCHER"
    exec "${launcher[@]}" -m video_caption.score "${args[@]}" "$@"
elif [ "${NUM_PROCESSES:-1}" -gt 1 ]; then
    # accelerate's multi-process launcher; with CPU=1 the ranks run on CPU (gloo). Its own --cpu flag
    # would start a single process unless MPI is installed.
    exec "$PYTHON" -m accelerate.commands.launch --multi_gpu --num_processes "$NUM_PROCESSES" --num_machines 1 \
        --mixed_precision no --dynamo_backend no -m video_caption.score "${args[@]}" "$@"
fi
exec "$PYTHON" -m video_caption.score "${args[@]}" "$@"
