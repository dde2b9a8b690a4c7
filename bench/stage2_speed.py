"""Stage-2 scorers on CPU: clips per second and peak memory, beside plain reference implementations.

    python bench/stage2_speed.py [--only motion text aesthetic] [--repeats 2] [--work /tmp/video_caption_bench2]

Clips: stage 1 (default settings) over the shared test videos.  In one run, for each scorer, stage 2
(one process, its DataLoader worker and threads) and the plain reference of support/reference.py (one
process, every frame read with cv2, one clip at a time) score the same clips:
  motion     exact and --motion-fast, and the Farneback calls alone (frames decoded beforehand); then
             exact and fast again on 96 distinct clips (windows of the 24 clips' lengths cut at other
             places of their sources), where a run's fixed start weighs less.  On both sets, also the
             strongest plain baseline with two cores: the reference in a pool of 2 processes
             (support/reference.py motion_pool), whose scores exact stage 2 must equal
  text       int8 onnxruntime (default) and, with the same 640 px prescreen, fp32 onnxruntime (the
             strongest plain baseline) and torch; max side 960
  steps      issue 17's steps (camera_motion, alone and on top of motion; nsfw; dedup) beside motion
             and text, each a stage-2 run alone: seconds per clip
  aesthetic  real-size ViT-L/14 with random weights (the real ones cannot be downloaded here: the
             speed is the real one, the scores are not) and the real LAION head, on the first 12 clips
The runs of a scorer alternate, --repeats times, and the fastest of each is kept (this machine's speed
drifts over minutes; noise only adds time).  Peak memory is the RSS of all processes of a run, summed
(the highest of the repeats).  Spearman correlations give tied scores their average rank.
Results go to OUT/stage2_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from stage1_speed import VIDEOS, TreeMemory, run_measured  # noqa: E402

from video_caption.manifest import read_rows  # noqa: E402
from video_caption.media.decode import read_frames  # noqa: E402
from video_caption.score.flow import MotionFrames, flow_magnitude  # noqa: E402

OPEN = ["--aesthetic-min", "-1000000", "--text-max", "1", "--motion-min", "-1", "--motion-max", "1e9"]


def measured(cmd: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, TreeMemory, str]:
    """Run a command; its wall time, memory and CPU time, and stdout (raises unless its exit status is in ``ok``)."""
    elapsed, memory, proc = run_measured(cmd, cwd=REPO)
    if proc.returncode not in ok:
        raise RuntimeError(f"{cmd[:5]} failed: {proc.stderr[-2000:]}")
    return elapsed, memory, proc.stdout


def ours(work: Path, name: str, manifest: Path, root: Path, *extra: str) -> dict:
    out = work / f"ours_{name}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    wall, memory, _ = measured([sys.executable, "-m", "video_caption.score", "--output-folder", str(out), "--input",
                              str(manifest), "--root", str(root), *OPEN, *extra])
    scorer = extra[1].split(",")[0]
    rows = read_rows(out / f"{scorer}_score.jsonl")
    return {"wall_s": round(wall, 2), "cpu_s": round(memory.cpu_s, 2), "peak_rss_mb": round(memory.peak / 2**20),
            "peak_process_rss_mb": round(memory.peak_process / 2**20), "clips": len(rows),
            "clips_per_s": round(len(rows) / wall, 3), "scores": {r["video_path"]: r[f"{scorer}_score"] for r in rows}}


def reference(kind: str, manifest: Path, root: Path, *extra: str) -> dict:
    wall, memory, out = measured([sys.executable, str(REPO / "support" / "reference.py"), kind, str(manifest),
                                  str(root), *extra])
    result = json.loads(out)
    n = len(result["scores"])
    return {"wall_s": round(wall, 2), "cpu_s": round(memory.cpu_s, 2), "scoring_s": round(result["seconds"], 2),
            "peak_rss_mb": round(memory.peak / 2**20), "peak_process_rss_mb": round(memory.peak_process / 2**20),
            "clips": n, "clips_per_s": round(n / wall, 3), "scores": result["scores"]}


def compare(run: dict, ref: dict) -> dict:
    keys = sorted(ref["scores"])
    a, b = np.array([run["scores"][k] for k in keys]), np.array([ref["scores"][k] for k in keys])
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-9)
    return {"max_abs_diff": float(np.max(np.abs(a - b))), "max_rel_diff": float(np.max(rel)),
            "speedup_vs_reference": round(ref["wall_s"] / run["wall_s"], 2),
            "cpu_speedup_vs_reference": round(ref["cpu_s"] / run["cpu_s"], 2), "spearman": spearman(a, b)}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation; tied values get their average rank (many text scores are 0)."""
    return round(float(spearmanr(a, b)[0]), 4)


