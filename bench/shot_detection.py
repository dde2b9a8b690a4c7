"""Shot-boundary scores per file for each detector, and the clips of a stage-1 run, against a ground truth.

    python bench/shot_detection.py [--videos DIR] [--detectors content adaptive transnetv2] [--clips OUT]

DIR holds the videos and their ground_truth.json: ../shared/data/videos by default, or a spliced
set made by bench/splice.py (exact gradual ranges, with their kinds).
- Hard cuts: matched within ±2 frames; a detection that matches no cut but marks a listed gradual
  transition (from 2 frames before its first frame to 2 frames after the frame after its last)
  counts neither way.  Precision / recall per file, and F1 over all files.
- Gradual transitions: a range is found when such a detection marks it, or a detected range
  overlaps it (a detector with a ``transitions`` attribute after ``finish()``, ``[[first, last],
  ...]``, or a stage-1 run's ``transitions``): video_caption.cut.evaluate.gradual_found.  Per kind
  where the ground truth has ``gradual_kinds``.
- ``--clips OUT``: a stage-1 output folder made from DIR.  Its meta_scene_info.jsonl is scored as one
  more detector column, and its clips (meta_clips.jsonl) are checked: how many overlap a gradual
  range by more than 2 frames, and how many contain a hard cut (frames from both sides of it); and
  the footage kept: of the usable frames (support/footage.py: the frames of the true shots of at
  least the run's MIN_SECONDS, less its MARGIN_FRAMES at each side of each true boundary), the
  share that its clips cover.  Where its rows do not record their settings, PlanSettings' defaults.
- False cuts: detected cuts that match no true cut and mark no true gradual range (the scores'
  false positives), per file; every detected cut on a hard-negative set (bench/hard_negatives.py),
  whose ``events`` are also counted by kind: those that a detected cut marks.  False ranges:
  detected ranges that overlap no true gradual range and hold no true cut.
``--detectors`` with no name scores only ``--clips``.  Prints markdown tables (docs/benchmarks.md
quotes them), the last a summary row per column: F1, false cuts, impure clips, footage kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "support"))
from footage import footage_kept  # noqa: E402

from video_caption.cut.detectors import DETECTORS, make_detector  # noqa: E402
from video_caption.cut.evaluate import Score, clip_faults, gradual_found, score_cuts  # noqa: E402
from video_caption.cut.plan import PlanSettings, clean_cuts  # noqa: E402
from video_caption.manifest import read_rows  # noqa: E402
from video_caption.media.decode import decode_frames  # noqa: E402
from video_caption.media.probe import probe  # noqa: E402
from video_caption.media.process import MediaError  # noqa: E402

VIDEOS = REPO.parent / "shared" / "data" / "videos"


def ranges(items) -> list[tuple[int, int]]:
    """``[[first, last], ...]`` (an optional kind after them) or ``[{"first", "last"}, ...]`` as pairs."""
    pairs = []
    for item in items or ():
        if isinstance(item, dict):
            item = item.get("range") or (item["first"], item["last"])
        pairs.append((int(item[0]), int(item[1])))
    return pairs


def detect(path: Path, detector_name: str) -> tuple[list[int], list[tuple[int, int]]]:
    """(cuts, transition ranges) of one detector on one file."""
    info = probe(path)
    detector = make_detector(detector_name, info.fps)
    width, height = detector.image_size(info.width, info.height)
    cuts, count = [], 0
    for frame in decode_frames(path, info):
        cuts += detector.push(frame.index, frame.image(width, height, detector.image_format, detector.exact_resize))
        count += 1
    cuts = clean_cuts(cuts + detector.finish(), count)
    return cuts, ranges(getattr(detector, "transitions", None))


@dataclass
class Result:
    score: Score
    found: list[bool]  # one per gradual range of the file
    false_ranges: int  # detected ranges that overlap no true gradual range and hold no true cut
    events_cut: list[bool]  # one per event of the file (a hard-negative set): whether a detected cut marks it


@dataclass
class ClipCheck:
    clips: int = 0
    over_gradual: int = 0  # clips overlapping a gradual range by more than 2 frames
    with_cut: int = 0  # clips containing a hard cut
    impure: int = 0  # clips with either fault
    kinds: Counter = field(default_factory=Counter)  # kinds of the ranges those clips overlap
    usable: int = 0  # frames that could become clips (support/footage.py)
    kept: int = 0  # of those, the frames the clips cover

    def __add__(self, other: ClipCheck) -> ClipCheck:
        return ClipCheck(self.clips + other.clips, self.over_gradual + other.over_gradual,
                         self.with_cut + other.with_cut, self.impure + other.impure, self.kinds + other.kinds,
                         self.usable + other.usable, self.kept + other.kept)

    @property
    def footage(self) -> str:
        return f"{self.kept / self.usable:.1%}" if self.usable else "-"


def kinds_of(gt: dict) -> list[str]:
    return gt.get("gradual_kinds") or ["gradual"] * len(gt["gradual"])


def marks(cut: int, first: int, last: int, tolerance: int = 2) -> bool:
    """Whether a detected cut marks the range [first, last] (as score_cuts lets it mark a gradual one)."""
    return first - tolerance <= cut <= last + 1 + tolerance


def result(gt: dict, cuts, detected_ranges, tolerance: int = 2) -> Result:
    false_ranges = sum(1 for a, b in detected_ranges
                       if not any(a <= last + tolerance and b >= first - tolerance for first, last in gt["gradual"])
                       and not any(marks(c, a, b) for c in gt["cuts"]))
    return Result(score_cuts(cuts, gt["cuts"], gt["gradual"], tolerance),
                  gradual_found(cuts, gt["cuts"], gt["gradual"], detected_ranges, tolerance), false_ranges,
                  [any(marks(c, e["first"], e["last"], tolerance) for c in cuts) for e in gt.get("events", ())])


def check_clips(rows: list[dict], gt: dict, plan: PlanSettings) -> ClipCheck:
    """Impure clips (a clip with both faults counts once in ``impure``) and footage kept."""
    check = ClipCheck(clips=len(rows))
    kinds = kinds_of(gt)
    for row in rows:
        inside, overlapped = clip_faults(row["start_frame"], row["end_frame"], gt["cuts"], gt["gradual"])
        check.with_cut += bool(inside)
        check.over_gradual += bool(overlapped)
        check.impure += bool(inside or overlapped)
        check.kinds.update(kinds[i] for i in overlapped)
    min_frames, _ = plan.frame_limits(Fraction(gt["fps"]))
    check.usable, check.kept = footage_kept(gt["frames_decoded"], gt["cuts"], gt["gradual"],
                                            [(row["start_frame"], row["end_frame"]) for row in rows], min_frames,
                                            plan.margin_frames)
    return check


def plan_of(scene_row: dict) -> PlanSettings:
    """The clip lengths and margin a stage-1 row was cut with (PlanSettings' defaults where not recorded)."""
    return PlanSettings(**scene_row.get("cut_settings", {}).get("plan", {}))


def cells(r: Result) -> str:
    s = r.score
    misses = f" (+{s.false_positives} FP, -{s.false_negatives} FN)" if s.false_positives or s.false_negatives else ""
    return f"{s.precision:.2f} / {s.recall:.2f}{misses} | {sum(r.found)}/{len(r.found)}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=Path, default=VIDEOS, help=f"folder with ground_truth.json (default {VIDEOS})")
    p.add_argument("--detectors", nargs="*", default=list(DETECTORS), choices=DETECTORS)
    p.add_argument("--clips", type=Path, help="a stage-1 output folder made from --videos: score its manifests")
    args = p.parse_args()
    truth = json.loads((args.videos / "ground_truth.json").read_text())["files"]
    table: dict[str, dict[str, Result]] = {file: {} for file in truth}
    columns, seconds = [], {}
    for name in args.detectors:
        columns.append(name)
        start = time.perf_counter()
        for file, gt in truth.items():
            try:
                table[file][name] = result(gt, *detect(args.videos / file, name))
            except MediaError:
                continue  # corrupted.mp4: stage 1 records it as an error
        seconds[name] = time.perf_counter() - start
    clip_checks: dict[str, ClipCheck] = {}
    if args.clips:
        scenes = {row["video_path"]: row for row in read_rows(args.clips / "meta_scene_info.jsonl")}
        detectors = sorted({row.get("detector", "?") for row in scenes.values()})
        column = f"stage 1 ({', '.join(detectors)})"
        columns.append(column)
        clips: dict[str, list[dict]] = {}
        for row in read_rows(args.clips / "meta_clips.jsonl"):
            clips.setdefault(row["source_path"], []).append(row)
        for file, gt in truth.items():
            if file in scenes:
                table[file][column] = result(gt, scenes[file]["cuts"], ranges(scenes[file].get("transitions")))
                clip_checks[file] = check_clips(clips.get(file, []), gt, plan_of(scenes[file]))

    print("Hard cuts (P / R) and gradual transitions found, per file\n")
    print("| file | cuts | gradual | " + " | ".join(f"{c} P / R | {c} gradual" for c in columns) + " |")
    print("|---|---|---|" + "---|---|" * len(columns))
    totals = {c: Score() for c in columns}
    for file, results in table.items():
        for c in results:
            totals[c] += results[c].score
        row = " | ".join(cells(results[c]) if c in results else "- | -" for c in columns)
        print(f"| {file} | {len(truth[file]['cuts'])} | {len(truth[file]['gradual'])} | {row} |")
    found = {c: Counter() for c in columns}
    counts: Counter = Counter()
    for file, gt in truth.items():
        kinds = kinds_of(gt)
        counts.update(kinds)
        for c, r in table[file].items():
            found[c].update(k for k, hit in zip(kinds, r.found, strict=True) if hit)
    print(f"| **all files** | {sum(len(t['cuts']) for t in truth.values())} | {sum(counts.values())} | " + " | ".join(
        f"**{totals[c].precision:.3f} / {totals[c].recall:.3f}, F1 {totals[c].f1:.3f}** | "
        f"**{sum(found[c].values())}/{sum(counts.values())}**" for c in columns) + " |")
    if seconds:
        print("\ndetection time over all files (decode + detector): "
              + ", ".join(f"{d} {seconds[d]:.1f} s" for d in seconds))

    print("\nGradual transitions found, by kind\n")
    print("| kind | ranges | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
    for kind in sorted(counts):
        print(f"| {kind} | {counts[kind]} | " + " | ".join(f"{found[c][kind]}" for c in columns) + " |")

    if clip_checks:
        print(f"\nClips of {args.clips}: overlapping a gradual range by more than 2 frames, containing a hard cut\n")
        print("| file | clips | over a gradual range | containing a cut |\n|---|---|---|---|")
        total = ClipCheck()
        for file, check in clip_checks.items():
            total += check
            print(f"| {file} | {check.clips} | {check.over_gradual} | {check.with_cut} |")
        share = f" ({total.over_gradual / total.clips:.0%})" if total.clips else ""
        print(f"| **all files** | **{total.clips}** | **{total.over_gradual}{share}** | **{total.with_cut}** |")
        print("\nclips over a gradual range, by the kind of range (a clip over two counts for each): "
              + (", ".join(f"{k} {n}" for k, n in sorted(total.kinds.items())) or "none"))
        print(f"\nFootage kept by {args.clips}: of the usable frames (true shots of at least MIN_SECONDS, less "
              "MARGIN_FRAMES at each true boundary), the share its clips cover\n")
        print("| file | usable frames | kept | footage kept |\n|---|---|---|---|")
        for file, check in clip_checks.items():
            print(f"| {file} | {check.usable} | {check.kept} | {check.footage} |")
        print(f"| **all files** | **{total.usable}** | **{total.kept}** | **{total.footage}** |")

    print("\nFalse cuts (detected cuts that match no true cut and mark no true gradual range) and false ranges "
          "(detected ranges over no true boundary), per file\n")
    print("| file | events | " + " | ".join(f"{c} false cuts | {c} false ranges" for c in columns) + " |")
    print("|---|---|" + "---|---|" * len(columns))
    false_ranges = Counter()
    for file, results in table.items():
        for c in results:
            false_ranges[c] += results[c].false_ranges
        added = ", ".join(e["kind"] for e in truth[file].get("events", ())) or "-"
        print(f"| {file} | {added} | " + " | ".join(
            f"{results[c].score.false_positives} | {results[c].false_ranges}" if c in results else "- | -"
            for c in columns) + " |")
    print("| **all files** | | " + " | ".join(f"**{totals[c].false_positives}** | **{false_ranges[c]}**"
                                             for c in columns) + " |")
    events: Counter = Counter(e["kind"] for gt in truth.values() for e in gt.get("events", ()))
    if events:
        cut = {c: Counter() for c in columns}
        for file, gt in truth.items():
            for c, r in table[file].items():
                cut[c].update(e["kind"] for e, hit in zip(gt["events"], r.events_cut, strict=True) if hit)
        print("\nEvents that a detected cut marks (from 2 frames before the event to 2 after the frame after it), "
              "by kind\n")
        print("| event | events | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
        for kind in sorted(events):
            print(f"| {kind} | {events[kind]} | " + " | ".join(f"{cut[c][kind]}" for c in columns) + " |")

    print(f"\nSummary ({args.videos.name}: {len(truth)} files)\n")
    print("| set | column | F1 | false cuts | false ranges | impure clips | footage kept |")
    print("|---|---|---|---|---|---|---|")
    for c in columns:
        clipped = c.startswith("stage 1") and clip_checks
        print(f"| {args.videos.name} | {c} | {totals[c].f1:.3f} | {totals[c].false_positives} | {false_ranges[c]} | "
              + (f"{total.impure} of {total.clips} | {total.footage} |" if clipped else "- | - |"))


if __name__ == "__main__":
    main()
