"""Motion score: mean Farneback optical-flow magnitude between frames sampled twice a second.

The definition the field's thresholds (3 < motion < 8) were tuned on, kept exactly: grayscale
frames at the clip's resolution, sampled at 0, k, 2k, ... with k = int(fps / 2) (at least 1, at most
the frame count - 1), OpenCV Farneback (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5,
poly_sigma 1.2, flags 0) between consecutive samples; the score is the mean over pairs of the
mean flow magnitude.

Speed comes from around the flow, not from changing it: frames are decoded and turned to gray in
loader workers (only the sampled ones are converted), and the flow of each clip runs in a thread
pool (OpenCV releases the GIL).  ``fast`` mode computes the flow at half resolution and doubles the
magnitudes: an approximation on about the same scale, several times faster (docs/benchmarks.md).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_caption.loader import FramePlan
from video_caption.score.base import Scorer

FARNEBACK = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2,
             "flags": 0}


def sample_step(num_frames: int, fps: float) -> int:
    return max(1, min(int(fps / 2), num_frames - 1))


def flow_magnitude(previous: np.ndarray, current: np.ndarray) -> float:
    """Mean Farneback flow magnitude between two gray frames."""
    import cv2

    flow = cv2.calcOpticalFlowFarneback(previous, current, None, **FARNEBACK)
    return float(np.mean(cv2.magnitude(flow[..., 0], flow[..., 1])))


@dataclass(frozen=True)
class MotionFrames(FramePlan):
    scale: int = 1  # 2 in fast mode: frames shrunk by 2, magnitudes doubled back
    fmt = "gray"

    def indices(self, num_frames: int, fps: float, path: Path) -> list[int]:
        return list(range(0, num_frames, sample_step(num_frames, fps)))

    def prepare(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        if self.scale == 1:
            return frames
        import cv2

        h, w = frames[0].shape
        size = (max(1, w // self.scale), max(1, h // self.scale))
        return [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]


class MotionScorer(Scorer):
    name = "motion"
    key = "motion_score"

    def __init__(self, fast: bool = False, threads: int = 0):
        self.frames = MotionFrames(scale=2 if fast else 1)
        self.mode = "fast" if fast else "exact"
        self.threads = threads
        self._pool = None

    def setup(self, device: str) -> None:
        import os

        self._pool = ThreadPoolExecutor(self.threads or os.cpu_count() or 1)

    def _clip(self, frames: list[np.ndarray]) -> dict:
        if len(frames) < 2:
            raise ValueError("clip has fewer than 2 frames: no motion to measure")
        magnitudes = [flow_magnitude(a, b) for a, b in zip(frames, frames[1:], strict=False)]
        return {"motion_score": float(np.mean(magnitudes)) * self.frames.scale, "motion_mode": self.mode}

    def score(self, batch: list[list[np.ndarray]]) -> list[dict]:
        return list(self._pool.map(self._clip, batch))
