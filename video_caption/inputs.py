"""Where the sources (videos and still images) are, and where their outputs may go.

A source is given by a folder (searched recursively) or by a .txt / .csv / .jsonl list.  Every
source gets a *relative key*: its path relative to the input root, or, for list entries outside
the root, a path under ``_external/``.  Keys never contain ``..`` and never start with ``/``, so
``output_folder / key`` always stays inside the output folder.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from video_caption.media.image import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".flv", ".m4v", ".ts")
LIST_EXTENSIONS = (".txt", ".csv", ".jsonl")
PATH_COLUMNS = ("video_path", "path", "file_path", "filepath")


@dataclass(frozen=True)
class Source:
    path: Path  # absolute path to read
    key: str  # relative POSIX path, used in manifests and for output sub-folders


def safe_key(path: Path, root: Path) -> str:
    """The relative key for ``path``: relative to ``root`` when inside it, else under ``_external/``."""
    resolved = Path(os.path.abspath(path))
    try:
        rel = resolved.relative_to(Path(os.path.abspath(root)))
        key = PurePosixPath(*rel.parts)
    except ValueError:
        key = PurePosixPath("_external", *resolved.parts[1:])
    if not key.parts or any(part in ("", ".", "..") for part in key.parts):
        raise ValueError(f"cannot make a safe output path for {path!r}")
    return str(key)


def path_under(root: str | os.PathLike, key: str) -> Path:
    """``root / key``, refusing any key (a source key, a manifest's ``video_path``) that would leave
    ``root``: a manifest row can never make a stage read or write outside its folder."""
    base = os.path.abspath(root)
    target = os.path.abspath(os.path.join(base, key))
    # abspath has removed every ".." and doubled separator: a prefix test is the parents test, 10x faster.
    if key.startswith("/") or not target.startswith(base.rstrip(os.sep) + os.sep):
        raise ValueError(f"refusing a path outside {base}: {key!r}")
    return Path(target)


def _read_list(list_file: Path) -> list[str]:
    suffix = list_file.suffix.lower()
    text = list_file.read_text(encoding="utf-8")
    if suffix == ".txt":
        return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        column = next((c for c in PATH_COLUMNS if c in (reader.fieldnames or [])), None)
        if column is None:
            raise ValueError(f"{list_file}: no path column (one of {', '.join(PATH_COLUMNS)})")
        return [row[column].strip() for row in reader if (row.get(column) or "").strip()]
    paths = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        column = next((c for c in PATH_COLUMNS if c in row), None)
        if column is None:
            raise ValueError(f"{list_file}: line {number} has no path key (one of {', '.join(PATH_COLUMNS)})")
        paths.append(str(row[column]))
    return paths


def list_sources(video_input: str | os.PathLike) -> tuple[Path, list[Source]]:
    """(root, sources) for a folder or a list file; sources sorted by key, duplicates removed."""
    video_input = Path(video_input)
    if video_input.is_dir():
        root = video_input
        paths = [
            Path(dirpath) / name
            for dirpath, _, names in os.walk(video_input)
            for name in names
            if name.lower().endswith(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS) and not name.startswith(".")
        ]
    elif video_input.is_file() and video_input.suffix.lower() in LIST_EXTENSIONS:
        root = video_input.parent
        paths = [p if p.is_absolute() else root / p for p in map(Path, _read_list(video_input))]
    elif video_input.exists():
        raise ValueError(f"{video_input}: expected a folder or a {'/'.join(LIST_EXTENSIONS)} list")
    else:
        raise FileNotFoundError(f"{video_input}: no such folder or list file")
    if not paths:
        where = f"the list {video_input}" if video_input.is_file() else f"{video_input} (or its sub-folders)"
        raise ValueError(f"no video in {where}: looked for {', '.join(VIDEO_EXTENSIONS + IMAGE_EXTENSIONS)} files")
    sources = {}
    for p in paths:
        source = Source(Path(os.path.abspath(p)), safe_key(p, root))
        sources.setdefault(source.key, source)
    return root, [sources[k] for k in sorted(sources)]
