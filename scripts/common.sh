# Sourced by the stage scripts and run_pipeline.sh (never run): what they share.
# Paths stay as the user typed them, relative to the folder the script is run from: nothing here
# changes directory; the package is found in this checkout when it is not installed.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python3}"
export PYTHON
args=()

# usage SCRIPT [MODULE] ARGS...: with -h or --help among ARGS, print the script's header comment
# (and the module's flags) and exit 0.
usage() {
    local script="$1" module="$2"
    shift 2
    local a
    for a in "$@"; do
        if [ "$a" = "-h" ] || [ "$a" = "--help" ]; then
            sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$script"
            if [ -n "$module" ]; then
                echo
                echo "Flags given after the script's name go to 'python -m $module':"
                "$PYTHON" -m "$module" --help
            fi
            exit 0
        fi
    done
}

# setting KIND NAME FLAG: with LIST_SETTINGS=1 (python -m video_caption.pipeline makes its config keys
# from this), print what the script reads, NUL-separated; run then prints the command instead of running it.
setting() { if [ "${LIST_SETTINGS:-0}" = "1" ]; then printf '%s\0' "$@"; fi; }

# require VAR WHAT: stop unless VAR is set (no silent default: a real run names its folders).
require() {
    setting require "$1" ""
    if [ "${LIST_SETTINGS:-0}" = "1" ]; then  # listing needs no value; the pipeline checks it is given
        printf -v "$1" '%s' "${!1:-}"
        return
    fi
    if [ -z "${!1:-}" ]; then
        echo "error: set $1 ($2); --help lists every setting" >&2
        exit 1
    fi
}

# renamed OLD NEW: a name that meant different things in different stages is no longer read.
renamed() {
    if [ -n "${!1:-}" ]; then
        echo "error: $1 is no longer read (it meant different things in different stages): use $2" >&2
        exit 1
    fi
}

opt() { setting opt "$1" "$2"; if [ -n "${!1:-}" ]; then args+=("$2" "${!1}"); fi; }
flag() { setting flag "$1" "$2"; if [ "${!1:-0}" = "1" ]; then args+=("$2"); fi; }

# The names run_pipeline.sh refuses before any stage runs, and each stage script on its own.
check_renamed() {
    renamed MIN_SIDE "MIN_SOURCE_SIDE (stage 1: skip small sources) or MIN_CLIP_SIDE (stage 2: the size gate)"
    renamed BATCH_SIZE "SCORE_BATCH_SIZE (stage 2) or CAPTION_BATCH_SIZE (stage 3)"
    renamed STALL_TIMEOUT "SOURCE_STALL_TIMEOUT (stage 1: a source decoding no frame) or CLIP_STALL_TIMEOUT (stages 2-3: a clip's frames not read)"
}

# begin SCRIPT MODULE ARGS...: --help, then the refused old names.
begin() {
    usage "$@"
    check_renamed
}

# run MODULE [ARGS...]: the module with the collected args.  CHECK_SETTINGS=1 (run_pipeline.sh)
# only parses and checks them.  ranks=1 before it: under LAUNCHER, or accelerate for NUM_PROCESSES > 1.
run() {
    local module="$1"
    shift
    if [ "${ranks:-0}" = "1" ]; then setting opt NUM_PROCESSES ""; setting opt LAUNCHER ""; fi
    if [ "${LIST_SETTINGS:-0}" = "1" ]; then
        printf '%s\0' run "$module" "${args[@]}" "$@"
        exit 0
    fi
    if [ "${CHECK_SETTINGS:-0}" = "1" ]; then
        exec "$PYTHON" -m "$module" "${args[@]}" "$@" --check-settings
    fi
    if [ "${ranks:-0}" = "1" ] && [ -n "${LAUNCHER:-}" ]; then
        read -r -a launcher <<< "$LAUNCHER"
        exec "${launcher[@]}" -m "$module" "${args[@]}" "$@"
    elif [ "${ranks:-0}" = "1" ] && [ "${NUM_PROCESSES:-1}" -gt 1 ]; then
        # accelerate's multi-process launcher; with CPU=1 the ranks run on CPU (gloo). Its own --cpu flag
        # would start a single process unless MPI is installed.
        exec "$PYTHON" -m accelerate.commands.launch --multi_gpu --num_processes "$NUM_PROCESSES" --num_machines 1 \
            --mixed_precision no --dynamo_backend no -m "$module" "${args[@]}" "$@"
    fi
    exec "$PYTHON" -m "$module" "${args[@]}" "$@"
}
