"""Clips to model inputs: which frames a model needs, decoded and prepared in DataLoader workers.

A ``FramePlan`` is small and picklable: it says which frames of a clip a model needs and turns
them into model input.  It runs in worker processes, so decoding and preprocessing overlap with the
model and the model never waits on them.  Stage 2's scorers and stage 3's captioners both use it.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from video_caption.inputs import path_under
from video_caption.manifest import IMAGE, is_deferred, media_type
from video_caption.media.decode import keyframe_indices, read_frames
from video_caption.media.image import read_image
from video_caption.media.probe import probe
from video_caption.media.process import MediaError
from video_caption.workers import default_workers, interrupts_deferred, start_forkserver


class FramePlan:
    """Which frames a scorer needs and how to prepare them (runs in worker processes)."""

    fmt = "rgb24"  # "rgb24", "bgr24" or "gray", as read_frames takes
    needs_keyframes = False  # whether ``indices`` looks at where the clip's key frames are

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        """Indices within the clip of the frames wanted; ``keyframes``: the clip's key frames, given
        when ``needs_keyframes``."""
        raise NotImplementedError

    def prepare(self, frames: list[np.ndarray]) -> Any:
        return frames

    def prepared_bytes(self, row: dict) -> int:
        """About how many bytes ``prepare`` returns for this clip (0: small, whatever the clip)."""
        return 0


def clip_source(root: Path, row: dict) -> tuple[Path, int]:
    """Where a clip's frames are: its file and 0, or, for a deferred clip (stage 1's ``CLIPS=deferred``:
    no file until ``materialize``), its source and the index there of the clip's first frame."""
    if is_deferred(row) and media_type(row) != IMAGE:
        if "source_file" not in row or "start_frame" not in row:
            raise MediaError("deferred clip row without source_file and start_frame")
        return Path(row["source_file"]), int(row["start_frame"])
    return path_under(root, row["video_path"]), 0


def clip_keyframes(root: Path, row: dict) -> list[int]:
    """The key frames of a clip, as indices within it.  A deferred clip has none of its own yet:
    its first frame and the source's key frames inside its range (where the encoder puts them too,
    at scene changes)."""
    path, start = clip_source(root, row)
    if not is_deferred(row):
        return keyframe_indices(path)
    end = start + int(row["num_frames"])
    return [0] + [k - start for k in keyframe_indices(path) if start < k < end]


def _upright_crop(frame: np.ndarray, row: dict) -> np.ndarray:
    """A source frame as the clip holds it: stage 1 encodes even sizes, dropping an odd last row or column."""
    height, width = row.get("height") or frame.shape[0], row.get("width") or frame.shape[1]
    return frame if frame.shape[:2] == (height, width) else np.ascontiguousarray(frame[:height, :width])


def read_clip_frames(root: Path, row: dict, indices: list[int], fmt: str = "rgb24") -> list[np.ndarray]:
    """The frames at ``indices`` within a clip, from its file or, deferred, from its source's range."""
    path, start = clip_source(root, row)
    frames = read_frames(path, [start + i for i in indices], fmt)
    return [_upright_crop(f, row) for f in frames] if is_deferred(row) else frames


# Prepared clips in one batch stay under this many bytes (a batch holds fewer clips when they are
# big: 8K frames at full size must not fill the memory, with two batches prefetched per worker).
BATCH_BYTES = 1 << 30


