"""Deferred clips (stage 1 CLIPS=deferred) against encoded clips: issue 20's acceptance figures.

    python bench/deferred.py [--repeats 1] [--work /tmp/video_caption_bench_deferred] [--out bench/results]

In one run, with the runs alternating and the fastest of the repeats kept (wall and CPU apart):
  long source   the 5-minute 720p input of bench/stage1_speed.py: one decode of it (ffmpeg to the
                null muxer, with its default threads and with one thread per core) against deferred
                stage 1 at default settings
  shared        the shared test videos (a folder of links), at default settings everywhere:
                  encoded:  stage 1, then stage 2 (default scorers and gates)
                  deferred: stage 1 --clips deferred, stage 2, then materialize of train.jsonl's
                            clips (datautil materialize, as stage 3's last step does)
                and one decode of every source (ffmpeg, one after the other, both ways)
Stage 2 runs with --skip-missing-models: CLIP ViT-L/14 cannot be had here, so the aesthetic step is
left out in both modes (the other scorers are real).  Compared between the modes: the train.jsonl
clips, each clip's gate decision, and the motion and text scores of the clips both scored (what the
encoder changes).  Results go to OUT/deferred.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from stage1_speed import VIDEOS, build_input, decode_seconds, run_measured  # noqa: E402

from video_caption.manifest import read_rows  # noqa: E402


def timed(cmd: list[str]) -> dict:
    wall, memory, proc = run_measured([str(c) for c in cmd], cwd=REPO)
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"{cmd[:5]} failed: {proc.stderr[-2000:]}")
    return {"wall_s": wall, "cpu_s": memory.cpu_s, "peak_mb": memory.peak / 2**20,
            "peak_process_mb": memory.peak_process / 2**20}


def stage1(folder: Path, out: Path, *extra: str) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    return timed([sys.executable, "-m", "video_caption.cut", "--video-folder", folder, "--output-folder", out, *extra])


def stage2(out: Path) -> dict:
    return timed([sys.executable, "-m", "video_caption.score", "--output-folder", out, "--skip-missing-models"])


def materialize(out: Path) -> dict:
    return timed([sys.executable, "-m", "video_caption.datautil", "materialize", "--output-folder", out,
                   "--input", out / "train.jsonl"])


def shared_folder(work: Path) -> Path:
    """The shared videos (ground_truth.json's readable ones) as links in one folder."""
    folder = work / "shared_in"
    if not folder.exists():
        files = json.loads((VIDEOS / "ground_truth.json").read_text())["files"]
        for name, facts in files.items():
            if facts.get("readable", True) and (VIDEOS / name).is_file():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).symlink_to(VIDEOS / name)
    return folder


def best(runs: list[dict]) -> dict:
    """The fastest wall and the least CPU of the repeats (noise only adds time), the highest memory."""
    return {"wall_s": round(min(r["wall_s"] for r in runs), 2), "cpu_s": round(min(r["cpu_s"] for r in runs), 2),
            "peak_mb": round(max(r["peak_mb"] for r in runs)), "peak_process_mb": round(max(r["peak_process_mb"]
                                                                                          for r in runs))}


def decode_with_threads(paths: list[Path]) -> dict:
    """ffmpeg decoding each file once, one after the other, with one decoder thread per core (its
    default is one more, which on two cores is slower): the strongest plain decode."""
    wall = cpu = 0.0
    for path in paths:
        elapsed, memory, proc = run_measured(["ffmpeg", "-nostdin", "-v", "error", "-threads", str(os.cpu_count()),
                                              "-i", str(path), "-map", "0:v:0", "-f", "null", "-"])
        wall, cpu = wall + elapsed, cpu + memory.cpu_s
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": 0, "peak_process_mb": 0}


def total(parts: list[dict]) -> dict:
    return {k: round(sum(p[k] for p in parts), 2) for k in ("wall_s", "cpu_s")}


def scores(out: Path, name: str, key: str) -> dict[str, float]:
    return {row["video_path"]: row[key] for row in read_rows(out / name) if key in row}


def compare(encoded: Path, deferred: Path) -> dict:
    """What deferred reading changes: the train.jsonl clips, the gate decisions, the scores."""
    found = {}
    for name, key in (("motion_score.jsonl", "motion_score"), ("text_score.jsonl", "text_score")):
        a, b = scores(encoded, name, key), scores(deferred, name, key)
        common = sorted(set(a) & set(b))
        diff = np.array([abs(a[k] - b[k]) for k in common])
        rel = np.array([abs(a[k] - b[k]) / max(abs(a[k]), 1e-9) for k in common if a[k]])
        found[key] = {"clips_both": len(common), "max_abs_diff": round(float(diff.max()), 5) if len(diff) else None,
                      "median_abs_diff": round(float(np.median(diff)), 5) if len(diff) else None,
                      "max_rel_diff": round(float(rel.max()), 4) if len(rel) else None,
                      "median_rel_diff": round(float(np.median(rel)), 4) if len(rel) else None}
    fates = [{row["video_path"]: (row["outcome"], row.get("step")) for row in read_rows(out / "gate_decisions.jsonl")}
             for out in (encoded, deferred)]
    keys = sorted(set(fates[0]) | set(fates[1]))
    agree = sum(fates[0].get(k) == fates[1].get(k) for k in keys)
    trains = [{row["video_path"] for row in read_rows(out / "train.jsonl")} for out in (encoded, deferred)]
    return {"scores": found, "clips": len(keys), "gate_agreement": round(agree / max(len(keys), 1), 4),
            "gate_differs": [{"clip": k, "encoded": fates[0].get(k), "deferred": fates[1].get(k)}
                             for k in keys if fates[0].get(k) != fates[1].get(k)],
            "train_clips": [len(t) for t in trains], "train_same": trains[0] == trains[1],
            "train_only_encoded": sorted(trains[0] - trains[1]), "train_only_deferred": sorted(trains[1] - trains[0])}


