"""Materialize deferred clips: encode the clips stage 1 planned as source ranges (``CLIPS=deferred``)
into the very files its encoded mode would have written.

Stage 1 in deferred mode writes no clip file: each ``meta_clips.jsonl`` row holds its source
(``source_file``), its frames ``[start_frame, end_frame)`` and the encoder settings stage 1 was given
(``encoder``).  Stages 2 and 3 read frames from the sources, and only the clips that survive them are
encoded, by this step: the last step of stage 3, or ``datautil materialize`` on any manifest.

A clip is made as stage 1 makes it: the source decoded from the key frame before the clip's first
frame, its frames ``[start_frame, end_frame)`` (numbered as stage 1 numbers them) turned upright,
cropped to the clip's even size and encoded by the same encoder with the same settings, audio read
from the source at the clip's start.  With one encoder thread (``ENCODER_THREADS=1``) the file's
frames are those of the clip encoded mode writes, bit for bit.

Clips of one source in a batch share one decoding pass (seeking over the GOPs no clip needs), and
their encoders overlap, as in stage 1.  A clip file appears only when complete (written beside it,
then renamed); the step's manifest (``materialized.jsonl``) says which clips are done, so a killed
run redoes only the rest.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from video_caption.distributed import Ranks
from video_caption.inputs import path_under
from video_caption.loader import Item
from video_caption.manifest import KEY, MATERIALIZED, META_CLIPS, is_deferred, read_rows
from video_caption.media.decode import frames_at
from video_caption.media.encode import Encoder, EncoderSettings
from video_caption.media.probe import probe
from video_caption.media.process import MediaError
from video_caption.runner import RunOptions, StageRun, Step, digest

TMP_SUFFIX = ".tmp.mp4"


def deferred_fields(source: Path, encoder: EncoderSettings, has_audio: bool) -> dict:
    """What a deferred clip row holds beside its range: where its frames are, and how ``materialize``
    must encode them to make the clip stage 1 would have made."""
    return {"deferred": True, "source_file": str(source),
            "encoder": {**asdict(encoder), "audio": encoder.audio and has_audio}}


@dataclass
class _Clip:
    row: dict
    path: Path
    start: int
    end: int
    encoder: Encoder | None = None

    def begin(self, source: Path, fps: Fraction, audio_start: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for stale in self.path.parent.glob(f".{self.path.name}.*{TMP_SUFFIX}"):  # a killed run's
            stale.unlink(missing_ok=True)
        settings = EncoderSettings(**self.row["encoder"])
        tmp = self.path.parent / f".{self.path.name}.{os.getpid()}{TMP_SUFFIX}"
        self.encoder = Encoder(tmp, int(self.row["width"]), int(self.row["height"]), fps, settings,
                               audio_source=source if settings.audio else None, audio_start=audio_start)

    def finish(self) -> dict:
        self.encoder.wait()
        if self.encoder.frames != self.end - self.start:
            raise MediaError(f"the source gave {self.encoder.frames} of the clip's {self.end - self.start} frames "
                             f"(from frame {self.start})")
        os.replace(self.encoder.out_path, self.path)
        return {"clip_bytes": self.path.stat().st_size}

    def abandon(self) -> None:
        if self.encoder is not None:
            self.encoder.kill()
            self.encoder.out_path.unlink(missing_ok=True)


def encode_ranges(root: Path, source: Path, rows: list[dict], encoders: int = 2) -> dict[str, dict | Exception]:
    """Encode the clips ``rows`` of one ``source`` into their ``video_path`` under ``root``, in one
    decoding pass; at most ``encoders`` clips finish encoding at once while the source is decoded
    on.  Returns each clip's result row, or the exception it failed with."""
    results: dict[str, dict | Exception] = {}
    try:
        info = probe(source)
        clips = sorted((_Clip(row, path_under(root, row[KEY]), int(row["start_frame"]), int(row["end_frame"]))
                        for row in rows), key=lambda clip: clip.start)
    except (MediaError, OSError, KeyError, ValueError) as exc:
        return {row[KEY]: exc for row in rows}
    waiting, active, finishing = deque(clips), [], deque()

    def reap() -> None:
        clip = finishing.popleft()
        try:
            results[clip.row[KEY]] = clip.finish()
        except MediaError as exc:
            clip.abandon()
            results[clip.row[KEY]] = exc

    wanted = sorted({i for clip in clips for i in range(clip.start, clip.end)})
    try:
        for frame in frames_at(source, wanted, sparse=False):
            while waiting and waiting[0].start <= frame.index:
                clip = waiting.popleft()
                clip.begin(source, info.fps, frame.time)
                active.append(clip)
            # Each encoder owns its frames: clips that overlap get copies.
            for n, clip in enumerate(c for c in active if c.start <= frame.index < c.end):
                clip.encoder.write(frame.video_frame(int(clip.row["width"]), int(clip.row["height"]), copy=n > 0))
            for clip in [c for c in active if frame.index >= c.end - 1]:
                active.remove(clip)
                clip.encoder.close()
                finishing.append(clip)
            while len(finishing) > encoders:
                reap()
        # A source shorter than its clips (changed since stage 1): the count check fails them.
        finishing.extend(active)
        active.clear()
        while finishing:
            reap()
    except BaseException as exc:
        for clip in [*active, *finishing, *waiting]:
            clip.abandon()
            results[clip.row[KEY]] = exc
        if not isinstance(exc, MediaError):
            raise
        return results
    for clip in waiting:
        results[clip.row[KEY]] = MediaError(f"the source ends before the clip's first frame {clip.start}")
    return results


