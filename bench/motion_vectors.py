"""The codec's motion vectors against exact Farneback motion and today's camera-motion labels.

    python bench/motion_vectors.py [--only agreement first_pass stage1] [--repeats 2] [--work DIR]

Clip sets:
  shared    stage 1 (default settings) over the shared test videos
  windows   96 distinct 4 s windows of the shared videos (the demo videos are copies of two of them),
            as many per source as its length warrants, at starts spread from its first frame to its
            last possible start; encoded as stage 1 encodes (libx264 veryfast CRF 22, yuv420p, even
            size, the source's average rate); windows of one source overlap, some hold a cut or a fade
agreement   per clip, exact motion and camera-motion labels from stage 2 (``--scorers
            motion,camera_motion``, open gates), and from the vectors (video_caption.media.decode
            motion_vectors, a decode of the I and P frames): the estimate of motion_score
            (video_caption.score.motion vector_motion: per interval between the score's samples,
            the P frames' vectors summed on 16 px cells, the mean magnitude over the cells that have
            one), the share of cells without a vector, and a camera fit (RANSAC similarity on the
            summed cells, labelled by camera_motion's own rules).  Spearman of the estimate against
            the score on each set; the ratio score / estimate over the clips the first pass may
            decide (few cells without a vector), whose largest value sets its margin; label agreement
first_pass  stage 2's motion step with and without MOTION_VECTORS on both sets: CPU time, the share of
            clips decided without Farneback, gate decisions (must be equal)
stage1      the 5-minute stage-1 bench source (bench/stage1_speed.py) decoded as stage 1 decodes it,
            with and without exporting the vectors: the extra CPU, against stage 1's own CPU time
Results go to OUT/motion_vectors.json, each section with the command, date and machine that measured it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from stage1_speed import VIDEOS, build_input, run_measured  # noqa: E402

from video_caption.manifest import read_rows  # noqa: E402
from video_caption.media.decode import motion_vectors  # noqa: E402
from video_caption.media.probe import probe  # noqa: E402
from video_caption.score.camera_motion import clip_label, pair_label  # noqa: E402
from video_caption.score.flow import CAMERA_SIDE, MARGIN, RANSAC_PX, sample_step  # noqa: E402
from video_caption.score.motion import VECTOR_CELL, vector_intervals, vector_motion  # noqa: E402

OPEN = ["--motion-min", "-1", "--motion-max", "1e9"]


def env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


# --- the clips ---------------------------------------------------------------------------------------

def shared_clips(work: Path) -> tuple[Path, Path]:
    stage1 = work / "stage1"
    if not (stage1 / "meta_clips.jsonl").exists():
        subprocess.run([sys.executable, "-m", "video_caption.cut", "--video-folder", str(VIDEOS), "--output-folder",
                        str(stage1)], cwd=REPO, env=env(), capture_output=True)
    return stage1 / "meta_clips.jsonl", stage1


def allocate(durations: dict[str, float], total: int, seconds: float) -> dict[str, int]:
    """Windows per source, about in proportion to its length (largest remainders), at least one
    each, and one only for a source no longer than a window."""
    fixed = {name: 1 for name, d in durations.items() if d <= seconds}
    rest = {name: d for name, d in durations.items() if name not in fixed}
    left = total - len(fixed)
    shares = {name: left * d / sum(rest.values()) for name, d in rest.items()}
    counts = {name: max(1, int(s)) for name, s in shares.items()}
    for name in sorted(shares, key=lambda n: counts[n] - shares[n])[:left - sum(counts.values())]:
        counts[name] += 1
    return {**fixed, **counts}


def windows(work: Path, stage1: Path, total: int = 96, seconds: float = 4.0) -> tuple[Path, Path]:
    folder, lines = work / f"windows_{total}", []
    sources = {r["video_path"]: r for r in read_rows(stage1 / "meta_scene_info.jsonl") if r.get("num_frames")}
    counts = allocate({name: r["duration"] for name, r in sources.items()}, total, seconds)
    for name, count in sorted(counts.items()):
        row = sources[name]
        length = min(seconds, row["duration"])
        for j in range(count):
            start = round(j * (row["duration"] - length) / max(1, count - 1), 3)
            clip = folder / f"{Path(name).with_suffix('')}_{start:07.3f}.mp4"
            if not clip.exists():
                clip.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", str(start), "-i", str(VIDEOS / name),
                                "-t", str(length), "-map", "0:v:0", "-an", "-vf",
                                f"scale=trunc(iw/2)*2:trunc(ih/2)*2,fps={row['fps']}", "-c:v", "libx264", "-preset",
                                "veryfast", "-crf", "22", "-pix_fmt", "yuv420p", str(clip)], check=True)
            info = probe(clip)
            lines.append(json.dumps({"video_path": str(clip.relative_to(folder)), "source_path": name,
                                     **info.as_row()}))
    if len(set(lines)) != total:
        raise RuntimeError(f"{len(set(lines))} distinct windows, not {total}")
    manifest = work / f"windows_{total}.jsonl"
    manifest.write_text("".join(line + "\n" for line in lines))
    return manifest, folder


# --- measurements ------------------------------------------------------------------------------------

def stage2(work: Path, name: str, manifest: Path, root: Path, *extra: str) -> tuple[dict, float, float]:
    """(rows by clip, wall s, CPU s) of stage 2's motion and camera-motion steps."""
    out = work / f"stage2_{name}"
    shutil.rmtree(out, ignore_errors=True)
    wall, memory, proc = run_measured([sys.executable, "-m", "video_caption.score", "--output-folder", str(out),
                                       "--input", str(manifest), "--root", str(root), *extra], cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"stage 2 failed: {proc.stderr[-2000:]}")
    rows = {r["video_path"]: r for r in read_rows(out / "motion_score.jsonl")}
    if (out / "camera_motion.jsonl").exists():
        for r in read_rows(out / "camera_motion.jsonl"):
            rows[r["video_path"]]["camera_motion"] = r["camera_motion"]
    decisions = {r["video_path"]: (r["outcome"], r["step"], r["gate"]) for r in read_rows(out / "gate_decisions.jsonl")}
    return {"rows": rows, "decisions": decisions}, wall, memory.cpu_s