def batch_indices(sizes: list[int], batch_size: int, budget: int = BATCH_BYTES) -> list[list[int]]:
    """Consecutive row indices grouped into batches of at most ``batch_size`` rows and ``budget``
    bytes (a single row bigger than the budget is a batch of its own).

    The first batches ramp up (1, 2, 4, ... rows): the step's first call waits for one clip to be
    decoded, not a whole batch, and the loader keeps ahead of the step from then on (a batch of 8
    took the motion step's threads 3 s of idling on a 2-core machine)."""
    batches, batch, total, limit = [], [], 0, 1
    for i, size in enumerate(sizes):
        if batch and (len(batch) >= min(limit, batch_size) or total + size > budget):
            batches.append(batch)
            batch, total, limit = [], 0, 2 * limit
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
        return self.__getitems__([i])[0]

    def __getitems__(self, indices: list[int]) -> list[Item]:
        """The items of a batch (the DataLoader asks for a batch at once): the deferred clips of one
        source are read in one pass over it, seeking over what no clip wants."""
        items, by_source = {}, {}
        for i in indices:
            row = self.rows[i]
            if is_deferred(row) and media_type(row) != IMAGE:
                by_source.setdefault(row.get("source_file"), []).append(i)
            else:
                items[i] = self._guarded(row, self._read)
        for members in by_source.values():
            items.update(self._read_together(members))
        return [items[i] for i in indices]

    def _wanted(self, row: dict) -> list[int]:
        if media_type(row) == IMAGE:
            return self.plan.indices(1, 1.0, [0])
        num_frames, fps = row.get("num_frames"), row.get("fps")
        if not num_frames or not fps:
            info = probe(clip_source(self.root, row)[0])
            num_frames, fps = info.num_frames, float(info.fps)
        keyframes = clip_keyframes(self.root, row) if self.plan.needs_keyframes else None
        indices = self.plan.indices(int(num_frames), float(fps), keyframes)
        if not indices:
            raise MediaError("clip has no frame to score")
        return indices

    def _read(self, row: dict) -> Item:
        indices = self._wanted(row)
        if media_type(row) == IMAGE:
            # One frame, read once, at every index a plan asks for (a plan that averages moments
            # gets the same picture at each).
            image = read_image(path_under(self.root, row["video_path"]), self.plan.fmt)
            return Item(row, self.plan.prepare([image for _ in indices]), frame_indices=indices)
        frames = read_clip_frames(self.root, row, indices, self.plan.fmt)
        return Item(row, self.plan.prepare(frames), frame_indices=indices)

    def _read_together(self, members: list[int]) -> dict[int, Item]:
        """Deferred clips of one source: every frame they want, in one read."""
        rows = [self.rows[i] for i in members]
        try:
            wanted = [self._wanted(row) for row in rows]
            indices = sorted({row["start_frame"] + k for row, ks in zip(rows, wanted, strict=True) for k in ks})
            frames = dict(zip(indices, read_frames(Path(rows[0]["source_file"]), indices, self.plan.fmt), strict=True))
        except Exception:  # noqa: BLE001 - the joint read failed: each clip alone, for its own error
            return {i: self._guarded(self.rows[i], self._read) for i in members}

        def prepared(row: dict, ks: list[int]) -> Item:
            clip = [_upright_crop(frames[row["start_frame"] + k], row) for k in ks]
            return Item(row, self.plan.prepare(clip), frame_indices=ks)

        return {i: self._guarded(row, lambda r, ks=ks: prepared(r, ks))
                for i, row, ks in zip(members, rows, wanted, strict=True)}

    @staticmethod
    def _guarded(row: dict, read) -> Item:
        try:
            return read(row)
        except Exception as exc:  # noqa: BLE001 - any failure of one clip is that clip's error row
            message = str(exc) if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
            return Item(row, error=message)


def start_worker_server() -> None:
    """Start the process that forks DataLoader workers now, with torch and the decoders imported
    once: the import (about 2 s) then overlaps the stage's own start instead of delaying the first
    batch, and each worker starts as a fork of a warm process.  It and the workers ignore Ctrl-C:
    this process stops them."""
    start_forkserver(["torch.utils.data", "cv2", "av", "video_caption.loader"])


def default_loader_workers() -> int:
    """Decoding processes beside the step's own: one core is left to the step (its model or its
    threads), and each worker may hold three batches (two prefetched, one being read)."""
    return default_workers(3 * BATCH_BYTES, spare_cores=1, most=4)


def _worker_init(_: int) -> None:
    import signal

    import cv2
    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process stops the workers on Ctrl-C
    # Each worker decodes one clip at a time; more threads per worker only fight over the cores.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def load_batches(rows: list[dict], root: Path, plan: FramePlan, batch_size: int, workers: int,
                 stall_timeout: float = 0) -> Iterator[list[Item]]:
    """Batches of prepared clips, decoded in ``workers`` background processes (0: in this one).

    With workers, a clip whose reader hangs (a read that never returns) or crashes its worker (a
    native decoder's segfault) becomes that clip's error and the others go on: when no batch comes
    for ``stall_timeout`` seconds (0: wait for ever) or a worker dies, the workers are stopped, each
    clip of the batch being waited for is read again alone, and the loader restarts after it."""
    dataset = ClipFrames(rows, root, plan)
    batches = batch_indices([plan.prepared_bytes(row) for row in rows], batch_size)
    if not workers:
        for batch in batches:
            yield [dataset[i] for i in batch]
        return
    done = 0
    while done < len(batches):
        try:
            for batch in _until_failure(_loader(dataset, batches[done:], workers), stall_timeout):
                yield batch
                done += 1
        except _LoaderFailed:
            # The failure may belong to another worker's batch; that one fails again when its turn comes.
            yield [_read_alone(dataset, i, stall_timeout) for i in batches[done]]
            done += 1


