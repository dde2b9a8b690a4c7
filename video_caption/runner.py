"""The stage runner: how every step of stages 2 and 3 runs over an output folder.

A step (``Step``) holds only its own logic: the manifest it writes, the settings that define its
results, its model (``setup``, once per process) and its batch function (``process``).  The runner
does the rest, the same way for every step:

- one run of a stage per folder (a lock); ranks under ``accelerate launch``, each taking every
  world-th pending row and appending to its own part file, merged by rank 0 after the step;
- resume that respects settings: a clip is done once the step's output holds its row made with the
  step's current settings (recorded on every row as ``<step>_settings``, with a digest of the input
  row for steps whose results depend on it).  Rows made with other settings, and rows holding a
  bound where the gate now needs a score (``Step.decides``), are moved to ``superseded/<output>``
  (kept, never lost) and redone.  Rows of clips stage 1 cut again with other
  settings (gone from ``meta_clips.jsonl``, kept in ``superseded/meta_clips.jsonl``) are moved there too;
- frames decoded in DataLoader workers (``video_caption.loader``), so the model never waits on them;
- a clip that cannot be read or processed is an ``errors.jsonl`` row (``<stage>:<step>``) and the
  others go on; a batch that fails as a whole is retried clip by clip to find the culprit;
- progress bars, and the stage's section of ``summary.json`` with this run's wall time.

Stage 1, whose work is per source in supervised worker processes, not per clip, runs on the same
lock, ranks (``StageRun.shares``), part files, error log and summary.

Adding a step: subclass ``Step``, set ``stage``, ``name``, ``output`` and, when it reads frames,
``frames``; implement ``settings``, ``setup`` and ``process``; run it with ``StageRun.step``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from video_caption.cli import Parser, output_folder
from video_caption.distributed import Ranks, merge_parts, part_path, parts, read_with_parts
from video_caption.loader import FramePlan, Item, default_loader_workers, load_batches
from video_caption.logs import progress
from video_caption.manifest import (
    ERRORS,
    IMAGE,
    KEY,
    META_CLIPS,
    ErrorLog,
    ManifestWriter,
    done_keys,
    lock_folder,
    media_type,
    read_rows,
    rewrite,
    row_identity,
)
from video_caption.settings import Schema
from video_caption.summary import record_stage, result, throughput

SUPERSEDED = "superseded"  # folder of rows whose settings a later run changed


class Step:
    """One step of a stage.  Subclasses set the class attributes and implement the methods."""

    stage = ""  # "score" or "caption": its errors.jsonl rows say "<stage>:<name>"
    name = ""
    output = ""  # the manifest it writes, in the output folder
    frames: FramePlan | None = None  # the frames it needs per clip (None: it reads manifest rows only)
    group_output = ""  # a step over the whole dataset (duplicates): the manifest its ``group`` writes
    skips_images = ""  # why image rows skip this step (motion: one frame does not move); "": they go through

    @property
    def settings_key(self) -> str:
        return f"{self.name}_settings"

    def settings(self) -> dict:
        """What defines this step's results (model and weights digest, mode, frame counts, sizes;
        not gate thresholds, which only re-gate).  Recorded on every row it writes."""
        return {}

    def decides(self, row: dict) -> bool:
        """Whether this step's row still decides its clip under the current gates: False for a row that
        holds a cheap bound instead of a score (motion from the codec's vectors, text from the
        prescreen) when the bound no longer settles the gate.  Such a row is done again; a score
        always decides (a new threshold only re-gates)."""
        return True

    def image_settings(self) -> dict | None:
        """What defines this step's results on an image row, when not ``settings`` (another prompt)."""
        return None

    def skip_reason(self, row: dict) -> str | None:
        """Why this step does not apply to ``row`` (None: it does)."""
        return self.skips_images if self.skips_images and media_type(row) == IMAGE else None

    def input_digest(self, row: dict) -> str | None:
        """For a step whose results depend on the content of its input row (a summary of captions):
        a digest of that content, recorded with the settings, so a changed input is done again."""
        return None

    def setup(self, device: str) -> None:
        """Load the model: once per process, and only when this process has clips to do."""

    def process(self, items: list[Item]) -> list[dict | Exception]:
        """One result per item: the row's fields (the runner adds ``video_path`` and the settings),
        or the exception that clip failed with (the others still count)."""
        raise NotImplementedError

    def close(self) -> None:
        """Free the model (or stop its server): the next step may need the memory."""

    def group(self, rows: list[dict]) -> list[dict]:
        """A step over the whole dataset: from every clip's row merged with its ``process`` result,
        the rows of ``group_output`` (one per clip).  Runs on one rank, after every rank's ``process``;
        recomputed on every run, so it must depend only on those rows."""
        raise NotImplementedError


