"""Thumbnail strips for the gallery: a few frames of each clip side by side in one small JPEG.

A strip's file name is a digest of the clip's path, size and modification time, so a rebuild reuses
every strip whose clip is unchanged and makes only the new ones (in worker processes); strips of
clips no longer in the folder are removed."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from video_caption.inputs import path_under
from video_caption.loader import clip_source, read_clip_frames
from video_caption.logs import progress
from video_caption.manifest import IMAGE, KEY, media_type, write_atomic
from video_caption.media.decode import uniform_indices
from video_caption.media.image import read_image

FRAMES, HEIGHT, QUALITY = 3, 90, 80  # frames per strip, their height in pixels, JPEG quality


def strip_name(root: Path, row: dict) -> str | None:
    """The strip's file name for a clip (None when the file its frames come from is not there)."""
    try:
        info = os.stat(clip_source(root, row)[0])
    except (OSError, ValueError):
        return None
    return hashlib.sha1(f"{row[KEY]}\0{info.st_size}\0{info.st_mtime_ns}".encode()).hexdigest()[:20] + ".jpg"


def make_strip(root: Path, row: dict, target: Path, frames: int = FRAMES, height: int = HEIGHT) -> str | None:
    """Write the clip's strip to ``target``; None, or why it could not be made."""
    import cv2

    try:
        if media_type(row) == IMAGE:
            images = [read_image(path_under(root, row[KEY]), "bgr24")]
        else:
            images = read_clip_frames(root, row, uniform_indices(int(row.get("num_frames") or 0), frames), "bgr24")
        if not images:
            return "no frame"
        small = [cv2.resize(f, (max(1, round(f.shape[1] * height / f.shape[0])), height), interpolation=cv2.INTER_AREA)
                 for f in images]
        ok, data = cv2.imencode(".jpg", np.hstack(small), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        if not ok:
            return "JPEG encoding failed"
        write_atomic(target, data.tobytes())
        return None
    except Exception as exc:  # noqa: BLE001 - a clip without a strip is shown without one, with the reason logged
        return f"{type(exc).__name__}: {exc}"


def _make(args) -> tuple[str, str | None]:
    root, row, target = args
    return row[KEY], make_strip(root, row, target)


def _run(jobs: list, workers: int):
    if workers <= 1:
        yield from map(_make, jobs)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_make, jobs, chunksize=8)


def strips(rows: list[dict], root: Path, folder: Path, workers: int, log) -> dict[str, str]:
    """{clip: strip file name} for every clip whose strip exists or could be made now."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {row[KEY]: strip_name(root, row) for row in rows}
    todo = [row for row in rows if names[row[KEY]] and not (folder / names[row[KEY]]).is_file()]
    log.info("thumbnails: %d clips, %d reused, %d to make, %d clip files missing", len(rows),
             sum(1 for n in names.values() if n) - len(todo), len(todo), sum(1 for n in names.values() if not n))
    if todo:
        jobs = [(root, row, folder / names[row[KEY]]) for row in todo]
        with progress(len(jobs), "report: thumbnails") as bar:
            for key, error in _run(jobs, workers):
                if error:
                    names[key] = None
                    log.warning("no thumbnail for %s: %s", key, error)
                bar.update(1)
    kept = {name for name in names.values() if name}
    for old in folder.glob("*.jpg"):
        if old.name not in kept:
            old.unlink(missing_ok=True)
    return {key: name for key, name in names.items() if name}
