"""Cut one source into clips in a single decoding pass.

Frames are decoded once (PyAV, in a thread of its own, ``Ahead``, ahead of the analysis, which for
deferred clips runs at a lower priority so that it never holds the decoder up).  Each frame goes,
scaled down, to the shot detector and the transition and purity finders, and waits in a look-ahead
queue until none of them can report a cut at or before it any more; it is then placed by the
ClipAssembler, and the frames of a clip go, as decoded, to an encoder in this process.  Clips
therefore hold exactly the source frames [start_frame, end_frame), whatever the container's
timestamps say, and the source is never decoded a second time.

The encoders do most of the work (a kept frame costs about five times its decoding), and the
decoder does not wait for them: each encoder encodes in a thread of its own from a queue, and the
encoders of consecutive clips overlap, so while the decoder crosses frames no clip keeps, the
encoders still work on the frames before.  The queued frames of all clips together are bounded
(``backlog_mb``): past that, the decoder waits.

Memory stays flat in the source's length.  Raw frames are held (without copies, as the decoder's
frames) decoded but not yet analysed (``AHEAD_BYTES``), in the look-ahead queue (the finders' lag:
about 5.6 s of frames; deferred clips keep only the frames' times there), at a clip's start (at most
``min_frames`` of them, or ``buffer_mb``, until it is certain the clip reaches the minimum length, so
no encoder work is wasted on short shots) and in the encoders' queues (``backlog_mb``).
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath

import numpy as np

from video_caption.cut.detectors import make_detector
from video_caption.cut.events import MIN_SIMILARITY, EventSettings, SameShot
from video_caption.cut.images import image_clip
from video_caption.cut.plan import ClipAssembler, PlanSettings, clean_cuts
from video_caption.cut.purity import ChangeFinder, PuritySettings, clip_contrast, colour_root
from video_caption.cut.transitions import (
    SIZE,
    BlackFrames,
    Transition,
    TransitionFinder,
    TransitionSettings,
    grey,
    merge_ranges,
    shrink,
)
from video_caption.inputs import Source, path_under
from video_caption.manifest import VIDEO
from video_caption.materialize import deferred_fields
from video_caption.media.decode import DecodedFrame, decode_frames
from video_caption.media.encode import Backlog, Encoder, EncoderSettings
from video_caption.media.image import is_image
from video_caption.media.probe import VideoInfo, probe
from video_caption.media.process import MediaError
from video_caption.workers import at_lower_priority, heartbeat

TMP_SUFFIX = ".tmp.mp4"
# Frames decoded ahead of the analysis.  Deferred: at most DEFERRED_AHEAD, and at most AHEAD_BYTES
# of them, enough for the analysis, at a lower priority than the decoder, to catch up in the
# decoder's idle moments.  Encoded: the encoders set the pace, and more frames ahead only hold memory.
AHEAD, DEFERRED_AHEAD, AHEAD_BYTES = 8, 64, 96 << 20
# Encoders still finishing clips (all their frames given) beside the one being fed: two keep both
# cores of a small machine busy; each more holds one more encoder's memory (about 150 MB at 720p).
FINISHING = 2


@dataclass(frozen=True)
class CutSettings:
    detector: str = "content"
    threshold: float | None = None
    min_scene_len: int = 6
    black_level: float = 4.0
    plan: PlanSettings = field(default_factory=PlanSettings)
    min_side: int = 0  # sources whose shorter side is below this are skipped
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    buffer_mb: int = 512  # raw frames held at a clip's start until it is certain to be long enough
    backlog_mb: int = 256  # raw frames queued for the encoders, all clips together
    device: str | None = None
    transitions: bool = True  # find dissolves, fades and other changes, and keep clips clear of them
    # A candidate cut whose pictures before come back after it (at this correlation) is an event
    # inside the shot: a flash, a strobe, a whip pan (cut/events.py).  Above 1: every candidate cuts.
    event_similarity: float = MIN_SIMILARITY
    deferred: bool = False  # plan clips as source ranges only; ``materialize`` encodes the kept ones later
    decoder_threads: int = 0  # 0: libav's choice; the command line gives each worker its share of the cores

    def row_settings(self) -> dict:
        """What defines a source's rows and clips (recorded on its meta_scene_info.jsonl row): another
        value re-cuts it; worker counts, threads, buffers and the device do not."""
        return {"detector": self.detector, "threshold": self.threshold, "min_scene_len": self.min_scene_len,
                "black_level": self.black_level, "transitions": self.transitions, "min_side": self.min_side,
                "event_similarity": self.event_similarity,
                "plan": dataclasses.asdict(self.plan), "deferred": self.deferred,
                "encoder": {k: v for k, v in dataclasses.asdict(self.encoder).items() if k != "threads"}}


@dataclass
class SourceResult:
    scene_row: dict
    clip_rows: list[dict]


class _Piece:
    """The clip being assembled: frames held back until it is long enough, then an encoder."""

    def __init__(self, start: DecodedFrame):
        self.start = start
        self.held: list[list] = []
        self.encoder: Encoder | None = None
        self.roots: list = []  # colour histograms of its frames, for the purity check


class _SourceCutter:
    def __init__(self, source: Source, output_folder: Path, settings: CutSettings, info: VideoInfo):
        self.source, self.settings, self.info = source, settings, info
        self.output_folder = output_folder
        self.clip_dir = path_under(output_folder / "clips", source.key)
        self.width, self.height = info.width // 2 * 2, info.height // 2 * 2
        self.frame_bytes = self.width * self.height * 3 // 2
        self.min_frames, self.max_frames = settings.plan.frame_limits(info.fps)
        self.piece: _Piece | None = None
        self.recent: dict[int, DecodedFrame] = {}
        self.roots: dict[int, np.ndarray] = {}
        self.purity = PuritySettings.for_fps(float(info.fps))
        self.dropped: list[list] = []  # [start, end, reason] of the clips the purity check dropped
        self.events: list[int] = []  # candidate cuts that were events inside a shot (cut/events.py)
        self.finishing: deque[tuple[Encoder, Path, dict]] = deque()
        self.backlog = Backlog(settings.backlog_mb << 20)  # shared by this source's encoders
        self.rows: list[dict] = []
        self.audio = settings.encoder.audio and info.has_audio and not settings.deferred

    # -- clip files ---------------------------------------------------------------------------
    def _clip_name(self, start: int, end: int) -> str:
        return f"{PurePosixPath(self.source.key).stem}_{start:06d}-{end:06d}.mp4"

    def _start_encoder(self, piece: _Piece) -> None:
        tmp = self.clip_dir / f".{piece.start.index:06d}.{os.getpid()}{TMP_SUFFIX}"
        piece.encoder = Encoder(
            tmp, self.width, self.height, self.info.fps, self.settings.encoder,
            audio_source=self.source.path if self.audio else None,
            audio_start=piece.start.time, backlog=self.backlog,
        )
        for data in piece.held:
            piece.encoder.write(data)
        piece.held = []

    def _add(self, frame: DecodedFrame) -> None:
        piece = self.piece
        if piece is None:
            piece = self.piece = _Piece(frame)
        piece.roots.append(self.roots[frame.index])
        if self.settings.deferred:
            return
        data = frame.video_frame(self.width, self.height)
        if piece.encoder is not None:
            piece.encoder.write(data)
            return
        piece.held.append(data)
        held = len(piece.held)
        if held >= self.min_frames or held * self.frame_bytes > self.settings.buffer_mb * 2**20:
            self._start_encoder(piece)

    def _commit(self, start: int, end: int) -> None:
        value, split = clip_contrast(np.asarray(self.piece.roots), self.purity.min_part)
        if value > self.purity.max_clip_contrast and self.pictures.is_event(start + split):
            self.events.append(start + split)  # its colours change there, its picture does not: lights
        elif value > self.purity.max_clip_contrast:
            self.dropped.append([start, end, f"two shots: colour contrast {value:.2f} at frame {start + split}"])
            self._drop()
            return
        piece, self.piece = self.piece, None
        last = self.recent[end - 1]
        num_frames = end - start
        fps = Fraction(self.info.fps)
        row = {
            "video_path": str(PurePosixPath("clips", self.source.key, self._clip_name(start, end))),
            "source_path": self.source.key,
            "type": VIDEO,
            "start_frame": start,
            "end_frame": end,
            "start_time": round(piece.start.time - self.info.start_time, 6),
            "end_time": round(last.time - self.info.start_time + 1 / float(fps), 6),
            "duration": round(num_frames / float(fps), 6),
            "fps": round(float(fps), 6),
            "num_frames": num_frames,
            "width": self.width,
            "height": self.height,
            "shot_change": round(max(0.0, value), 3),
        }
        if self.settings.deferred:
            self.rows.append({**row, **deferred_fields(self.source.path, self.settings.encoder, self.info.has_audio)})
            return
        if piece.encoder is None:
            self._start_encoder(piece)
        piece.encoder.close()
        self.finishing.append((piece.encoder, self.clip_dir / self._clip_name(start, end), row))
        # Encoders finish in the background; collect those done, oldest first (rows stay in clip
        # order), and wait for the oldest while too many run.
        while self.finishing and (self.finishing[0][0].done() or len(self.finishing) > FINISHING):
            self._reap()

    def _drop(self) -> None:
        piece, self.piece = self.piece, None
        if piece.encoder is not None:
            piece.encoder.kill()
            piece.encoder.out_path.unlink(missing_ok=True)

    def _reap(self) -> None:
        encoder, final, row = self.finishing[0]
        encoder.wait()  # on failure it stays in ``finishing``, so _abort deletes its partial file
        self.finishing.popleft()
        os.replace(encoder.out_path, final)
        self.rows.append(row)

    # -- the pass -------------------------------------------------------------------------------
    def run(self) -> tuple[list[int], list[Transition], int]:
        """The pass: (cuts, transitions, frames decoded); ``self.events``: the candidate cuts found to
        be events inside a shot.  Deferred, the analysis runs a step below
        the decoder's priority: the decoder never waits for a core while the analysis has frames to
        catch up on (measured on 2 cores: 1.80 cores busy instead of 1.71, for the same CPU time).
        Encoded, the encoders the analysis starts would inherit the lower priority, and the decoder
        would only fill their queues: no time gained, 0.1-0.5 GB more held (measured)."""
        deferred = self.settings.deferred
        depth = max(2, min(DEFERRED_AHEAD if deferred else AHEAD, AHEAD_BYTES // self.frame_bytes))
        frames = Ahead(decode_frames(self.source.path, self.info, self.settings.decoder_threads), depth)
        try:
            return at_lower_priority(self._cut, frames) if deferred else self._cut(frames)
        finally:
            frames.close()

    def _cut(self, frames: Ahead) -> tuple[list[int], list[Transition], int]:
        settings = self.settings
        if not settings.deferred:
            self.clip_dir.mkdir(parents=True, exist_ok=True)
            remove_partial_clips(self.output_folder, self.source)
        detector = make_detector(settings.detector, self.info.fps, settings.threshold, settings.min_scene_len,
                                 settings.black_level, settings.device)
        det_w, det_h = detector.image_size(self.info.width, self.info.height)
        finders = [TransitionFinder(TransitionSettings.for_fps(float(self.info.fps))),
                   ChangeFinder(self.purity)] if settings.transitions else []
        black = BlackFrames(settings.black_level)
        same = EventSettings.for_fps(float(self.info.fps), settings.event_similarity)
        # A candidate is judged when the frames of its window after it are in: at the latest at settling.
        lag = max([detector.lag + same.window] + [finder.lag for finder in finders])
        # Pictures held back to the start of the longest clip: the purity check judges a whole clip.
        pictures = self.pictures = SameShot(same, lag + self.max_frames)
        pending: list[Transition] = []  # gradual changes found, not yet judged events or transitions
        changes: list[tuple[int, int]] = []  # every gradual change found, for the judging
        assembler = ClipAssembler(self.min_frames, self.max_frames, settings.plan.margin_frames)
        margin = settings.plan.margin_frames
        cuts: set[int] = set()
        transitions: list[Transition] = []
        bounds: set[int] = set()  # the cuts that bound transitions
        excluded: set[int] = set()  # frames inside transitions
        lookahead: deque[DecodedFrame] = deque()  # frames waiting out the detectors' lag
        count = 0

        def found(more: list[Transition]) -> None:
            for t in more:
                if t.kind == "cut":  # the purity check's; the detector may have it already
                    if not any(abs(c - t.first) <= margin for c in cuts):
                        cuts.add(t.first)
                    continue
                pending.append(t)
                changes.append((t.first, t.last))
            mark_black()

        def judge(latest: int | None) -> None:
            """The pending changes whose first frame settles next (all of them at the end, ``latest``
            None): events inside a shot (short, alone, and its picture before is there again after:
            lights switched off) or transitions, kept out of clips."""
            for t in list(pending):
                if latest is not None and t.first + lag > latest + 1:
                    continue
                pending.remove(t)
                if same.may_be_event(t.first, t.last, changes) and pictures.is_event(t.first, t.last + 1):
                    self.events.append(t.first)
                    continue
                transitions.append(t)
                bounds.update((t.first, t.last + 1))
                excluded.update(range(t.first, t.last + 1))

        def mark_black() -> None:
            # Black frames are known at once: out of clips before any of them settles.
            if black.current is not None:
                bounds.add(black.current)
                excluded.update(range(black.current, black.last + 1))

        def settle(frame: DecodedFrame) -> None:
            index = frame.index
            if index in cuts and index not in bounds and pictures.is_event(index):
                cuts.discard(index)
                self.events.append(index)
            self.recent[index] = frame
            self.recent.pop(index - margin - 2, None)
            self.roots.pop(index - margin - 2, None)
            for event in assembler.push(index, index in cuts or index in bounds, index in excluded):
                self._apply(event)
            excluded.discard(index)

        try:
            for frame in frames:
                heartbeat()
                count += 1
                image = frame.image(det_w, det_h, detector.image_format, detector.exact_resize)
                cuts.update(detector.push(frame.index, image))
                # The detector's copy, when it is at least as large (no second conversion).
                small = shrink(image if image.shape[1] >= SIZE[0] and image.shape[0] >= SIZE[1] else frame.image(*SIZE))
                root = self.roots[frame.index] = colour_root(small, detector.image_format)
                pictures.push(frame.index, small)
                if finders:
                    level = grey(small)
                    found(finders[0].push(frame.index, level) + finders[1].push(frame.index, root, level))
                    found(black.push(frame.index, float(level.mean())))
                    judge(frame.index)
                # Deferred clips need no pixels past this point: the decoder reuses the buffer at
                # once instead of touching new memory (a 720p frame held is 340 page faults; the
                # 5-minute source's stage takes 273 MiB instead of 376).
                lookahead.append(frame.without_picture() if settings.deferred else frame)
                while lookahead[0].index + lag <= frame.index:
                    settle(lookahead.popleft())
            cuts.update(detector.finish())
            for finder in finders:
                found(finder.finish())
            if finders:
                found(black.finish())
                judge(None)
            while lookahead:
                settle(lookahead.popleft())
            for event in assembler.finish():
                self._apply(event)
            while self.finishing:
                self._reap()
        except BaseException:
            self._abort()  # ``run`` stops the decoding thread
            raise
        transitions = merge_ranges(transitions, gap=round(float(self.info.fps) / 2))
        return clean_cuts(cuts, count), transitions, count

    def _apply(self, event) -> None:
        if event.kind == "add":
            self._add(self.recent[event.start])
        elif event.kind == "commit":
            self._commit(event.start, event.end)
        else:
            self._drop()

    def _abort(self) -> None:
        if self.piece is not None and self.piece.encoder is not None:
            self.piece.encoder.kill()
            self.piece.encoder.out_path.unlink(missing_ok=True)
        for encoder, _, _ in self.finishing:
            encoder.kill()
            encoder.out_path.unlink(missing_ok=True)


class Ahead:
    """``frames``, decoded by a thread of their own up to ``depth`` frames ahead of the caller: the
    decoder keeps working while the caller analyses the frames before (the decoder alone keeps two
    cores only about 80 % busy).  The thread starts at once, so it (and libav's decoding threads)
    run at the priority of the thread that makes the ``Ahead``, whichever thread iterates it.  Its
    errors are raised to the caller, in order; ``close`` stops it."""

    def __init__(self, frames: Iterator[DecodedFrame], depth: int):
        self._handed: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._frames = frames
        self._thread = threading.Thread(target=self._decode, name="decoder", daemon=True)
        self._thread.start()

    def _offer(self, item: tuple) -> bool:
        while not self._stop.is_set():  # the caller may stop taking frames at any time
            try:
                self._handed.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def _decode(self) -> None:
        try:
            for frame in self._frames:
                if not self._offer((frame, None)):
                    return
            self._offer((None, None))
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            self._offer((None, exc))
        finally:
            self._frames.close()

    def __iter__(self) -> Iterator[DecodedFrame]:
        while (item := self._handed.get())[0] is not None:
            yield item[0]
        if item[1] is not None:
            raise item[1]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def remove_partial_clips(output_folder: Path, source: Source) -> None:
    """Delete the unfinished clip files a killed, crashed or stalled run left for this source."""
    clip_dir = path_under(output_folder / "clips", source.key)
    for partial in clip_dir.glob(f".*{TMP_SUFFIX}"):
        partial.unlink(missing_ok=True)


def cut_source(source: Source, output_folder: Path, settings: CutSettings) -> SourceResult:
    """Probe, detect and cut one source (an image is not cut: ``image_clip``).  Raises MediaError
    when it cannot be read."""
    if is_image(source.path):
        return SourceResult(*image_clip(source, output_folder, settings.min_side))
    info = probe(source.path)
    scene_row = {"video_path": source.key, "type": VIDEO, **info.as_row(), "detector": settings.detector}
    if settings.min_side and min(info.width, info.height) < settings.min_side:
        reason = f"resolution {info.width}x{info.height} below {settings.min_side}"
        scene_row.update(cuts=[], num_clips=0, skipped=reason)
        return SourceResult(scene_row, [])
    cutter = _SourceCutter(source, output_folder, settings, info)
    cuts, transitions, decoded = cutter.run()
    if decoded == 0:
        raise MediaError("no frame could be decoded")
    scene_row.update(num_frames=decoded, cuts=cuts, num_clips=len(cutter.rows))
    if cutter.events:
        scene_row["events"] = sorted(set(cutter.events))  # candidate cuts (or changes) that were events inside a shot
    if settings.transitions:
        scene_row["transitions"] = [t.as_row() for t in transitions]
    if cutter.dropped:
        scene_row["dropped_clips"] = cutter.dropped
    if not cutter.rows:
        scene_row["skipped"] = f"no shot lasts {settings.plan.min_seconds:g} s"
    return SourceResult(scene_row, cutter.rows)
