"""Scale: thousands of short sources through stages 1 and 2, to show that the cost per clip stays flat.

    python bench/scale.py [--sources 500 2000] [--work /tmp/video_caption_scale] [--out bench/results]

The sources are 3.5 s pieces (320x180, 24 fps) of the shared videos looped, cut with ffmpeg's segment
muxer and spread over sub-folders of 100.  For each count, stage 1 (default settings) and then stage 2
(motion and text, gates open so every clip reaches both scorers) run on the first N sources, each as
its own process tree, measuring wall time, peak memory (all processes summed, and the largest one)
and the manifests' sizes.  Flat means: seconds per source and peak memory about the same at every N.
Then the manifest writer alone appends 2,000 and 20,000 one-row batches, the way the stages do:
microseconds per row.  Results go to OUT/scale.json; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
import stage2_speed  # noqa: E402
from stage1_speed import SOURCES, VIDEOS  # noqa: E402

from video_caption.manifest import ManifestWriter, read_rows  # noqa: E402
from video_caption.media.probe import probe  # noqa: E402

SECONDS = 3.5
OPEN_GATES = ["--scorers", "motion,text", "--motion-min", "-1", "--motion-max", "1e9", "--text-max", "1"]


def small_material(work: Path) -> Path:
    """The shared videos back to back at 320x180, 24 fps, made once."""
    out = work / "material_180p.mp4"
    if not out.exists():
        cmd = ["ffmpeg", "-v", "error", "-y"]
        for name in SOURCES:
            cmd += ["-i", str(VIDEOS / name)]
        n = len(SOURCES)
        parts = "".join(f"[{i}:v:0]scale=320:180,setsar=1,fps=24,format=yuv420p[v{i}];" for i in range(n))
        chain = "".join(f"[v{i}]" for i in range(n))
        subprocess.run([*cmd, "-filter_complex", f"{parts}{chain}concat=n={n}:v=1:a=0[out]", "-map", "[out]",
                        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", str(out)], check=True)
    return out


def make_sources(work: Path, count: int) -> list[Path]:
    folder = work / "sources"
    done = sorted(folder.rglob("*.mp4"))
    if len(done) >= count:
        return done[:count]
    shutil.rmtree(folder, ignore_errors=True)
    flat = work / "flat"
    shutil.rmtree(flat, ignore_errors=True)
    flat.mkdir(parents=True)
    material = small_material(work)
    loops = int(count * SECONDS / float(probe(material).duration)) + 1
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(material),
                    "-t", f"{count * SECONDS + 1}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                    "-force_key_frames", f"expr:gte(t,n_forced*{SECONDS})", "-f", "segment", "-segment_time",
                    str(SECONDS), "-reset_timestamps", "1", str(flat / "%05d.mp4")], check=True)
    pieces = sorted(flat.glob("*.mp4"))[:count]
    for i, piece in enumerate(pieces):
        target = folder / f"{i // 100:03d}" / piece.name
        target.parent.mkdir(parents=True, exist_ok=True)
        piece.rename(target)
    shutil.rmtree(flat)
    return sorted(folder.rglob("*.mp4"))


def measured(cmd: list[str]) -> dict:
    """Wall time and peak memory of a stage run (exit status 2, some files failed, is a result)."""
    wall, memory, _ = stage2_speed.measured(cmd, ok=(0, 2))
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(memory.peak / 2**20),
            "peak_process_rss_mb": round(memory.peak_process / 2**20)}


def run_stages(work: Path, sources: list[Path]) -> dict:
    n = len(sources)
    out = work / f"out_{n}"
    shutil.rmtree(out, ignore_errors=True)
    listing = work / f"sources_{n}.txt"
    listing.write_text("".join(f"{p}\n" for p in sources))
    cut = measured([sys.executable, "-m", "video_caption.cut", "--video-folder", str(listing),
                    "--output-folder", str(out)])
    clips = len(read_rows(out / "meta_clips.jsonl"))
    score = measured([sys.executable, "-m", "video_caption.score", "--output-folder", str(out), *OPEN_GATES])
    manifests = {p.name: p.stat().st_size for p in sorted(out.glob("*.jsonl"))}
    return {"sources": n, "clips": clips,
            "stage1": {**cut, "ms_per_source": round(1000 * cut["wall_s"] / n, 1)},
            "stage2": {**score, "ms_per_clip": round(1000 * score["wall_s"] / max(clips, 1), 1),
                       "train_rows": len(read_rows(out / "train.jsonl")),
                       "errors": len(read_rows(out / "errors.jsonl"))},
            "manifest_bytes": manifests}


def manifest_appends(rows: int) -> float:
    """Microseconds per one-row append (each fsync'ed), for a manifest of ``rows`` rows."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.jsonl"
        with ManifestWriter(path) as writer:
            start = time.perf_counter()
            for i in range(rows):
                writer.append([{"video_path": f"clips/{i:07d}.mp4", "motion_score": 1.0 + i}])
            elapsed = time.perf_counter() - start
    return round(1e6 * elapsed / rows, 1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sources", type=int, nargs="+", default=[500, 2000])
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_scale"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    sources = make_sources(args.work, max(args.sources))
    results = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
               "date": time.strftime("%Y-%m-%d"), "source_seconds": SECONDS,
               "make_sources_s": round(time.perf_counter() - start, 1), "runs": [],
               "manifest_append_us_per_row": {n: manifest_appends(n) for n in (2000, 20000)}}
    for n in sorted(args.sources):
        results["runs"].append(run_stages(args.work, sources[:n]))
        print(json.dumps(results["runs"][-1]), flush=True)
    (args.out / "scale.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results["manifest_append_us_per_row"]))


if __name__ == "__main__":
    main()
