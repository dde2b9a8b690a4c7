"""An output folder as the steps declared it: which file holds each step's rows, what each key means,
and those rows read by clip, for every tool that joins a folder's files onto its clips (datautil's
joins and exports, the report).

The steps are the built-in declarations (video_caption/steps.py) and the user's steps a run recorded
in summary.json, so a folder made with EXTRA_STEPS reads the same where that file is not at hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from video_caption.manifest import KEY, SUMMARY_JSON, read_rows
from video_caption.steps import declared


def read_summary(out: Path) -> dict:
    path = out / SUMMARY_JSON
    return json.loads(path.read_text()) if path.is_file() else {}


def step_files(summary: dict, stage: int | None = None) -> dict[str, str]:
    """{step: the file holding its fields}, stage 2's steps then stage 3's (or ``stage``'s), in the
    order they run."""
    return {step["name"]: step["outputs"][0] for step in declared(summary) if stage in (None, step["stage"])}


def fields(summary: dict) -> dict[str, dict]:
    """{key: {"step", "meaning", "kind" (number, label, text, or map: names -> numbers, neither drawn nor
    counted), "type" (float, int, bool, str or map), "card", "opensora", "opensora_labels" (ours ->
    Open-Sora's), "mindone", "mindone_flag"}} of every key a step declares, in step order."""
    found = {}
    for step in declared(summary):
        for key, meaning in step["fields"].items():
            kind = "label" if key in step["labels"] else "text" if key in step["texts"] else "number"
            type_ = step["types"].get(key) or ("float" if kind == "number" else "str")
            opensora = step["opensora"].get(key, "")
            found.setdefault(key, {"step": step["name"], "meaning": meaning, "kind": "map" if type_ == "map" else kind,
                                   "type": type_, "card": key not in step["off_card"], "opensora": opensora,
                                   "opensora_labels": step["opensora_labels"].get(key, {}),
                                   "mindone": step["mindone"].get(key, opensora),
                                   "mindone_flag": key in step["mindone_flags"]})
    return found


def step_tables(out: Path, summary: dict, declared_only: bool = False,
                keep: Callable[[dict], bool] = lambda row: True) -> dict[str, dict[str, dict]]:
    """{step: {clip: row}} of each step whose file is in ``out``, in step order (a clip's latest row).
    ``declared_only``: each row cut to its step's declared keys (whole for a step with more keys than
    it declares: tags, whose lists its settings name), so a large folder's embeddings are not held;
    ``keep``: the rows to read (datautil leaves degenerate replies out)."""
    fields_of = {step["name"]: None if step["more_fields"] else set(step["fields"]) for step in declared(summary)}
    tables = {}
    for step, name in step_files(summary).items():
        if not (out / name).is_file():
            continue
        wanted = fields_of[step] | {KEY} if declared_only and fields_of[step] is not None else None
        table: dict[str, dict] = {}
        for row in read_rows(out / name):
            if KEY in row and keep(row):
                table[row[KEY]] = row if wanted is None else {k: v for k, v in row.items() if k in wanted}
        tables[step] = table
    return tables
