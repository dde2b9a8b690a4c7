"""Stage 1 command line: cut every source video into single-shot clips.  Still images (jpg, png,
webp) are not cut: each is one clip row of type image, its file placed under clips/.

    python -m video_caption.cut --video-folder VIDEOS --output-folder OUT [options]
    accelerate launch --multi_gpu --num_processes N -m video_caption.cut ... [--cpu]   (several ranks or nodes)

Under a launcher each rank cuts every N-th pending source (by path) into its own part files, merged
by rank 0 at the end, as stages 2 and 3 do (video_caption/runner.py).

Writes OUT/clips/, OUT/meta_scene_info.jsonl, OUT/meta_clips.jsonl and OUT/errors.jsonl.
Rerunning the same command resumes: sources already in meta_scene_info.jsonl are skipped.  A source
whose row was cut with other settings (detector, thresholds, clip lengths, margin, transitions,
codec, quality, clip mode) is cut again, its old rows and clips moved to OUT/superseded/; worker
counts and encoder threads redo nothing.
Exit status: 0 when every source was read, 2 when some failed (see errors.jsonl), 1 on a fatal error.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from video_caption.cli import Parser, entry_point, output_folder
from video_caption.cut.plan import PlanSettings
from video_caption.cut.settings import SETTINGS
from video_caption.cut.split import CutSettings, cut_source, remove_partial_clips
from video_caption.distributed import Ranks, merge_parts, part_path
from video_caption.inputs import Source, list_sources, path_under
from video_caption.logs import progress, setup_logging
from video_caption.manifest import (
    IMAGE,
    KEY,
    META_CLIPS,
    SCENE_INFO,
    ManifestWriter,
    done_keys,
    is_deferred,
    is_storage_error,
    media_type,
    read_rows,
    rewrite,
)
from video_caption.media.encode import EncoderSettings
from video_caption.media.process import MediaError
from video_caption.runner import SUPERSEDED, RunOptions, StageRun, normalized
from video_caption.settings import COMMON, Schema
from video_caption.summary import throughput
from video_caption.workers import default_workers, run_isolated, usable_cores

STAGE = "cut"
SCHEMA = Schema(COMMON + SETTINGS)
# A worker's peak on a 4K source, with room: decoder frames, the detector's look-ahead and the encoders.
WORKER_BYTES = 3 << 30


def parse_args(argv=None):
    p = Parser("python -m video_caption.cut", __doc__)
    g = SCHEMA.add_arguments(p, 1)["execution"]
    g.add_argument("--buffer-mb", type=int, default=512, help="raw frames held per clip before encoding starts")
    g.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def settings_from(args, device: str | None) -> CutSettings:
    preset, crf = ("ultrafast", 18) if args.fast else (args.preset, args.crf)
    return CutSettings(
        detector=args.detector,
        threshold=args.threshold,
        min_scene_len=args.min_scene_len,
        black_level=args.black_level,
        plan=PlanSettings(args.min_seconds, args.max_seconds, args.margin_frames),
        min_side=args.min_source_side,
        encoder=EncoderSettings(args.codec, preset, crf, args.keep_audio, args.encoder_threads),
        buffer_mb=args.buffer_mb,
        device=device,
        transitions=args.transitions,
        event_similarity=args.event_similarity,
        deferred=args.clips == "deferred",
    )


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging(args.verbose)
    try:  # before anything is written: a wrong input leaves no output folder behind
        _, sources = list_sources(args.video_folder)
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    ranks = Ranks.launched(args.cpu)
    # The transnetv2 detector on this rank's device; one process nobody launched lets it choose.
    settings = settings_from(args, args.detector_device or (ranks.device if ranks.world > 1 or args.cpu else None))
    # WORKERS (or the cores and memory) is per machine, shared by the ranks there.
    workers = max(1, (args.workers or default_workers(WORKER_BYTES)) // ranks.local_world)
    out = output_folder(args.output_folder)
    options = RunOptions(out, settings.device or "", 1, workers, args.source_stall_timeout)
    with StageRun(STAGE, "stage 1", out, ranks, options, log) as run:
        return _cut_all(run, settings, sources)


def _file_size(source: Source) -> int:
    try:
        return source.path.stat().st_size
    except OSError:
        return 0  # unreadable: its worker records why


def stale_sources(scene_rows: list[dict], current: dict) -> set[str]:
    """The sources cut with other settings than ``current`` (pure).  A row that records none was cut
    before rows recorded them, and is kept as it is."""
    return {row[KEY] for row in scene_rows if "cut_settings" in row and row["cut_settings"] != current}


def supersede_sources(out: Path, stale: set[str]) -> int:
    """Move the rows and clip files of the ``stale`` sources to superseded/ (kept, never deleted), clips
    first: a run killed in between finds the source stale again and moves what is left.  The number
    of clips moved."""
    clip_rows = read_rows(out / META_CLIPS)
    gone = [row for row in clip_rows if row.get("source_path") in stale]
    with ManifestWriter(out / SUPERSEDED / META_CLIPS, key=None) as kept:
        kept.append(gone)
    for row in gone:
        if is_deferred(row):
            continue
        old = path_under(out, row[KEY])
        if old.exists():
            new = path_under(out / SUPERSEDED, row[KEY])
            new.parent.mkdir(parents=True, exist_ok=True)
            os.replace(old, new)
    rewrite(out / META_CLIPS, (row for row in clip_rows if row.get("source_path") not in stale))
    scene_rows = read_rows(out / SCENE_INFO)
    with ManifestWriter(out / SUPERSEDED / SCENE_INFO, key=None) as kept:
        kept.append([row for row in scene_rows if row[KEY] in stale])
    rewrite(out / SCENE_INFO, (row for row in scene_rows if row[KEY] not in stale))
    return len(gone)


def _cut_all(run: StageRun, settings: CutSettings, sources: list[Source]) -> int:
    out, log, ranks = run.out, run.log, run.ranks
    current = normalized(settings.row_settings())
    stale: set[str] = set()

    def prepare() -> None:
        for name in (SCENE_INFO, META_CLIPS):  # the rows a killed run left in its parts are done work
            merge_parts(out / name)
        stale.update(stale_sources(read_rows(out / SCENE_INFO), current) & {s.key for s in sources})
        if stale:
            moved = supersede_sources(out, stale)
            run.superseded.update(sources=len(stale), clips=moved)
            log.warning("%d sources were cut with other settings: their rows and %d clips moved to %s/ and cut "
                        "again", len(stale), moved, SUPERSEDED)

    def pending() -> list[Source]:
        done = done_keys(out / SCENE_INFO)
        return [s for s in sources if s.key not in done]  # by key: the same list, so the same shares, on every rank

    with run.shares([out / SCENE_INFO, out / META_CLIPS], prepare, pending) as (todo, mine):
        # The largest files first: the workers then end together, not with one long source alone.
        mine = sorted(mine, key=_file_size, reverse=True)
        workers = run.options.num_workers
        # Each worker's decoder gets its share of the cores: more threads than cores only cost time
        # (two workers on two cores: 9 % less wall time with one decoder thread each than with libav's 3).
        settings = replace(settings, decoder_threads=max(
            1, usable_cores() // (ranks.local_world * max(1, min(workers, len(mine))))))
        if ranks.main:
            log.info("%d sources, %d already done, %d to cut with detector %s on %d process(es), %d workers%s, "
                     "clips %s", len(sources), len(sources) - len(todo), len(todo), settings.detector, ranks.world,
                     workers, " each" if ranks.world > 1 else "",
                     "deferred (no clip file)" if settings.deferred else "encoded")
        if mine:
            _cut_share(run, settings, current, mine)
    elapsed = time.time() - run.started
    cut = done_keys(out / SCENE_INFO)
    failed = sum(s.key not in cut for s in todo)  # every rank's, read back after the merge
    status = 2 if failed else 0
    if not ranks.main:
        run.finish({})
        return status
    clip_rows = read_rows(out / META_CLIPS)
    ran = {s.key for s in todo}
    written = [row for row in clip_rows if row.get("source_path") in ran]
    log.info("stage 1 done in %.1f s: %d sources cut, %d failed, %d gave no clip, %d clips %s %s", elapsed,
             len(todo) - failed, failed, len(ran & cut) - len({row.get("source_path") for row in written}),
             len(written), "planned (deferred: no file yet) in" if settings.deferred else "written to", out)
    run.finish({
        "sources": len(sources), "sources_done": len(cut), "sources_failed": sum(s.key not in cut for s in sources),
        "clips": len(clip_rows), "images": sum(media_type(row) == IMAGE for row in clip_rows),
        "deferred": sum(is_deferred(row) for row in clip_rows)},
        {"sources": len(todo), "clips_written": len(written), "sources_per_s": throughput(len(todo), elapsed)})
    return status


def _cut_share(run: StageRun, settings: CutSettings, current: dict, mine: list[Source]) -> None:
    """Cut this rank's sources, each in a supervised worker process, into its part files."""
    out, log = run.out, run.log
    counts = {"clips": 0, "failed": 0}
    bar = progress(len(mine), "stage 1: cut") if run.ranks.main else None  # rank 0's share, as in stages 2-3

    def advance() -> None:
        if bar is not None:
            bar.update(1)
            bar.set_postfix(**counts)

    def failed(source, exc: Exception):
        if is_storage_error(exc):
            raise exc
        remove_partial_clips(out, source)
        message = str(exc) if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
        counts["failed"] += 1
        run.errors.add(STAGE, source.key, message, output=SCENE_INFO)
        log.warning("failed: %s: %s", source.key, message)
        advance()

    with ManifestWriter(part_path(out / SCENE_INFO, run.ranks.rank)) as scenes, \
            ManifestWriter(part_path(out / META_CLIPS, run.ranks.rank)) as clips:

        def cut(source, result):
            clips.append(result.clip_rows)
            scenes.append([{**result.scene_row, "cut_settings": current}])
            counts["clips"] += len(result.clip_rows)
            if not result.clip_rows:
                log.info("no clip from %s: %s", source.key, result.scene_row.get("skipped"))
            advance()

        try:
            run_isolated(mine, cut_source, (out, settings), run.options.num_workers, cut, failed,
                         run.options.stall_timeout)
        except BaseException:
            # The run stops (a full disk, an interrupt) and its workers are killed mid-source: their
            # unfinished clip files go now, as far as the disk lets them (a rerun removes the rest).
            for source in mine:
                with contextlib.suppress(OSError):
                    remove_partial_clips(out, source)
            raise
        finally:
            if bar is not None:
                bar.close()


if __name__ == "__main__":
    sys.exit(main())
