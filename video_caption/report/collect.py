"""What the report shows, read from an output folder's manifests and summary.json (no model, no video).

- ``funnel(summary)``: the rows of the funnel, each number with the summary.json path it comes from,
  so the page shows exactly what summary.json says (pure);
- ``clip_table(out)``: one record per clip of meta_clips.jsonl, joined on ``video_path`` with the
  output of every step it went through in the current runs (``reached``: as gate_decisions.jsonl and
  caption_decisions.jsonl decided), with its fate (``status``, and the step that dropped it) and the
  steps that skipped it;
- ``skipped_steps(summary)``: the steps that never ran, and those that passed clips on unscored;
- ``sources_without_clips(scenes, errors)``: the sources that gave no clip, and why (pure);
- ``thresholds(summary)``, ``numbers(records, key)``, ``label_counts(records, names)``: what the plots draw.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from video_caption.folder import fields, read_summary, step_files, step_tables
from video_caption.formats.train_json import read_train_json
from video_caption.manifest import (
    CAPTION_DECISIONS,
    ERRORS,
    FRAME_CAPTION,
    GATE_DECISIONS,
    KEY,
    META_CLIPS,
    SCENE_INFO,
    TRAIN_JSON,
    media_type,
    read_rows,
)

# Stage 3's checks between its steps, in the order they gate (caption_decisions.jsonl names the one
# that decided): "clean" after the summary, "materialize" last.
CHECKED_AFTER = {"summary": "clean"}
# What every clip record holds besides its steps' keys (video_caption/folder.py: those the steps declare).
CLIP_FIELDS = ("duration", "width", "height", "fps")
STATUSES = ("train", "passed", "rejected", "unscored", "not scored")  # passed: stage 2, not (yet) in train.json


def _get(summary: dict, path: str):
    value = summary
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def funnel(summary: dict) -> list[dict]:
    """The funnel, first to last: ``{"label", "stage", "cells": [(name, summary.json path, value), ...]}``
    rows, each number at its path in summary.json (rows whose stage did not run are left out); a step
    its stage skipped is a row without cells, its ``note`` the reason, where its gate's row would be."""
    rows = []

    def row(label: str, stage: str, **paths: str) -> None:
        cells = [(name, path) for name, path in paths.items() if _get(summary, path) is not None]
        if cells:
            rows.append({"label": label, "stage": stage, "cells": cells})

    def not_run(stage: str) -> None:
        # A step that never ran has no numbers: its row says so, where its gate's row would be.
        for item in _get(summary, f"stages.{stage}.skipped") or []:
            rows.append({"label": f"{item.get('scorer') or item.get('step')}: not run", "stage": stage, "cells": [],
                         "note": item["reason"]})

    row("sources", "cut", count="stages.cut.sources", failed="stages.cut.sources_failed")
    row("clips", "cut", count="stages.cut.clips", images="stages.cut.images")
    for name in (_get(summary, "stages.score.gates") or {}):
        base = f"stages.score.gates.{name}"
        row(f"gate: {name}", "score", reached=f"{base}.reached", passed=f"{base}.passed",
            rejected=f"{base}.rejected", unscored=f"{base}.unscored", passed_unscored=f"{base}.skipped")
    not_run("score")
    row("train.jsonl", "score", count="stages.score.train_clips")
    row("stage 3 input", "caption", count="stages.caption.clips", no_caption="stages.caption.missing",
        degenerate="stages.caption.degenerate_clips", empty="stages.caption.dropped")
    for name in (_get(summary, "stages.caption.gates") or {}):
        base = f"stages.caption.gates.{name}"
        row(f"gate: {name}", "caption", reached=f"{base}.reached", passed=f"{base}.passed",
            unscored=f"{base}.unscored", failed=f"{base}.failed")
    not_run("caption")
    row("train.json", "caption", count="stages.caption.train_json")
    return [{**r, "cells": [(name, path, _get(summary, path)) for name, path in r["cells"]]} for r in rows]


def _by_key(path: Path, fields: tuple[str, ...] | None = None) -> dict[str, dict]:
    """A manifest's rows by clip, only ``fields`` of each when given (an aesthetic row's 2 KB
    embedding, kept 100,000 times, would double the memory of a large report)."""
    if fields is None:
        return {row[KEY]: row for row in read_rows(path)}
    return {row[KEY]: {k: row[k] for k in fields if k in row} for row in read_rows(path)}


