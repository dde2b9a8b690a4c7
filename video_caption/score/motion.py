"""Motion score: mean Farneback optical-flow magnitude between frames sampled twice a second.

The definition the field's thresholds (3 < motion < 8) were tuned on, kept exactly: grayscale
frames at the clip's resolution, sampled at 0, k, 2k, ... with k = int(fps / 2) (at least 1, at most
the frame count - 1), OpenCV Farneback (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5,
poly_sigma 1.2, flags 0) between consecutive samples; the score is the mean over pairs of the
mean flow magnitude.

Speed comes from around the flow, not from changing it: frames are decoded and turned to gray in
loader workers (only the sampled ones are converted), and the flow of each clip runs in a thread
pool (OpenCV releases the GIL).  ``fast`` mode computes the flow on frames shrunk to at most
``FAST_SIDE`` pixels on the long side and scales the magnitudes back: an approximation on about the
same scale (large motions read larger), over 4x faster (docs/benchmarks.md).

When the camera_motion step runs after it, each row also holds the camera's motion per pair
(``motion_camera``: [pan, tilt, zoom, inliers] per second, and ``motion_pair_seconds``), fitted on the
frames already decoded here (on a small copy of them: see video_caption.score.camera_motion), for that
step to label; the motion score does not depend on it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_caption.loader import FramePlan, Item
from video_caption.score.base import Scorer

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


@dataclass(frozen=True)
class MotionFrames(FramePlan):
    max_side: int = 0  # fast mode: frames shrunk to this long side (0: full size, the exact definition)
    fmt = "gray"

    def indices(self, num_frames: int, fps: float, path: Path) -> list[int]:
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


class MotionScorer(Scorer):
    name = "motion"
    key = "motion_score"
    skips_images = "an image has one frame: no motion to measure"

    def __init__(self, fast: bool = False, threads: int = 0, fast_side: int = FAST_SIDE, camera: bool = True):
        self.frames = MotionFrames(max_side=fast_side if fast else 0)
        self.mode = "fast" if fast else "exact"
        self.threads = threads
        self.camera = camera  # fit the camera's motion too, for the camera_motion step to label
        self._pool = None

    def settings(self) -> dict:
        from video_caption.score.camera_motion import FIT

        # "camera": rows made without the fit, or with another, are redone when the fit is wanted.
        return {"mode": self.mode, "max_side": self.frames.max_side, "camera": FIT if self.camera else None}

    def setup(self, device: str) -> None:
        import os

        self._pool = ThreadPoolExecutor(self.threads or os.cpu_count() or 1)

    def _clip(self, prepared: tuple[list[np.ndarray], float], seconds: float) -> dict:
        from video_caption.score.camera_motion import camera_pairs

        frames, factor = prepared
        if len(frames) < 2:
            raise ValueError("clip has fewer than 2 frames: no motion to measure")
        magnitudes = [flow_magnitude(a, b) for a, b in zip(frames, frames[1:], strict=False)]
        row = {"motion_score": float(np.mean(magnitudes)) * factor, "motion_mode": self.mode}
        if self.camera:
            row.update(motion_camera=camera_pairs(frames, seconds), motion_pair_seconds=round(seconds, 6))
        return row

    def process(self, items: list[Item]) -> list[dict]:
        from video_caption.score.camera_motion import pair_seconds

        rows = self._pool.map(self._clip, [item.data for item in items], [pair_seconds(item) for item in items])
        return [{**row, "motion_frame_idx": item.frame_indices} for item, row in zip(items, rows, strict=True)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
