"""Stage-2 scorers on CPU: clips per second and peak memory, beside plain reference implementations.

    python bench/stage2_speed.py [--work /tmp/video_caption_bench2] [--out bench/results]

Clips: stage 1 (default settings) over the shared test videos.  In one run, for each scorer, stage 2
(one process, its DataLoader worker and threads) and the plain reference of bench/reference.py (one
process, every frame read with cv2, one clip at a time) score the same clips:
  motion     exact and --motion-fast, and the Farneback calls alone (frames decoded beforehand)
  text       int8 onnxruntime (default), fp32 onnxruntime and torch at EasyOCR's own canvas; max side 960
  aesthetic  real-size ViT-L/14 with random weights (the real ones cannot be downloaded here: the
             speed is the real one, the scores are not) and the real LAION head, on the first 12 clips
Peak memory is the RSS of all processes of a run, summed.  Results go to OUT/stage2_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from stage1_speed import VIDEOS, TreeMemory  # noqa: E402

from video_caption.manifest import read_rows  # noqa: E402
from video_caption.media import read_frames  # noqa: E402
from video_caption.score.motion import MotionFrames, flow_magnitude  # noqa: E402

OPEN = ["--aesthetic-min", "-1000000", "--text-max", "1", "--motion-min", "-1", "--motion-max", "1e9"]


def measured(cmd: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, TreeMemory, str]:
    """Run a command; its wall time, memory and stdout (raises unless its exit status is in ``ok``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    memory = TreeMemory(proc.pid)
    out, err = proc.communicate()
    elapsed = time.perf_counter() - start
    memory.stop()
    if proc.returncode not in ok:
        raise RuntimeError(f"{cmd[:5]} failed: {err[-2000:]}")
    return elapsed, memory, out


def ours(work: Path, name: str, manifest: Path, root: Path, *extra: str) -> dict:
    out = work / f"ours_{name}"
    subprocess.run(["rm", "-rf", str(out)], check=True)
    wall, memory, _ = measured([sys.executable, "-m", "video_caption.score", "--output-folder", str(out), "--input",
                              str(manifest), "--root", str(root), *OPEN, *extra])
    scorer = extra[1].split(",")[0]
    rows = read_rows(out / f"{scorer}_score.jsonl")
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(memory.peak / 2**20),
            "peak_process_rss_mb": round(memory.peak_process / 2**20), "clips": len(rows),
            "clips_per_s": round(len(rows) / wall, 3), "scores": {r["video_path"]: r[f"{scorer}_score"] for r in rows}}


def reference(kind: str, manifest: Path, root: Path, *extra: str) -> dict:
    wall, memory, out = measured([sys.executable, str(REPO / "bench" / "reference.py"), kind, str(manifest),
                                  str(root), *extra])
    result = json.loads(out)
    n = len(result["scores"])
    return {"wall_s": round(wall, 2), "scoring_s": round(result["seconds"], 2),
            "peak_rss_mb": round(memory.peak / 2**20), "peak_process_rss_mb": round(memory.peak_process / 2**20),
            "clips": n, "clips_per_s": round(n / wall, 3), "scores": result["scores"]}


def compare(run: dict, ref: dict) -> dict:
    keys = sorted(ref["scores"])
    a, b = np.array([run["scores"][k] for k in keys]), np.array([ref["scores"][k] for k in keys])
    rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-9)
    return {"max_abs_diff": float(np.max(np.abs(a - b))), "max_rel_diff": float(np.max(rel)),
            "speedup_vs_reference": round(ref["wall_s"] / run["wall_s"], 2), "spearman": spearman(a, b)}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return round(float(np.corrcoef(ra, rb)[0, 1]), 4)


def farneback_alone(rows: list[dict], root: Path) -> float:
    plan, total = MotionFrames(), 0.0
    for row in rows:
        path = root / row["video_path"]
        frames = read_frames(path, plan.indices(row["num_frames"], row["fps"], path), "gray")
        start = time.perf_counter()
        for a, b in zip(frames, frames[1:], strict=False):
            flow_magnitude(a, b)
        total += time.perf_counter() - start
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench2"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--aesthetic-clips", type=int, default=12)
    p.add_argument("--only", nargs="+", default=["motion", "text", "aesthetic"])
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
        print(json.dumps({section: {k: {m: x for m, x in v.items() if m != "scores"} if isinstance(v, dict) else v
                                    for k, v in results[section].items()}}), flush=True)

    if "motion" in args.only:
        motion(args, results, manifest, stage1, rows)
        save("motion")
    if "text" in args.only:
        text(args, results, manifest, stage1)
        save("text")
    if "aesthetic" in args.only:
        aesthetic(args, results, stage1, rows)
        save("aesthetic")