def fastest(runs: dict[str, Callable[[], dict]], repeats: int) -> dict[str, dict]:
    """Every run ``repeats`` times, all of them in turn: the fastest result of each, with all its
    wall and CPU times (``all_wall_s``, ``all_cpu_s``), the least CPU time and the highest peak
    memory of its repeats."""
    best: dict[str, dict] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            result, before = run(), best.get(name, {})
            walls = [*before.get("all_wall_s", []), result["wall_s"]]
            cpus = [*before.get("all_cpu_s", []), result["cpu_s"]]
            peaks = {k: max(result[k], before.get(k, 0)) for k in ("peak_rss_mb", "peak_process_rss_mb") if k in result}
            if not before or result["wall_s"] < before["wall_s"]:
                best[name] = result
            best[name].update(all_wall_s=walls, all_cpu_s=cpus, cpu_s=min(cpus), **peaks)
    return best


def farneback_alone(rows: list[dict], root: Path) -> dict:
    """Wall and CPU seconds of the Farneback calls alone, on frames decoded beforehand, in this process."""
    plan, wall, cpu = MotionFrames(), 0.0, 0.0
    for row in rows:
        path = root / row["video_path"]
        frames = read_frames(path, plan.indices(row["num_frames"], row["fps"]), "gray")
        start, start_cpu = time.perf_counter(), time.process_time()
        for a, b in zip(frames, frames[1:], strict=False):
            flow_magnitude(a, b)
        wall, cpu = wall + time.perf_counter() - start, cpu + time.process_time() - start_cpu
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench2"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--aesthetic-clips", type=int, default=12)
    p.add_argument("--only", nargs="+", default=["motion", "text", "aesthetic", "steps"])
    p.add_argument("--repeats", type=int, default=2, help="alternating repeats of each scorer's runs")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    stage1 = args.work / "stage1"
    if not (stage1 / "meta_clips.jsonl").exists():
        subprocess.run([sys.executable, "-m", "video_caption.cut", "--video-folder", str(VIDEOS), "--output-folder",
                        str(stage1)], cwd=REPO)
    rows = read_rows(stage1 / "meta_clips.jsonl")
    manifest = args.work / "clips.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result_file = args.out / "stage2_speed.json"
    results = json.loads(result_file.read_text()) if result_file.exists() else {}
    results.update({"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
                    "date": time.strftime("%Y-%m-%d"), "clips": len(rows)})

    def save(section: str) -> None:
        result_file.write_text(json.dumps(results, indent=1))
        print(json.dumps({section: without_scores(results[section])}), flush=True)

    if "motion" in args.only:
        motion(args, results, manifest, stage1, rows)
        save("motion")
        check_identical(results["motion"])
    if "text" in args.only:
        text(args, results, manifest, stage1)
        save("text")
    if "aesthetic" in args.only:
        aesthetic(args, results, stage1, rows)
        save("aesthetic")
    if "steps" in args.only:
        steps(args, results, manifest, stage1)
        save("steps")


def without_scores(section):
    """A section's results without the per-clip scores (for the log)."""
    if isinstance(section, dict):
        return {k: without_scores(v) for k, v in section.items() if k != "scores"}
    return section


