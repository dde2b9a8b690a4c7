"""train.json: the final caption of every clip of the input manifest that passed every step that ran,
in input order."""

from __future__ import annotations

import json
from pathlib import Path

from video_caption.formats.clean import clean_caption
from video_caption.manifest import KEY, PENDING, is_deferred, media_type, write_atomic


def final_captions(rows: list[dict], texts: dict[str, str], openings: list[str]) -> tuple[dict[str, str], int, int]:
    """({clip: cleaned caption}, clips with no caption yet, captions nothing was left of after cleaning)."""
    captions, missing, dropped = {}, 0, 0
    for row in rows:
        if row[KEY] not in texts:
            missing += 1
            continue
        text = clean_caption(texts[row[KEY]], openings)
        if text is None:
            dropped += 1
        else:
            captions[row[KEY]] = text
    return captions, missing, dropped


def train_entries(rows: list[dict], captions: dict[str, str], passed: set[str],
                  materialized: set[str] = frozenset()) -> list[dict]:
    """EasyAnimate's entries for the clips in ``passed``, in input order (``type``: video or image).
    A deferred clip with no file yet (not in ``materialized``) also says where its frames are
    (``PENDING``: source and range); ``file_path`` is where materialize will write it."""
    return [{"file_path": row[KEY], "text": captions[row[KEY]], "type": media_type(row),
             **({k: row[k] for k in PENDING if k in row} if is_deferred(row) and row[KEY] not in materialized else {})}
            for row in rows if row[KEY] in passed]


def settle_pending(entries: list[dict], made: set[str], failed: set[str]) -> list[dict]:
    """train.json entries after materialize: the clips ``made`` lose their pending fields (they are
    files now), those that ``failed`` are left out (their errors.jsonl rows say why)."""
    return [{k: v for k, v in e.items() if k not in PENDING} if e["file_path"] in made else e
            for e in entries if e["file_path"] not in failed]


def write_train_json(path: Path, entries: list[dict]) -> None:
    body = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
    write_atomic(path, ("[\n" + body + "\n]\n" if entries else "[]\n").encode())


def read_train_json(path: Path) -> dict[str, str]:
    """{file_path: text} of a train.json ({} when there is none)."""
    if not path.is_file():
        return {}
    return {entry["file_path"]: entry["text"] for entry in json.loads(path.read_text(encoding="utf-8"))}


def train_json_count(path: Path) -> int:
    """How many entries a train.json holds (0 when there is none)."""
    return len(json.loads(path.read_text())) if path.is_file() else 0
