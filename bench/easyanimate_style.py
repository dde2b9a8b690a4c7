"""Stage 1 and exact motion beside EasyAnimate's video_caption scripts, reimplemented, on the shared videos.

    python bench/easyanimate_style.py [--repeats 2] [--jobs 2] [--resolution-threshold 0]
                                      [--work /tmp/video_caption_bench_ea] [--out bench/results]

EasyAnimate's scripts cannot be installed here, so this file reimplements them (own code, same method
and defaults).  It follows aigc-apps/EasyAnimate, folder easyanimate/video_caption/, at commit
15fb947d848c5d455125689518eb6c22579c5be0 for cutscene_detect.py, video_splitting.py and
compute_motion_score.py (ee76d625 differs only in where outputs go: a flat folder named by file stem),
utils/get_meta_file.py (7e9c1f29), utils/gather_jsonl.py (485e771a), scripts/stage_1_video_splitting.sh
(5ea1bf24) and scripts/stage_2_video_filtering.sh (30682ba3).  What they do:
  listing     every file under the folder with a video extension (mp4 webm mkv avi flv mov rmvb), as a
              path relative to it, in natural order
  detection   multiprocessing.Pool(n_jobs), one source per task: PySceneDetect, PyAV backend,
              ContentDetector(threshold=27, min_scene_len=15); the scene boundaries as HH:MM:SS.mmm
              timecodes, one jsonl per source, then gathered into one file
  splitting   multiprocessing.Pool(n_jobs), one source per task, its clips one after another, one
              ffmpeg each: -ss START (before -i) -t DURATION -c:v libx264 -preset veryfast -crf 22
              -c:a aac -sn; MIN_SECONDS=3, MAX_SECONDS=10: a scene shorter than 3 s is dropped, one of
              3-10 s is cut less its last 0.5 s, a longer one in 10 s windows until less than 3 s is
              left; a source with no cut is cut the same way from 0 to its duration
  motion      joblib.Parallel(n_jobs) over batches of --saved_freq clips (10 in the stage-2 script),
              results rewritten to the jsonl after each batch: cv2.VideoCapture decodes every frame,
              frames 0, k, 2k, ... (k = int(fps / min(2, fps)), at most frame count - 1) to gray,
              Farneback (0.5, 3, 15, 3, 5, 1.2, 0) between consecutive ones, the mean of the
              per-pair mean flow magnitudes rounded to 5 decimals
Deviations, none of which makes the reference slower: the four stage-1 scripts run as one process
(upstream starts four interpreters, each importing pandas), jsonl is read and written with json
instead of pandas, natural order comes from a small key instead of natsort, scenedetect is the 0.7.2
this project pins (upstream used 0.6, whose API differs only in names), and the resolution threshold
defaults to 0 (video_splitting.py's default) instead of the stage-1 script's 512*512, which would skip
7 of the 19 shared sources that our stage 1 cuts.  Listing and gathering are recursive (upstream's
--recursive) because the shared videos sit in sub-folders.  Without joblib the motion step falls back
to a fork multiprocessing.Pool (recorded as "motion_parallel").

In one run, --repeats times in turn, the fastest wall time of each kept with the least CPU time and the
highest peak memory of its repeats:
  easyanimate_stage1          the reimplementation above, --jobs processes (detection, then splitting)
  ours_stage1                 python -m video_caption.cut at default settings (no --workers)
  easyanimate_motion          the motion step with --jobs processes on easyanimate_stage1's clips
  easyanimate_motion_ours     the same on ours_stage1's clips (the plain multiprocess reference)
  ours_motion                 stage 2 exact motion alone, gates open, on ours_stage1's clips
Wall time, CPU time (user + system of the whole process tree), peak RSS summed over the processes and
of the largest one, clip count and seconds.  Results go to OUT/easyanimate_style.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"  # as bench/stage1_speed.py
VIDEO_EXT = {"mp4", "webm", "mkv", "avi", "flv", "mov", "rmvb"}
MIN_SECONDS, MAX_SECONDS = 3, 10
TIMECODE = "%H:%M:%S.%f"
# Stage 2 with only motion and every gate open, as bench/stage2_speed.py runs it.
OPEN = ["--aesthetic-min", "-1000000", "--text-max", "1", "--motion-min", "-1", "--motion-max", "1e9"]


def natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def list_videos(folder: Path) -> list[str]:
    """get_meta_file.py with --recursive."""
    return sorted((str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix[1:] in VIDEO_EXT),
                  key=natural_key)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---- stage 1: cutscene_detect.py, gather_jsonl.py, video_splitting.py ----

def detect(task: tuple[str, str, str]) -> None:
    video_path, video_folder, saved_path = task
    saved = Path(saved_path)
    if saved.exists():  # upstream resumes per source
        return
    try:
        from scenedetect import SceneManager, open_video
        from scenedetect.detectors import ContentDetector

        # PyAV backend, as upstream: OpenCV's often puts the previous scene's last frame in a scene.
        video = open_video(os.path.join(video_folder, video_path), backend="pyav")
        frame_rate, frame_size, duration = float(video.frame_rate), list(video.frame_size), str(video.duration)
        manager = SceneManager()
        manager.add_detector(ContentDetector(threshold=27, min_scene_len=15))
        manager.detect_scenes(video, show_progress=False)
        # Upstream collects every scene start and end by frame index and pairs consecutive ones.
        points = {}
        for scene in manager.get_scene_list():
            for timecode in scene:
                points[timecode.frame_num] = timecode
        ordered = [points[k] for k in sorted(points)]
        timecodes = [(a.get_timecode(), b.get_timecode()) for a, b in zip(ordered, ordered[1:], strict=False)]
        saved.parent.mkdir(parents=True, exist_ok=True)
        # "fram_rate" is upstream's key, spelling included.
        saved.write_text(json.dumps({"video_path": video_path, "timecode_list": timecodes, "fram_rate": frame_rate,
                                     "frame_size": frame_size, "duration": duration}) + "\n")
    except Exception as error:  # upstream logs a warning and goes on
        print(f"cutscene detection of {video_path} failed: {error}", file=sys.stderr)


def ffmpeg_cut(start: datetime, video_path: str, seconds: float, output: str) -> list[str]:
    # Re-encoded (not stream copy) so that clips start exactly at the timecode, as upstream.
    return ["ffmpeg", "-hide_banner", "-loglevel", "panic", "-ss", str(start.time()), "-i", video_path,
            "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "22", "-c:a", "aac", "-sn", output]


def cut_windows(start: datetime, end: datetime, video_path: str, prefix: str) -> None:
    """Consecutive MAX_SECONDS windows from start to end until less than MIN_SECONDS is left; a failed
    window is logged and skipped."""
    index = 0
    while start < end:
        stop = min(start + timedelta(seconds=MAX_SECONDS), end)
        seconds = (stop - start).total_seconds()
        if seconds < MIN_SECONDS:
            break
        output = f"{prefix}_{index}.mp4"
        if not os.path.exists(output):
            try:
                subprocess.run(ffmpeg_cut(start, video_path, seconds, output), check=True)
            except Exception as error:
                print(f"{output}: {error}", file=sys.stderr)
        start, index = stop, index + 1


def split(task: tuple[str, list, str, str]) -> None:
    video_path, timecode_list, output_folder, duration = task
    try:
        os.makedirs(output_folder, exist_ok=True)
        stem = os.path.join(output_folder, Path(video_path).stem)
        if not timecode_list:  # a single scene: the whole source in windows
            cut_windows(datetime.strptime("00:00:00.000", TIMECODE), datetime.strptime(duration, TIMECODE),
                        video_path, stem)
        for i, (first, last) in enumerate(timecode_list):
            start, end = datetime.strptime(first, TIMECODE), datetime.strptime(last, TIMECODE)
            seconds = (end - start).total_seconds()
            output = f"{stem}_{i}.mp4"
            if os.path.exists(output) or seconds < MIN_SECONDS:
                continue
            if seconds > MAX_SECONDS:
                cut_windows(start, end, video_path, f"{stem}_{i}")
                continue
            # Upstream drops a scene's last 0.5 s: PySceneDetect's scenes sometimes end inside the next
            # shot.  A failure here ends the source (upstream's check=True inside its outer try).
            subprocess.run(ffmpeg_cut(start, video_path, seconds - 0.5, output), check=True)
    except Exception as error:
        print(f"splitting {video_path} failed: {error}", file=sys.stderr)


def easyanimate_stage1(video_folder: Path, out: Path, jobs: int, resolution_threshold: float) -> dict:
    # Imported before the pool forks, as upstream imports it at module level: the workers inherit it.
    import scenedetect.detectors  # noqa: F401

    videos = list_videos(video_folder)
    scenes = out / "meta_scene_info"
    start = time.perf_counter()
    with multiprocessing.Pool(jobs) as pool:
        tasks = [(v, str(video_folder), str(scenes / Path(v).with_suffix(".jsonl"))) for v in videos]
        for _ in pool.imap(detect, tasks):
            pass
    detect_s = time.perf_counter() - start
    rows = [row for path in scenes.rglob("*.jsonl") for row in read_jsonl(path)]
    rows.sort(key=lambda row: natural_key(row["video_path"]))
    (out / "meta_scene_info.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    rows = [row for row in rows if row["frame_size"][0] * row["frame_size"][1] >= resolution_threshold]
    start = time.perf_counter()
    with multiprocessing.Pool(jobs) as pool:
        # Upstream keeps each source's sub-folder under the output folder when --video_folder is given.
        tasks = [(str(video_folder / r["video_path"]), r["timecode_list"],
                  str(out / "clips" / os.path.dirname(r["video_path"])), r["duration"]) for r in rows]
        for _ in pool.imap(split, tasks):
            pass
    return {"sources": len(videos), "detected": len(rows), "detect_s": round(detect_s, 2),
            "split_s": round(time.perf_counter() - start, 2)}


# ---- motion: compute_motion_score.py ----

def motion_score(video_path: str) -> dict | None:
    import cv2
    import numpy as np

    cap = cv2.VideoCapture(video_path)
    try:
        fps = cap.get(cv2.CAP_PROP_FPS)
        interval = int(fps / min(2, fps))  # 2 sampled frames per second
        interval = min(interval, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) - 1)  # a short clip: first and last
        previous, scores, index = None, [], -1
        while cap.isOpened():
            ok, frame = cap.read()
            index += 1
            if not ok:
                break
            if index % interval:
                continue
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            if previous is not None:
                flow = cv2.calcOpticalFlowFarneback(previous, gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                magnitude, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
                scores.append(np.mean(magnitude))
            previous = gray
        return {"video_path": video_path, "motion_score": round(float(np.mean(scores)), 5)}
    except Exception as error:
        print(f"motion score of {video_path} failed: {error}", file=sys.stderr)
        return None
    finally:
        cap.release()
        del cap
        gc.collect()  # upstream's VideoCapture context manager collects after each clip


def easyanimate_motion(video_folder: Path, metadata: Path | None, saved: Path, jobs: int, saved_freq: int) -> dict:
    names = [r["video_path"] for r in read_jsonl(metadata)] if metadata else list_videos(video_folder)
    done = {r["video_path"] for r in read_jsonl(saved)} if saved.exists() else set()
    paths = sorted((str(video_folder / n) for n in names if n not in done), key=natural_key)
    try:
        from joblib import Parallel, delayed

        def run(batch: list[str]) -> list:
            return Parallel(n_jobs=jobs)(delayed(motion_score)(p) for p in batch)
        backend, pool = "joblib", None
    except ImportError:
        pool = multiprocessing.Pool(jobs)

        def run(batch: list[str]) -> list:
            return pool.map(motion_score, batch)
        backend = "multiprocessing"
    for i in range(0, len(paths), saved_freq):
        results = [{"video_path": os.path.relpath(r["video_path"], video_folder), "motion_score": r["motion_score"]}
                   for r in run(paths[i:i + saved_freq]) if r is not None]
        if results:  # upstream reads the saved file back and rewrites it whole after each batch
            previous = read_jsonl(saved) if saved.exists() else []
            saved.write_text("".join(json.dumps(r) + "\n" for r in previous + results))
    if pool is not None:
        pool.close()
    return {"motion_parallel": backend, "clips": len(paths)}


# ---- the bench ----

def clip_seconds(paths: list[Path]) -> float:
    import av

    total = 0.0
    for path in paths:
        with av.open(str(path)) as container:
            total += (container.duration or 0) / 1e6
    return round(total, 1)


def measure(cmd: list[str], ok: tuple[int, ...] = (0,)) -> tuple[dict, str]:
    # Imported here: the measured EasyAnimate-style processes must not pay for stage1_speed's imports.
    sys.path.insert(0, str(REPO / "bench"))
    from stage1_speed import run_measured

    wall, memory, proc = run_measured(cmd, cwd=REPO)
    if proc.returncode not in ok:
        raise RuntimeError(f"{cmd[:5]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(memory.cpu_s, 2), "peak_rss_mb": round(memory.peak / 2**20),
            "peak_process_rss_mb": round(memory.peak_process / 2**20)}, proc.stdout


def run_easyanimate_stage1(args) -> dict:
    out = args.work / "easyanimate"
    shutil.rmtree(out, ignore_errors=True)
    result, stdout = measure([sys.executable, __file__, "_stage1", str(args.videos), str(out), str(args.jobs),
                              str(args.resolution_threshold)])
    clips = sorted((out / "clips").rglob("*.mp4"))
    return {**result, **json.loads(stdout), "clips": len(clips), "clip_seconds": clip_seconds(clips)}


def run_ours_stage1(args) -> dict:
    out = args.work / "ours"
    shutil.rmtree(out, ignore_errors=True)
    # Default settings: the worker count is the stage's own choice.  Exit 2: the corrupt shared video.
    result, _ = measure([sys.executable, "-m", "video_caption.cut", "--video-folder", str(args.videos),
                         "--output-folder", str(out)], ok=(0, 2))
    rows = read_jsonl(out / "meta_clips.jsonl")
    return {**result, "clips": len(rows), "clip_seconds": clip_seconds([out / r["video_path"] for r in rows])}


def run_easyanimate_motion(args, name: str, folder: Path, metadata: Path | None) -> dict:
    saved = args.work / f"{name}.jsonl"
    saved.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "_motion", str(folder), str(metadata or "-"), str(saved), str(args.jobs)]
    result, stdout = measure(cmd)
    scores = {r["video_path"]: r["motion_score"] for r in read_jsonl(saved)}
    return {**result, **json.loads(stdout), "clips": len(scores), "scores": scores}


def run_ours_motion(args) -> dict:
    stage1, out = args.work / "ours", args.work / "ours_motion"
    shutil.rmtree(out, ignore_errors=True)
    result, _ = measure([sys.executable, "-m", "video_caption.score", "--output-folder", str(out), "--input",
                         str(stage1 / "meta_clips.jsonl"), "--root", str(stage1), *OPEN, "--scorers", "motion"])
    scores = {r["video_path"]: r["motion_score"] for r in read_jsonl(out / "motion_score.jsonl")}
    return {**result, "clips": len(scores), "scores": scores}


def keep_fastest(best: dict, name: str, result: dict) -> None:
    before = best.get(name, {})
    walls, cpus = [*before.get("all_wall_s", []), result["wall_s"]], [*before.get("all_cpu_s", []), result["cpu_s"]]
    peaks = {k: max(result[k], before.get(k, 0)) for k in ("peak_rss_mb", "peak_process_rss_mb")}
    if not before or result["wall_s"] < before["wall_s"]:
        best[name] = result
    best[name].update(all_wall_s=walls, all_cpu_s=cpus, cpu_s=min(cpus), **peaks)


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


def machine() -> dict:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return {"node": platform.node(), "machine": platform.machine(), "cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)),
            "mem_available_gb": round(int(meminfo["MemAvailable"].split()[0]) / 2**20, 1),
            "loadavg": os.getloadavg(), "python": platform.python_version()}


def versions() -> dict:
    import cv2
    import scenedetect

    try:
        import joblib
        joblib_version = joblib.__version__
    except ImportError:
        joblib_version = None
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    return {"scenedetect": scenedetect.__version__, "opencv": cv2.__version__, "joblib": joblib_version,
            "ffmpeg": ffmpeg}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=2, help="alternating repeats of every run (fastest kept)")
    p.add_argument("--jobs", type=int, default=2, help="EasyAnimate's n_jobs for detection, splitting and motion")
    p.add_argument("--resolution-threshold", type=float, default=0,
                   help="video_splitting.py's width*height floor (its stage-1 script uses 262144)")
    p.add_argument("--videos", type=Path, default=VIDEOS)
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench_ea"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    args.videos, args.work = args.videos.resolve(), args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    info = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine_at_start": machine(), "versions": versions()}
    best: dict[str, dict] = {}
    for _ in range(args.repeats):
        keep_fastest(best, "easyanimate_stage1", run_easyanimate_stage1(args))
        keep_fastest(best, "ours_stage1", run_ours_stage1(args))
        keep_fastest(best, "easyanimate_motion", run_easyanimate_motion(args, "ea_motion_ea_clips",
                                                                        args.work / "easyanimate" / "clips", None))
        ours = args.work / "ours"
        keep_fastest(best, "easyanimate_motion_ours", run_easyanimate_motion(args, "ea_motion_our_clips", ours,
                                                                             ours / "meta_clips.jsonl"))
        keep_fastest(best, "ours_motion", run_ours_motion(args))
        print(json.dumps({k: {m: x for m, x in v.items() if m != "scores"} for k, v in best.items()}), flush=True)
    ea1, us1 = best["easyanimate_stage1"], best["ours_stage1"]
    ref2, us2 = best["easyanimate_motion_ours"], best["ours_motion"]
    common = sorted(set(ref2["scores"]) & set(us2["scores"]))
    diffs = [abs(ref2["scores"][k] - us2["scores"][k]) for k in common]
    results = {**info, "machine_at_end": machine(), "repeats": args.repeats, "jobs": args.jobs,
               "resolution_threshold": args.resolution_threshold, "runs": best,
               "stage1_speedup_vs_easyanimate": ratio(ea1["wall_s"], us1["wall_s"]),
               "stage1_cpu_ratio_vs_easyanimate": ratio(ea1["cpu_s"], us1["cpu_s"]),
               "motion_speedup_vs_easyanimate_same_clips": ratio(ref2["wall_s"], us2["wall_s"]),
               "motion_cpu_ratio_vs_easyanimate_same_clips": ratio(ref2["cpu_s"], us2["cpu_s"]),
               "motion_seconds_per_clip": {k: round(best[k]["wall_s"] / max(best[k]["clips"], 1), 3)
                                           for k in ("easyanimate_motion", "easyanimate_motion_ours", "ours_motion")},
               "motion_scores_compared": len(common),
               "motion_max_abs_diff": round(max(diffs), 6) if diffs else None}
    (args.out / "easyanimate_style.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"{'run':26} {'wall s':>7} {'cpu s':>7} {'peak MB':>8} {'largest MB':>10} {'clips':>6}")
    for name, run in best.items():
        print(f"{name:26} {run['wall_s']:7.1f} {run['cpu_s']:7.1f} {run['peak_rss_mb']:8d} "
              f"{run['peak_process_rss_mb']:10d} {run['clips']:6d}")
    print(json.dumps({k: v for k, v in results.items() if k not in ("runs",)}, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_stage1":  # EasyAnimate-style stage 1, run (and measured) alone
        folder, out, jobs, threshold = sys.argv[2:6]
        print(json.dumps(easyanimate_stage1(Path(folder), Path(out), int(jobs), float(threshold))))
    elif len(sys.argv) > 1 and sys.argv[1] == "_motion":  # EasyAnimate-style motion scoring alone
        folder, metadata, saved, jobs = sys.argv[2:6]
        print(json.dumps(easyanimate_motion(Path(folder), None if metadata == "-" else Path(metadata), Path(saved),
                                            int(jobs), saved_freq=10)))
    else:
        main()