def vector_camera(intervals, width: int, height: int, seconds: float) -> str | None:
    """Camera-motion label from the summed vectors: per interval a similarity transform fitted with
    RANSAC to the cells inside the border margin (the camera fit's margin and inlier distance, scaled
    from its 256 px frames), labelled by camera_motion's pair and clip rules."""
    import cv2

    labels = []
    for dx, dy, known in intervals:
        gh, gw = dx.shape
        xs = (np.arange(gw) + 0.5) * VECTOR_CELL - width / 2
        ys = (np.arange(gh) + 0.5) * VECTOR_CELL - height / 2
        inside = (np.abs(ys)[:, None] <= (0.5 - MARGIN) * height) & (np.abs(xs)[None, :] <= (0.5 - MARGIN) * width)
        used = inside & known
        if used.sum() < 12:
            labels.append("static")
            continue
        gx, gy = np.meshgrid(xs, ys)
        src = np.stack([gx[used], gy[used]], axis=1).astype(np.float32)
        dst = src + np.stack([dx[used], dy[used]], axis=1).astype(np.float32)
        matrix, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                ransacReprojThreshold=RANSAC_PX * max(width, height) / CAMERA_SIDE,
                                                maxIters=2000, confidence=0.995, refineIters=10)
        if matrix is None:
            labels.append("static")
            continue
        scale = math.hypot(float(matrix[0, 0]), float(matrix[1, 0]))
        pan, tilt = -float(matrix[0, 2]) / width / seconds, float(matrix[1, 2]) / height / seconds
        labels.append(pair_label(pan, tilt, math.log(max(scale, 1e-6)) / seconds))
    return clip_label(labels) if labels else None


