"""Optical flow shared by the motion and camera-motion steps: the frames, Farneback, the camera's fit.

Frames (``MotionFrames``): grayscale at the clip's resolution, sampled at 0, k, 2k, ... with
k = int(fps / 2) (at least 1, at most the frame count - 1), so pairs are 0.5 s apart; in ``fast`` mode
(``max_side``) shrunk to at most ``FAST_SIDE`` pixels on the long side, with the factor that turns
their flow back into full-size pixels.  Farneback's parameters (``FARNEBACK``) are the motion score's
definition (video_caption.score.motion); ``flow_magnitude`` is its per-pair number.

The camera's fit (``camera_pairs``), per frame pair:

1. Farneback flow (the motion score's parameters) between the two frames shrunk to ``CAMERA_SIDE``
   pixels on the long side.  Not the motion score's full-size flow: Farneback with 3 pyramid levels
   follows at most about 40 px of displacement whatever the frame size (measured on real frames:
   exact up to 32-40 px, then the flow collapses towards 0), which at 1080p is a pan of 4 % of the
   width per pair: a 1080p pan faster than 8 %/s would read as static.  On the small frames (where
   the pyramid stops at 32 px, so the reach is 20-28 px, about 10 % of the width) a shift found by
   phase correlation beyond ``SEED_SHIFT`` also starts a second flow from that shift, and the fit
   that more cells follow wins: pans measured within 1 % up to 80 %/s (the camera-motion benchmark, bench/).
   About 8 ms a pair on a 2-core CPU, twice that with the second flow: per clip 4-25 % of the exact
   motion score's Farneback time (the larger the frames, the less), about half of the fast mode's.
2. The flow is averaged over cells of ``CELL`` px; cells in a border margin (content entering or
   leaving the frame) and cells without texture (where the flow is the smoothing's guess, mostly 0)
   are dropped.
3. A similarity transform (translation, scale, rotation) is fitted to cell centre -> centre + flow
   with RANSAC (``cv2.estimateAffinePartial2D``): a subject moving inside the frame is an outlier,
   not part of the camera's motion (Open-Sora's share of pixels moving away from the centre counts
   it as zoom).
4. Per second, so labels depend neither on the frame rate nor the size: ``pan`` = camera pan speed
   (frame widths per second, + right), ``tilt`` (frame heights per second, + up), ``zoom`` (log
   scale per second, + in), and ``inliers`` (share of the used cells that follow the fit).

``FIT`` names the fit's settings: the motion step records it (its rows carry the fit when
the camera-motion step runs after it), that step records it and checks it on the motion rows it
labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from video_caption.loader import FramePlan, Item

# --- the frames and the flow ----------------------------------------------------------------------

FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2,
             "flags": 0}
FAST_SIDE = 480


def sample_step(num_frames: int, fps: float) -> int:
    return max(1, min(int(fps / 2), num_frames - 1))


def flow_magnitude(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean Farneback flow magnitude between two gray frames."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(previous, current, None, **FARNEBACK)
    return float(np.mean(cv2.magnitude(flow[..., 0], flow[..., 1])))


def _farneback(previous: np.ndarray, current: np.ndarray, shift: tuple[float, float] | None = None) -> np.ndarray:
    import cv2

    if shift is None:
        return cv2.calcOpticalFlowFarneback(previous, current, None, **FARNEBACK)
    start = np.empty(previous.shape + (2,), np.float32)
    start[..., 0], start[..., 1] = shift
    return cv2.calcOpticalFlowFarneback(previous, current, start,
                                        **{**FARNEBACK, "flags": cv2.OPTFLOW_USE_INITIAL_FLOW})


@dataclass(frozen=True)
class MotionFrames(FramePlan):
    max_side: int = 0  # fast mode: frames shrunk to this long side (0: full size, the exact definition)
    fmt = "gray"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        return list(range(0, num_frames, sample_step(num_frames, fps)))

    def prepared_bytes(self, row: dict) -> int:
        width, height, count = row.get("width") or 0, row.get("height") or 0, row.get("num_frames") or 0
        if self.max_side and max(width, height) > self.max_side:
            scale = self.max_side / max(width, height)
            width, height = width * scale, height * scale
        return int(width * height) * len(self.indices(count, row.get("fps") or 1.0, None)) if count else 0

    def prepare(self, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
        """The frames for the flow, and the factor that turns their flow back into full-size pixels."""
        h, w = frames[0].shape
        if not self.max_side or max(h, w) <= self.max_side:
            return frames, 1.0
        import cv2

        size = (max(1, round(w * self.max_side / max(h, w))), max(1, round(h * self.max_side / max(h, w))))
        return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames], w / size[0]


# --- the camera's fit (changing one redoes motion rows: FIT is in MotionScorer.settings()) --------
CAMERA_SIDE = 256  # long side of the frames the camera flow runs on (see the docstring, point 1)
CELL = 8  # px of the camera frames per cell: 32 x 18 cells at 16:9, about 350 used after the margin
MARGIN = 0.1  # share of the width / height left out on each side: content entering or leaving
# RMS Sobel gradient (3x3, ~8x the gray-level step per px) under which a cell is textureless; 16 is
# about 2 gray levels per px, above the compression noise of flat areas (sky, walls, solid colours).
MIN_TEXTURE = 16.0
MIN_CELLS = 12  # fewer textured cells: nothing the camera's motion could be seen on (fit = 0, inliers 0)
# RANSAC inlier distance, px of the camera frames (0.4 % of the long side): above Farneback's noise on
# real footage (0.1-0.3 px per cell), under a walking subject's motion over half a second.
RANSAC_PX = 1.0
# Farneback (3 levels, pyramid down to 32 px) follows about 20-28 px at 256 px: a phase correlation
# shift over 4 % of the long side (10 px) also starts a flow from that shift.
SEED_SHIFT = 0.04
PAIR_SECONDS = 0.5  # a pair's interval when the row gives no fps (what k = int(fps / 2) aims at)
FIT = {"version": 2, "side": CAMERA_SIDE, "cell": CELL, "margin": MARGIN, "texture": MIN_TEXTURE,
       "min_cells": MIN_CELLS, "ransac_px": RANSAC_PX, "seed_shift": SEED_SHIFT}


def camera_frames(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Gray frames shrunk to ``CAMERA_SIDE`` on the long side (as the motion scorer's fast mode
    shrinks: INTER_AREA, same rounding); smaller frames as they are."""
    return MotionFrames(max_side=CAMERA_SIDE).prepare(frames)[0]


