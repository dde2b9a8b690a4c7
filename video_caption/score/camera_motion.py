"""Camera motion: how the camera moves in a clip, one label per clip (Open-Sora's label set).

Labels: ``static``, ``pan_left``, ``pan_right``, ``tilt_up``, ``tilt_down``, ``zoom_in``, ``zoom_out``
for a clip whose frame pairs mostly agree, and ``pan_tilt``, ``dynamic`` or ``unknown`` for a mixed
one.  A label names how the CAMERA moves: content flowing right (+x) is ``pan_left``, content flowing
down (+y, image coordinates) is ``tilt_up``, content growing out of the centre is ``zoom_in``.

Frames are the motion scorer's (0, k, 2k, ... with k = int(fps / 2): pairs 0.5 s apart).  Per pair:

1. Farneback flow (the motion score's parameters) between the two frames shrunk to ``CAMERA_SIDE``
   pixels on the long side.  Not the motion score's full-size flow: Farneback with 3 pyramid levels
   follows at most about 40 px of displacement whatever the frame size (measured on real frames:
   exact up to 32-40 px, then the flow collapses towards 0), which at 1080p is a pan of 4 % of the
   width per pair: a 1080p pan faster than 8 %/s would read as static.  On the small frames (where
   the pyramid stops at 32 px, so the reach is 20-28 px, about 10 % of the width) a shift found by
   phase correlation beyond ``SEED_SHIFT`` also starts a second flow from that shift, and the fit
   that more cells follow wins: pans measured within 1 % up to 80 %/s (bench/camera_motion.py).
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

Pair label (``pair_label``): static when translation and zoom are both under their thresholds;
otherwise a zoom when the zoom's speed at the frame edge beats the translation; otherwise pan or tilt
by the larger axis of the translation (no angles, so no wrap around 0/360 degrees).  Clip label
(``clip_label``): the pair label held by more than half the pairs; else ``unknown`` if a pair is
static, ``pan_tilt`` if no pair is a zoom, ``dynamic`` otherwise.

When this step runs after it, the motion scorer computes the per-pair fit on the frames it has
already decoded and stores it on its rows (``motion_camera``, ``motion_pair_seconds``; a run of
motion alone makes no fit and pays nothing for it); ``CameraMotionScorer(from_motion=True)``
labels from those, ``from_motion=False`` decodes and fits by itself.  Both give the same rows.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from video_caption.loader import Item
from video_caption.manifest import CAMERA_MOTION
from video_caption.score.base import Scorer
from video_caption.score.motion import FARNEBACK, FAST_SIDE, MotionFrames

# --- the fit (changing one redoes motion rows: they are in MotionScorer.settings()) -----------------
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

# --- the labels -----------------------------------------------------------------------------------
# A zoom at log rate z moves the frame's edge (half a frame from the centre) at z / 2 frames per
# second: that is what the zoom's speed is compared with the translation's.
ZOOM_REACH = 0.5
# Static under 2 % of the frame per second (a frame's width crossed in 50 s), measured on real
# footage (bench/results/camera_motion.json): pairs of static-camera shots stay under 0.017 (a camera
# in a moving car), most under 0.005; real slow moves run from 0.02 up (a pan in bikes.mp4 at 0.025,
# the camera drifting up after the rabbit in bigbuckbunny.mp4 at 0.033, checked by phase correlation).
STATIC_SPEED = 0.02
STATIC_ZOOM = STATIC_SPEED / ZOOM_REACH  # 0.04 log/s: the frame's edge moving at the same 2 %/s


def pair_label(pan: float, tilt: float, zoom: float, static_speed: float = STATIC_SPEED,
               static_zoom: float = STATIC_ZOOM) -> str:
    """The camera's move over one frame pair, from its speeds per second (see the module doc)."""
    translation = max(abs(pan), abs(tilt))
    if math.hypot(pan, tilt) < static_speed and abs(zoom) < static_zoom:
        return "static"
    if abs(zoom) >= static_zoom and abs(zoom) * ZOOM_REACH > translation:
        return "zoom_in" if zoom > 0 else "zoom_out"
    if abs(pan) >= abs(tilt):
        return "pan_right" if pan > 0 else "pan_left"
    return "tilt_up" if tilt > 0 else "tilt_down"


def clip_label(pairs: list[str]) -> str:
    """Open-Sora's rule: the pair label held by more than half the pairs; else ``unknown`` if any
    pair is static, ``pan_tilt`` if no pair is a zoom, ``dynamic`` otherwise."""
    if not pairs:
        raise ValueError("no frame pair to label")
    label, count = Counter(pairs).most_common(1)[0]
    if count * 2 > len(pairs):
        return label
    if "static" in pairs:
        return "unknown"
    if not any(p.startswith("zoom") for p in pairs):
        return "pan_tilt"
    return "dynamic"