def from_vectors(rows: list[dict], root: Path) -> dict[str, dict]:
    """Per clip: the estimate, the share of cells without a vector, the camera label, and the CPU
    seconds of reading the vectors (a decode of the I and P frames) and of the estimate."""
    found = {}
    for row in rows:
        start = time.process_time()
        frames = motion_vectors(root / row["video_path"])
        read = time.process_time() - start
        if frames is None:
            found[row["video_path"]] = {"estimate": None}
            continue
        step = sample_step(row["num_frames"], row["fps"])
        start = time.process_time()
        indices = list(range(0, row["num_frames"], step))  # the motion score's samples
        intervals = vector_intervals(frames, indices, row["width"], row["height"])
        motion = vector_motion(intervals)
        estimate_s = time.process_time() - start
        found[row["video_path"]] = {
            "estimate": motion and round(motion[0], 4), "unknown": motion and round(motion[1], 4),
            "vector_camera_motion": vector_camera(intervals, row["width"], row["height"], step / row["fps"]),
            "read_cpu_s": round(read, 4), "estimate_cpu_s": round(estimate_s, 4)}
    return found


def agreement(work: Path, name: str, manifest: Path, root: Path, unknown_max: float) -> dict:
    exact, wall, cpu = stage2(work, f"exact_{name}", manifest, root, "--scorers", "motion,camera_motion", *OPEN)
    rows = read_rows(manifest)
    vectors = from_vectors(rows, root)
    keys = [r["video_path"] for r in rows if vectors[r["video_path"]]["estimate"] is not None]
    score = np.array([exact["rows"][k]["motion_score"] for k in keys])
    estimate = np.array([vectors[k]["estimate"] for k in keys])
    unknown = np.array([vectors[k]["unknown"] for k in keys])
    trusted = unknown <= unknown_max
    ratio = score / np.maximum(estimate, 1e-3)
    labels = [(exact["rows"][k]["camera_motion"], vectors[k]["vector_camera_motion"]) for k in keys]
    moving = [(a, b) for a, b in labels if a != "static"]
    return {"clips": len(rows), "with_vectors": len(keys), "exact_wall_s": round(wall, 2), "exact_cpu_s": round(cpu, 2),
            "vectors_cpu_s": round(sum(v.get("read_cpu_s", 0) + v.get("estimate_cpu_s", 0) for v in vectors.values()),
                                   2),
            "spearman": round(float(spearmanr(estimate, score)[0]), 4),
            "spearman_few_unknown": round(float(spearmanr(estimate[trusted], score[trusted])[0]), 4),
            "few_unknown": int(trusted.sum()), "unknown_max": unknown_max,
            "ratio_few_unknown": {"min": round(float(ratio[trusted].min()), 3),
                                  "max": round(float(ratio[trusted].max()), 3),
                                  "median": round(float(np.median(ratio[trusted])), 3)},
            "camera_labels_agree": sum(a == b for a, b in labels), "camera_labels": len(labels),
            "camera_moving_agree": sum(a == b for a, b in moving), "camera_moving": len(moving),
            "camera_disagreements": sorted({f"{a} -> {b}" for a, b in labels if a != b}),
            "clips_detail": {k: {"motion_score": round(float(exact["rows"][k]["motion_score"]), 4),
                                 "camera_motion": exact["rows"][k]["camera_motion"], **vectors[k]} for k in keys}}