def motion(args, results: dict, manifest: Path, stage1: Path, rows: list[dict]) -> None:

    ref = reference("motion", manifest, stage1)
    exact = ours(args.work, "motion", manifest, stage1, "--scorers", "motion")
    fast = ours(args.work, "motion_fast", manifest, stage1, "--scorers", "motion", "--motion-fast")
    flow = farneback_alone(rows, stage1)
    # A run's fixed cost (interpreter, torch import, first batch) is about 4 s, a tenth of an exact
    # run here but a third of a fast one: the ratio at scale comes from 4x as many clips (links).
    many, root = repeated(args.work, rows, stage1, 4)
    exact_many = ours(args.work, "motion_x4", many, root, "--scorers", "motion")
    fast_many = ours(args.work, "motion_fast_x4", many, root, "--scorers", "motion", "--motion-fast")
    results["motion"] = {"reference": ref, "exact": {**exact, **compare(exact, ref)},
                         "fast": {**fast, **compare(fast, ref)}, "farneback_calls_s": round(flow, 2),
                         "exact_wall_over_farneback": round(exact["wall_s"] / flow, 3),
                         "fast_speedup_vs_exact": round(exact["wall_s"] / fast["wall_s"], 2),
                         "x4_clips": {"clips": len(read_rows(many)), "exact_wall_s": exact_many["wall_s"],
                                      "fast_wall_s": fast_many["wall_s"],
                                      "fast_speedup_vs_exact": round(exact_many["wall_s"] / fast_many["wall_s"], 2)}}


def repeated(work: Path, rows: list[dict], root: Path, times: int) -> tuple[Path, Path]:
    """A manifest of every clip ``times`` times, as links under distinct names."""
    folder = work / f"x{times}"
    manifest = work / f"clips_x{times}.jsonl"
    lines = []
    for copy in range(times):
        for row in rows:
            link = folder / str(copy) / row["video_path"]
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to((root / row["video_path"]).resolve())
            lines.append(json.dumps({**row, "video_path": f"{copy}/{row['video_path']}"}) + "\n")
    manifest.write_text("".join(lines))
    return manifest, folder


def text(args, results: dict, manifest: Path, stage1: Path) -> None:
    ref = reference("text", manifest, stage1)
    results["text"] = {"reference": ref}
    variants = {"default (int8 onnxruntime, full size, 640 prescreen)": [],
                "fp32 onnxruntime (full size, 640 prescreen)": ["--text-engine", "onnx"],
                "torch engine (full size, 640 prescreen)": ["--text-engine", "torch"],
                "max side 960": ["--text-max-side", "960", "--text-prescreen-side", "0"]}
    for i, (name, extra) in enumerate(variants.items()):
        run = ours(args.work, f"text_{i}", manifest, stage1, "--scorers", "text", *extra)
        results["text"][name] = {**run, **compare(run, ref)}


def aesthetic(args, results: dict, stage1: Path, rows: list[dict]) -> None:
    few = args.work / "clips_aesthetic.jsonl"
    few.write_text("".join(json.dumps(r) + "\n" for r in rows[: args.aesthetic_clips]))
    weights = args.work / "vit_l14_random.safetensors"
    if not weights.exists():
        import open_clip
        from safetensors.torch import save_file

        model = open_clip.create_model("ViT-L-14-quickgelu")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    head = REPO / "models" / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth"
    ref = reference("aesthetic", few, stage1, "ViT-L-14-quickgelu", str(weights), str(head))
    run = ours(args.work, "aesthetic", few, stage1, "--scorers", "aesthetic", "--clip-model", "ViT-L-14-quickgelu",
               "--clip-weights", str(weights))
    results["aesthetic"] = {"reference": ref, "ours": {**run, **compare(run, ref)}}


if __name__ == "__main__":
    main()
