#!/usr/bin/env bash
# The whole pipeline: raw videos in VIDEO_FOLDER -> clips, scores and train.json in OUTPUT_FOLDER.
#   VIDEO_FOLDER   raw videos (folder or list file)              [datasets/demo/videos]
#   OUTPUT_FOLDER  where everything goes                          [datasets/demo/output]
#   STAGES         comma list of 1, 2, 3                          [1,2,3]
# Every setting of the stage scripts (stage_1_video_cut.sh, stage_2_filter_data.sh,
# stage_3_video_caption.sh) is read from the environment as they read it.  Rerunning the same command
# resumes: each stage skips what its outputs already hold.  A stage that fails outright (exit 1: a
# missing model, an unreachable server) stops the run; one where some files failed (exit 2, rows in
# errors.jsonl) lets the next stage go on with the rest, and the run exits 2.  At the end the run
# summary (OUTPUT_FOLDER/summary.json) is printed.
set -uo pipefail
cd "$(dirname "$0")"
export VIDEO_FOLDER="${VIDEO_FOLDER:-datasets/demo/videos}"
export OUTPUT_FOLDER="${OUTPUT_FOLDER:-datasets/demo/output}"
STAGES="${STAGES:-1,2,3}"
PYTHON="${PYTHON:-python3}"
export PYTHON

status=0
IFS=',' read -r -a stages <<< "$STAGES"
for stage in "${stages[@]}"; do
    case "$stage" in
        1) script=stage_1_video_cut.sh ;;
        2) script=stage_2_filter_data.sh ;;
        3) script=stage_3_video_caption.sh ;;
        *) echo "unknown stage '$stage' in STAGES (use 1, 2, 3)" >&2; exit 1 ;;
    esac
    echo "=== stage $stage: $script" >&2
    bash "$script"
    rc=$?
    if [ "$rc" -eq 2 ]; then
        status=2
    elif [ "$rc" -ne 0 ]; then
        echo "stage $stage failed (exit $rc); later stages not run. Fix the error above and rerun: finished work is kept." >&2
        "$PYTHON" -m video_caption.summary --output-folder "$OUTPUT_FOLDER" >&2 || true
        exit "$rc"
    fi
done
echo "=== summary ($OUTPUT_FOLDER/summary.json)" >&2
"$PYTHON" -m video_caption.summary --output-folder "$OUTPUT_FOLDER" >&2
exit "$status"