def fit_flow(flow: np.ndarray, frame: np.ndarray) -> tuple[float, float, float, float]:
    """The camera's motion behind a flow field (from ``frame`` to the next): content translation
    in frame widths and heights (+x right, +y down, at the frame centre), log scale (+ grows), and
    the inlier share of the cells used.  All 0 when the frame has too little texture."""
    import cv2

    h, w = flow.shape[:2]
    gw, gh = max(1, round(w / CELL)), max(1, round(h / CELL))
    cells = cv2.resize(flow, (gw, gh), interpolation=cv2.INTER_AREA).reshape(gh, gw, 2)
    gx = cv2.Sobel(frame, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(frame, cv2.CV_32F, 0, 1)
    texture = np.sqrt(cv2.resize(gx * gx + gy * gy, (gw, gh), interpolation=cv2.INTER_AREA)).reshape(gh, gw)
    xs = (np.arange(gw) + 0.5) * (w / gw) - w / 2
    ys = (np.arange(gh) + 0.5) * (h / gh) - h / 2
    inside = (np.abs(ys)[:, None] <= (0.5 - MARGIN) * h) & (np.abs(xs)[None, :] <= (0.5 - MARGIN) * w)
    used = inside & (texture >= MIN_TEXTURE)
    if used.sum() < MIN_CELLS:
        return 0.0, 0.0, 0.0, 0.0
    grid_x, grid_y = np.meshgrid(xs, ys)
    src = np.stack([grid_x[used], grid_y[used]], axis=1).astype(np.float32)
    dst = src + cells[used].astype(np.float32)
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX,
                                                  maxIters=2000, confidence=0.995, refineIters=10)
    if matrix is None:
        return 0.0, 0.0, 0.0, 0.0
    scale = math.hypot(float(matrix[0, 0]), float(matrix[1, 0]))
    return (float(matrix[0, 2]) / w, float(matrix[1, 2]) / h, math.log(max(scale, 1e-6)),
            float(inliers.mean()))


def pair_fit(previous: np.ndarray, current: np.ndarray) -> tuple[float, float, float, float]:
    """``fit_flow`` of the camera flow between two camera frames; for a shift beyond Farneback's reach
    (phase correlation over ``SEED_SHIFT``), also of the flow started from that shift, and the fit
    more cells follow wins."""
    import cv2

    fit = fit_flow(_farneback(previous, current), previous)
    h, w = previous.shape
    window = cv2.createHanningWindow((w, h), cv2.CV_32F)
    (sx, sy), _ = cv2.phaseCorrelate(previous.astype(np.float32), current.astype(np.float32), window)
    if math.hypot(sx, sy) > SEED_SHIFT * max(h, w):
        seeded = fit_flow(_farneback(previous, current, (sx, sy)), previous)
        if seeded[3] > fit[3]:
            fit = seeded
    return fit


def camera_pair(previous: np.ndarray, current: np.ndarray, seconds: float) -> list[float]:
    """[pan, tilt, zoom, inliers] of one pair of camera frames ``seconds`` apart: the camera's
    speeds per second (pan + right, tilt + up, zoom + in) and the fit's inlier share."""
    dx, dy, scale, inliers = pair_fit(previous, current)
    # Content flowing right is the camera turning left; content flowing down, the camera tilting up.
    return [round(-dx / seconds, 5) + 0.0, round(dy / seconds, 5) + 0.0, round(scale / seconds, 5) + 0.0,
            round(inliers, 4)]


def camera_pairs(frames: list[np.ndarray], seconds: float) -> list[list[float]]:
    """``camera_pair`` of each consecutive pair of full-size (or fast-mode) gray frames."""
    small = camera_frames(frames)
    return [camera_pair(a, b, seconds) for a, b in zip(small, small[1:], strict=False)]


def pair_seconds(item: Item) -> float:
    """The interval between a clip's sampled frames, from its frame indices and fps."""
    indices, fps = item.frame_indices or [], item.row.get("fps")
    if len(indices) < 2 or not fps:
        return PAIR_SECONDS
    return (indices[1] - indices[0]) / float(fps)


def camera_from_motion(order: list) -> bool:
    """Whether a step after the motion step labels the camera fit motion makes on its frames (a step
    that ``uses`` motion's rows: the camera-motion step); otherwise that step decodes and fits by
    itself, and motion makes no fit.  ``order``: the StepSpecs that run, in order."""
    names = [step.name for step in order]
    return "motion" in names and any("motion" in step.uses for step in order[names.index("motion") + 1:])
