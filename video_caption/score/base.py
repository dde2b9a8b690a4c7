"""What every stage-2 scorer is.

A scorer has two halves:

- ``frames``: a ``FramePlan`` (video_caption.loader) that says which frames of a clip it needs and
  turns them into model input, in DataLoader worker processes.
- ``setup(device)`` loads the model once per process; ``score(batch)`` scores a batch of prepared
  inputs and returns one dict of score keys per clip.
"""

from __future__ import annotations

from typing import Any

from video_caption.loader import FramePlan


class Scorer:
    name: str = ""  # writes <name>_score.jsonl
    key: str = ""  # the score its gate reads (rows may hold more keys)
    frames: FramePlan

    def setup(self, device: str) -> None:
        """Load the model (once per process)."""

    def score(self, batch: list[Any]) -> list[dict]:
        raise NotImplementedError