def motion(args, results: dict, manifest: Path, stage1: Path, rows: list[dict]) -> None:
    runs = fastest({"reference": lambda: reference("motion", manifest, stage1),
                    "reference_pool": lambda: reference("motion_pool", manifest, stage1),
                    "exact": lambda: ours(args.work, "motion", manifest, stage1, "--scorers", "motion"),
                    "fast": lambda: ours(args.work, "motion_fast", manifest, stage1, "--scorers", "motion",
                                         "--motion-fast"),
                    "farneback": lambda: farneback_alone(rows, stage1)}, args.repeats)
    ref, pool, exact, fast, flow = (runs[k] for k in ("reference", "reference_pool", "exact", "fast", "farneback"))
    # A run's fixed cost (interpreter, torch import, first batch) is about 4 s, a tenth of an exact
    # run on the 24 clips but a third of a fast one: the speed-up at scale comes from 96 other clips.
    many, root = distinct_clips(args.work, stage1, rows, 4)
    at_scale = fastest({"reference_pool": lambda: reference("motion_pool", many, root),
                        "exact": lambda: ours(args.work, "motion_many", many, root, "--scorers", "motion"),
                        "fast": lambda: ours(args.work, "motion_fast_many", many, root, "--scorers", "motion",
                                             "--motion-fast")}, args.repeats)
    pool_many, exact_many, fast_many = at_scale["reference_pool"], at_scale["exact"], at_scale["fast"]
    results["motion"] = {"reference": ref, "reference_pool": {**pool, **compare(pool, ref)},
                         "exact": {**exact, **compare(exact, ref), "vs_pool": same_scores(exact, pool)},
                         "fast": {**fast, **compare(fast, ref), "vs_exact": compare(fast, exact)},
                         "farneback_calls": flow,
                         "exact_wall_over_farneback": round(exact["wall_s"] / flow["wall_s"], 3),
                         "fast_speedup_vs_exact": round(exact["wall_s"] / fast["wall_s"], 2),
                         "fast_cpu_speedup_vs_exact": round(exact["cpu_s"] / fast["cpu_s"], 2),
                         "distinct_clips": {"clips": exact_many["clips"], "reference_pool": pool_many,
                                            "exact": {**exact_many, "vs_pool": same_scores(exact_many, pool_many)},
                                            "fast": {**fast_many, "vs_exact": compare(fast_many, exact_many)},
                                            "fast_speedup_vs_exact": round(exact_many["wall_s"] / fast_many["wall_s"],
                                                                           2),
                                            "fast_cpu_speedup_vs_exact": round(exact_many["cpu_s"] / fast_many["cpu_s"],
                                                                               2)}}


def same_scores(run: dict, ref: dict) -> dict:
    """``compare``, and whether the scores are the reference's (``identical``): the reference
    averages in float32 (cv2.cartToPolar, then numpy), stage 2 in float64, so they may differ by
    float32 rounding (a relative 1.2e-7 per step), never more."""
    found = compare(run, ref)
    return {**found, "identical": run["scores"].keys() == ref["scores"].keys() and found["max_rel_diff"] <= 1e-6}


def check_identical(motion: dict) -> None:
    """Fail the bench (after its results are saved) where exact motion did not score as the pool."""
    for name, run in (("24 clips", motion["exact"]), ("distinct clips", motion["distinct_clips"]["exact"])):
        if not run["vs_pool"]["identical"]:
            sys.exit(f"exact motion scores differ from the plain reference's on the {name}: {run['vs_pool']}")


def distinct_clips(work: Path, stage1: Path, rows: list[dict], times: int, shift: int = 7) -> tuple[Path, Path]:
    """A manifest of ``times`` windows per stage-1 clip, no two alike, cut from the clip's source:
    the clip's length (cut to the source's length less ``(times - 1) * shift`` frames, for clips
    that fill their source), at starts spread evenly from the source's first frame to its last
    possible start; upright, at the clip's constant rate (its row's fps, the source's average: a
    variable-rate source's nominal rate would make the files disagree with their rows) and
    encoded as stage 1 encodes (libx264 veryfast CRF 22).  The set keeps the stage-1 clips' mix
    of sizes and about their lengths; it holds ``times`` times their frames, so windows of one
    source overlap."""
    sources = {r["video_path"]: r["num_frames"] for r in read_rows(stage1 / "meta_scene_info.jsonl")}
    folder, lines = work / f"distinct_x{times}", {}
    for row in rows:
        total = sources[row["source_path"]]
        length = min(row["num_frames"], total - (times - 1) * shift)
        for j in range(times):
            start = round(j * (total - length) / (times - 1))
            name = f"{Path(row['source_path']).with_suffix('')}_{start}-{start + length}.mp4"
            if name in lines:
                raise RuntimeError(f"two windows {name}")
            if not (folder / name).exists():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(VIDEOS / row["source_path"]),
                                "-map", "0:v:0", "-vf", f"select='between(n,{start},{start + length - 1})',"
                                f"setpts=N/({row['fps']}*TB)", "-r", str(row["fps"]), "-frames:v", str(length),
                                "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "22", "-pix_fmt", "yuv420p",
                                str(folder / name)],
                               check=True)
            lines[name] = json.dumps({**row, "video_path": name, "start_frame": start, "end_frame": start + length,
                                      "num_frames": length, "start_time": start / row["fps"],
                                      "end_time": (start + length) / row["fps"], "duration": length / row["fps"]})
    manifest = work / f"clips_distinct_x{times}.jsonl"
    manifest.write_text("".join(line + "\n" for line in lines.values()))
    return manifest, folder


