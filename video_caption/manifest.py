"""The one JSONL manifest reader/writer of the project.

Every manifest is append-only: a row is serialised to one line and written with a single
``write`` on an ``O_APPEND`` descriptor, then flushed and fsync'ed.  A run killed at any instant
can therefore leave at most one partial *last* line; readers ignore it and writers cut it off
before appending, so the next run sees exactly the rows that were complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from video_caption.media.image import is_image

KEY = "video_path"

# The contract's file names (other tools read them), defined here once.  Stage 2 also writes one
# ``<scorer>_score.jsonl`` per scorer.
SCENE_INFO, META_CLIPS = "meta_scene_info.jsonl", "meta_clips.jsonl"  # stage 1
TRAIN_JSONL, GATE_DECISIONS = "train.jsonl", "gate_decisions.jsonl"  # stage 2
CAPTION_DECISIONS = "caption_decisions.jsonl"  # stage 3: each input clip's fate (caption/fates.py)
FRAME_CAPTION, VIDEO_CAPTION = "frame_caption.jsonl", "video_caption.jsonl"  # stage 3's caption step
SUMMARY_CAPTION, TRAIN_JSON = "summary_caption.jsonl", "train.json"  # stage 3's summary step, its result
MATERIALIZED = "materialized.jsonl"  # stage 3's last step (or datautil): the deferred clips encoded
# What a train.json entry of a deferred clip (stage 1 CLIPS=deferred) holds until its file is made: a
# trainer that reads source ranges can use it as it is.
PENDING = ("source_file", "start_frame", "end_frame", "start_time", "end_time")
ERRORS, SUMMARY_JSON = "errors.jsonl", "summary.json"  # every stage
# A clip row's "type": a still image (one frame, never cut, no motion) or a video clip.
IMAGE, VIDEO = "image", "video"
# The output folder itself is failing (full, over quota, read-only, not ours): no file is to blame,
# so the run stops instead of writing an error row for every remaining file.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})


def media_type(row: dict) -> str:
    """``image`` or ``video``: what a clip row is (a row without a type, from a hand-made manifest,
    by its file's extension)."""
    return row.get("type") or (IMAGE if is_image(row.get(KEY, "")) else VIDEO)


class ManifestError(ValueError):
    """A manifest line that is not a JSON row: the message names the file and the line."""


def _complete_lines(data: bytes) -> Iterator[bytes]:
    end = data.rfind(b"\n")
    if end < 0:
        return
    for line in data[:end].split(b"\n"):
        if line.strip():
            yield line


def read_rows(path: str | os.PathLike) -> list[dict]:
    """All complete rows of a manifest ([] when it does not exist).

    A trailing partial line (a write cut short by a crash) is ignored.  A damaged complete line
    raises, naming the file and line, because silently dropping rows would lose work.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(_complete_lines(path.read_bytes()), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: line {number} is not valid JSON ({exc})") from exc
    return rows


def done_keys(path: str | os.PathLike, key: str = KEY) -> set[str]:
    """The values of ``key`` already present in a manifest: what a resumed run skips."""
    return {row[key] for row in read_rows(path) if key in row}


def _dumps(row: dict) -> bytes:
    return json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def row_identity(row: dict) -> tuple:
    """A row's whole content, hashable: how manifests without a key (errors.jsonl) skip a row they hold."""
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


class ManifestWriter:
    """Appends rows to one manifest, never writing a key twice.

    Opening repairs a partial last line left by a killed run.  ``append`` writes a batch of rows
    in one ``write`` call so that a batch is either wholly there or (at worst) cut in its last line.
    """

    def __init__(self, path: str | os.PathLike, key: str | None = KEY):
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self.keys = done_keys(self.path, key) if key else set()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _repair_tail(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "r+b") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                f.truncate(data.rfind(b"\n") + 1)

    def append(self, rows: Iterable[dict]) -> int:
        """Append rows whose key is not yet in the file; returns how many were written."""
        fresh = []
        for row in rows:
            if self.key:
                if row[self.key] in self.keys:
                    continue
                self.keys.add(row[self.key])
            fresh.append(row)
        if fresh:
            data = b"".join(_dumps(row) for row in fresh)
            size = os.fstat(self._fd).st_size
            try:
                written = 0
                while written < len(data):
                    written += os.write(self._fd, data[written:])
                os.fsync(self._fd)
            except OSError:
                # A full disk can cut a batch anywhere: take it back whole, so the file holds only
                # complete rows and a later append cannot land after a partial line.
                os.ftruncate(self._fd, size)
                if self.key:
                    self.keys.difference_update(row[self.key] for row in fresh)
                raise
        return len(fresh)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ErrorLog(ManifestWriter):
    """``errors.jsonl``: one row per failed item (stage, path, message); each row is kept, repeats too."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path, key=None)

    def add(self, stage: str, path: str, message: str, **extra) -> None:
        row = {"stage": stage, KEY: path, "message": message, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
        row.update(extra)
        self.append([row])


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A hidden temporary file to write, which replaces ``path`` (fsync'ed first) when the block ends
    without error: a reader, or a run killed meanwhile, never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Replace a whole file atomically (for small outputs such as summaries)."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def rewrite(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Replace a whole manifest atomically with ``rows`` (a reader sees the old file or the new one)."""
    write_atomic(path, b"".join(_dumps(row) for row in rows))


def is_storage_error(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS


def lock_folder(folder: Path, stage: str):
    """An exclusive lock on ``folder`` for one run of ``stage`` (held until the handle is closed).
    One lock for every stage: two runs appending to the same manifests would duplicate work, and
    two stages at once would race over summary.json, so a second run is refused, naming the first."""
    handle = open(folder / ".video_caption.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        handle.close()
        raise SystemExit(f"error: {holder} is using {folder}: wait for it to end, or use another output "
                         "folder (one run at a time per folder)") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{stage} (pid {os.getpid()}, since {time.strftime('%H:%M:%S')})")
    handle.flush()
    return handle


def is_deferred(row: dict) -> bool:
    """A clip stage 1 planned without writing its file (``CLIPS=deferred``): its frames are a range of its source."""
    return bool(row.get("deferred"))
