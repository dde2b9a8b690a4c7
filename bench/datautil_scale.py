"""datautil at scale: filter and stats over a 10,000,000-row stage-2-like manifest, as the real CLI.

    python bench/datautil_scale.py [--rows 10000000] [--repeats 2] [--work /tmp/video_caption_datautil_bench]

The manifest is made by DuckDB itself (about 45 s, 4.3 GB; kept in --work and reused): stage-2-like
rows with video_path, source_path, start/end frames, duration, fps, num_frames, width, height,
aesthetic_score and its four frame scores (a list), text_score, motion_score, camera_motion (one of
Open-Sora's 10 labels), nsfw_score and nsfw_classes (an object), duplicate (true/false), values
drawn from hashes of the row number.  Then, each as its own process, ``--repeats`` times in
alternation (the fastest kept; noise on a shared machine only adds time):
  filter    --where 'aesthetic_score>=5' --where 'camera_motion in (static,pan_left,pan_right,zoom_in)'
            --where 'num_frames>=96' (about 16 % of the rows kept)
  filter    everything kept (--where 'num_frames>=0'): the most it can write
  stats     rows, hours, the quantiles of its 11 number columns, the counts of its 2 label columns
Wall time, peak RSS of the process tree (summed, sampled every 100 ms) and CPU time; the manifest is
in the page cache (it was just written or read).  Target: filter and stats under 30 s and 2 GB.
Results go to bench/results/datautil_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from stage1_speed import run_measured  # noqa: E402

LABELS = ["static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out", "pan_tilt", "dynamic",
          "unknown"]
TARGET_S, TARGET_GB = 30, 2


def generate(path: Path, rows: int) -> None:
    """The manifest, written by DuckDB from hashes of the row number (the same file every time)."""
    def uniform(k: int, low: float, high: float, digits: int) -> str:
        return f"round({low} + (hash(i, {k}) % 1000000) / 1e6 * {high - low}, {digits})::DOUBLE"

    def pick(k: int, values: list) -> str:
        return f"{values}[(1 + hash(i, {k}) % {len(values)})::BIGINT]"

    source = "'source_' || lpad((i // 20)::VARCHAR, 7, '0')"
    query = f"""SELECT
        'clips/' || {source} || '/clip_' || lpad(i::VARCHAR, 8, '0') || '.mp4' AS video_path,
        {source} || '.mp4' AS source_path,
        (i % 20) * 300 AS start_frame, (i % 20) * 300 + 72 + (hash(i, 1) % 230)::BIGINT AS end_frame,
        {uniform(2, 3, 10, 3)} AS duration, {pick(3, [24.0, 25.0, 29.97, 30.0])}::DOUBLE AS fps,
        72 + (hash(i, 1) % 230)::BIGINT AS num_frames,
        {pick(4, [1280, 1920, 3840])} AS width, {pick(4, [720, 1080, 2160])} AS height,
        {uniform(5, 3, 7, 4)} AS aesthetic_score,
        [{', '.join(uniform(6 + k, 2, 8, 4) for k in range(4))}] AS aesthetic_frame_scores,
        {uniform(10, 0, 0.05, 5)} AS text_score, {uniform(11, 0, 12, 4)} AS motion_score,
        {pick(12, LABELS)} AS camera_motion, {uniform(13, 0, 0.5, 4)} AS nsfw_score,
        {{'FACE_FEMALE': {uniform(14, 0, 1, 3)}, 'BELLY_EXPOSED': {uniform(15, 0, 0.5, 3)}}} AS nsfw_classes,
        hash(i, 16) % 10 = 0 AS duplicate
        FROM range({rows}) t(i)"""
    tmp = path.with_suffix(".tmp")
    duckdb.connect().execute(f"COPY ({query}) TO ? (FORMAT json)", [str(tmp)])
    os.replace(tmp, path)


def measured(cmd: list[str]) -> dict:
    """Run a command: its wall time, its process tree's peak RSS and CPU time, and its last stderr line."""
    wall, memory, proc = run_measured(cmd, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[3:5]} failed: {proc.stderr[-2000:]}")
    return {"wall_s": round(wall, 2), "peak_rss_gb": round(memory.peak / 2**30, 3), "cpu_s": round(memory.cpu_s, 1),
            "says": (proc.stderr.strip().splitlines() or [""])[-1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_datautil_bench"))
    p.add_argument("--out", type=Path, default=REPO / "bench/results/datautil_scale.json")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = args.work / f"manifest_{args.rows}.jsonl"
    if not manifest.exists():
        start = time.perf_counter()
        generate(manifest, args.rows)
        print(f"made {manifest} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    tool = [sys.executable, "-m", "video_caption.datautil"]
    runs = {
        "filter": tool + ["filter", str(manifest), "--where", "aesthetic_score>=5", "--where",
                          "camera_motion in (static,pan_left,pan_right,zoom_in)", "--where", "num_frames>=96",
                          "--output", str(args.work / "filtered.jsonl")],
        "filter_keep_all": tool + ["filter", str(manifest), "--where", "num_frames>=0", "--output",
                                   str(args.work / "all.jsonl")],
        "stats": tool + ["stats", str(manifest), "--json"],
    }
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        for name, cmd in runs.items():
            result = measured(cmd)
            print(name, json.dumps(result), file=sys.stderr, flush=True)
            if name not in best or result["wall_s"] < best[name]["wall_s"]:
                best[name] = {**result, "command": " ".join(cmd[1:]).replace(str(args.work), "WORK")}
    for name in ("filter", "stats"):
        best[name]["meets_target"] = best[name]["wall_s"] < TARGET_S and best[name]["peak_rss_gb"] < TARGET_GB
    result = {"rows": args.rows, "manifest_gb": round(manifest.stat().st_size / 1e9, 2), **best,
              "target": f"filter and stats under {TARGET_S} s and {TARGET_GB} GB peak RSS",
              "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": str(date.today()),
              "command": f"python bench/datautil_scale.py --rows {args.rows} --repeats {args.repeats}"}
    print(json.dumps(result, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