def text(args, results: dict, manifest: Path, stage1: Path) -> None:
    variants = {"default (int8 onnxruntime, full size, 640 prescreen)": [],
                "fp32 onnxruntime (full size, 640 prescreen)": ["--text-engine", "onnx"],
                "torch engine (full size, 640 prescreen)": ["--text-engine", "torch"],
                "max side 960": ["--text-max-side", "960", "--text-prescreen-side", "0"]}
    runs = {"reference": lambda: reference("text", manifest, stage1)}
    for i, (name, extra) in enumerate(variants.items()):
        runs[name] = lambda i=i, extra=extra: ours(args.work, f"text_{i}", manifest, stage1, "--scorers", "text",
                                                   *extra)
    best = fastest(runs, args.repeats)
    ref, default, fp32 = best.pop("reference"), *(best[name] for name in list(variants)[:2])
    results["text"] = {"reference": ref, **{name: {**run, **compare(run, ref)} for name, run in best.items()}}
    # The strongest plain baseline: fp32 onnxruntime with the same prescreen.
    results["text"]["int8_vs_fp32"] = compare(default, fp32)


def aesthetic(args, results: dict, stage1: Path, rows: list[dict]) -> None:
    few = args.work / "clips_aesthetic.jsonl"
    few.write_text("".join(json.dumps(r) + "\n" for r in rows[: args.aesthetic_clips]))
    weights = args.work / "vit_l14_random.safetensors"
    if not weights.exists():
        import open_clip
        from safetensors.torch import save_file

        model = open_clip.create_model("ViT-L-14-quickgelu")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    head = REPO / "video_caption" / "weights" / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth"
    best = fastest({"reference": lambda: reference("aesthetic", few, stage1, "ViT-L-14-quickgelu", str(weights),
                                                   str(head)),
                    "ours": lambda: ours(args.work, "aesthetic", few, stage1, "--scorers", "aesthetic",
                                         "--clip-model", "ViT-L-14-quickgelu", "--clip-weights", str(weights))},
                   args.repeats)
    results["aesthetic"] = {"reference": best["reference"], "ours": {**best["ours"], **compare(best["ours"],
                                                                                             best["reference"])}}


def step_cost(work: Path, name: str, manifest: Path, root: Path, scorers: str, output: str) -> dict:
    out = work / f"steps_{name}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    wall, memory, _ = measured([sys.executable, "-m", "video_caption.score", "--output-folder", str(out), "--input",
                                str(manifest), "--root", str(root), *OPEN, "--scorers", scorers])
    clips = len(read_rows(out / output))
    return {"wall_s": round(wall, 2), "cpu_s": round(memory.cpu_s, 2), "peak_rss_mb": round(memory.peak / 2**20),
            "clips": clips, "wall_s_per_clip": round(wall / clips, 3), "cpu_s_per_clip": round(memory.cpu_s / clips, 3)}


def steps(args, results: dict, manifest: Path, stage1: Path) -> None:
    """Issue 17's steps, each as a run of stage 2 alone on the 24 clips (camera motion also on top of
    exact motion, whose flows it reuses), beside exact motion and int8 text alone."""
    runs = {"motion": ("motion", "motion_score.jsonl"),
            "motion+camera_motion": ("motion,camera_motion", "camera_motion.jsonl"),
            "camera_motion alone": ("camera_motion", "camera_motion.jsonl"),
            "text": ("text", "text_score.jsonl"), "nsfw": ("nsfw", "nsfw_score.jsonl"),
            "dedup": ("dedup", "duplicates.jsonl")}
    results["steps"] = fastest({name: lambda n=name, s=scorers, o=output: step_cost(args.work, n.replace("+", "_"),
                                                                                    manifest, stage1, s, o)
                                for name, (scorers, output) in runs.items()}, args.repeats)


if __name__ == "__main__":
    main()
