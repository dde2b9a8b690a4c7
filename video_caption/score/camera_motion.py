"""Camera motion: how the camera moves in a clip, one label per clip (Open-Sora's label set).

Labels: ``static``, ``pan_left``, ``pan_right``, ``tilt_up``, ``tilt_down``, ``zoom_in``, ``zoom_out``
for a clip whose frame pairs mostly agree, and ``pan_tilt``, ``dynamic`` or ``unknown`` for a mixed
one.  A label names how the CAMERA moves: content flowing right (+x) is ``pan_left``, content flowing
down (+y, image coordinates) is ``tilt_up``, content growing out of the centre is ``zoom_in``.

Frames are the motion scorer's (0, k, 2k, ... with k = int(fps / 2): pairs 0.5 s apart).  Per pair,
the camera's fit (video_caption.score.flow: Farneback on frames shrunk to ``CAMERA_SIDE``, cells
without texture or in the border dropped, a similarity transform fitted with RANSAC so that a subject
moving inside the frame is an outlier) gives the camera's speeds per second, so that labels depend
neither on the frame rate nor the size: ``pan`` (frame widths per second, + right), ``tilt`` (frame
heights per second, + up), ``zoom`` (log scale per second, + in), and ``inliers`` (share of the used
cells that follow the fit).

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

from video_caption.gate import Gate
from video_caption.loader import Item
from video_caption.score.base import Scorer
from video_caption.score.flow import (
    CAMERA_SIDE,
    FAST_SIDE,
    FIT,
    MotionFrames,
    camera_frames,
    camera_from_motion,
    camera_pairs,
    pair_seconds,
)
from video_caption.score.settings import GATES
from video_caption.settings import Setting, names
from video_caption.steps import Field, StepSpec

# Open-Sora's camera-motion labels, then the ones for clips whose pairs disagree.
LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out")
MIXED = ("pan_tilt", "dynamic", "unknown")

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

OUTPUT = "camera_motion.jsonl"


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
        return OUTPUT

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


STEP = StepSpec(
    "camera_motion", 2,
    # Open-Sora's --merge-cmotion (and mindone's) knows LABELS only: a mixed clip is written static,
    # the one of them that claims no direction (README, Exports).
    fields=(Field("camera_motion", f"the camera's motion: {', '.join(LABELS + MIXED)}", label=True,
                  opensora="cmotion", opensora_labels=tuple((label, "static") for label in MIXED)),),
    settings=(Setting("CAMERA_MOTION", names(LABELS + MIXED), None, "keep only clips with these camera-motion "
                      "labels", (2,), GATES, gate="camera_motion"),),
    gates=lambda a: [Gate("camera_motion", values=tuple(a.camera_motion))] if a.camera_motion else [],
    make=lambda a, device, order: CameraMotionScorer(from_motion=camera_from_motion(order), fast=a.motion_fast,
                                                     fast_side=a.motion_fast_side),
    outputs=(OUTPUT,),
    uses=("motion",),
)