class MaterializeStep(Step):
    """Encode the deferred clips given (rows of ``meta_clips.jsonl``, or anything carrying their
    fields) into their files under ``root``."""

    name = "materialize"
    output = MATERIALIZED

    def __init__(self, root: Path, stage: str, encoders: int = 2):
        self.root, self.stage, self.encoders = root, stage, encoders

    def input_digest(self, row: dict) -> str:
        # A clip is redone when its range, source or encoder settings change.
        return digest([row.get(k) for k in ("source_file", "start_frame", "end_frame", "width", "height", "encoder")])

    def process(self, items: list[Item]) -> list[dict | Exception]:
        by_source: dict[str, list[dict]] = {}
        for item in items:
            by_source.setdefault(item.row.get("source_file") or "", []).append(item.row)
        results: dict[str, dict | Exception] = {}
        for source, rows in by_source.items():
            if not source:
                results.update({row[KEY]: MediaError("not a deferred clip: no source_file") for row in rows})
                continue
            results.update(encode_ranges(self.root, Path(source), rows, self.encoders))
        return [results[item.row[KEY]] for item in items]


def materialize_folder(out: Path, keys: list[str], batch_size: int, encoders: int, log) -> tuple[set[str], set[str]]:
    """Encode the deferred clips of ``meta_clips.jsonl`` among ``keys`` (clips already done are
    skipped); (the keys of the clips made now or before, those that failed).  Records its section
    of ``summary.json``."""
    meta = {row[KEY]: row for row in read_rows(out / META_CLIPS)}
    wanted = list(dict.fromkeys(keys))
    rows = [meta[key] for key in wanted if key in meta and is_deferred(meta[key])]
    unknown = sum(key not in meta for key in wanted)
    if unknown:
        log.warning("materialize: %d clips are not in %s: skipped", unknown, out / META_CLIPS)
    if len(rows) + unknown < len(wanted):
        log.info("materialize: %d clips have their file already (stage 1 encoded them): skipped",
                 len(wanted) - len(rows) - unknown)
    options = RunOptions(out, "cpu", batch_size, 0, 0)
    with StageRun("materialize", "materialize", out, Ranks.alone(), options, log) as run:
        made = set(run.step(MaterializeStep(out, "materialize", encoders), rows))
        failed = {row[KEY] for row in rows} - made
        run.finish({"clips": len(rows), "materialized": len(made), "failed": len(failed)})
    return made, failed