@dataclass(frozen=True)
class RunOptions:
    root: Path  # the folder manifest video_path values are relative to
    device: str
    batch_size: int
    num_workers: int
    stall_timeout: float


def stage_parser(prog: str, doc: str, producer: str, default_input: str, stage: int, schema: Schema) -> Parser:
    """A command line for a stage that reads a manifest of clips made by ``producer``: its settings
    (``schema``), and where its clips are."""
    p = Parser(prog, doc)
    groups = schema.add_arguments(p, stage)
    groups["input"].add_argument("--input", help=f"clip manifest (default: OUTPUT_FOLDER/{default_input})")
    groups["input"].add_argument("--root", help="folder the manifest's video_path values are relative to "
                                                "(default: OUTPUT_FOLDER)")
    return p


def parse_stage_args(parser: Parser, argv=None):
    """A stage 2 or 3 command line, with the settings worked out at run time when not given."""
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.num_workers is None:
        args.num_workers = default_loader_workers()
    return args


def input_manifest(args, default: str, producer: str, log) -> Path | None:
    """The manifest a stage reads (``--input``, else ``default`` in the output folder); None, said
    in one line, when it is not there."""
    path = Path(args.input) if args.input else Path(args.output_folder) / default
    if not path.is_file():
        log.error("no clip manifest at %s (run %s first, or pass --input)", path, producer)
        return None
    return path


def ranks_and_device(args) -> tuple[Ranks, str]:
    ranks = Ranks.launched(args.cpu, accelerator=True)
    return ranks, args.device or ("cpu" if args.cpu else ranks.device)


def normalized(settings: dict) -> dict:
    """Settings as they read back from a manifest (tuples become lists), so the two compare equal."""
    return json.loads(json.dumps(settings, sort_keys=True))


