"""A stage-2 step of your own, the worked example of EXTRA_STEPS: sharpness.

The variance of the Laplacian of a few grey frames, the mean over the frames: a common measure of
focus and blur (a blurred, out-of-focus or heavily compressed clip has weak edges and scores low).
It is in grey levels squared, at the clip's own resolution.

    EXTRA_STEPS=examples/sharpness.py SCORERS=aesthetic,text,motion,sharpness SHARPNESS_MIN=50 \\
        OUTPUT_FOLDER=/data/curated bash stage_2_filter_data.sh

Everything the pipeline needs to know of the step is in ``STEP`` at the bottom: its name, the key it
writes, its settings (environment variables SHARPNESS_MIN and SHARPNESS_FRAMES, flags
--sharpness-min and --sharpness-frames, config keys stage_2.sharpness_min ...), its gate and how to
make it.  The stage runs it like a built-in scorer: frames decoded in the loader's workers, resume,
rows redone when SHARPNESS_FRAMES changes (``settings``), a new SHARPNESS_MIN only re-gating, its
rows in sharpness_score.jsonl, its gate in gate_decisions.jsonl and summary.json, its histogram in
the report, its column in datautil's --where and exports.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_caption.gate import Gate
from video_caption.loader import FramePlan
from video_caption.media.decode import uniform_indices
from video_caption.score.base import Scorer
from video_caption.score.settings import GATES
from video_caption.settings import Setting, integer, number
from video_caption.steps import Field, StepSpec


@dataclass(frozen=True)
class GreyFrames(FramePlan):
    """``count`` grey frames spread over the clip, each reduced to its Laplacian's variance in the
    loader's worker processes (only a number per frame crosses to the step)."""

    count: int = 3
    fmt = "gray"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        return uniform_indices(num_frames, self.count)

    def prepare(self, frames: list[np.ndarray]) -> list[float]:
        import cv2

        return [float(cv2.Laplacian(frame, cv2.CV_64F).var()) for frame in frames]


class SharpnessScorer(Scorer):
    name = "sharpness"

    def __init__(self, frames: int = 3):
        self.frames = GreyFrames(frames)

    def settings(self) -> dict:
        return {"frames": self.frames.count, "measure": "laplacian variance, grey, full size"}

    def score(self, batch: list[list[float]]) -> list[dict]:
        return self.frame_means([value for clip in batch for value in clip], batch)


STEP = StepSpec(
    "sharpness", 2,
    fields=(Field("sharpness_score", "variance of the Laplacian of grey frames, mean over the frames (grey levels²)"),),
    settings=(
        Setting("SHARPNESS_MIN", number(), None, "keep sharpness_score >= this (blurred clips score low)", (2,), GATES,
                gate="sharpness"),
        Setting("SHARPNESS_FRAMES", integer(minimum=1), 3, "grey frames per clip, spread uniformly", (2,), "sharpness"),
    ),
    gates=lambda a: [] if a.sharpness_min is None else [Gate("sharpness_score", min=a.sharpness_min)],
    make=lambda a, device, order: SharpnessScorer(a.sharpness_frames),
)
