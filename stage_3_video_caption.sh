#!/usr/bin/env bash
# Stage 3: caption the clips that passed stage 2 (OUTPUT_FOLDER/train.jsonl) and write train.json.
#   OUTPUT_FOLDER=/data/curated VLM_BASE_URL=http://127.0.0.1:8000/v1 bash stage_3_video_caption.sh [flags]
# Settings come from the environment (relative paths are relative to where you run the script):
#   OUTPUT_FOLDER  required: stage 2's output folder
#   CAPTION_MODE   frames_then_summary | video_then_rewrite                   [frames_then_summary]
#   STEPS          comma list of category, caption, summary, match, tags, materialize, train
#                  (e.g. STEPS=summary; materialize encodes the deferred clips of stage 1 CLIPS=deferred)  [all]
#   VLM_BACKEND    openai | vllm | transformers   [openai with a server, else transformers: Qwen/Qwen2-VL-2B-Instruct]
#   VLM_MODEL      model name, folder or Hugging Face repo id
#   VLM_BASE_URL   an OpenAI-compatible server (vLLM, SGLang, LMDeploy, llama.cpp), e.g. http://127.0.0.1:8000/v1
#   VLM_SERVE      vllm | sglang | lmdeploy | llamacpp: start that server with VLM_MODEL for the run
#   VLM_SERVE_ARGS more arguments for that server, e.g. "--tensor-parallel-size 2"
#   LLM_BACKEND    openai | vllm | transformers | llamacpp | none              [llamacpp]
#   LLM_MODEL, LLM_BASE_URL, LLM_SERVE, LLM_SERVE_ARGS   as for the VLM (llamacpp with no LLM_MODEL: the packaged SmolLM2-135M)
#   FRAMES [4], FRAME_SAMPLING (uniform|mid|first|last|keyframes), MAX_SIDE [768]
#   FRAME_PROMPT, VIDEO_PROMPT, SUMMARY_PROMPT, REWRITE_PROMPT, TAGS_PROMPT, STRIP_OPENINGS   prompt files (video_caption/caption/prompts/)
#   IMAGE_PROMPT, IMAGE_SUMMARY_PROMPT   the VLM's and the LLM's prompt files for images
#   VLM_MAX_TOKENS, LLM_MAX_TOKENS, TEMPERATURE, TOP_P, SEED, REPEAT_PENALTY
#   LANGUAGE       language replies must be in (none: any)                   [en]
#   CHECKS         degenerate replies looked for: empty,refusal,echo,repetition,language,truncated or none   [all]
#   MATCH_MIN [20], MATCH_FRAMES (middle|max3), CLIP_MODEL, CLIP_WEIGHTS, CLIP_CONFIG   caption-clip match (CLIP)
#   CATEGORY_LABELS  labels file (one 'label' or 'label: prompt' per line); CATEGORY_KEEP, CATEGORY_DROP comma lists
#   TAG_KEYS       lists the LLM extracts from each final caption           [objects,actions]
#   CAPTION_BATCH_SIZE [32], CONCURRENCY, TIMEOUT, RETRIES, NUM_WORKERS, DEVICE, CPU=1
#   CLIP_STALL_TIMEOUT  seconds without a decoded batch before the clip read is given up [300]
#   SKIP_MISSING_MODELS=1  go on without a model that is not on this machine (warned, in summary.json)
#   NUM_PROCESSES  >1: run under 'accelerate launch --multi_gpu --num_processes N'; LAUNCHER: a whole launcher
# Rerunning resumes: clips already captioned are skipped; failed ones (errors.jsonl) are tried again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
begin "$0" video_caption.caption "$@"
require OUTPUT_FOLDER "stage 2's output folder"

args=(--output-folder "$OUTPUT_FOLDER")
opt CAPTION_MODE --mode
opt STEPS --steps
for role in VLM LLM; do
    lower="$(echo "$role" | tr "[:upper:]" "[:lower:]")"
    opt "${role}_BACKEND" "--$lower-backend"
    opt "${role}_MODEL" "--$lower-model"
    opt "${role}_BASE_URL" "--$lower-base-url"
    opt "${role}_SERVE" "--$lower-serve"
    serve_args="${role}_SERVE_ARGS"  # joined with '=': a value starting with '-' is not taken for a flag
    if [ -n "${!serve_args:-}" ]; then args+=("--$lower-serve-args=${!serve_args}"); fi
    opt "${role}_MAX_TOKENS" "--$lower-max-tokens"
done
opt FRAMES --frames
opt FRAME_SAMPLING --frame-sampling
opt MAX_SIDE --max-side
opt FRAME_PROMPT --frame-prompt
opt VIDEO_PROMPT --video-prompt
opt SUMMARY_PROMPT --summary-prompt
opt REWRITE_PROMPT --rewrite-prompt
opt IMAGE_PROMPT --image-prompt
opt IMAGE_SUMMARY_PROMPT --image-summary-prompt
opt TAGS_PROMPT --tags-prompt
opt STRIP_OPENINGS --strip-openings
opt LANGUAGE --language
opt CHECKS --checks
opt MATCH_MIN --match-min
opt MATCH_FRAMES --match-frames
opt CLIP_MODEL --clip-model
opt CLIP_WEIGHTS --clip-weights
opt CLIP_CONFIG --clip-config
opt CATEGORY_LABELS --category-labels
opt CATEGORY_KEEP --category-keep
opt CATEGORY_DROP --category-drop
opt TAG_KEYS --tag-keys
opt REPEAT_PENALTY --repeat-penalty
opt TEMPERATURE --temperature
opt TOP_P --top-p
opt SEED --seed
opt CAPTION_BATCH_SIZE --batch-size
opt CONCURRENCY --concurrency
opt TIMEOUT --timeout
opt RETRIES --retries
opt NUM_WORKERS --num-workers
opt CLIP_STALL_TIMEOUT --stall-timeout
opt DEVICE --device
flag CPU --cpu
flag SKIP_MISSING_MODELS --skip-missing-models
ranks=1 run video_caption.caption "$@"