def scores(summary: dict) -> dict[str, str]:
    """The numbers the steps declare (a user's step too), drawn as distributions, and what each is."""
    return {key: f["meaning"] for key, f in fields(summary).items() if f["kind"] == "number"}


def labels(summary: dict) -> list[str]:
    """The labels counted: the clip's type, then those the steps declare."""
    return ["type", *(key for key, f in fields(summary).items() if f["kind"] == "label")]


def sortable(summary: dict) -> list[str]:
    """What the gallery can sort by: the declared numbers, then the clip's duration and width."""
    return [*scores(summary), "duration", "width"]


def shown(summary: dict) -> list[str]:
    """The keys a clip's card shows, when it has them: the clip's, then the steps' numbers and labels."""
    return [*CLIP_FIELDS, *(key for key, f in fields(summary).items() if f["kind"] != "text" and f["card"])]


def carried(summary: dict) -> list[str]:
    """The keys a clip's data carries: those shown, and those the card uses otherwise (a duplicate's
    kept clip); not the captions, which ``caption`` holds."""
    return [*CLIP_FIELDS, *(key for key, f in fields(summary).items() if f["kind"] != "text" or not f["card"])]


def score_chain(summary: dict) -> list[str]:
    """Stage 2's steps in the order its last run applied them, metadata first (summary.json's gates;
    without them, the declared order)."""
    return list(_get(summary, "stages.score.gates") or ("metadata", *step_files(summary, 2)))


def caption_chain(summary: dict) -> list[str]:
    """Stage 3's steps and checks in the order they gate."""
    return [n for s in step_files(summary, 3) for n in (s, CHECKED_AFTER.get(s)) if n] + ["materialize"]


def reached(fate: dict | None, chain: list[str]) -> list[str]:
    """The stage-2 steps a clip went through in the run that wrote its gate_decisions.jsonl row: all
    of them when it passed; up to the step that rejected it, that one included; those before the step
    that could not score it; none without a row.  Only their rows are current: a row of a later step
    is what an earlier run left."""
    if fate is None:
        return []
    if fate["outcome"] == "passed":
        return chain
    if fate["step"] not in chain:
        return []
    return chain[:chain.index(fate["step"]) + (fate["outcome"] == "rejected")]


def skipped_steps(summary: dict) -> list[dict]:
    """``{"stage", "step", "clips", "reason"}`` for each step that never ran (``clips`` None: its
    stage left it out, e.g. its model is missing) and each gate that passed clips on unscored
    (``clips``: how many, e.g. the images for motion), from summary.json."""
    rows = []
    for stage in ("score", "caption"):
        for item in _get(summary, f"stages.{stage}.skipped") or []:
            rows.append({"stage": stage, "step": item.get("scorer") or item.get("step"), "clips": None,
                         "reason": item["reason"]})
        for name, gate in (_get(summary, f"stages.{stage}.gates") or {}).items():
            for reason, count in (gate.get("skip_reasons") or {}).items():
                rows.append({"stage": stage, "step": name, "clips": count, "reason": reason})
    return rows


def skip_notes(rows: list[dict]) -> dict[str, str]:
    """What a card says of each skipped step (``skipped_steps``' rows): ``not run``, or why it passed
    the clip on unscored."""
    notes: dict[str, list[str]] = {}
    for row in rows:
        notes.setdefault(row["step"], []).append("not run" if row["clips"] is None else row["reason"])
    return {step: "; ".join(texts) for step, texts in notes.items()}