def digest(value) -> str:
    """A short, stable digest of a prompt or of an input row's content, recorded among settings."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def expected_settings(step: Step, rows: list[dict]) -> dict[str, dict]:
    """The settings a current row of each input clip records."""
    video = normalized(step.settings())
    image = step.image_settings()
    image = video if image is None else normalized(image)
    found = {}
    for row in rows:
        base = image if media_type(row) == IMAGE else video
        input_digest = step.input_digest(row)
        found[row[KEY]] = base if input_digest is None else {**base, "input": input_digest}
    return found


def _stale(row: dict, step: Step, expected: dict[str, dict]) -> bool:
    """A row of an input clip made with other settings than its current ones, or holding a bound that
    no longer decides its clip."""
    return row[KEY] in expected and (row.get(step.settings_key) != expected[row[KEY]] or not step.decides(row))


def supersede(out: Path, step: Step, expected: dict[str, dict], recut: set[str]) -> tuple[int, int]:
    """Make the step's output hold no row of an input clip made with other settings, none of a clip
    in ``recut`` (stage 1 cut its source again: the clip is gone), one row per clip, and no part
    files: such rows (and rows holding a bound that no longer decides) are appended to
    ``superseded/<output>``, parts left by a killed run are merged.
    Rows of other clips not in this run's input are left as they are.  Returns how many rows were
    superseded for their settings, and how many for their clip.  Rank 0 only."""
    path = out / step.output
    rows = read_with_parts(path)
    gone = [row for row in rows if row[KEY] in recut]
    stale = [row for row in rows if _stale(row, step, expected) and row[KEY] not in recut]
    if not stale and not gone:
        merge_parts(path)
        return 0, 0
    # Kept before the output is rewritten, so a kill in between loses nothing (a rerun skips the
    # rows already there).
    with ManifestWriter(out / SUPERSEDED / step.output, key=None) as kept:
        there = {row_identity(row) for row in read_rows(kept.path)}
        kept.append(row for row in stale + gone if row_identity(row) not in there)
    current, seen = [], set()
    for row in rows:
        if row[KEY] not in seen and row[KEY] not in recut and not _stale(row, step, expected):
            seen.add(row[KEY])
            current.append(row)
    rewrite(path, current)
    for part in parts(path):
        os.unlink(part)
    return len(stale), len(gone)


def _message(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


class StageRun:
    """One run of stage ``name`` over ``out``: its lock, its error log, its steps and its summary."""

    def __init__(self, name: str, lock: str, out: Path, ranks: Ranks, options: RunOptions, log):
        self.name, self.lock_name, self.out, self.ranks, self.options, self.log = name, lock, out, ranks, options, log
        self.failed = 0  # clips that failed a step in this process
        self.clip_steps = 0  # (clip, step) pairs this process worked on
        self.superseded: dict[str, int] = {}  # rows moved to superseded/ for their settings, by step
        self.recut: dict[str, int] = {}  # and for their clip, which stage 1 cut again
        self._recut_clips: set[str] | None = None

    @classmethod
    def for_args(cls, name: str, lock: str, args, batch_size: int, ranks: Ranks, device: str, log) -> StageRun:
        """The run a stage's command line asks for (``stage_parser`` and ``parse_stage_args``)."""
        out = output_folder(args.output_folder)
        options = RunOptions(Path(args.root) if args.root else out, device, batch_size, args.num_workers,
                             args.clip_stall_timeout)
        return cls(name, lock, out, ranks, options, log)

    def __enter__(self) -> StageRun:
        self.started = time.time()
        self._lock = lock_folder(self.out, self.lock_name) if self.ranks.main else None
        self.errors = ErrorLog(part_path(self.out / ERRORS, self.ranks.rank))
        return self

    def __exit__(self, *exc) -> None:
        self.errors.close()
        if self._lock is not None:
            self._lock.close()

    def fail(self, step: Step, key: str, message: str) -> None:
        self.failed += 1
        self.errors.add(f"{step.stage}:{step.name}", key, message, output=step.output)
        self.log.warning("%s failed: %s: %s", step.name, key, message)

    @contextlib.contextmanager
    def shares(self, outputs: list[Path], prepare: Callable[[], None], pending: Callable[[], list]) -> Iterator[
            tuple[list, list]]:
        """(every rank's pending work, this rank's share of it), the same on every rank: rank 0 first
        runs ``prepare`` (moves stale rows away, merges parts a killed run left), then each rank calls
        ``pending``.  The block appends to its part files of ``outputs``; rank 0 merges them after it."""
        if self.ranks.main:
            prepare()
        self.ranks.barrier()
        todo = pending()
        # Every rank reads before any rank writes: a fast rank's rows must not change a slow rank's shards.
        self.ranks.barrier()
        yield todo, self.ranks.shard(todo)
        self.ranks.barrier()
        if self.ranks.main:
            for path in outputs:
                merge_parts(path)
        self.ranks.barrier()

    def step(self, step: Step, rows: list[dict]) -> dict[str, dict]:
        """Run ``step`` on the rows it applies to and has no current row for; returns its output rows
        by clip (none for the rows it skips: ``Step.skip_reason``)."""
        reasons = [step.skip_reason(row) for row in rows]
        if any(reasons):
            rows = [row for row, reason in zip(rows, reasons, strict=True) if not reason]
            if self.ranks.main:
                for reason, count in Counter(filter(None, reasons)).items():
                    self.log.info("%s: %d clips skipped: %s", step.name, count, reason)
        path = self.out / step.output
        expected = expected_settings(step, rows)

        def prepare() -> None:
            superseded, recut = supersede(self.out, step, expected, self._recut())
            if superseded:
                self.superseded[step.name] = superseded
                self.log.warning("%s: %d rows were made with other settings (or hold a bound that no longer "
                                 "decides): moved to %s and redone",
                                 step.name, superseded, Path(SUPERSEDED) / step.output)
            if recut:
                self.recut[step.name] = recut
                self.log.warning("%s: %d rows are of clips stage 1 cut again (no longer in %s): moved to %s",
                                 step.name, recut, META_CLIPS, Path(SUPERSEDED) / step.output)

        def pending() -> list[dict]:
            done = {row[KEY] for row in read_rows(path)}
            return [row for row in rows if row[KEY] not in done]

        with self.shares([path], prepare, pending) as (todo, mine):
            if self.ranks.main:
                self.log.info("%s: %d clips, %d already done, %d to do on %d process(es), device %s", step.name,
                              len(rows), len(rows) - len(todo), len(todo), self.ranks.world, self.options.device)
            if mine:
                self.clip_steps += len(mine)
                step.setup(self.options.device)
                try:
                    with ManifestWriter(part_path(path, self.ranks.rank)) as writer:
                        self._work(step, mine, expected, writer)
                finally:
                    step.close()
        done = {row[KEY]: row for row in read_rows(path)
                if row[KEY] in expected and not _stale(row, step, expected)}
        return self._group(step, rows, done) if step.group_output else done

    def _recut(self) -> set[str]:
        """The clips stage 1 cut again with other settings (once per run): in superseded/meta_clips.jsonl
        and no longer in meta_clips.jsonl, so no file of theirs is left.  Not a clip a gate dropped:
        later stages read the survivors of earlier gates, whose other rows stay."""
        if self._recut_clips is None:
            old = done_keys(self.out / SUPERSEDED / META_CLIPS)
            self._recut_clips = old - done_keys(self.out / META_CLIPS) if old else set()
        return self._recut_clips

    def _group(self, step: Step, rows: list[dict], done: dict[str, dict]) -> dict[str, dict]:
        grouped = self.out / step.group_output
        if self.ranks.main:
            started = time.time()
            rewrite(grouped, step.group([{**row, **done[row[KEY]]} for row in rows if row[KEY] in done]))
            self.log.info("%s: %d clips grouped in %.1f s into %s", step.name, len(done), time.time() - started,
                          grouped)
        self.ranks.barrier()
        return {row[KEY]: row for row in read_rows(grouped) if row[KEY] in done}

    def _batches(self, step: Step, rows: list[dict]) -> Iterator[list[Item]]:
        o = self.options
        if step.frames is None:
            for start in range(0, len(rows), o.batch_size):
                yield [Item(row) for row in rows[start:start + o.batch_size]]
        else:
            yield from load_batches(rows, o.root, step.frames, o.batch_size, o.num_workers, o.stall_timeout)

    def _work(self, step: Step, rows: list[dict], expected: dict[str, dict], writer: ManifestWriter) -> None:
        bar = progress(len(rows), f"{self.name}: {step.name}") if self.ranks.main else None
        for batch in self._batches(step, rows):
            good = []
            for item in batch:
                if item.error is None:
                    good.append(item)
                else:
                    self.fail(step, item.row[KEY], item.error)
            done = []
            for item, outcome in zip(good, _process(step, good), strict=True):
                if isinstance(outcome, Exception):
                    self.fail(step, item.row[KEY], _message(outcome))
                else:
                    done.append({KEY: item.row[KEY], **outcome, step.settings_key: expected[item.row[KEY]]})
            writer.append(done)
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()

    def finish(self, facts: dict, work: dict | None = None) -> None:
        """Merge the error logs and record the stage's section of summary.json (rank 0).  ``work``:
        what this run did, when not clip steps (stage 1: sources)."""
        self.errors.close()
        self.ranks.barrier()
        if not self.ranks.main:
            return
        merge_parts(self.out / ERRORS, key=None)
        elapsed = time.time() - self.started
        if work is None:
            work = {"failed": self.failed, "clip_steps": self.clip_steps,
                    "clip_steps_per_s": throughput(self.clip_steps, elapsed)}
        summary = record_stage(self.out, self.name, {
            **facts, "superseded": self.superseded, **({"recut": self.recut} if self.recut else {}),
            "run": {"wall_s": round(elapsed, 2), "processes": self.ranks.world, **work}})
        for line in result(summary, self.name):
            self.log.info("%s", line)


def _process(step: Step, items: list[Item]) -> list[dict | Exception]:
    if not items:
        return []
    try:
        return step.process(items)
    except Exception as exc:  # noqa: BLE001 - find the clip that broke the batch, keep the others
        if len(items) == 1:
            return [exc]
        results: list[dict | Exception] = []
        for item in items:
            try:
                results += step.process([item])
            except Exception as one:  # noqa: BLE001
                results.append(one)
        return results
