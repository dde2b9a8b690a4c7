"""Fault injection: SIGKILL every stage at random moments, then rerun the same command; the outputs
must equal an uninterrupted run's (the same rows, the same clip files).  Marked ``faults``, so it can
run alone: ``python -m pytest -m faults``.  Stage 3 uses a tiny random-weight Qwen2-VL (transformers)
and the embedded llama.cpp LLM, both greedy so that two runs write the same captions."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO
from vlm_helpers import save_tiny_qwen2_vl

from video_caption.manifest import read_rows

pytestmark = pytest.mark.faults
KILLS = 5
SCRIPTS = {1: "stage_1_video_cut.sh", 2: "stage_2_filter_data.sh", 3: "stage_3_video_caption.sh"}
# What each stage writes (compared after the kills) and what it reads (copied from the clean run).
WRITES = {1: ["meta_scene_info.jsonl", "meta_clips.jsonl", "clips"],
          2: ["motion_score.jsonl", "text_score.jsonl", "train.jsonl"],
          3: ["frame_caption.jsonl", "summary_caption.jsonl", "train.json"]}


def environment(tmp: Path, out: Path) -> dict:
    return {**os.environ, "PYTHON": sys.executable, "VIDEO_FOLDER": str(REPO / "datasets" / "demo" / "videos"),
            "OUTPUT_FOLDER": str(out), "SCORERS": "motion,text", "MOTION_MIN": "0", "MOTION_MAX": "1e9",
            "TEXT_MAX": "1", "TEXT_MAX_SIDE": "640", "SCORE_BATCH_SIZE": "2", "CAPTION_BATCH_SIZE": "2",
            "VLM_BACKEND": "transformers",
            "VLM_MODEL": str(tmp / "vlm"), "CPU": "1", "FRAMES": "2", "MAX_SIDE": "128", "VLM_MAX_TOKENS": "8",
            "LLM_MAX_TOKENS": "24", "TEMPERATURE": "0", "ENCODER_THREADS": "1",
            # A random VLM's eight tokens never pass the reply checks; CLIP ViT-L/14 is not here.
            "STEPS": "caption,summary,train", "CHECKS": "none"}


def snapshot(out: Path, stage: int) -> dict:
    """The stage's outputs: manifests as sets of rows, train.json as a list, clip files by the hash of
    every decoded frame (the container's bytes may differ, e.g. in muxer timing).  libx264 with
    several threads is not reproducible under varying CPU load (measured: 10 encodes of one clip's
    frames gave 5 different streams, a few pixels off by 1 in one B-frame), so these runs encode with
    one thread (ENCODER_THREADS=1), which is, and a clip that differs is a real resume bug."""
    found = {}
    for name in WRITES[stage]:
        path = out / name
        if name == "clips":
            found[name] = {str(p.relative_to(out)): _frame_hashes(p) for p in path.rglob("*") if p.is_file()}
        elif name.endswith(".json"):
            found[name] = json.loads(path.read_text())
        else:
            rows = [json.dumps(r, sort_keys=True) for r in read_rows(path)]
            assert len(rows) == len(set(rows)), f"duplicate rows in {name}"
            found[name] = set(rows)
    return found


def _frame_hashes(path: Path) -> str:
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
                         capture_output=True, check=True).stdout
    return hashlib.sha256(b"".join(line for line in out.splitlines(True) if not line.startswith(b"#"))).hexdigest()


def run_stage(stage: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(["bash", str(REPO / SCRIPTS[stage])], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> tuple[Path, dict[int, float]]:
    """One uninterrupted run, each stage timed (the kills land within those times)."""
    tmp = tmp_path_factory.mktemp("faults")
    save_tiny_qwen2_vl(tmp / "vlm")
    out = tmp / "clean"
    env = environment(tmp, out)
    durations = {}
    for stage in SCRIPTS:
        start = time.monotonic()
        proc = run_stage(stage, env)
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        durations[stage] = time.monotonic() - start
    return out, durations


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_run(clean, stage):
    base, durations = clean
    out = base.parent / f"killed_{stage}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for earlier in range(1, stage):  # the inputs of this stage, as the clean run left them
        for name in WRITES[earlier]:
            copy = shutil.copytree if (base / name).is_dir() else shutil.copy2
            copy(base / name, out / name)
    env = environment(base.parent, out)
    rng = random.Random(stage)
    landed = attempts = 0
    window = max(1.5, durations[stage])
    while landed < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, f"only {landed} of {attempts - 1} kills landed before the stage finished"
        proc, started = run_stage(stage, env), time.monotonic()
        # Each killed run leaves less to do, so the window shrinks: the later kills land in start-up
        # and in the last files, the earlier ones anywhere.  A kill that comes after the run has
        # finished tests nothing: it does not count, and the window shrinks to within that run.
        deadline = started + rng.uniform(0.1, window)
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            landed += 1
            os.killpg(proc.pid, signal.SIGKILL)
            window = max(1.0, window / 2)
        else:
            window = min(window, (time.monotonic() - started) * 0.8)
        proc.wait()
    proc = run_stage(stage, env)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert snapshot(out, stage) == snapshot(base, stage)
    leftovers = [p.name for p in out.rglob("*") if p.name.endswith((".part", ".tmp", ".tmp.mp4"))]
    assert not leftovers, f"temporary files left behind: {leftovers}"
