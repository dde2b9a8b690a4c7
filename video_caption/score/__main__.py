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

import argparse
import sys
import time
from collections import Counter

from video_caption.cli import Parser, entry_point
from video_caption.gate import Gate, decision, split_by_gates
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
from video_caption.runner import StageRun, input_manifest, parse_stage_args, ranks_and_device, stage_parser
from video_caption.score.base import Scorer
from video_caption.score.settings import EXTRA_STEPS, stage_schema
from video_caption.steps import StepError, StepSpec

ERRORS, TRAIN = "errors.jsonl", "train.jsonl"


def extra_steps(argv) -> tuple[str, ...]:
    """--extra-steps, read before the rest: the steps it names bring their own settings."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(EXTRA_STEPS.flag, dest=EXTRA_STEPS.dest, type=EXTRA_STEPS.parse_text, default=[])
    return tuple(p.parse_known_args(argv)[0].extra_steps or ())


def parse_args(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        schema, steps = stage_schema(extra_steps(argv))
    except StepError as exc:
        Parser("python -m video_caption.score", None).error(str(exc))
    p = stage_parser("python -m video_caption.score", __doc__, "stage 1", META_CLIPS, 2, schema)
    args = parse_stage_args(p, argv)
    args.steps, args.schema = steps, schema
    return args


def metadata_gates(args) -> list[Gate]:
    gates = []
    if args.min_duration is not None or args.max_duration is not None:
        gates.append(Gate("duration", args.min_duration, args.max_duration, videos_only=True))
    if args.min_clip_side is not None:
        gates += [Gate("width", args.min_clip_side), Gate("height", args.min_clip_side)]
    if args.min_fps is not None:
        gates.append(Gate("fps", args.min_fps, videos_only=True))
    return gates


def score_gates(args) -> dict[str, list[Gate]]:
    """Each scorer's gates, applied in this order (a gate with no bound is off)."""
    return {name: step.gates(args) for name, step in args.steps.items()}


def scorer_order(chosen: list[str], steps: dict[str, StepSpec]) -> list[str]:
    """The scorers in the order given, those over the whole dataset (on every gate's survivors) last."""
    return sorted(chosen, key=lambda name: steps[name].last)


def build_scorers(args, device: str) -> tuple[list[Scorer], list[dict]]:
    """The scorers to run, and {step, reason} for each whose model is not on this machine."""
    scorers, missing = [], []
    order = [args.steps[name] for name in scorer_order(args.scorers, args.steps)]
    for step in order:
        try:
            scorers.append(step.make(args, device, order))
        except ModelMissing as exc:
            missing.append({"step": step.name, "reason": str(exc)})
    return scorers, missing


def missing_models(args) -> list[dict]:
    """{step, reason} for each scorer whose model is not on this machine (run_pipeline.sh asks before stage 1)."""
    return build_scorers(args, "cpu")[1]


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
    if scorer_order(args.scorers, args.steps) != args.scorers:
        log.info("%s run last, over the survivors of every other gate",
                 ", ".join(n for n in args.scorers if args.steps[n].last))
    scorers, missing = build_scorers(args, device)
    if missing and not args.skip_missing_models:
        log.error("%s", missing[0]["reason"])
        return 1
    for miss in missing:
        log.warning("skipping the %s scorer (--skip-missing-models): %s", miss["step"], miss["reason"])
    skipped = [{"scorer": miss["step"], "reason": miss["reason"]} for miss in missing]
    with StageRun.for_args("score", "stage 2", args, args.score_batch_size, ranks, device, log) as run:
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
                          "settings": args.schema.gate_settings(2, "metadata"), "reached": len(rows),
                          "passed": len(survivors), "rejected": len(rejected), "unscored": 0}}
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
        stats[scorer.name] = {"gate": described, "bounds": [g.bounds() for g in gates],
                              **args.steps[scorer.name].describe(),
                              "settings": args.schema.gate_settings(2, scorer.name), "reached": reaching,
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
