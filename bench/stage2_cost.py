"""Default stage 2 on the shared videos' clips: this code against another checkout, in one run.

    git worktree add /tmp/base <older commit>
    python bench/stage2_cost.py --baseline /tmp/base [--repeats 2] [--work /tmp/video_caption_bench_s2cost]

Stage 1 (this code, default settings) cuts the shared videos once per mode, encoded and deferred;
then stage 2 runs with default settings and ``--skip-missing-models`` (no CLIP ViT-L/14 here, so the
aesthetic step is left out by both) from each checkout on a fresh copy of stage 1's folder, the
checkouts alternating, ``--repeats`` times.  Reported per mode: the least wall and CPU time of the
repeats (CPU: the process tree's, loader workers included), and whether every clip's gate decision
(outcome, step) is the same.  Results go to OUT/stage2_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from deferred import shared_folder  # noqa: E402
from stage1_speed import run_measured  # noqa: E402

from video_caption.manifest import read_rows  # noqa: E402


def stage2(tree: Path, out: Path) -> dict:
    # From the checkout's folder, with it first on the path: its video_caption, not the installed one.
    wall, memory, proc = run_measured(["env", f"PYTHONPATH={tree}", sys.executable, "-m", "video_caption.score",
                                       "--output-folder", str(out), "--skip-missing-models"], cwd=tree)
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"stage 2 of {tree} failed: {proc.stderr[-2000:]}")
    fates = {r["video_path"]: (r["outcome"], r.get("step")) for r in read_rows(out / "gate_decisions.jsonl")}
    return {"wall_s": round(wall, 2), "cpu_s": round(memory.cpu_s, 2), "fates": fates}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", type=Path, required=True, help="a checkout of the code to compare against")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--modes", nargs="+", default=["encoded", "deferred"])
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench_s2cost"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    folder = shared_folder(args.work)
    trees = {"baseline": args.baseline.resolve(), "this": REPO}
    results = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "modes": {}}
    for mode in args.modes:
        cut = args.work / f"stage1_{mode}"
        if not (cut / "meta_clips.jsonl").is_file():
            shutil.rmtree(cut, ignore_errors=True)
            extra = ["--clips", "deferred"] if mode == "deferred" else []
            proc = run_measured([sys.executable, "-m", "video_caption.cut", "--video-folder", str(folder),
                                 "--output-folder", str(cut), *extra], cwd=REPO)[2]
            if proc.returncode not in (0, 2):
                raise RuntimeError(f"stage 1 failed: {proc.stderr[-2000:]}")
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.repeats):
            for name, tree in trees.items():
                out = args.work / f"{mode}_{name}"
                shutil.rmtree(out, ignore_errors=True)
                shutil.copytree(cut, out, symlinks=True)
                runs[name].append(stage2(tree, out))
                print(f"{mode} {name}: {runs[name][-1]['wall_s']} s wall, {runs[name][-1]['cpu_s']} s CPU",
                      file=sys.stderr)
        best = {name: {"wall_s": min(r["wall_s"] for r in rs), "cpu_s": min(r["cpu_s"] for r in rs),
                       "runs": [{k: r[k] for k in ("wall_s", "cpu_s")} for r in rs]} for name, rs in runs.items()}
        base, this = runs["baseline"][0]["fates"], runs["this"][0]["fates"]
        results["modes"][mode] = {
            **best, "clips": len(base),
            "cpu_ratio": round(best["this"]["cpu_s"] / best["baseline"]["cpu_s"], 3),
            "wall_ratio": round(best["this"]["wall_s"] / best["baseline"]["wall_s"], 3),
            "same_decisions": base == this and all(r["fates"] == base for rs in runs.values() for r in rs),
            "differing": sorted(k for k in base if base[k] != this.get(k)),
            "passed": sum(outcome == "passed" for outcome, _ in base.values())}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stage2_cost.json").write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
