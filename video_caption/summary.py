"""Run summaries: what each stage did, kept in OUTPUT_FOLDER/summary.json, and a few terminal lines.

Each stage records its section when it ends: totals read from its manifests (so a resumed run
reports the whole dataset, not only its own share) and this run's wall time and throughput.
``python -m video_caption.summary --output-folder OUT`` prints the whole run from that file.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from video_caption.cli import Parser
from video_caption.manifest import ERRORS, KEY, MATERIALIZED, SCENE_INFO, SUMMARY_JSON, read_rows, write_atomic
from video_caption.steps import registry


def step_outputs(error: dict) -> tuple[str, ...]:
    """The manifests where the step of an errors.jsonl row writes the row of a file that no longer fails:
    the one the row names (``output``), else, for rows written before rows named it, the step's
    (``cut``, ``score:text``, ``caption:summary`` ...): every file its declaration names."""
    if error.get("output"):
        return (error["output"],)
    kind, _, step = error.get("stage", "?").partition(":")
    if kind == "cut":
        return (SCENE_INFO,)
    if step == "materialize":
        return (MATERIALIZED,)
    declared = registry({"score": 2, "caption": 3}.get(kind, 0)).get(step)
    return declared.files if declared else (f"{step}_score.jsonl",) if kind == "score" else ()


def errors_by_kind(out: Path) -> dict[str, int]:
    """Unresolved failures by step: the files of errors.jsonl that failed and have no row in their step's
    output since (a file that failed, then succeeded on a rerun, is no longer an error), each once."""
    done: dict[tuple[str, ...], set] = {}
    failing = set()
    for row in read_rows(out / ERRORS):
        outputs = step_outputs(row)
        if outputs not in done:
            done[outputs] = {r.get(KEY) for name in outputs for r in read_rows(out / name)}
        if row.get(KEY) not in done[outputs]:
            failing.add((row.get("stage", "?"), row.get(KEY)))
    return dict(sorted(Counter(stage for stage, _ in failing).items()))


def throughput(count: int, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def record_stage(out: Path, stage: str, facts: dict) -> dict:
    """Store ``facts`` as this stage's section of summary.json (replacing an earlier run's) and
    refresh the error counts.  Only one stage runs in a folder at a time (they share its lock)."""
    path = out / SUMMARY_JSON
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.setdefault("stages", {})[stage] = {**facts, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                               "finished_epoch": round(time.time(), 3)}
    summary["errors_by_kind"] = errors_by_kind(out)
    summary["totals"] = totals(summary)
    write_atomic(path, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode())
    return summary


def totals(summary: dict) -> dict:
    """The whole dataset: what went in and what came out of each stage so far, the unresolved
    errors, and the summed wall time of each stage's latest run."""
    stages = summary.get("stages", {})
    wall = sum(section.get("run", {}).get("wall_s", 0.0) for section in stages.values())
    found = {"sources": stages.get("cut", {}).get("sources"), "clips": stages.get("cut", {}).get("clips"),
             "train_clips": stages.get("score", {}).get("train_clips"),
             "captioned": stages.get("caption", {}).get("train_json")}
    return {**{k: v for k, v in found.items() if v is not None},
            "errors": sum(summary.get("errors_by_kind", {}).values()), "stages_wall_s": round(wall, 2)}


def _first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")


STAGE_ORDER = ("cut", "score", "caption")


