#!/usr/bin/env bash
# The whole pipeline: raw videos in VIDEO_FOLDER -> clips, scores and train.json in OUTPUT_FOLDER.
#   VIDEO_FOLDER=/data/raw OUTPUT_FOLDER=/data/curated VLM_BASE_URL=http://127.0.0.1:8000/v1 bash run_pipeline.sh
#   bash run_pipeline.sh --config pipeline.yaml   the same with every setting in one YAML or JSON file
#                  (configs/pipeline.example.yaml; an environment variable that is set still wins)
#   VIDEO_FOLDER   required when stage 1 runs: raw videos (a folder or a list file)
#   OUTPUT_FOLDER  required: where everything goes
#   STAGES         comma list of 1, 2, 3 [1,2,3]
# Relative paths are relative to where you run the script.  Every setting of the stage scripts
# (stage_1_video_cut.sh, stage_2_filter_data.sh, stage_3_video_caption.sh: each one's --help lists
# them) is read from the environment as they read it, with one meaning in every stage.  Every
# stage's settings are checked before the first stage starts.  Rerunning the same command resumes:
# each stage skips what its outputs already hold.  A stage that fails outright (exit 1: a setting,
# a missing model, an unreachable server) stops the run; one where some files failed (exit 2, rows
# in errors.jsonl) lets the next stage go on with the rest, and the run exits 2.  The run ends with
# its summary (this run's stages, from OUTPUT_FOLDER/summary.json), what it produced, and the path of
# the HTML report it builds (OUTPUT_FOLDER/report/index.html; python -m video_caption.report).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/scripts/common.sh"
usage "$0" video_caption.pipeline "$@"
if [ "$#" -gt 0 ]; then  # --config FILE: video_caption.pipeline checks it, then runs this script with its settings
    exec "$PYTHON" -m video_caption.pipeline "$@"
fi
require OUTPUT_FOLDER "where everything goes"
check_renamed
STAGES="${STAGES:-1,2,3}"
started="$(date +%s)"

scripts=()
IFS=',' read -r -a stages <<< "$STAGES"
for stage in "${stages[@]}"; do
    case "$stage" in
        1) require VIDEO_FOLDER "the raw videos"; scripts+=(stage_1_video_cut.sh) ;;
        2) scripts+=(stage_2_filter_data.sh) ;;
        3) scripts+=(stage_3_video_caption.sh) ;;
        *) echo "error: unknown stage '$stage' in STAGES (use 1, 2, 3)" >&2; exit 1 ;;
    esac
done
for i in "${!scripts[@]}"; do
    if ! CHECK_SETTINGS=1 bash "$HERE/${scripts[$i]}"; then
        echo "error: the settings of stage ${stages[$i]} are wrong (above); no stage was run" >&2
        exit 1
    fi
done

status=0
for i in "${!scripts[@]}"; do
    echo "=== stage ${stages[$i]}: ${scripts[$i]}" >&2
    bash "$HERE/${scripts[$i]}"
    rc=$?
    if [ "$rc" -eq 2 ]; then
        status=2
    elif [ "$rc" -ne 0 ]; then
        echo "stage ${stages[$i]} failed (exit $rc); later stages not run. Fix the error above and rerun: finished work is kept." >&2
        "$PYTHON" -m video_caption.summary --output-folder "$OUTPUT_FOLDER" --since "$started" >&2 || true
        exit "$rc"
    fi
done
echo "=== report ($OUTPUT_FOLDER/report)" >&2
# The report only shows what the stages wrote: a report that cannot be built changes no exit status.
report="$("$PYTHON" -m video_caption.report --output-folder "$OUTPUT_FOLDER")" || report=""
echo "=== summary of this run ($OUTPUT_FOLDER/summary.json)" >&2
"$PYTHON" -m video_caption.summary --output-folder "$OUTPUT_FOLDER" --since "$started" >&2
if [ -n "$report" ]; then
    echo "report: $report (open it in a browser; it needs no network)" >&2
else
    echo "report: not built (the error is above)" >&2
fi
exit "$status"
