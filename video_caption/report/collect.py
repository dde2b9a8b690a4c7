"""What the report shows, read from an output folder's manifests and summary.json (no model, no video).

- ``funnel(summary)``: the rows of the funnel, each number with the summary.json path it comes from,
  so the page shows exactly what summary.json says (pure);
- ``clip_table(out)``: one record per clip of meta_clips.jsonl, joined on ``video_path`` with every
  step's output, with its fate (``status``, and the step that dropped it);
- ``thresholds(summary)``, ``numbers(records, key)``, ``label_counts(records)``: what the plots draw.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from video_caption.caption.train_json import read_train_json
from video_caption.manifest import (
    CAMERA_MOTION,
    CATEGORY,
    DUPLICATES,
    ERRORS,
    FRAME_CAPTION,
    GATE_DECISIONS,
    KEY,
    MATCH_SCORE,
    META_CLIPS,
    SUMMARY_CAPTION,
    SUMMARY_JSON,
    TAGS,
    TRAIN_JSON,
    VIDEO_CAPTION,
    media_type,
    read_rows,
)

# Step outputs joined onto each clip (stage 2's scores, then stage 3's).
SCORE_FILES = ("aesthetic_score.jsonl", "text_score.jsonl", "motion_score.jsonl", CAMERA_MOTION,
               "nsfw_score.jsonl", DUPLICATES, MATCH_SCORE, CATEGORY, TAGS)
# Scores drawn as distributions, in the order the steps run, and what each one is.
SCORES = {"aesthetic_score": "aesthetic (LAION head on CLIP)", "text_score": "text area / frame area (OCR)",
          "num_boxes": "text boxes in a frame", "max_single_percentage": "largest text box / frame",
          "motion_score": "motion (Farneback flow, px)", "nsfw_score": "NSFW (NudeNet)",
          "similarity": "hash similarity of a duplicate to its kept clip", "match_score": "caption-clip match (CLIP)"}
LABELS = ("type", "camera_motion", "category")
# What the report keeps of the step rows (tags.jsonl: all of it, its lists are named by its settings).
KEPT = (*SCORES, "camera_motion", "dup_of", "duplicate", "category")
# Columns the gallery can sort by.
SORTABLE = ("aesthetic_score", "text_score", "motion_score", "nsfw_score", "match_score", "duration", "width",
            "similarity")
STATUSES = ("train", "passed", "rejected", "unscored", "not scored")  # passed: stage 2, not (yet) in train.json


def _get(summary: dict, path: str):
    value = summary
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def funnel(summary: dict) -> list[dict]:
    """The funnel, first to last: ``{"label", "stage", "cells": [(name, summary.json path), ...]}``
    rows, each number at its path in summary.json (rows whose stage did not run are left out)."""
    rows = []

    def row(label: str, stage: str, **paths: str) -> None:
        cells = [(name, path) for name, path in paths.items() if _get(summary, path) is not None]
        if cells:
            rows.append({"label": label, "stage": stage, "cells": cells})

    row("sources", "cut", count="stages.cut.sources", failed="stages.cut.sources_failed")
    row("clips", "cut", count="stages.cut.clips", images="stages.cut.images")
    for name in (_get(summary, "stages.score.gates") or {}):
        base = f"stages.score.gates.{name}"
        row(f"gate: {name}", "score", reached=f"{base}.reached", passed=f"{base}.passed",
            rejected=f"{base}.rejected", unscored=f"{base}.unscored", skipped=f"{base}.skipped")
    row("train.jsonl", "score", count="stages.score.train_clips")
    row("stage 3 input", "caption", count="stages.caption.clips", no_caption="stages.caption.missing",
        degenerate="stages.caption.degenerate_clips", empty="stages.caption.dropped")
    for name in (_get(summary, "stages.caption.gates") or {}):
        base = f"stages.caption.gates.{name}"
        row(f"gate: {name}", "caption", reached=f"{base}.reached", passed=f"{base}.passed",
            unscored=f"{base}.unscored", failed=f"{base}.failed")
    row("train.json", "caption", count="stages.caption.train_json")
    return [{**r, "cells": [(name, path, _get(summary, path)) for name, path in r["cells"]]} for r in rows]


def read_summary(out: Path) -> dict:
    path = out / SUMMARY_JSON
    return json.loads(path.read_text()) if path.is_file() else {}


def _by_key(path: Path, fields: tuple[str, ...] | None = None) -> dict[str, dict]:
    """A manifest's rows by clip, only ``fields`` of each when given (an aesthetic row's 2 KB
    embedding, kept 100,000 times, would double the memory of a large report)."""
    if fields is None:
        return {row[KEY]: row for row in read_rows(path)}
    return {row[KEY]: {k: row[k] for k in fields if k in row} for row in read_rows(path)}


def clip_table(out: Path) -> list[dict]:
    """One record per clip of meta_clips.jsonl, in its order: the clip row, every step's fields,
    ``frame_captions``, ``caption`` (train.json's, else the latest summary or video caption),
    ``status`` (train, passed, rejected, unscored, not scored), ``dropped_by`` (the step that rejected
    it, stage 3's match and category included), the gate and value, and ``reason`` (step and gate, or
    step and "could not score")."""
    clips = list(_by_key(out / META_CLIPS).values())
    tables = {name: _by_key(out / name, None if name == TAGS else KEPT) for name in SCORE_FILES}
    fates = _by_key(out / GATE_DECISIONS)
    frames = _by_key(out / FRAME_CAPTION, ("sampled_frame_caption",))
    summaries = _by_key(out / SUMMARY_CAPTION, ("summary_caption",))
    videos = _by_key(out / VIDEO_CAPTION, ("video_caption",))
    final = read_train_json(out / TRAIN_JSON)
    caption = read_summary(out).get("stages", {}).get("caption", {})
    match_min = next((b["min"] for b in caption.get("gates", {}).get("match", {}).get("bounds", [])), None)
    records = []
    for clip in clips:
        key = clip[KEY]
        record = {"type": media_type(clip)}
        for table in tables.values():
            record.update(table.get(key, {}))
        record.update(clip)
        fate = fates.get(key)
        record["status"] = "not scored" if fate is None else fate["outcome"]
        record["dropped_by"] = fate["step"] if fate and fate["outcome"] != "passed" else None
        record["gate"], record["gate_value"] = (fate["gate"], fate["value"]) if fate else (None, None)
        if key in final:
            record["status"] = "train"
        elif record["status"] == "passed" and "category" in caption.get("gates", {}) and key in tables[CATEGORY] \
                and not _category_kept(record, caption["gates"]["category"]):
            record["dropped_by"], record["gate"] = "category", "CATEGORY_KEEP / CATEGORY_DROP"
        elif record["status"] == "passed" and match_min is not None and record.get("match_score") is not None \
                and record["match_score"] < match_min:
            record["dropped_by"], record["gate"] = "match", f"{match_min:g} <= match_score"
            record["gate_value"] = record["match_score"]
        # What the gallery's "dropped by" filter tells apart: each gate, and each step's unscored clips.
        record["reason"] = None if not record["dropped_by"] else f"{record['dropped_by']}: " + (
            "could not score" if record["status"] == "unscored" else record["gate"])
        record["frame_captions"] = frames.get(key, {}).get("sampled_frame_caption")
        record["caption"] = final.get(key) or summaries.get(key, {}).get("summary_caption") or \
            videos.get(key, {}).get("video_caption")
        records.append(record)
    return records


def _category_kept(record: dict, gate: dict) -> bool:
    keep, drop = set(gate.get("keep") or []), set(gate.get("drop") or [])
    label = record.get("category")
    return (not keep or label in keep) and label not in drop


def errors(out: Path) -> list[dict]:
    return read_rows(out / ERRORS)


def thresholds(summary: dict) -> dict[str, dict]:
    """Each gated key's bounds and its gate's share passing (passed / reached), from summary.json."""
    found = {}
    for stage in ("score", "caption"):
        for gate in (_get(summary, f"stages.{stage}.gates") or {}).values():
            reached = gate.get("reached") or 0
            for bound in gate.get("bounds") or []:
                found[bound["key"]] = {**bound, "share_passed": gate["passed"] / reached if reached else None,
                                       "reached": reached, "passed": gate.get("passed")}
    return found


def numbers(records: list[dict], key: str) -> list[float]:
    return [float(r[key]) for r in records if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]


def label_counts(records: list[dict]) -> dict[str, Counter]:
    """Counts of each label column, and of each tag list of tags.jsonl (``tags: objects`` ...)."""
    counts = {name: Counter(r[name] for r in records if r.get(name) is not None) for name in LABELS}
    for record in records:
        for name in (record.get("tags_settings") or {}).get("keys", []):
            tags = [v for v in record.get(name) or [] if isinstance(v, str)]
            counts.setdefault(f"tags: {name}", Counter()).update(tags)
    return {name: counter for name, counter in counts.items() if counter}