def clip_table(out: Path) -> list[dict]:
    """One record per clip of meta_clips.jsonl, in its order: the clip row, the fields of every step
    it went through as the stages' decisions say (gate_decisions.jsonl, caption_decisions.jsonl;
    never a row an earlier run left in a later step's file, nor one of superseded/),
    ``frame_captions``, ``caption`` (train.json's, else the latest summary or video caption),
    ``status`` (train, passed, rejected, unscored, not scored), ``dropped_by`` (the step that rejected
    it, stage 3's gates included), the gate and value, ``reason`` (step and gate, or step and "could
    not score") and ``skipped`` (the steps that never ran over it or passed it on unscored)."""
    summary = read_summary(out)
    clips = list(_by_key(out / META_CLIPS).values())
    tables = step_tables(out, summary, declared_only=True)
    fates = _by_key(out / GATE_DECISIONS)
    fates_3 = _by_key(out / CAPTION_DECISIONS)
    frames = _by_key(out / FRAME_CAPTION, ("sampled_frame_caption",))
    final = read_train_json(out / TRAIN_JSON)
    chain, chain_3 = score_chain(summary), caption_chain(summary)
    gates = _get(summary, "stages.score.gates") or {}
    not_run = {stage: [r["step"] for r in skipped_steps(summary) if r["stage"] == stage and r["clips"] is None]
               for stage in ("score", "caption")}
    records = []
    for clip in clips:
        key = clip[KEY]
        fate = fates.get(key)
        record = {"type": media_type(clip)}
        steps = reached(fate, chain)
        text = final.get(key) or tables.get("summary", {}).get(key, {}).get("summary_caption") or \
            tables.get("caption", {}).get(key, {}).get("video_caption")
        fate_3 = fates_3.get(key)
        later = reached(fate_3, chain_3)
        for step in steps + later:
            record.update(tables.get(step, {}).get(key, {}))
        record.update(clip)
        record["status"] = "not scored" if fate is None else fate["outcome"]
        record["dropped_by"] = fate["step"] if fate and fate["outcome"] != "passed" else None
        record["gate"], record["gate_value"] = (fate["gate"], fate["value"]) if fate else (None, None)
        if key in final:
            record["status"] = "train"
        elif fate_3 and fate_3["outcome"] == "rejected":  # through stage 2, dropped by a gate of stage 3
            record["dropped_by"], record["gate"], record["gate_value"] = fate_3["step"], fate_3["gate"], fate_3["value"]
            record["detail"] = fate_3.get("detail")  # what was wrong with a reply kept out: "missing: pancake"
        # What the gallery's "dropped by" filter tells apart: each gate, and each step's unscored clips.
        record["reason"] = None if not record["dropped_by"] else f"{record['dropped_by']}: " + (
            "could not score" if record["status"] == "unscored" else record["gate"])
        # A step it went through without a row and not the one that dropped it passed it on unscored.
        passed_on = [s for s in steps if gates.get(s, {}).get("skipped") and key not in tables.get(s, {})
                     and s != record["dropped_by"]]
        record["skipped"] = (not_run["score"] if fate else []) + passed_on + (not_run["caption"] if later else [])
        record["frame_captions"] = frames.get(key, {}).get("sampled_frame_caption") if "caption" in later else None
        record["caption"] = text if "caption" in later else None
        records.append(record)
    return records


def sources_without_clips(scenes: list[dict], errors: list[dict]) -> list[dict]:
    """``{"source", "outcome", "reason"}`` for each source that gave no clip: ``skipped`` with its
    meta_scene_info.jsonl row's reason (every shot too short, too small), or ``failed`` with its
    latest stage-1 error when it has no row (one cut on a rerun since gave its clips)."""
    found = {row[KEY]: row for row in scenes}
    rows = {key: {"source": key, "outcome": "skipped", "reason": row.get("skipped", "")}
            for key, row in found.items() if not row.get("num_clips")}
    for error in errors:
        if error.get("stage") == "cut" and error.get(KEY) not in found:
            rows[error[KEY]] = {"source": error[KEY], "outcome": "failed", "reason": error.get("message", "")}
    return list(rows.values())


def scene_rows(out: Path) -> list[dict]:
    """meta_scene_info.jsonl's rows, without their cut lists (what sources_without_clips reads)."""
    return list(_by_key(out / SCENE_INFO, (KEY, "num_clips", "skipped")).values())


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


def label_counts(records: list[dict], names: list[str]) -> dict[str, Counter]:
    """Counts of each label column, and of each tag list of tags.jsonl (``tags: objects`` ...)."""
    counts = {name: Counter(r[name] for r in records if r.get(name) is not None) for name in names}
    for record in records:
        for name in (record.get("tags_settings") or {}).get("keys", []):
            tags = [v for v in record.get(name) or [] if isinstance(v, str)]
            counts.setdefault(f"tags: {name}", Counter()).update(tags)
    return {name: counter for name, counter in counts.items() if counter}