# --- the fit --------------------------------------------------------------------------------------

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


def _farneback(previous: np.ndarray, current: np.ndarray, shift: tuple[float, float] | None = None) -> np.ndarray:
    import cv2

    if shift is None:
        return cv2.calcOpticalFlowFarneback(previous, current, None, **FARNEBACK)
    start = np.empty(previous.shape + (2,), np.float32)
    start[..., 0], start[..., 1] = shift
    return cv2.calcOpticalFlowFarneback(previous, current, start,
                                        **{**FARNEBACK, "flags": cv2.OPTFLOW_USE_INITIAL_FLOW})


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


# --- the step -------------------------------------------------------------------------------------

class CameraFrames(MotionFrames):
    """The motion scorer's frames (same sampling, same fast-mode shrink), then shrunk to the camera
    side, in the loader's workers."""

    def prepare(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        return camera_frames(super().prepare(frames)[0])

    def prepared_bytes(self, row: dict) -> int:
        return MotionFrames(max_side=CAMERA_SIDE).prepared_bytes(row)


class CameraMotionScorer(Scorer):
    """``camera_motion.jsonl``: the clip's label (``camera_motion``), each pair's, and the numbers.

    ``from_motion``: label the motion scorer's per-pair fits (``motion_camera`` on the rows it gets;
    the motion step must run first, with the same ``fast``); otherwise decode and fit by itself."""

    name = "camera_motion"
    key = "camera_motion"
    skips_images = "an image has one frame: no camera motion to measure"

    def __init__(self, from_motion: bool, fast: bool = False, fast_side: int = FAST_SIDE, threads: int = 0):
        self.from_motion = from_motion
        self.mode = "fast" if fast else "exact"
        self.max_side = fast_side if fast else 0
        self.frames = None if from_motion else CameraFrames(max_side=self.max_side)
        self.threads = threads
        self._pool = None

    @property
    def output(self) -> str:
        return CAMERA_MOTION

    def settings(self) -> dict:
        return {"flow": {"mode": self.mode, "max_side": self.max_side}, "fit": FIT,
                "static_speed": STATIC_SPEED, "static_zoom": STATIC_ZOOM, "zoom_reach": ZOOM_REACH}

    def setup(self, device: str) -> None:
        if not self.from_motion:
            self._pool = ThreadPoolExecutor(self.threads or os.cpu_count() or 1)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def process(self, items: list[Item]) -> list[dict | Exception]:
        if self.from_motion:
            return [self._from_row(item.row) for item in items]
        return list(self._pool.map(self._fit_clip, items))

    def _from_row(self, row: dict) -> dict | Exception:
        if "motion_camera" not in row or "motion_pair_seconds" not in row:
            return ValueError("no motion_camera on this clip's row: run the motion scorer (with this "
                              "version) before camera_motion, or camera_motion on its own")
        made = row.get("motion_settings") or {}
        if made and (made.get("mode"), made.get("max_side"), made.get("camera")) != (self.mode, self.max_side, FIT):
            return ValueError(f"the motion row was made with {made}, camera_motion expects mode {self.mode}, "
                              f"max_side {self.max_side} and fit {FIT}")
        return labelled(row["motion_camera"], row["motion_pair_seconds"], row.get("motion_frame_idx"))

    def _fit_clip(self, item: Item) -> dict | Exception:
        frames = item.data
        if len(frames) < 2:
            return ValueError("clip has fewer than 2 frames: no camera motion to measure")
        seconds = pair_seconds(item)
        return labelled(camera_pairs(frames, seconds), round(seconds, 6), item.frame_indices)


def labelled(pairs: list[list[float]], seconds: float, frame_indices: list[int] | None) -> dict:
    """A camera_motion row from per-pair [pan, tilt, zoom, inliers]."""
    labels = [pair_label(pan, tilt, zoom) for pan, tilt, zoom, _ in pairs]
    return {"camera_motion": clip_label(labels), "camera_motion_pairs": labels,
            "camera_motion_pan": [p[0] for p in pairs], "camera_motion_tilt": [p[1] for p in pairs],
            "camera_motion_zoom": [p[2] for p in pairs], "camera_motion_inliers": [p[3] for p in pairs],
            "camera_motion_pair_seconds": seconds, "camera_motion_frame_idx": frame_indices}
