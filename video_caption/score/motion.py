"""Motion score: mean Farneback optical-flow magnitude between frames sampled twice a second.

The definition the field's thresholds (3 < motion < 8) were tuned on, kept exactly: grayscale
frames at the clip's resolution, sampled at 0, k, 2k, ... with k = int(fps / 2) (at least 1, at most
the frame count - 1), OpenCV Farneback (pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5,
poly_sigma 1.2, flags 0) between consecutive samples; the score is the mean over pairs of the
mean flow magnitude.

Speed comes from around the flow, not from changing it: frames are decoded and turned to gray in
loader workers (only the sampled ones are converted); the flows of a batch run in a thread pool
(OpenCV releases the GIL), one task per frame pair, largest frames first, so that the batch ends
on small pairs with every core busy instead of on one long clip with the others idle; and freed
memory is kept for the next flow rather than returned to the system (``keep_freed_memory``).
``fast`` mode computes the flow on frames shrunk to at most ``FAST_SIDE`` pixels on the long side
and scales the magnitudes back: an approximation on about the same scale (large motions read
larger), over 4x faster (docs/benchmarks.md).

When the camera-motion step runs after it, each row also holds the camera's motion per pair
(``motion_camera``: [pan, tilt, zoom, inliers] per second, and ``motion_pair_seconds``), fitted on the
frames already decoded here (on a small copy of them: see video_caption.score.flow), for that
step to label; the motion score does not depend on it.
"""

from __future__ import annotations

import ctypes
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from video_caption.gate import Gate
from video_caption.loader import Item
from video_caption.score.base import Scorer
from video_caption.score.flow import (
    FAST_SIDE,
    FIT,
    MotionFrames,
    camera_from_motion,
    camera_pairs,
    flow_magnitude,
    pair_seconds,
)
from video_caption.score.settings import GATES
from video_caption.settings import SWITCH, Setting, integer, number
from video_caption.steps import Field, StepSpec
from video_caption.workers import usable_cores


def keep_freed_memory(keep: bool) -> None:
    """Have this process's malloc (glibc) keep freed blocks for reuse (``keep``), or stop and give
    back what it kept.

    Farneback allocates its buffers anew on every call (about 40 MB each for a 1080p pair), above
    glibc's largest automatic mmap threshold (32 MB): each one was mapped, faulted in page by page
    and unmapped, and with two threads faulting in one address space that was 15% of the flow's
    CPU time (docs/benchmarks.md).  Kept (up to 1 GB), the blocks are reused by the next call; the
    memory held is about what the largest call used, per thread.  Stopping sets the thresholds to
    glibc's automatic ceiling (mmap 32 MB, trim twice that) and trims.  Elsewhere than glibc this
    does nothing."""
    try:
        libc = ctypes.CDLL(None)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (AttributeError, OSError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mmap = 1 << 30 if keep else 32 << 20
    mallopt(m_mmap_threshold, mmap)
    mallopt(m_trim_threshold, mmap if keep else 2 * mmap)
    if not keep:
        malloc_trim(0)


class MotionScorer(Scorer):
    name = "motion"
    key = "motion_score"
    skips_images = "an image has one frame: no motion to measure"

    def __init__(self, fast: bool = False, threads: int = 0, fast_side: int = FAST_SIDE, camera: bool = True):
        self.frames = MotionFrames(max_side=fast_side if fast else 0)
        self.mode = "fast" if fast else "exact"
        self.threads = threads
        self.camera = camera  # fit the camera's motion too, for the camera-motion step to label
        self._pool = None
        self._cv_threads = 0

    def settings(self) -> dict:
        # "camera": rows made without the fit, or with another, are redone when the fit is wanted.
        return {"mode": self.mode, "max_side": self.frames.max_side, "camera": FIT if self.camera else None}

    def setup(self, device: str) -> None:
        import cv2

        # One flow per thread, one thread per core, and OpenCV's own threads off while the step
        # runs: Farneback's inner parallel loops only fought the pool's threads (7 % more time).
        keep_freed_memory(True)
        self._cv_threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        self._pool = ThreadPoolExecutor(self.threads or usable_cores())

    def process(self, items: list[Item]) -> list[dict]:
        clips = [item.data for item in items]
        if any(len(frames) < 2 for frames, _ in clips):
            # The runner then scores the batch's clips one by one: this one gets the error.
            raise ValueError("clip has fewer than 2 frames: no motion to measure")
        seconds = [pair_seconds(item) for item in items]
        cameras = [self._pool.submit(camera_pairs, frames, s) for (frames, _), s in zip(clips, seconds, strict=True)
                   ] if self.camera else []
        # One task per pair, the clips with the largest frames first: the threads finish the batch
        # together, on small pairs.
        flows: list[list[Future]] = [[] for _ in clips]
        for c in sorted(range(len(clips)), key=lambda c: -clips[c][0][0].size):
            frames = clips[c][0]
            flows[c] = [self._pool.submit(flow_magnitude, a, b) for a, b in zip(frames, frames[1:], strict=False)]
        try:
            magnitudes = [[f.result() for f in clip] for clip in flows]
            fits = [f.result() for f in cameras]
        except BaseException:
            for future in (*cameras, *(f for clip in flows for f in clip)):
                future.cancel()  # the runner retries clip by clip: leave it the threads
            raise
        rows = []
        for i, (item, (_, factor), clip) in enumerate(zip(items, clips, magnitudes, strict=True)):
            row = {"motion_score": float(np.mean(clip)) * factor, "motion_mode": self.mode}
            if self.camera:
                row.update(motion_camera=fits[i], motion_pair_seconds=round(seconds[i], 6))
            rows.append({**row, "motion_frame_idx": item.frame_indices})
        return rows

    def close(self) -> None:
        import cv2

        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
            keep_freed_memory(False)  # the next step may need the memory
            cv2.setNumThreads(self._cv_threads)


STEP = StepSpec(
    "motion", 2,
    fields=(Field("motion_score", "Farneback flow magnitude, mean over frame pairs half a second apart (px/frame)",
                  opensora="flow"),
            Field("motion_mode", "exact or fast", label=True, card=False)),
    settings=(
        Setting("MOTION_MIN", number(minimum=None), 3.0, "keep motion_score > this", (2,), GATES, gate="motion"),
        Setting("MOTION_MAX", number(minimum=None), 8.0, "keep motion_score < this", (2,), GATES, gate="motion"),
        Setting("MOTION_FAST", SWITCH, False, "flow on frames shrunk to MOTION_FAST_SIDE, magnitudes scaled back: "
                "approximate, faster", (2,), "motion"),
        Setting("MOTION_FAST_SIDE", integer(minimum=1), FAST_SIDE, "long side of the frames with MOTION_FAST, pixels",
                (2,), "motion"),
    ),
    gates=lambda a: [Gate("motion_score", a.motion_min, a.motion_max, strict=True)],
    make=lambda a, device, order: MotionScorer(fast=a.motion_fast, fast_side=a.motion_fast_side,
                                               camera=camera_from_motion(order)),
)
