#!/usr/bin/env bash
# Stage 3: caption the clips that passed stage 2 (OUTPUT_FOLDER/train.jsonl) and write train.json.
# Settings come from the environment; every one has a default.
#   OUTPUT_FOLDER  stage 2's output folder                                   [datasets/demo/output]
#   CAPTION_MODE   frames_then_summary | video_then_rewrite                   [frames_then_summary]
#   STEPS          comma list of caption, summary, train (one alone: e.g. STEPS=summary)   [all]
#   VLM_BACKEND    openai | vllm | transformers                                [openai]
#   VLM_MODEL      model name, folder or Hugging Face repo id
#   VLM_BASE_URL   an OpenAI-compatible server (vLLM, SGLang, LMDeploy, llama.cpp), e.g. http://127.0.0.1:8000/v1
#   VLM_SERVE      vllm | sglang | lmdeploy | llamacpp: start that server with VLM_MODEL for the run
#   VLM_SERVE_ARGS more arguments for that server, e.g. "--tensor-parallel-size 2"
#   LLM_BACKEND    openai | vllm | transformers | llamacpp | none              [llamacpp]
#   LLM_MODEL, LLM_BASE_URL, LLM_SERVE, LLM_SERVE_ARGS   as for the VLM (llamacpp with no LLM_MODEL: the packaged Gemma 3 270M)
#   FRAMES [4], FRAME_SAMPLING (uniform|mid|first|last|keyframes), MAX_SIDE [768]
#   FRAME_PROMPT, VIDEO_PROMPT, SUMMARY_PROMPT, REWRITE_PROMPT, STRIP_OPENINGS   prompt files (prompts/)
#   VLM_MAX_TOKENS, LLM_MAX_TOKENS, TEMPERATURE, TOP_P, SEED
#   BATCH_SIZE, CONCURRENCY, TIMEOUT, RETRIES, NUM_WORKERS, STALL_TIMEOUT, DEVICE, CPU=1
#   SKIP_MISSING_MODELS=1  go on without a model that is not on this machine (warned, in summary.json)
#   NUM_PROCESSES  >1: run under 'accelerate launch --multi_gpu --num_processes N'; LAUNCHER: a whole launcher
# Rerunning resumes: clips already captioned are skipped; failed ones (errors.jsonl) are tried again.
set -euo pipefail
cd "$(dirname "$0")"
OUTPUT_FOLDER="${OUTPUT_FOLDER:-datasets/demo/output}"

args=(--output-folder "$OUTPUT_FOLDER")
opt() { if [ -n "${!1:-}" ]; then args+=("$2" "${!1}"); fi; }
opt CAPTION_MODE --mode
opt STEPS --steps
for role in VLM LLM; do
    flag="$(echo "$role" | tr '[:upper:]' '[:lower:]')"
    opt "${role}_BACKEND" "--$flag-backend"
    opt "${role}_MODEL" "--$flag-model"
    opt "${role}_BASE_URL" "--$flag-base-url"
    opt "${role}_SERVE" "--$flag-serve"
    serve_args="${role}_SERVE_ARGS"  # joined with '=': a value starting with '-' is not taken for a flag
    if [ -n "${!serve_args:-}" ]; then args+=("--$flag-serve-args=${!serve_args}"); fi
    opt "${role}_MAX_TOKENS" "--$flag-max-tokens"
done
opt FRAMES --frames
opt FRAME_SAMPLING --frame-sampling
opt MAX_SIDE --max-side
opt FRAME_PROMPT --frame-prompt
opt VIDEO_PROMPT --video-prompt
opt SUMMARY_PROMPT --summary-prompt
opt REWRITE_PROMPT --rewrite-prompt
opt STRIP_OPENINGS --strip-openings
opt TEMPERATURE --temperature
opt TOP_P --top-p
opt SEED --seed
opt BATCH_SIZE --batch-size
opt CONCURRENCY --concurrency
opt TIMEOUT --timeout
opt RETRIES --retries
opt NUM_WORKERS --num-workers
opt STALL_TIMEOUT --stall-timeout
opt DEVICE --device
if [ "${CPU:-0}" = "1" ]; then args+=(--cpu); fi
if [ "${SKIP_MISSING_MODELS:-0}" = "1" ]; then args+=(--skip-missing-models); fi

PYTHON="${PYTHON:-python3}"
if [ -n "${LAUNCHER:-}" ]; then
    read -r -a launcher <<< "$LAUNCHER"
    exec "${launcher[@]}" -m video_caption.caption "${args[@]}" "$@"
elif [ "${NUM_PROCESSES:-1}" -gt 1 ]; then
    exec "$PYTHON" -m accelerate.commands.launch --multi_gpu --num_processes "$NUM_PROCESSES" --num_machines 1 \
        --mixed_precision no --dynamo_backend no -m video_caption.caption "${args[@]}" "$@"
fi
exec "$PYTHON" -m video_caption.caption "${args[@]}" "$@"
