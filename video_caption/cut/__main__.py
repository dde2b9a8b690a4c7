"""Stage 1 command line: cut every source video into single-shot clips.  Still images (jpg, png,
webp) are not cut: each is one clip row of type image, its file placed under clips/.

    python -m video_caption.cut --video-folder VIDEOS --output-folder OUT [options]

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
from video_caption.inputs import Source, list_sources, path_under
from video_caption.logs import progress, setup_logging
from video_caption.manifest import (
    ERRORS,
    IMAGE,
    KEY,
    META_CLIPS,
    SCENE_INFO,
    ErrorLog,
    ManifestWriter,
    done_keys,
    is_deferred,
    is_storage_error,
    lock_folder,
    media_type,
    read_rows,
    rewrite,
)
from video_caption.media.encode import EncoderSettings
from video_caption.media.process import MediaError
from video_caption.runner import SUPERSEDED, normalized
from video_caption.settings import COMMON, Schema
from video_caption.summary import record_stage, result, throughput
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


def settings_from(args) -> CutSettings:
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
        device=args.detector_device,
        transitions=args.transitions,
        deferred=args.clips == "deferred",
    )


@entry_point
def main(argv=None) -> int:
    args = parse_args(argv)
    log = setup_logging(args.verbose)
    settings = settings_from(args)
    if args.workers is None:
        args.workers = default_workers(WORKER_BYTES)
    try:  # before anything is written: a wrong input leaves no output folder behind
        _, sources = list_sources(args.video_folder)
    except (OSError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    out = output_folder(args.output_folder)
    with lock_folder(out, "stage 1"):
        return _cut_all(args, settings, sources, out, log)


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


def _cut_all(args, settings: CutSettings, sources: list[Source], out: Path, log) -> int:
    current = normalized(settings.row_settings())
    stale = stale_sources(read_rows(out / SCENE_INFO), current) & {s.key for s in sources}
    moved = supersede_sources(out, stale) if stale else 0
    if stale:
        log.warning("%d sources were cut with other settings: their rows and %d clips moved to %s/ and cut again",
                    len(stale), moved, SUPERSEDED)
    done = done_keys(out / SCENE_INFO)
    # The largest files first: the workers then end together, not with one long source alone.
    todo = sorted((s for s in sources if s.key not in done), key=_file_size, reverse=True)
    # Each worker's decoder gets its share of the cores: more threads than cores only cost time
    # (two workers on two cores: 9 % less wall time with one decoder thread each than with libav's 3).
    settings = replace(settings, decoder_threads=max(1, usable_cores() // max(1, min(args.workers, len(todo)))))
    log.info("%d sources, %d already done, %d to cut with detector %s, %d workers, clips %s", len(sources),
             len(sources) - len(todo), len(todo), settings.detector, args.workers,
             "deferred (no clip file)" if settings.deferred else "encoded")
    started = time.time()
    counts = {"ok": 0, "failed": 0, "no_clip": 0, "clips": 0}
    with ManifestWriter(out / SCENE_INFO) as scenes, ManifestWriter(out / META_CLIPS) as clips, \
            ErrorLog(out / ERRORS) as errors, progress(len(todo), "stage 1: cut") as bar:

        def failed(source, exc: Exception):
            if is_storage_error(exc):
                raise exc
            remove_partial_clips(out, source)
            message = str(exc) if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
            counts["failed"] += 1
            errors.add(STAGE, source.key, message, output=SCENE_INFO)
            log.warning("failed: %s: %s", source.key, message)
            bar.update(1)

        def cut(source, result):
            clips.append(result.clip_rows)
            scenes.append([{**result.scene_row, "cut_settings": current}])
            counts["ok"] += 1
            counts["clips"] += len(result.clip_rows)
            if not result.clip_rows:
                counts["no_clip"] += 1
                log.info("no clip from %s: %s", source.key, result.scene_row.get("skipped"))
            bar.update(1)
            bar.set_postfix(clips=counts["clips"], failed=counts["failed"])

        try:
            run_isolated(todo, cut_source, (out, settings), args.workers, cut, failed, args.source_stall_timeout)
        except BaseException:
            # The run stops (a full disk, an interrupt) and its workers are killed mid-source: their
            # unfinished clip files go now, as far as the disk lets them (a rerun removes the rest).
            for source in todo:
                with contextlib.suppress(OSError):
                    remove_partial_clips(out, source)
            raise
    elapsed = time.time() - started
    log.info("stage 1 done in %.1f s: %d sources cut, %d failed, %d gave no clip, %d clips %s %s", elapsed,
             counts["ok"], counts["failed"], counts["no_clip"], counts["clips"],
             "planned (deferred: no file yet) in" if settings.deferred else "written to", out)
    cut = done_keys(out / SCENE_INFO)
    clip_rows = read_rows(out / META_CLIPS)
    summary = record_stage(out, "cut", {
        "sources": len(sources), "sources_done": len(cut), "sources_failed": sum(s.key not in cut for s in sources),
        "clips": len(clip_rows), "images": sum(media_type(row) == IMAGE for row in clip_rows),
        "deferred": sum(is_deferred(row) for row in clip_rows),
        **({"superseded": {"sources": len(stale), "clips": moved}} if stale else {}),
        "run": {"wall_s": round(elapsed, 2), "sources": len(todo), "clips_written": counts["clips"],
                "sources_per_s": throughput(len(todo), elapsed)}})
    for line in result(summary, STAGE):
        log.info("%s", line)
    return 2 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