class _LoaderFailed(Exception):
    """No batch within the stall timeout (``stalled``), or a worker died."""

    def __init__(self, message: str, stalled: bool):
        super().__init__(message)
        self.stalled = stalled


# The loader is asked for a batch at most this long at a time: between asks a dead worker is noticed
# (the workers are children of the fork server, so no SIGCHLD tells this process).
POLL_SECONDS = 5.0
# A batch comes as one message on the workers' pipe, written by a worker's feeder thread while the
# worker goes on to its next clip; a worker that crashes on that clip mid-write leaves half a message,
# and the read under the loader's poll then waits for the rest for ever (the pipe stays open).  An ask
# this much longer than a poll is taken for that: the loader is given up and its batch read alone.
STUCK_SECONDS = 60.0
_END = object()


def _next_batch(iterator, limit: float):
    """``next(iterator)`` (``_END`` at its end), asked from a thread of its own: _LoaderFailed when it
    has not come back within ``limit`` seconds (the thread, stuck in a read, is left behind)."""
    box: dict = {}

    def ask():
        try:
            box["batch"] = next(iterator, _END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as it is
            box["error"] = exc

    thread = threading.Thread(target=ask, daemon=True, name="loader-read")
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        raise _LoaderFailed(f"no whole batch from the workers for {limit:g} s (a worker died while sending one)",
                            stalled=True)
    if "error" in box:
        raise box["error"]
    return box["batch"]


def _loader(dataset: ClipFrames, batches: list[list[int]], workers: int):
    from torch.utils.data import DataLoader

    start_forkserver()  # ignoring Ctrl-C, when start_worker_server has not started it
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=min(workers, len(batches)),
        collate_fn=list,
        worker_init_fn=_worker_init,
        # forkserver: a forked worker would inherit the model process's thread pools.
        multiprocessing_context=multiprocessing.get_context("forkserver"),
        prefetch_factor=2,
        timeout=POLL_SECONDS,
    )


def _until_failure(loader, stall_timeout: float) -> Iterator[list[Item]]:
    iterator = None
    try:
        # The workers start here; a Ctrl-C meanwhile is raised once they have, so that they are stopped
        # in order below (a half-built loader leaves workers that find their queues gone: tracebacks).
        with interrupts_deferred():
            iterator = iter(loader)
        waiting_since = time.monotonic()
        while True:
            try:
                batch = _next_batch(iterator, POLL_SECONDS + STUCK_SECONDS)
            except _LoaderFailed:
                raise
            except Exception as exc:  # noqa: BLE001 - every clip's own failure is an Item; this is the loader's
                timed_out = "timed out" in str(exc)
                if timed_out and not (stall_timeout and time.monotonic() - waiting_since >= stall_timeout):
                    continue  # a poll ran out: ask again (the loader's state is untouched by it)
                raise _LoaderFailed(str(exc), stalled=timed_out) from None
            if batch is _END:
                return
            yield batch
            waiting_since = time.monotonic()
    finally:
        if iterator is not None:
            iterator._shutdown_workers()  # now, not at garbage collection: a hung worker is terminated here


def _read_alone(dataset: ClipFrames, i: int, stall_timeout: float) -> Item:
    """Clip ``i`` read by a worker of its own, so that a hang or a crash is surely this clip's."""
    try:
        return next(_until_failure(_loader(dataset, [[i]], 1), stall_timeout))[0]
    except _LoaderFailed as exc:
        if exc.stalled:
            message = f"no progress for {stall_timeout:g} s reading this clip (a read that hangs): reader stopped"
        else:
            message = f"reading this clip crashed its worker process ({exc})"
        return Item(dataset.rows[i], error=message)
