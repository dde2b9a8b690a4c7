#!/usr/bin/env bash
# Every CUDA path of the pipeline against its CPU result, on one GPU in under 8 minutes: aesthetic
# CLIP ViT-L/14 fp16, CRAFT, NudeNet, TransNetV2, the transformers VLM backend, and stage 2 under
# `accelerate launch`; per-path times and differences go to bench/results/gpu.json.
#
#   bench/gpu_check.sh              on a machine with a CUDA GPU (fails at once without one)
#   bench/gpu_check.sh --dry-run    anywhere: every path on the CPU with tiny inputs (tests/test_gpu_check.py)
#
# Other options (--work, --out, --clips, --only) and the tolerances: bench/gpu_check.py --help.
# Stopped after 470 s; the result file keeps the paths finished by then.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec timeout --signal INT --kill-after 20 470 "${PYTHON:-python3}" bench/gpu_check.py "$@"
