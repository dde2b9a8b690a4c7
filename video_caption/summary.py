"""Run summaries: what each stage did, kept in OUTPUT_FOLDER/summary.json, and a few terminal lines.

Each stage records its section when it ends: totals read from its manifests (so a resumed run
reports the whole dataset, not only its own share) and this run's wall time and throughput.
``python -m video_caption.summary --output-folder OUT`` prints the whole run from that file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from video_caption.manifest import ERRORS, SUMMARY_JSON, read_rows, write_atomic


def errors_by_kind(out: Path) -> dict[str, int]:
    """errors.jsonl rows counted by the step that failed (``cut``, ``score:text``, ``caption:summary`` ...)."""
    return dict(sorted(Counter(row.get("stage", "?") for row in read_rows(out / ERRORS)).items()))


def throughput(count: int, seconds: float) -> float:
    return round(count / seconds, 3) if seconds > 0 else 0.0


def record_stage(out: Path, stage: str, facts: dict) -> dict:
    """Store ``facts`` as this stage's section of summary.json (replacing an earlier run's) and
    refresh the error counts.  Only one stage runs in a folder at a time (each holds its lock)."""
    path = out / SUMMARY_JSON
    summary = json.loads(path.read_text()) if path.is_file() else {}
    summary.setdefault("stages", {})[stage] = {**facts, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    summary["errors_by_kind"] = errors_by_kind(out)
    summary["totals"] = totals(summary)
    write_atomic(path, (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode())
    return summary


def totals(summary: dict) -> dict:
    """The whole run: what went in, what came out of each stage so far, and the time the stages took
    in their latest runs."""
    stages = summary.get("stages", {})
    wall = sum(section.get("run", {}).get("wall_s", 0.0) for section in stages.values())
    found = {"sources": stages.get("cut", {}).get("sources"), "clips": stages.get("cut", {}).get("clips"),
             "train_clips": stages.get("score", {}).get("train_clips"),
             "captioned": stages.get("caption", {}).get("train_json")}
    return {**{k: v for k, v in found.items() if v is not None},
            "errors": sum(summary.get("errors_by_kind", {}).values()), "wall_s": round(wall, 2)}


def lines(summary: dict) -> list[str]:
    """The summary as a few lines for the terminal."""
    out = []
    stages = summary.get("stages", {})
    if "cut" in stages:
        s = stages["cut"]
        out.append(f"stage 1 cut:     {s['sources']} sources, {s['sources_done']} cut, {s['sources_failed']} failed, "
                   f"{s['clips']} clips ({s['run']['wall_s']} s this run)")
    if "score" in stages:
        s = stages["score"]
        gates = ", ".join(f"{name} {g['passed']}/{g['reached']}" for name, g in s["gates"].items())
        out.append(f"stage 2 filter:  {s['clips']} clips, {s['train_clips']} passed every gate "
                   f"(passed/reached: {gates or 'none'}) ({s['run']['wall_s']} s this run)")
    if "caption" in stages:
        s = stages["caption"]
        out.append(f"stage 3 caption: {s['clips']} clips, {s['train_json']} in train.json, {s['missing']} without a "
                   f"caption, {s['dropped']} dropped by cleaning ({s['run']['wall_s']} s this run)")
    for name, section in stages.items():
        for item in section.get("skipped", []):
            what = item.get("scorer") or item.get("step")
            out.append(f"skipped in {name}: {what} ({item['reason'].split('. ')[0]})")
        for step, count in section.get("superseded", {}).items():
            out.append(f"redone in {name}: {step}, {count} rows made with other settings (old rows in superseded/)")
    total = summary.get("totals")
    if total:
        counts = ", ".join(f"{total[k]} {k.replace('_', ' ')}" for k in ("sources", "clips", "train_clips", "captioned")
                           if k in total)
        out.append(f"whole run:       {counts}; {total['wall_s']} s in the stages' latest runs")
    errors = summary.get("errors_by_kind", {})
    out.append("errors: " + (", ".join(f"{k} {v}" for k, v in errors.items()) if errors else "none"))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m video_caption.summary", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-folder", required=True)
    args = p.parse_args(argv)
    path = Path(args.output_folder) / SUMMARY_JSON
    if not path.is_file():
        print(f"no {SUMMARY_JSON} in {args.output_folder}: no stage has finished there yet", file=sys.stderr)
        return 1
    print("\n".join(lines(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
