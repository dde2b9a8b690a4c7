"""The camera_motion step: its label rules, its fit against moving subjects, and real footage moved by
a crop window of known motion (both modes: from the motion scorer's rows, and on its own)."""

from __future__ import annotations

import json
import logging
import math
import subprocess

import cv2
import numpy as np
import pytest

from video_caption.loader import Item
from video_caption.manifest import KEY, read_rows
from video_caption.media.decode import read_frames
from video_caption.score.camera_motion import STATIC_SPEED, CameraMotionScorer, clip_label, pair_label
from video_caption.score.flow import _farneback, camera_pair, fit_flow, pair_seconds
from video_caption.score.motion import MotionScorer


def test_clip_label_is_the_majority_else_unknown_pan_tilt_or_dynamic():
    assert clip_label(["pan_left"] * 3 + ["static"] * 2) == "pan_left"
    assert clip_label(["static"]) == "static"
    # Half is not a majority.
    assert clip_label(["pan_left", "pan_left", "tilt_up", "tilt_up"]) == "pan_tilt"
    assert clip_label(["pan_left", "pan_left", "static", "tilt_up"]) == "unknown"
    assert clip_label(["pan_left", "static", "zoom_in", "tilt_up"]) == "unknown"  # static wins over zoom
    assert clip_label(["pan_left", "zoom_in", "tilt_up"]) == "dynamic"
    assert clip_label(["zoom_in", "zoom_out"]) == "dynamic"
    with pytest.raises(ValueError):
        clip_label([])


def test_pair_label_names_the_camera_move():
    assert pair_label(0.0, 0.0, 0.0) == "static"
    assert pair_label(STATIC_SPEED * 0.9, 0.0, 0.0) == "static"
    assert pair_label(0.012, 0.012, 0.01) == "static"
    assert pair_label(0.1, 0.02, 0.0) == "pan_right"
    assert pair_label(-0.1, 0.05, 0.0) == "pan_left"
    assert pair_label(0.02, 0.08, 0.0) == "tilt_up"
    assert pair_label(0.02, -0.08, 0.0) == "tilt_down"
    assert pair_label(0.02, 0.01, 0.2) == "zoom_in"
    assert pair_label(0.0, 0.0, -0.1) == "zoom_out"
    # A zoom is named only when its speed at the frame edge (z / 2) beats the translation.
    assert pair_label(0.1, 0.0, 0.15) == "pan_right"
    assert pair_label(0.05, 0.0, 0.15) == "zoom_in"


def textured(h: int = 144, w: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w), dtype=np.uint8), (0, 0), 1.5)


def translation(h: int, w: int, dx: float, dy: float) -> np.ndarray:
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    return flow


def test_direction_does_not_wrap_around_zero_degrees():
    """Content flowing right with a slight up/down jitter: flow angles near 0 and near 360 degrees.
    Their median (Open-Sora's direction) is about 180 degrees, content flowing left; the fit is not
    fooled."""
    h, w = 144, 256
    flow = translation(h, w, 4.0, 0.0)
    flow[0::2, :, 1], flow[1::2, :, 1] = 0.3, -0.3
    _, angle = cv2.cartToPolar(flow[..., 0], flow[..., 1], angleInDegrees=True)
    assert 150 < np.median(angle) < 210  # the median of the angles points left
    dx, dy, zoom, inliers = fit_flow(flow, textured(h, w))
    assert dx == pytest.approx(4.0 / w, rel=0.02) and abs(dy) < 0.01 and abs(zoom) < 1e-3
    assert pair_label(-dx / 0.5, dy / 0.5, zoom / 0.5) == "pan_left"  # content right: the camera turns left


def test_a_moving_subject_is_not_a_zoom():
    """A static camera, and a subject (a quarter of the frame) walking out to the right: every moving
    pixel moves away from the centre, so Open-Sora's zoom measure (share of moving pixels moving
    outwards) calls it a zoom in.  The fit sees a static camera, then the same subject over a pan."""
    h, w = 144, 256
    frame = textured(h, w)
    flow = np.random.default_rng(1).normal(0, 0.05, (h, w, 2)).astype(np.float32)
    flow[40:112, 150:230] = (6.0, 0.0)
    ys, xs = np.mgrid[0:h, 0:w]
    moving = np.hypot(flow[..., 0], flow[..., 1]) > 1
    outwards = (flow[..., 0] * (xs - w / 2) + flow[..., 1] * (ys - h / 2)) > 0
    assert outwards[moving].mean() > 0.9
    dx, dy, zoom, inliers = fit_flow(flow, frame)
    assert pair_label(-dx / 0.5, dy / 0.5, zoom / 0.5) == "static" and inliers > 0.6
    panned = flow + translation(h, w, 0.0, -3.0)  # content up: the camera tilts down
    dx, dy, zoom, inliers = fit_flow(panned, frame)
    assert dy == pytest.approx(-3.0 / h, rel=0.05) and abs(zoom) < 0.01
    assert pair_label(-dx / 0.5, dy / 0.5, zoom / 0.5) == "tilt_down"


