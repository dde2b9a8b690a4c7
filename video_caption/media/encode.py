"""The H.264 encoder that writes clips from decoded frames, in-process (libav through PyAV)."""

from __future__ import annotations

import errno
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from video_caption.media.probe import ffmpeg_start_time
from video_caption.media.process import MediaError, media_path, run

AUDIO_BIT_RATE = 128_000
AUDIO_TIMEOUT_S = 600
# Errors of the output's disk: raised as OSError (the run stops), not charged to the source.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@dataclass(frozen=True)
class EncoderSettings:
    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 22
    audio: bool = True
    threads: int = 0  # 0: let the encoder decide


class Backlog:
    """The bytes of frames given to encoders and not yet encoded, over any number of encoders.
    ``add`` waits while more than ``limit`` are queued: whoever decodes the frames runs ahead of
    the encoders by at most that much, and never waits for them before."""

    def __init__(self, limit: int):
        self.limit = limit
        self.queued = 0
        self._changed = threading.Condition()

    def add(self, size: int) -> None:
        with self._changed:
            # Something queued is always being encoded, so the wait ends; an empty queue takes any frame.
            self._changed.wait_for(lambda: self.queued == 0 or self.queued + size <= self.limit)
            self.queued += size

    def remove(self, size: int) -> None:
        with self._changed:
            self.queued -= size
            self._changed.notify_all()


_END = None  # the end of a clip's frames, in an encoder's queue


class Encoder:
    """Encodes upright yuv420p frames into one MP4 clip file, in a thread of its own.

    ``write`` queues a frame (an ``av.VideoFrame`` of the clip's size, typically the decoder's own:
    no copy) and returns; the encoder's thread encodes and muxes it, so the caller decodes on while
    the frames before are encoded, up to ``backlog`` (shared by the encoders of one caller; by
    default each encoder queues one frame at most).  libav releases the GIL while it encodes, and
    x264 runs threads of its own.  A queued frame is the encoder's: it sets its timestamp, and the
    caller must not change its pixels.  In-process, a clip costs no process start and its frames
    no copy through a pipe: 17 % less CPU than an ffmpeg process per clip fed on stdin
    (docs/benchmarks.md).

    Audio (when kept): the source's first audio track from ``audio_start`` (the time of the clip's
    first frame in the source, as decoded) for as long as the frames written last, AAC, added by
    one ffmpeg process once the video is done (``_add_audio``).
    """

    def __init__(self, out_path: Path, width: int, height: int, fps: Fraction, settings: EncoderSettings,
                 audio_source: Path | None = None, audio_start: float = 0.0, backlog: Backlog | None = None):
        self.out_path = out_path
        self.frames = 0
        self._size, self._fps, self._settings = (width, height), Fraction(fps), settings
        self._audio_source, self._audio_start = audio_source, audio_start
        self._frame_bytes = width * height * 3 // 2
        self._backlog = backlog or Backlog(0)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._broken = False  # the encoder failed or was killed: the frames still queued are thrown away
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="encoder", daemon=True)
        self._thread.start()

    def write(self, frame) -> None:
        """Queue one frame."""
        if self._broken:
            self._raise("encoder stopped")
        self._backlog.add(self._frame_bytes)
        self._queue.put(frame)
        self.frames += 1

    def _run(self) -> None:
        import av

        container = video = None
        try:
            container = av.open(media_path(self.out_path), "w", format="mp4")
            video = container.add_stream(self._settings.codec, rate=self._fps)
            video.width, video.height = self._size
            video.pix_fmt = "yuv420p"
            video.codec_context.thread_count = self._settings.threads
            # Frame threads, as ffmpeg's command line has them: PyAV's default, slices, compresses worse.
            video.codec_context.thread_type = "FRAME"
            video.options = {"preset": self._settings.preset, "crf": str(self._settings.crf)}
        except Exception as exc:  # noqa: BLE001 - raised in the caller's thread
            self._fail(exc)
        count = 0
        while (frame := self._queue.get()) is not _END:
            try:
                if not self._broken:
                    frame.pts, frame.time_base = count, 1 / self._fps
                    frame.pict_type = av.video.frame.PictureType.NONE  # a key frame where x264 wants one
                    for packet in video.encode(frame):
                        container.mux(packet)
                    count += 1
            except Exception as exc:  # noqa: BLE001
                self._fail(exc)
            finally:
                self._backlog.remove(self._frame_bytes)
        try:
            if not self._broken:
                for packet in video.encode(None):
                    container.mux(packet)
                container.close()
                if self._audio_source is not None:
                    _add_audio(self.out_path, self._audio_source, self._audio_start, float(count / self._fps))
        except Exception as exc:  # noqa: BLE001
            self._fail(exc)
        finally:
            if container is not None and self._broken:
                try:
                    container.close()
                except Exception:  # noqa: BLE001 - the file is thrown away
                    pass

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._broken = True

    def _raise(self, what: str) -> None:
        """Raise the encoder's failure: OSError when the output disk is at fault, else MediaError."""
        self.close()  # its thread ends once it reaches the end of the queue
        self._thread.join()
        exc = self._error
        code = getattr(exc, "errno", None)
        if code is None:  # ffmpeg's command line (the audio) says it in words
            code = next((c for c in DISK_ERRNOS if os.strerror(c) in str(exc)), None)
        if code in DISK_ERRNOS:
            raise OSError(code, os.strerror(code), str(self.out_path)) from exc
        raise MediaError(f"{what}: {exc}") from exc

    def close(self) -> None:
        """Signal end of input; the queued frames are encoded and the file finished in the
        background until ``wait``."""
        if not self._closed:
            self._closed = True
            self._queue.put(_END)

    def done(self) -> bool:
        """Whether ``wait`` would return at once: every frame encoded and the file finished."""
        return not self._thread.is_alive()

    def wait(self) -> None:
        """Wait for the encoder; raise MediaError (OSError for the disk) if it failed."""
        self.close()
        self._thread.join()
        if self._broken:
            self._raise("encoder failed")

    def kill(self) -> None:
        """Stop at once: the frames still queued are dropped and the file is left unfinished."""
        self._broken = True
        self.close()
        self._thread.join()


def _add_audio(clip: Path, source: Path, start: float, duration: float) -> None:
    """Give the video-only ``clip`` the audio of ``source`` from ``start`` (a time in the source) for
    ``duration`` seconds, AAC.  ffmpeg's command line does it (the video copied; its ``-ss`` counts
    from the file's start as it reads it, ``probe.ffmpeg_start_time``): it negotiates any source's
    channel layout and rate with the AAC encoder, where PyAV 18 crashes on some (measured: a double
    free reading the layout of PCM 7.1 in MOV; tests/test_clip_audio.py).  The result is written
    beside the clip (``<clip>.audio.tmp.mp4``: the callers' clean-up of partial files covers it) and
    replaces it."""
    muxed = clip.with_name(f"{clip.name}.audio.tmp.mp4")
    start -= ffmpeg_start_time(source)
    run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", media_path(clip),
         "-ss", f"{max(start, 0.0):.6f}", "-t", f"{duration:.6f}", "-i", media_path(source),
         "-map", "0:v:0", "-map", "1:a:0?", "-c:v", "copy", "-c:a", "aac", "-b:a", str(AUDIO_BIT_RATE),
         "-f", "mp4", media_path(muxed)], timeout=AUDIO_TIMEOUT_S, tied=False)  # it ends by itself
    os.replace(muxed, clip)