def first_pass(work: Path, name: str, manifest: Path, root: Path, repeats: int) -> dict:
    """Stage 2's motion step, default gates, with and without MOTION_VECTORS, alternating."""
    best: dict[str, dict] = {}
    cpus: dict[str, list[float]] = {"exact": [], "vectors": []}
    for _ in range(repeats):
        for mode, extra in (("exact", ["--no-motion-vectors"]), ("vectors", ["--motion-vectors"])):
            found, wall, cpu = stage2(work, f"first_pass_{mode}_{name}", manifest, root, "--scorers", "motion", *extra)
            cpus[mode].append(round(cpu, 2))
            if mode not in best or cpu < best[mode]["cpu_s"]:
                best[mode] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "found": found}
            best[mode]["all_cpu_s"] = cpus[mode]
    exact, vectors = best["exact"].pop("found"), best["vectors"].pop("found")
    modes = [r.get("motion_mode") for r in vectors["rows"].values()]
    differ = sorted(k for k in exact["decisions"] if exact["decisions"][k] != vectors["decisions"].get(k))
    return {"clips": len(exact["decisions"]), "exact": best["exact"], "vectors": best["vectors"],
            "decided_by_vectors": modes.count("vectors"),
            "share_decided": round(modes.count("vectors") / len(modes), 3),
            "cpu_saved": round(1 - best["vectors"]["cpu_s"] / best["exact"]["cpu_s"], 3),
            "gate_decisions_differ": differ}


def decode_cpu(path: Path, export: bool) -> float:
    """CPU seconds (this process: the decoder's threads included) of decoding every frame as stage 1
    does (decode_frames: one source on two cores gets two decoder threads), with or without
    exporting the vectors (and reading each frame's)."""
    import av

    start = time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 2
        if export:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        for frame in container.decode(stream):
            vectors = frame.side_data.get("MOTION_VECTORS") if export else None
            if vectors is not None:
                vectors.to_ndarray()  # as a stage-1 step that kept them would read them
    return time.process_time() - start


def stage1_cost(work: Path, repeats: int) -> dict:
    source = build_input(5, work)
    plain, export = [], []
    for _ in range(repeats):
        plain.append(decode_cpu(source, False))
        export.append(decode_cpu(source, True))
    out = work / "stage1_5min"
    shutil.rmtree(out, ignore_errors=True)
    folder = work / "stage1_5min_in"
    folder.mkdir(exist_ok=True)
    if not (folder / source.name).exists():
        (folder / source.name).symlink_to(source)
    wall, memory, _ = run_measured([sys.executable, "-m", "video_caption.cut", "--video-folder", str(folder),
                                    "--output-folder", str(out)], cwd=REPO)
    frames = probe(source).num_frames
    extra = min(export) - min(plain)
    return {"frames": frames, "decode_cpu_s": round(min(plain), 2), "decode_export_cpu_s": round(min(export), 2),
            "all_decode_cpu_s": [round(x, 2) for x in plain], "all_export_cpu_s": [round(x, 2) for x in export],
            "extra_cpu_s": round(extra, 2), "stage1_wall_s": round(wall, 2), "stage1_cpu_s": round(memory.cpu_s, 2),
            "extra_share_of_stage1": round(extra / memory.cpu_s, 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_motion_vectors"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    p.add_argument("--only", nargs="+", default=["agreement", "first_pass", "stage1"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--unknown-max", type=float, default=0.2,
                   help="clips with more cells without a vector are never decided by the vectors")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result_file = args.out / "motion_vectors.json"
    results = json.loads(result_file.read_text()) if result_file.exists() else {}
    run = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "command": " ".join(["python", "bench/motion_vectors.py", *sys.argv[1:]])}
    shared, stage1 = shared_clips(args.work)
    sets = {"shared": (shared, stage1), "windows": windows(args.work, stage1)}

    def save(section: str) -> None:
        results[section]["run"] = run  # sections measured by different commands keep their own
        result_file.write_text(json.dumps(results, indent=1) + "\n")
        brief = {k: {n: v for n, v in s.items() if n != "clips_detail"} if isinstance(s, dict) else s
                 for k, s in results[section].items()}
        print(json.dumps({section: brief}), flush=True)

    if "agreement" in args.only:
        results["agreement"] = {name: agreement(args.work, name, *paths, args.unknown_max)
                                for name, paths in sets.items()}
        save("agreement")
    if "first_pass" in args.only:
        results["first_pass"] = {name: first_pass(args.work, name, *paths, args.repeats)
                                 for name, paths in sets.items()}
        save("first_pass")
    if "stage1" in args.only:
        results["stage1"] = stage1_cost(args.work, args.repeats)
        save("stage1")


if __name__ == "__main__":
    main()
