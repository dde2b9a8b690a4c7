"""What every stage-2 scorer is: a step of the stage runner that scores prepared frames.

A scorer has two halves:

- ``frames``: a ``FramePlan`` (video_caption.loader) that says which frames of a clip it needs and
  turns them into model input, in DataLoader worker processes.
- ``setup(device)`` loads the model once per process; ``score(batch)`` scores a batch of prepared
  inputs and returns one dict of score keys per clip.

It writes ``<name>_score.jsonl``; its gate reads ``key``.  ``settings`` names what defines its
scores (model, weights digest, mode, frame counts, sizes), so a run with other settings redoes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from video_caption.loader import Item
from video_caption.runner import Step


class Scorer(Step):
    stage = "score"
    key: str = ""  # the score its gate reads (rows may hold more keys)

    @property
    def output(self) -> str:
        return f"{self.name}_score.jsonl"

    def score(self, batch: list[Any]) -> list[dict]:
        raise NotImplementedError

    def frame_means(self, values: list[float], batch: list[list]) -> list[dict]:
        """Per-frame values of a batch, in order, as rows: ``<name>_score`` is each clip's mean."""
        rows, i = [], 0
        for clip in batch:
            mine = values[i:i + len(clip)]
            i += len(clip)
            rows.append({f"{self.name}_score": float(np.mean(mine)), f"{self.name}_frame_scores": mine})
        return rows

    def process(self, items: list[Item]) -> list[dict]:
        return [{**values, f"{self.name}_frame_idx": item.frame_indices}
                for item, values in zip(items, self.score([item.data for item in items]), strict=True)]