def smart_cut_potential(out: Path) -> dict:
    """How much a "smart cut" could save: the frames of materialized clips that lie in whole GOPs of
    their source (which could be stream-copied; the partial GOPs at each end must be re-encoded)."""
    from video_caption.media.decode import keyframe_indices

    keys, inside, frames = {}, 0, 0
    for row in read_rows(out / "train.jsonl"):
        source = row["source_file"]
        if source not in keys:
            keys[source] = keyframe_indices(source)
        start, end = row["start_frame"], row["end_frame"]
        inner = [k for k in keys[source] if start <= k <= end]
        # Whole GOPs: from a key frame inside the clip to the next one (the clip's end counts when it is one).
        inside += inner[-1] - inner[0] if len(inner) > 1 else 0
        frames += end - start
    gop = {s: round(float(np.mean(np.diff(k))), 1) if len(k) > 1 else None for s, k in keys.items()}
    return {"clip_frames": frames, "frames_in_whole_gops": inside, "share": round(inside / max(frames, 1), 4),
            "mean_gop_frames": {Path(s).name: g for s, g in gop.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=1, help="alternating repeats of every run (default: %(default)s)")
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench_deferred"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    long_source = build_input(5, args.work)
    long_folder = args.work / "long_in"
    if not long_folder.exists():
        long_folder.mkdir()
        (long_folder / long_source.name).symlink_to(long_source)
    shared = shared_folder(args.work)
    sources = sorted(p for p in shared.rglob("*") if p.is_file() or p.is_symlink())
    runs: dict[str, list[dict]] = {}

    def add(name: str, result: dict) -> None:
        runs.setdefault(name, []).append(result)
        print(f"{name}: {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU", flush=True)

    enc, dfr = args.work / "shared_encoded", args.work / "shared_deferred"
    for _ in range(args.repeats):
        wall, cpu = decode_seconds(long_source)
        add("long_decode", {"wall_s": wall, "cpu_s": cpu, "peak_mb": 0, "peak_process_mb": 0})
        add("long_decode_threads", decode_with_threads([long_source]))
        add("long_deferred_stage1", stage1(long_folder, args.work / "long_deferred", "--clips", "deferred"))
        decodes = [decode_seconds(source) for source in sources]
        add("shared_decode", {"wall_s": sum(d[0] for d in decodes), "cpu_s": sum(d[1] for d in decodes),
                              "peak_mb": 0, "peak_process_mb": 0})
        add("shared_decode_threads", decode_with_threads(sources))
        add("encoded_stage1", stage1(shared, enc))
        add("encoded_stage2", stage2(enc))
        add("deferred_stage1", stage1(shared, dfr, "--clips", "deferred"))
        add("deferred_stage2", stage2(dfr))
        add("deferred_materialize", materialize(dfr))
    kept = {name: best(results) for name, results in runs.items()}
    encoded = total([kept["encoded_stage1"], kept["encoded_stage2"]])
    deferred = total([kept["deferred_stage1"], kept["deferred_stage2"], kept["deferred_materialize"]])
    result = {
        "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
        "repeats": args.repeats, "runs": kept,
        "long_deferred_over_decode": {k: round(kept["long_deferred_stage1"][k] / kept["long_decode"][k], 3)
                                      for k in ("wall_s", "cpu_s")},
        "long_deferred_over_decode_threads": {
            k: round(kept["long_deferred_stage1"][k] / kept["long_decode_threads"][k], 3) for k in ("wall_s", "cpu_s")},
        "shared_deferred_stage1_over_decode": {k: round(kept["deferred_stage1"][k] / kept["shared_decode"][k], 3)
                                               for k in ("wall_s", "cpu_s")},
        "shared_deferred_stage1_over_decode_threads": {
            k: round(kept["deferred_stage1"][k] / kept["shared_decode_threads"][k], 3) for k in ("wall_s", "cpu_s")},
        "encoded_1_2": encoded, "deferred_1_2_materialize": deferred,
        "deferred_over_encoded": {k: round(deferred[k] / encoded[k], 3) for k in ("wall_s", "cpu_s")},
        "clips_planned": len(read_rows(dfr / "meta_clips.jsonl")),
        "clips_materialized": len(read_rows(dfr / "materialized.jsonl")),
        "compare": compare(enc, dfr),
        "smart_cut": smart_cut_potential(dfr),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "deferred.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))


if __name__ == "__main__":
    main()
