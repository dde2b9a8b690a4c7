#!/usr/bin/env bash
# Install everything video_caption needs on Debian/Ubuntu (ffmpeg and chromium from apt, the Python packages),
# then, with --demo, run the pipeline on the bundled demo dataset.
#   bash setup.sh           install only
#   bash setup.sh --demo    install, then run the stages on datasets/demo (output in datasets/demo/output)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
    -h|--help) sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"; exit 0 ;;
    ""|--demo) ;;
    *) echo "error: unknown argument '$1' (--help)" >&2; exit 1 ;;
esac

APT=()
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then APT+=(ffmpeg); fi
# Only the tests need chromium: they open the HTML report in it, headless, through Playwright (whose own
# browser download never runs). Its fonts come from a recommends, named here so screenshots show text.
if ! command -v chromium >/dev/null; then APT+=(chromium fonts-liberation); fi
if [ ${#APT[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT[@]}"
fi
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip install -q -r "$HERE/requirements-dev.txt"
"$PYTHON" -m pip install -q --no-deps -e "$HERE"

if [ "${1:-}" = "--demo" ]; then
  # Offline demo: every stage runs; a model this machine cannot have (CLIP ViT-L/14 for the aesthetic
  # score and the caption match, the default VLM) is skipped with a warning and listed in the summary.
  VIDEO_FOLDER="$HERE/datasets/demo/videos" OUTPUT_FOLDER="$HERE/datasets/demo/output" SKIP_MISSING_MODELS=1 \
    PYTHON="$PYTHON" bash "$HERE/run_pipeline.sh"
fi
