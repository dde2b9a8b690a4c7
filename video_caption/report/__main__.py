"""The HTML report of an output folder: what every stage kept, rejected and wrote.

    python -m video_caption.report --output-folder OUT

Writes OUT/report/index.html, which opens from disk in any browser with no network: the funnel
(the numbers of summary.json), the steps skipped and why, the sources that gave no clip and why,
each score's distribution with its gate's thresholds and the share that passed, label counts (camera
motion, category, tags, image/video), durations and resolutions, a gallery of every clip (a strip of
frames, the scores of the steps it went through in the current runs, the gate that dropped it, the
steps that skipped it, its frame captions and final caption; duplicates beside the clip they copy)
with filters by status and gate, sorting by any score and search in captions, and the rows of
errors.jsonl.  Beside it: thumbs/ (made once per clip and reused by later builds) and data/ (the clip
records, in chunks).  run_pipeline.sh builds it at the end.  Exit status: 0 done, 1 no clip manifest
in OUT.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from video_caption.cli import Parser, entry_point
from video_caption.gate import Gate
from video_caption.logs import setup_logging
from video_caption.manifest import META_CLIPS
from video_caption.report import collect, page, plots, thumbs


def parse_args(argv=None):
    p = Parser("python -m video_caption.report", __doc__)
    p.add_argument("--output-folder", required=True, help="a pipeline output folder (any stage done)")
    p.add_argument("--root", help="folder the manifest's video_path values are relative to (default: OUTPUT_FOLDER)")
    p.add_argument("--thumbnails", action=argparse.BooleanOptionalAction, default=True,
                   help="make a strip of frames per clip (off: the gallery shows none; default: on)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes making thumbnails")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _note(key: str, values: list[float], bounds: dict | None) -> str:
    text = f"{key}: {len(values)} clips"
    if bounds:
        values = bounds.get("values")
        gate = Gate(key, bounds.get("min"), bounds.get("max"), bool(bounds.get("strict")),
                    tuple(values) if values is not None else None)
        text += f"; gate {gate.describe()}"
    if bounds and bounds.get("share_passed") is not None:
        text += (f"; {bounds['passed']} of the {bounds['reached']} clips its gate saw passed "
                 f"({bounds['share_passed']:.1%})")
    return text


def build(out: Path, root: Path, make_thumbnails: bool, workers: int, log) -> Path:
    folder = out / "report"
    summary = collect.read_summary(out)
    records = collect.clip_table(out)
    strips = thumbs.strips(records, root, folder / "thumbs", workers, log) if make_thumbnails else {}
    bounds = collect.thresholds(summary)
    score_plots = []
    for key, title in collect.scores(summary).items():
        values = collect.numbers(records, key)
        if values:
            score_plots.append((plots.histogram(values, title, bounds.get(key)), _note(key, values, bounds.get(key))))
    label_plots = [(plots.bars(counts, name), f"{name}: {sum(counts.values())} clips, {len(counts)} values")
                   for name, counts in collect.label_counts(records, collect.labels(summary)).items()]
    durations = collect.numbers(records, "duration")
    sizes = Counter(f"{r['width']}x{r['height']}" for r in records if r.get("width") and r.get("height"))
    footage = ([(plots.histogram(durations, "clip duration, s"), f"duration: {len(durations)} video clips, "
                 f"{sum(durations) / 3600:.2f} hours")] if durations else []) + \
        ([(plots.bars(sizes, "resolution (width x height)"), f"{len(sizes)} sizes")] if sizes else [])
    errors = collect.errors(out)
    skipped = collect.skipped_steps(summary)
    carried = collect.carried(summary)
    chunks = page.write_data(folder, records, strips, errors, carried)
    meta = {"clips": len(records), "chunks": chunks, "errors": len(errors), "skip_notes": collect.skip_notes(skipped),
            "gates": dict(Counter(r["reason"] for r in records if r["reason"]).most_common()),
            "statuses": {s: n for s in collect.STATUSES if (n := sum(r["status"] == s for r in records))},
            "sortable": [k for k in collect.sortable(summary) if any(k in r for r in records)], "carried": carried,
            "shown": collect.shown(summary)}
    sources = collect.sources_without_clips(collect.scene_rows(out), errors)
    return page.write_index(folder, out, collect.funnel(summary), skipped, sources, score_plots, label_plots, footage,
                            meta)


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging(args.verbose)
    out = Path(args.output_folder)
    if not (out / META_CLIPS).is_file():
        log.error("no %s in %s: run stage 1 (or datautil import) first", META_CLIPS, out)
        return 1
    started = time.time()
    index = build(out, Path(args.root) if args.root else out, args.thumbnails, args.workers, log)
    log.info("report built in %.1f s: %s", time.time() - started, index)
    print(index.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
