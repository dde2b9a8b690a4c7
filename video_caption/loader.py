"""Clips to model inputs: which frames a model needs, decoded and prepared in DataLoader workers.

A ``FramePlan`` is small and picklable: it says which frames of a clip a model needs and turns
them into model input.  It runs in worker processes, so decoding and preprocessing overlap with the
model and the model never waits on them.  Stage 2's scorers and stage 3's captioners both use it.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from video_caption.inputs import path_under
from video_caption.media import MediaError, probe, read_frames


class FramePlan:
    """Which frames a scorer needs and how to prepare them (runs in worker processes)."""

    fmt = "rgb24"  # "rgb24", "bgr24" or "gray", as media.read_frames takes

    def indices(self, num_frames: int, fps: float, path: Path) -> list[int]:
        """Decode indices of the frames wanted (``path`` is there for plans that look at the file)."""
        raise NotImplementedError

    def prepare(self, frames: list[np.ndarray]) -> Any:
        return frames

    def prepared_bytes(self, row: dict) -> int:
        """About how many bytes ``prepare`` returns for this clip (0: small, whatever the clip)."""
        return 0


# Prepared clips in one batch stay under this many bytes (a batch holds fewer clips when they are
# big: 8K frames at full size must not fill the memory, with two batches prefetched per worker).
BATCH_BYTES = 1 << 30


def batch_indices(sizes: list[int], batch_size: int, budget: int = BATCH_BYTES) -> list[list[int]]:
    """Consecutive row indices grouped into batches of at most ``batch_size`` rows and ``budget``
    bytes (a single row bigger than the budget is a batch of its own)."""
    batches, batch, total = [], [], 0
    for i, size in enumerate(sizes):
        if batch and (len(batch) == batch_size or total + size > budget):
            batches.append(batch)
            batch, total = [], 0
        batch.append(i)
        total += size
    if batch:
        batches.append(batch)
    return batches


@dataclass
class Item:
    """One clip coming out of the loader: its row and prepared input, or why it could not be read."""

    row: dict
    data: Any = None
    error: str | None = None
    frame_indices: list[int] | None = None


class ClipFrames:
    """A map-style dataset over manifest rows: item i is the prepared frames of clip i."""

    def __init__(self, rows: list[dict], root: Path, plan: FramePlan):
        self.rows, self.root, self.plan = rows, root, plan

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Item:
        row = self.rows[i]
        try:
            path = path_under(self.root, row["video_path"])
            num_frames, fps = row.get("num_frames"), row.get("fps")
            if not num_frames or not fps:
                info = probe(path)
                num_frames, fps = info.num_frames, float(info.fps)
            indices = self.plan.indices(int(num_frames), float(fps), path)
            if not indices:
                raise MediaError("clip has no frame to score")
            frames = read_frames(path, indices, self.plan.fmt)
            return Item(row, self.plan.prepare(frames), frame_indices=indices)
        except Exception as exc:  # noqa: BLE001 - any failure of one clip is that clip's error row
            message = str(exc) if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
            return Item(row, error=message)


def start_worker_server() -> None:
    """Start the process that forks DataLoader workers now, with torch and the decoders imported
    once: the import (about 2 s) then overlaps the stage's own start instead of delaying the first
    batch, and each worker starts as a fork of a warm process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch.utils.data", "cv2", "av", "video_caption.loader"])
    from multiprocessing import forkserver

    forkserver.ensure_running()


def _worker_init(_: int) -> None:
    import cv2
    import torch

    # Each worker decodes one clip at a time; more threads per worker only fight over the cores.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def load_batches(rows: list[dict], root: Path, plan: FramePlan, batch_size: int, workers: int) -> Iterator[list[Item]]:
    """Batches of prepared clips, decoded in ``workers`` background processes (0: in this one)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        ClipFrames(rows, root, plan),
        batch_sampler=batch_indices([plan.prepared_bytes(row) for row in rows], batch_size),
        num_workers=workers,
        collate_fn=list,
        worker_init_fn=_worker_init if workers else None,
        # forkserver: a forked worker would inherit the model process's thread pools.
        multiprocessing_context=multiprocessing.get_context("forkserver") if workers else None,
        prefetch_factor=2 if workers else None,
    )
    yield from loader