def result(summary: dict, stage: str | None = None) -> list[str]:
    """In plain words: what the folder holds now and, when nothing came out, why and what to change.

    ``stage`` (``cut``, ``score``, ``caption``): what that stage's outputs hold, each stage's last log
    line (a rerun of stage 1 in a folder that stages 2 and 3 reached is not about their outputs);
    None: the furthest stage in the summary, the whole run's word.  Another section (``materialize``,
    which says its own line) has none."""
    stages = summary.get("stages", {})
    later: set[str] = set()  # stages after this one that ran before it: "has not run since"
    if stage is not None and stage not in STAGE_ORDER:
        return []
    if stage is not None:
        kept = STAGE_ORDER[:STAGE_ORDER.index(stage) + 1]  # and the earlier ones: why nothing reached this one
        later = set(stages) - set(kept)
        stages = {name: section for name, section in stages.items() if name in kept}
    cut, score, caption = (stages.get(name) for name in STAGE_ORDER)
    since = " since" if later else ""
    if caption and caption.get("train_json"):
        line = f"result: {caption['train_json']} clips with a caption in train.json"
        if caption.get("missing"):
            line += f"; {caption['missing']} clips have none yet (errors.jsonl says why; a rerun tries them again)"
        if caption.get("pending"):
            line += (f"; {caption['pending']} of them are deferred clips with no file yet (source ranges; "
                     "'python -m video_caption.datautil materialize' makes them)")
        return [line]
    if caption and caption.get("clips"):
        skipped = caption.get("skipped") or []
        if skipped:
            return [f"result: no caption: the {item['step']} step was skipped ({_first_sentence(item['reason'])}). "
                    "Give it a model (VLM_BASE_URL, VLM_SERVE or VLM_BACKEND; LLM_* for the summary) and rerun: "
                    "the earlier stages' work is kept" for item in skipped[:1]]
        rejected = sum(sum(reasons.values()) for reasons in (caption.get("degenerate") or {}).values())
        gates = "".join(f", {g['reached'] - g['passed']} did not pass {name}"
                        for name, g in (caption.get("gates") or {}).items() if g["reached"] > g["passed"])
        return [f"result: no caption: {caption['missing']} clips have none (errors.jsonl says why), "
                f"{rejected} had a degenerate model reply (\"degenerate\" in the step's file says why), "
                f"{caption['dropped']} were empty after cleaning{gates}"]
    if score and score.get("clips") and not score.get("train_clips"):
        gates = {name: g for name, g in score.get("gates", {}).items() if g["rejected"] or g["unscored"]}
        if gates:
            name, worst = max(gates.items(), key=lambda item: item[1]["rejected"] + item[1]["unscored"])
            if worst["rejected"]:
                return [f"result: no clip passed stage 2: the {name} gate ({worst['gate']}) rejected "
                        f"{worst['rejected']} of the {worst['reached']} clips it saw (gate_decisions.jsonl has each "
                        f"value); change {' or '.join(worst.get('settings') or ['its threshold'])} to keep more"]
            return [f"result: no clip passed stage 2: {worst['unscored']} clips could not be scored by {name} "
                    "(errors.jsonl says why)"]
    if score:
        return [f"result: {score.get('train_clips', 0)} clips passed stage 2 into train.jsonl; "
                f"stage 3 has not run{since}"]
    if cut and not cut.get("clips"):
        return [f"result: no clip: stage 1 cut none from {cut['sources']} sources ({cut['sources_failed']} could not "
                "be read: errors.jsonl; for the others, 'skipped' in meta_scene_info.jsonl says why, e.g. every "
                "shot shorter than MIN_SECONDS)"]
    if cut and cut.get("deferred"):
        return [f"result: {cut['clips']} clips in meta_clips.jsonl, {cut['deferred']} of them deferred (source ranges: "
                f"stage 3's materialize step encodes those that pass); stages 2 and 3 have not run{since}"]
    if cut:
        return [f"result: {cut['clips']} clips in clips/ (meta_clips.jsonl); stages 2 and 3 have not run{since}"]
    return []


def lines(summary: dict, since: float | None = None) -> list[str]:
    """The summary as a few lines for the terminal; with ``since`` (a time.time() value), only the
    stages that finished since then: one run of run_pipeline.sh."""
    out = []
    stages = {name: section for name, section in summary.get("stages", {}).items()
              if since is None or section.get("finished_epoch", 0) >= since}
    if not stages:
        return ["no stage finished in this run"]
    if "cut" in stages:
        s = stages["cut"]
        out.append(f"stage 1 cut:     {s['sources']} sources, {s['sources_done']} cut, {s['sources_failed']} failed, "
                   f"{s['clips']} clips ({s['run']['wall_s']} s in its latest run)")
    if "score" in stages:
        s = stages["score"]
        gates = ", ".join(f"{name} {g['passed']}/{g['reached']}" for name, g in s["gates"].items())
        out.append(f"stage 2 filter:  {s['clips']} clips, {s['train_clips']} passed every gate "
                   f"(passed/reached: {gates or 'none'}) ({s['run']['wall_s']} s in its latest run)")
    if "caption" in stages:
        s = stages["caption"]
        out.append(f"stage 3 caption: {s['clips']} clips, {s['train_json']} in train.json, {s['missing']} without a "
                   f"caption, {s.get('degenerate_clips', 0)} with a degenerate reply, {s['dropped']} empty after "
                   f"cleaning ({s['run']['wall_s']} s in its latest run)")
    for name, section in stages.items():
        for item in section.get("skipped", []):
            what = item.get("scorer") or item.get("step")
            out.append(f"skipped in {name}: {what} ({item['reason'].split('. ')[0]})")
        for step, count in section.get("superseded", {}).items():
            out.append(f"redone in {name}: {step}, {count} rows made with other settings or holding a "
                       "bound that no longer decides (old rows in superseded/)")
        for step, count in section.get("recut", {}).items():
            out.append(f"moved in {name}: {step}, {count} rows of clips stage 1 cut again (old rows in superseded/)")
    total = summary.get("totals")
    if total:
        counts = ", ".join(f"{total[k]} {k.replace('_', ' ')}" for k in ("sources", "clips", "train_clips", "captioned")
                           if k in total)
        took = (f"{time.time() - since:.1f} s this run" if since is not None
                else f"{total['stages_wall_s']} s in the latest run of each stage")
        out.append(f"whole dataset:   {counts}; {took}")
    errors = summary.get("errors_by_kind", {})
    out.append("unresolved errors: " + (", ".join(f"{k} {v}" for k, v in errors.items()) + " (errors.jsonl)"
                                        if errors else "none"))
    return out + result(summary)


def main(argv=None) -> int:
    p = Parser("python -m video_caption.summary", __doc__)
    p.add_argument("--output-folder", required=True)
    p.add_argument("--since", type=float, help="only the stages that finished since this Unix time (one run)")
    args = p.parse_args(argv)
    path = Path(args.output_folder) / SUMMARY_JSON
    if not path.is_file():
        print(f"no {SUMMARY_JSON} in {args.output_folder}: no stage has finished there yet", file=sys.stderr)
        return 1
    print("\n".join(lines(json.loads(path.read_text()), args.since)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
