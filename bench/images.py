"""Images through stages 1 and 2: seconds per image of stage 1 (probe and link, no cut) and of each
one-frame step of stage 2, each run alone.

    python bench/images.py [--images 120] [--work /tmp/video_caption_bench_images]

Images: stills taken with ffmpeg from the shared videos at several moments, their native sizes
(176x144 to 1920x1080), as jpg, png and webp in turn.  Each stage-2 step runs alone on stage 1's
manifest (the aesthetic step is left out: no real CLIP here).  Wall time and the CPU time of the
process tree, one run each (images are fast; the stage's start-up, about 5 s, is in the figures and
is reported apart from the per-image cost, measured on two sizes of the set).
Results go to bench/results/images.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from stage1_speed import run_measured  # noqa: E402

VIDEOS = REPO.parent / "shared" / "data" / "videos"
FORMATS = ("jpg", "png", "webp")
STEPS = ("text", "nsfw", "dedup")


def make_images(folder: Path, count: int) -> None:
    sources = sorted(p for p in VIDEOS.rglob("*") if p.suffix in (".mp4", ".webm", ".mkv") and "corrupt" not in p.name)
    made = 0
    for moment in range(1, 20):
        for source in sources:
            if made == count:
                return
            target = folder / f"{source.stem}_{moment:02d}.{FORMATS[made % len(FORMATS)]}"
            # A moment past a short source's end writes no picture (or an empty webp): passed over.
            subprocess.run(["ffmpeg", "-loglevel", "quiet", "-y", "-ss", str(moment * 0.45), "-i", str(source),
                            "-frames:v", "1", str(target)])
            if target.is_file() and target.stat().st_size:
                made += 1
            else:
                target.unlink(missing_ok=True)


def measure(folder: Path, out: Path) -> dict:
    """Stage 1, then each step alone: {name: (wall s, CPU s)}."""
    python = sys.executable
    shutil.rmtree(out, ignore_errors=True)
    wall, memory, proc = run_measured([python, "-m", "video_caption.cut", "--video-folder", str(folder),
                                       "--output-folder", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = {"cut": (wall, memory.cpu_s)}
    for step in STEPS:
        wall, memory, proc = run_measured([python, "-m", "video_caption.score", "--output-folder", str(out),
                                           "--scorers", step, "--text-max", "1", "--nsfw-max", "1",
                                           "--keep-duplicates"])
        assert proc.returncode == 0, proc.stderr[-2000:]
        found[step] = (wall, memory.cpu_s)
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=120)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench_images"))
    args = p.parse_args()
    small, large = args.work / "small", args.work / "large"
    for folder, count in ((small, args.images // 4), (large, args.images)):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        make_images(folder, count)
    runs = {count: measure(folder, args.work / f"out_{count}")
            for folder, count in ((small, args.images // 4), (large, args.images))}
    (few, a), (many, b) = sorted(runs.items())
    # The difference between the two set sizes is the cost of the images alone, without start-up.
    results = {name: {"per_image_wall_s": round((b[name][0] - a[name][0]) / (many - few), 4),
                      "per_image_cpu_s": round((b[name][1] - a[name][1]) / (many - few), 4),
                      "startup_wall_s": round(a[name][0] - few * (b[name][0] - a[name][0]) / (many - few), 2),
                      f"wall_s_{many}_images": round(b[name][0], 2)} for name in ("cut", *STEPS)}
    print(f"{'step':8} {'s/image':>8} {'CPU s/image':>12} {'start-up s':>11} {f'wall s ({many})':>14}")
    for name, r in results.items():
        print(f"{name:8} {r['per_image_wall_s']:8.3f} {r['per_image_cpu_s']:12.3f} {r['startup_wall_s']:11.2f} "
              f"{r[f'wall_s_{many}_images']:14.2f}")
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "images.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": platform.node(),
                                                 "images": [few, many], "steps": results}, indent=2))


if __name__ == "__main__":
    main()
