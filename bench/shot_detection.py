"""Shot-boundary precision/recall per file for each detector, against ground_truth.json.

    python bench/shot_detection.py [--detectors content adaptive transnetv2]

Hard cuts only, matched within ±2 frames; a detection that matches no cut but lies inside a listed
gradual transition counts neither way.  Prints a markdown table (docs/benchmarks.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from video_caption.cut.detectors import DETECTORS, make_detector  # noqa: E402
from video_caption.cut.evaluate import Score, score_cuts  # noqa: E402
from video_caption.cut.plan import clean_cuts  # noqa: E402
from video_caption.media.decode import decode_frames  # noqa: E402
from video_caption.media.probe import probe  # noqa: E402
from video_caption.media.process import MediaError  # noqa: E402

VIDEOS = REPO.parent / "shared" / "data" / "videos"


def detect(path: Path, detector_name: str) -> list[int]:
    info = probe(path)
    detector = make_detector(detector_name, info.fps)
    width, height = detector.image_size(info.width, info.height)
    cuts, count = [], 0
    for frame in decode_frames(path, info):
        cuts += detector.push(frame.index, frame.image(width, height, detector.image_format, detector.exact_resize))
        count += 1
    return clean_cuts(cuts + detector.finish(), count)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=DETECTORS)
    args = p.parse_args()
    truth = json.loads((VIDEOS / "ground_truth.json").read_text())["files"]
    table: dict[str, dict[str, Score]] = {}
    seconds = {}
    for name in args.detectors:
        start = time.perf_counter()
        for file, gt in truth.items():
            try:
                cuts = detect(VIDEOS / file, name)
            except MediaError:
                continue  # corrupted.mp4: stage 1 records it as an error
            table.setdefault(file, {})[name] = score_cuts(cuts, gt["cuts"], gt["gradual"])
        seconds[name] = time.perf_counter() - start
    header = " | ".join(f"{d} P / R" for d in args.detectors)
    print(f"| file | cuts | {header} |\n|---|---|" + "---|" * len(args.detectors))
    totals = {d: Score() for d in args.detectors}
    for file, scores in table.items():
        cells = []
        for d in args.detectors:
            s = scores[d]
            totals[d] += s
            cells.append(f"{s.precision:.2f} / {s.recall:.2f}" + (f" (+{s.false_positives} FP, -{s.false_negatives} FN)"
                                                                  if s.false_positives or s.false_negatives else ""))
        print(f"| {file} | {len(truth[file]['cuts'])} | " + " | ".join(cells) + " |")
    print("| **all files** | " + str(sum(len(t["cuts"]) for t in truth.values())) + " | " + " | ".join(
        f"**{totals[d].precision:.3f} / {totals[d].recall:.3f}, F1 {totals[d].f1:.3f}**" for d in args.detectors)
        + " |")
    print("\ndetection time over all files (decode + detector): "
          + ", ".join(f"{d} {seconds[d]:.1f} s" for d in args.detectors))


if __name__ == "__main__":
    main()
