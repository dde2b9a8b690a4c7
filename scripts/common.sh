# Sourced by the stage scripts and run_pipeline.sh (never run): the interpreter and the package.
# Paths stay as the user typed them, relative to the folder the script is run from: nothing here
# changes directory; the package is found in this checkout when it is not installed.  Every setting
# is read, checked and passed on by Python (video_caption/settings.py); none is parsed here.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="${PYTHON:-python3}"
export PYTHON