def test_speeds_are_per_second_whatever_the_frame_rate_and_size():
    """A camera panning at 10 % of the frame per second, sampled at the motion scorer's k = int(fps/2)
    (pairs 0.5 s apart at 24 or 60 fps, 0.48 s at 25, 0.467 s at 29.97), at two frame sizes: the same
    pan speed.  (Open-Sora's fixed 15-frame interval sees 2.5x the displacement at 24 fps as at 60.)"""
    speeds = []
    for fps in (24.0, 25.0, 30000 / 1001, 60.0):
        step = int(fps / 2)
        item = Item({"fps": fps}, frame_indices=[0, step, 2 * step])
        seconds = pair_seconds(item)
        assert seconds == pytest.approx(step / fps)
        for w, h in ((256, 144), (192, 108)):
            big = textured(h + 40, w + 60, seed=2)
            shift = 0.10 * w * seconds  # content flows left by this many px: the camera pans right
            previous = big[20:20 + h, 20:20 + w]
            matrix = np.float32([[1, 0, 20 + shift], [0, 1, 20]])
            current = cv2.warpAffine(big, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            pan, tilt, zoom, inliers = camera_pair(previous, current, seconds)
            speeds.append(pan)
            assert pair_label(pan, tilt, zoom) == "pan_right"
    assert max(speeds) - min(speeds) < 0.01 and min(speeds) == pytest.approx(0.10, abs=0.01)


def test_a_pan_beyond_farneback_reach_is_measured(videos):
    """60 px a pair on 256 px camera frames (a pan of 47 % of the width per second): beyond what
    Farneback follows from a standing start (it reads a fraction of it), measured exactly from the
    phase correlation's shift."""
    deer = read_frames(videos / "pyscenedetect/testvideo.mp4", [300], "gray")[0]
    deer = cv2.resize(deer, (512, 288), interpolation=cv2.INTER_AREA)
    previous, current = (np.ascontiguousarray(deer[72:216, x:x + 256]) for x in (100, 160))
    alone = fit_flow(_farneback(previous, current), previous)
    assert -alone[0] * 256 < 30  # Farneback alone: not even half of it
    pan, tilt, zoom, inliers = camera_pair(previous, current, 0.5)
    assert pan == pytest.approx(60 / 256 / 0.5, rel=0.02) and abs(tilt) < 0.01 and abs(zoom) < 0.01
    assert pair_label(pan, tilt, zoom) == "pan_right" and inliers > 0.5


def test_from_motion_needs_the_motion_rows():
    scorer = CameraMotionScorer(from_motion=True)
    assert scorer.frames is None and scorer.output == "camera_motion.jsonl"
    [result] = scorer.process([Item({"video_path": "a.mp4", "motion_score": 4.0})])
    assert isinstance(result, ValueError)
    # The same settings in both modes; another flow mode is another setting.
    assert scorer.settings() == CameraMotionScorer(from_motion=False).settings()
    assert scorer.settings() != CameraMotionScorer(from_motion=True, fast=True).settings()
    assert "camera" in MotionScorer().settings()


# --- real footage ---------------------------------------------------------------------------------

SIZE, FPS, SECONDS = (320, 180), 25, 2.0


def crop_clip(path, frame: np.ndarray, kind: str, speed: float) -> dict:
    """A 320x180 clip of a crop window moving over a real frame: pans and tilts at ``speed`` of the
    frame per second, zooms at ``speed`` log scale per second."""
    sh, sw = frame.shape[:2]
    n = int(FPS * SECONDS)
    w = min(sw, sh * SIZE[0] / SIZE[1]) * 0.6
    h = w * SIZE[1] / SIZE[0]
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "gray", "-s", f"{SIZE[0]}x{SIZE[1]}",
           "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
           str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for i in range(n):
        t = i / FPS - SECONDS / 2
        x, y, s = sw / 2 - w / 2, sh / 2 - h / 2, 1.0
        if kind == "pan_left":
            x -= speed * w * t
        elif kind == "tilt_down":
            y += speed * h * t
        else:
            s = math.exp(-speed * t if kind == "zoom_in" else speed * t)
            x, y = sw / 2 - w * s / 2, sh / 2 - h * s / 2
        sx, sy = w * s / SIZE[0], h * s / SIZE[1]
        matrix = np.float32([[sx, 0, x], [0, sy, y]])
        proc.stdin.write(cv2.warpAffine(frame, matrix, SIZE, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return {"video_path": path.name, "num_frames": n, "fps": float(FPS), "width": SIZE[0], "height": SIZE[1],
            "truth": kind}


def run_steps(out, root, rows, steps) -> dict[str, dict]:
    from video_caption.distributed import Ranks
    from video_caption.runner import RunOptions, StageRun

    out.mkdir()
    with StageRun("score", "stage 2", out, Ranks(cpu=True), RunOptions(root, "cpu", 4, 0, 0),
                  logging.getLogger("test")) as run:
        for step in steps:
            scored = run.step(step, rows)
            rows = [{**row, **scored[row[KEY]]} for row in rows if row[KEY] in scored]
    return {row[KEY]: row for row in read_rows(out / "camera_motion.jsonl")}


def test_real_footage_labels_and_both_modes_give_the_same_rows(videos, tmp_path):
    root = tmp_path / "clips"
    root.mkdir()
    deer = read_frames(videos / "pyscenedetect/testvideo.mp4", [300], "gray")[0]  # a still of a static shot
    deer = cv2.resize(deer, (640, 360), interpolation=cv2.INTER_AREA)  # the window then maps about 1:1
    rows = [crop_clip(root / "pan.mp4", deer, "pan_left", 0.10), crop_clip(root / "tilt.mp4", deer, "tilt_down", 0.08),
            crop_clip(root / "in.mp4", deer, "zoom_in", 0.2), crop_clip(root / "out.mp4", deer, "zoom_out", 0.15)]
    (root / "chaplin.mp4").symlink_to(videos / "moviepy/chaplin.mp4")  # static camera, two actors moving
    rows.append({"video_path": "chaplin.mp4", "num_frames": 50, "fps": 25.0, "width": 640, "height": 360,
                 "truth": "static"})
    from_motion = run_steps(tmp_path / "a", root, rows, [MotionScorer(), CameraMotionScorer(from_motion=True)])
    standalone = run_steps(tmp_path / "b", root, rows, [CameraMotionScorer(from_motion=False)])
    assert {k: r["camera_motion"] for k, r in from_motion.items()} == {r["video_path"]: r["truth"] for r in rows}, \
        json.dumps(from_motion, indent=0)
    assert from_motion == standalone
    motion = {r[KEY]: r for r in read_rows(tmp_path / "a" / "motion_score.jsonl")}
    pan = from_motion["pan.mp4"]
    assert pan["camera_motion_pair_seconds"] == motion["pan.mp4"]["motion_pair_seconds"] == 0.48
    assert len(pan["camera_motion_pairs"]) == len(motion["pan.mp4"]["motion_camera"]) == 4
    assert all(p == pytest.approx(-0.10, abs=0.015) for p in pan["camera_motion_pan"])


def test_the_camera_motion_gate_keeps_only_the_labels_asked_for(videos, tmp_path):
    from conftest import run_module

    root = tmp_path / "clips"
    root.mkdir()
    deer = cv2.resize(read_frames(videos / "pyscenedetect/testvideo.mp4", [300], "gray")[0], (640, 360),
                      interpolation=cv2.INTER_AREA)
    rows = [crop_clip(root / "pan.mp4", deer, "pan_left", 0.10)]
    (root / "chaplin.mp4").symlink_to(videos / "moviepy/chaplin.mp4")
    rows.append({"video_path": "chaplin.mp4", "num_frames": 50, "fps": 25.0, "width": 640, "height": 360})
    manifest = tmp_path / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ["--output-folder", tmp_path / "out", "--input", manifest, "--root", root, "--scorers",
            "motion,camera_motion", "--motion-min", "-1", "--motion-max", "1e9"]
    run_module("video_caption.score", *args, "--camera-motion", "static,zoom_in")
    fates = {r[KEY]: r for r in read_rows(tmp_path / "out" / "gate_decisions.jsonl")}
    assert fates["chaplin.mp4"]["outcome"] == "passed"
    assert (fates["pan.mp4"]["outcome"], fates["pan.mp4"]["step"], fates["pan.mp4"]["value"]) == \
        ("rejected", "camera_motion", "pan_left")
    assert fates["pan.mp4"]["gate"] == 'camera_motion in ("static", "zoom_in")'
    bad = run_module("video_caption.score", *args, "--camera-motion", "pan-left", check=False)
    assert bad.returncode == 1 and "pan-left" in bad.stderr
