"""``datautil info``: what video files hold (fps, frames, size, duration, codec), probed in-process
(``media.probe``) by ``workers`` threads.  A file that cannot be probed is a row with its ``error``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from video_caption.datautil.tables import InputError
from video_caption.inputs import list_sources, path_under
from video_caption.manifest import KEY, read_rows
from video_caption.media.probe import probe
from video_caption.media.process import MediaError


def targets(paths: list[Path], root: Path | None) -> list[tuple[str, Path | None]]:
    """(video_path as the output names it, the folder it is relative to or None) for each video file
    given, each video in a folder given, and each row of a manifest (.jsonl, relative to ``root``,
    else to the manifest's folder)."""
    found = []
    for path in paths:
        if path.is_dir():
            try:
                found += [(source.key, path) for source in list_sources(path)[1]]
            except ValueError as exc:
                raise InputError(str(exc)) from None
        elif path.suffix.lower() == ".jsonl" and path.is_file():
            rows = read_rows(path)
            if any(KEY not in row for row in rows):
                raise InputError(f"{path}: a row has no {KEY}")
            found += [(row[KEY], root or path.parent) for row in rows]
        elif path.is_file():
            found.append((str(path), None))
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def probe_row(target: tuple[str, Path | None]) -> dict:
    key, root = target
    try:
        # A manifest row may not name a file outside its root, as in the stages.
        return {KEY: key, **probe(path_under(root, key) if root else key).as_row()}
    except (MediaError, ValueError, OSError) as exc:
        return {KEY: key, "error": str(exc)}


def info_rows(found: list[tuple[str, Path | None]], workers: int) -> list[dict]:
    """One row per target, in their order."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(probe_row, found))
