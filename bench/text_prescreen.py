"""How the text prescreen's area compares with the full-size area: the bound that lets it reject.

    python bench/text_prescreen.py [--every 0.5] [--out bench/results]

Frames every ``--every`` seconds of each shared test video, and of the smaller ones scaled up to
1280 px wide (upscaled footage is common, and it brings the Sintel trailer's titles and the
timecode), wherever the prescreen applies (long side at least 1.5 x TEXT_PRESCREEN_SIDE).  For each
frame: CRAFT's text area at the prescreen size and at full size, as stage 2's text step computes
them.  Reported: over the frames the prescreen finds text on, the smallest full / prescreen ratio,
and for the prescreen's rule (reject when the prescreen area is over PRESCREEN_RATIO x TEXT_MAX) at
several TEXT_MAX the frames it rejects and whether any of them would pass at full size.  Results
go to OUT/text_prescreen.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import av
import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from video_caption.score.text import PRESCREEN_RATIO, TextScorer, text_detail  # noqa: E402

VIDEOS = REPO.parent / "shared" / "data" / "videos"
UPSCALED_WIDTH = 1280


def frames(path: Path, every: float):
    """(time, RGB frame) every ``every`` seconds."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        next_time = 0.0
        for frame in container.decode(stream):
            if frame.time is None or frame.time + 1e-6 < next_time:
                continue
            next_time = frame.time + every
            yield frame.time, frame.to_ndarray(format="rgb24")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--every", type=float, default=0.5)
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    scorer = TextScorer()
    scorer.setup("cpu")
    files = json.loads((VIDEOS / "ground_truth.json").read_text())["files"]
    rows, started = [], time.time()
    for name, facts in files.items():
        if not facts.get("readable", True):
            continue
        try:
            for t, frame in frames(VIDEOS / name, args.every):
                height, width = frame.shape[:2]
                scaled = max(height, width) < 1.5 * scorer.frames.prescreen_side
                if scaled:
                    frame = cv2.resize(frame, (UPSCALED_WIDTH, round(height * UPSCALED_WIDTH / width)),
                                       interpolation=cv2.INTER_LINEAR)
                item = scorer.frames.prepare([frame])[0]
                low, full = scorer._detect([(item.low, item.low_ratio), (item.full, item.full_ratio)])
                rows.append({"video": name, "time": round(t, 3), "upscaled": scaled, "size": list(item.size),
                             "low": text_detail(low, *item.size).area, "full": text_detail(full, *item.size).area})
        except av.error.FFmpegError as exc:  # the shared set's broken files: what decodes is used
            print(f"{name}: {exc}", file=sys.stderr)
        print(f"{name}: {len(rows)} frames so far, {time.time() - started:.0f} s", file=sys.stderr)
    found = [r for r in rows if r["low"] > 0]
    summary = {"frames": len(rows), "with_text_at_prescreen": len(found),
               "min_full_over_low": min((r["full"] / r["low"] for r in found), default=None),
               "ratio": PRESCREEN_RATIO, "by_text_max": {}}
    for text_max in (0.005, 0.01, 0.02, 0.05, 0.1):
        rejected = [r for r in rows if r["low"] > PRESCREEN_RATIO * text_max]
        summary["by_text_max"][str(text_max)] = {
            "over_text_max_at_full": sum(r["full"] > text_max for r in rows),
            "rejected_by_prescreen": len(rejected),
            "of_them_passing_at_full": sum(r["full"] <= text_max for r in rejected)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "text_prescreen.json").write_text(json.dumps({"summary": summary, "frames": rows}, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
