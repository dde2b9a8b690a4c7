"""train.json: the cleaned caption of every clip of the input manifest that has one, in input order."""

from __future__ import annotations

import json
from pathlib import Path

from video_caption.caption.clean import clean_caption
from video_caption.manifest import KEY, write_atomic


def train_entries(rows: list[dict], captions: dict[str, str], openings: list[str]) -> tuple[list[dict], int, int]:
    """(train.json entries, clips with no caption yet, captions dropped by cleaning), in input order."""
    entries, missing, dropped = [], 0, 0
    for row in rows:
        if row[KEY] not in captions:
            missing += 1
            continue
        text = clean_caption(captions[row[KEY]], openings)
        if text is None:
            dropped += 1
            continue
        entries.append({"file_path": row[KEY], "text": text, "type": "video"})
    return entries, missing, dropped


def write_train_json(path: Path, entries: list[dict]) -> None:
    body = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
    write_atomic(path, ("[\n" + body + "\n]\n" if entries else "[]\n").encode())


def train_json_count(path: Path) -> int:
    """How many entries a train.json holds (0 when there is none)."""
    return len(json.loads(path.read_text())) if path.is_file() else 0
