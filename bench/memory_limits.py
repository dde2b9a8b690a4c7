"""Memory at the extremes: an 8K source through stages 1 and 2, and a 1-hour source through stage 1.

    python bench/memory_limits.py [--work /tmp/video_caption_memory] [--out bench/results]

8K: the shared 5-second Sintel clip scaled to 7680x4320 (H.264); stage 1 cuts it, stage 2 scores the
clip (exact motion at full size, then text).  Long: the shared videos at 320x180 looped to 5 minutes
and to 1 hour; stage 1 on each.  Peak memory is the summed RSS of the run's processes and the largest
one; the 1-hour run's peak should match the 5-minute one's.  Results go to OUT/memory_limits.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from scale import measured, small_material  # noqa: E402
from stage1_speed import VIDEOS  # noqa: E402

from video_caption.manifest import read_rows  # noqa: E402

OPEN_GATES = ["--scorers", "motion,text", "--motion-min", "-1", "--motion-max", "1e9", "--text-max", "1"]


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def source_8k(work: Path) -> Path:
    out = work / "8k" / "sintel_8k.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        ffmpeg("-i", str(VIDEOS / "moviepy" / "sintel_5s.mp4"), "-vf", "scale=7680:4320:flags=bicubic", "-an",
               "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23", str(out))
    return out


def source_long(work: Path, minutes: int) -> Path:
    out = work / f"long_{minutes}" / f"long_{minutes}min.mp4"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        ffmpeg("-stream_loop", "-1", "-i", str(small_material(work)), "-t", str(minutes * 60), "-c", "copy", str(out))
    return out


def stage1(source: Path, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    run = measured([sys.executable, "-m", "video_caption.cut", "--video-folder", str(source.parent),
                    "--output-folder", str(out)])
    scenes = read_rows(out / "meta_scene_info.jsonl")
    return {**run, "frames": sum(s.get("num_frames", 0) for s in scenes),
            "clips": len(read_rows(out / "meta_clips.jsonl")), "errors": len(read_rows(out / "errors.jsonl"))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_memory"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
               "date": time.strftime("%Y-%m-%d")}
    out = args.work / "out_8k"
    results["8k_stage1"] = stage1(source_8k(args.work), out)
    print(json.dumps(results), flush=True)
    score = measured([sys.executable, "-m", "video_caption.score", "--output-folder", str(out), *OPEN_GATES])
    results["8k_stage2"] = {**score, "scored": len(read_rows(out / "train.jsonl")),
                            "errors": len(read_rows(out / "errors.jsonl"))}
    print(json.dumps(results), flush=True)
    for minutes in (5, 60):
        results[f"{minutes}min_stage1"] = stage1(source_long(args.work, minutes), args.work / f"out_{minutes}")
        print(json.dumps(results), flush=True)
    (args.out / "memory_limits.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
