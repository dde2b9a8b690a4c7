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

``MOTION_VECTORS`` (exact mode, on by default) adds a first pass from the motion vectors libx264
wrote into the clip: per interval between samples, the P frames' vectors summed on 16 px cells give
an estimate of the score (``vector_motion``), and from it an upper bound of the exact score,
measured on real clips (``vector_bound``).  A clip whose bound is at most MOTION_MIN is rejected
without Farneback (its row: ``motion_mode`` ``vectors``, ``motion_score`` the bound, done again if
MOTION_MIN goes under it); every other clip gets the exact flow, so the gate's decisions are exact
motion's.  The vectors only rule out motion, never confirm it: they miss what the flow reads in
fades and noise, and overstate grain and flat areas many times over.
"""

from __future__ import annotations

import ctypes
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from video_caption.gate import Gate
from video_caption.inputs import path_under
from video_caption.loader import Item
from video_caption.manifest import is_deferred
from video_caption.media.decode import FrameVectors, motion_vectors
from video_caption.media.process import MediaError
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


# --- the codec's motion vectors: an estimate of the score, for free ------------------------------
VECTOR_CELL = 16  # px: a macroblock; the blocks of a P frame are summed onto cells of this size


def vector_intervals(frames: list[FrameVectors], indices: list[int], width: int, height: int
                     ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per interval between consecutive sampled frames (``indices``: the motion score's 0, k, 2k, ...):
    the content's displacement over the interval on each ``VECTOR_CELL`` cell (dx, dy: the vectors of
    the P frames inside it summed, scaled to the interval when their gaps cover more or less of it),
    and which cells every one of those P frames gave a vector (intra blocks, new content, give none).
    Summed rather than taken per frame, so that the vectors' jitter (quarter pixels, grain) partly
    cancels, as it does in a flow over the interval.  Intervals without a P frame are left out."""
    gw, gh = -(-width // VECTOR_CELL), -(-height // VECTOR_CELL)
    out = []
    for start, end in zip(indices, indices[1:], strict=False):
        inside = [f for f in frames if start < f.index <= end]
        if not inside:
            continue
        dx, dy, known = np.zeros(gw * gh), np.zeros(gw * gh), np.ones(gw * gh, bool)
        for f in inside:
            b = f.blocks
            cell = (np.clip(b[:, 1] // VECTOR_CELL, 0, gh - 1) * gw + np.clip(b[:, 0] // VECTOR_CELL, 0, gw - 1)
                    ).astype(np.int64)
            weight = np.bincount(cell, b[:, 4], gw * gh)
            has = weight > 0
            known &= has
            dx[has] += np.bincount(cell, b[:, 2] * b[:, 4], gw * gh)[has] / weight[has]
            dy[has] += np.bincount(cell, b[:, 3] * b[:, 4], gw * gh)[has] / weight[has]
        scale = (end - start) / sum(f.gap for f in inside)
        out.append((dx.reshape(gh, gw) * scale, dy.reshape(gh, gw) * scale, known.reshape(gh, gw)))
    return out


def vector_motion(intervals: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[float, float] | None:
    """(estimate of motion_score, share of cells without a vector): the mean displacement magnitude
    over the cells that have one, averaged over the intervals, on the score's scale (pixels of the
    clip per interval); and the share of cells the estimate could not see.  None without intervals."""
    if not intervals:
        return None
    means = [float(np.hypot(dx, dy)[known].mean()) if known.any() else 0.0 for dx, dy, known in intervals]
    unknown = [1.0 - float(known.mean()) for _, _, known in intervals]
    return float(np.mean(means)), float(np.mean(unknown))


# The exact score against the estimate, over the clips whose cells mostly have a vector (at most
# VECTOR_UNKNOWN_MAX without): motion_score <= 1.30 * estimate + 0.76 on all 40 of them, among the
# 19 shared clips and 96 distinct windows (bench/motion_vectors.py, docs/benchmarks.md).  The offset
# is flow the vectors do not see (fades, a static title's noise: 0.76 at an estimate of 0); above
# 20 % of cells without a vector (changing digits, new content, cuts: coded intra) the score ran to
# 4.8 times the estimate.  The bound takes both terms half as large again.
VECTOR_RATIO, VECTOR_OFFSET = 2.0, 1.2
VECTOR_UNKNOWN_MAX = 0.2


def vector_bound(frames: list[FrameVectors] | None, indices: list[int], width: int, height: int) -> float | None:
    """An upper bound of the clip's exact motion_score from its P frames' vectors, or None when they
    cannot bound it (no vectors, no interval with a P frame, too many cells without a vector)."""
    if frames is None:
        return None
    motion = vector_motion(vector_intervals(frames, indices, width, height))
    if motion is None or motion[1] > VECTOR_UNKNOWN_MAX:
        return None
    return VECTOR_RATIO * motion[0] + VECTOR_OFFSET


class MotionScorer(Scorer):
    name = "motion"
    key = "motion_score"
    skips_images = "an image has one frame: no motion to measure"

    def __init__(self, fast: bool = False, threads: int = 0, fast_side: int = FAST_SIDE, camera: bool = True,
                 vectors: bool = False, vectors_under: float | None = None, root: str | os.PathLike | None = None):
        self.frames = MotionFrames(max_side=fast_side if fast else 0)
        self.mode = "fast" if fast else "exact"
        self.threads = threads
        self.camera = camera  # fit the camera's motion too, for the camera-motion step to label
        # The first pass (exact mode, where the bound was measured): a clip whose vector bound is at
        # most ``vectors_under`` (MOTION_MIN) is rejected without Farneback; ``root``: where its file is.
        self.vectors = vectors and not fast
        self.vectors_under = vectors_under if self.vectors else None
        self.root = Path(root) if root else None
        self._pool = None
        self._cv_threads = 0

    def settings(self) -> dict:
        # "camera": rows made without the fit, or with another, are redone when the fit is wanted.
        made = {"mode": self.mode, "max_side": self.frames.max_side, "camera": FIT if self.camera else None}
        if self.vectors:
            made["vectors"] = {"ratio": VECTOR_RATIO, "offset": VECTOR_OFFSET, "unknown_max": VECTOR_UNKNOWN_MAX,
                               "cell": VECTOR_CELL}
        return made

    def decides(self, row: dict) -> bool:
        # A row decided by the vectors holds a bound, not a score: redone once MOTION_MIN is under it.
        return row.get("motion_mode") != "vectors" or (self.vectors_under is not None
                                                       and row["motion_score"] <= self.vectors_under)

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
        bounds = self._vector_bounds(items)
        cameras = [self._pool.submit(camera_pairs, frames, s) for (frames, _), s in zip(clips, seconds, strict=True)
                   ] if self.camera else []
        # One task per pair, the clips with the largest frames first: the threads finish the batch
        # together, on small pairs.  None for a clip the vectors decided.
        flows: list[list[Future]] = [[] for _ in clips]
        for c in sorted(range(len(clips)), key=lambda c: -clips[c][0][0].size):
            if bounds[c] is None:
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
            if bounds[i] is None:
                row = {"motion_score": float(np.mean(clip)) * factor, "motion_mode": self.mode}
            else:
                row = {"motion_score": bounds[i], "motion_mode": "vectors"}
            if self.camera:
                row.update(motion_camera=fits[i], motion_pair_seconds=round(seconds[i], 6))
            rows.append({**row, "motion_frame_idx": item.frame_indices})
        return rows

    def _vector_bounds(self, items: list[Item]) -> list[float | None]:
        """Per clip, its vector bound where it decides the clip (at most ``vectors_under``), else None.
        Read in the pool (a decode of the I and P frames of each clip's own file: a deferred clip's
        source is someone else's encode, whose vectors were not measured)."""
        if self.vectors_under is None:
            return [None] * len(items)

        def bound(item: Item) -> float | None:
            if is_deferred(item.row) or self.root is None:
                return None
            height, width = item.data[0][0].shape
            found = vector_bound(motion_vectors(path_under(self.root, item.row["video_path"])),
                                 item.frame_indices or [], width, height)
            return found if found is not None and found <= self.vectors_under else None

        futures = [self._pool.submit(bound, item) for item in items]
        found = []
        for future in futures:
            try:
                found.append(future.result())
            except (MediaError, ValueError):  # the vectors could not be read: the flow decides
                found.append(None)
        return found

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
            Field("motion_mode", "exact, fast, or vectors (MOTION_VECTORS: an upper bound under MOTION_MIN from the "
                  "codec's motion vectors, no flow)", label=True, card=False)),
    settings=(
        Setting("MOTION_MIN", number(minimum=None), 3.0, "keep motion_score > this", (2,), GATES, gate="motion"),
        Setting("MOTION_MAX", number(minimum=None), 8.0, "keep motion_score < this", (2,), GATES, gate="motion"),
        Setting("MOTION_FAST", SWITCH, False, "flow on frames shrunk to MOTION_FAST_SIDE, magnitudes scaled back: "
                "approximate, faster", (2,), "motion"),
        Setting("MOTION_FAST_SIDE", integer(minimum=1), FAST_SIDE, "long side of the frames with MOTION_FAST, pixels",
                (2,), "motion"),
        Setting("MOTION_VECTORS", SWITCH, True, "reject without Farneback the clips whose H.264 motion vectors put "
                "motion_score surely under MOTION_MIN (same gate decisions; exact mode; their rows hold the bound, "
                "redone if MOTION_MIN goes under it)", (2,), "motion"),
    ),
    gates=lambda a: [Gate("motion_score", a.motion_min, a.motion_max, strict=True)],
    make=lambda a, device, order: MotionScorer(
        fast=a.motion_fast, fast_side=a.motion_fast_side, camera=camera_from_motion(order),
        vectors=a.motion_vectors, vectors_under=a.motion_min, root=a.root or a.output_folder),
)
