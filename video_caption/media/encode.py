"""The ffmpeg encoder that writes clips from raw frames."""

from __future__ import annotations

import errno
import os
import queue
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from video_caption.media.process import MediaError, die_with_parent, media_path


@dataclass(frozen=True)
class EncoderSettings:
    codec: str = "libx264"
    preset: str = "veryfast"
    crf: int = 22
    audio: bool = True
    threads: int = 0  # 0: let the encoder decide


class Backlog:
    """The bytes of raw frames given to encoders and not yet written to them, over any number of
    encoders.  ``add`` waits while more than ``limit`` are queued: whoever decodes the frames runs
    ahead of the encoders by at most that much, and never waits for them before."""

    def __init__(self, limit: int):
        self.limit = limit
        self.queued = 0
        self._changed = threading.Condition()

    def add(self, size: int) -> None:
        with self._changed:
            # Something queued is always being written, so the wait ends; an empty queue takes any frame.
            self._changed.wait_for(lambda: self.queued == 0 or self.queued + size <= self.limit)
            self.queued += size

    def remove(self, size: int) -> None:
        with self._changed:
            self.queued -= size
            self._changed.notify_all()


_END = None  # the end of a clip's frames, in an encoder's queue


class Encoder:
    """An ffmpeg process that turns raw upright YUV frames on stdin into one clip file.

    ``write`` queues a frame and returns; a thread of the encoder's own writes the frames to
    ffmpeg, so the caller decodes on while ffmpeg works, up to ``backlog`` (shared by the encoders
    of one caller; by default each encoder queues one frame at most).  The queued frames are views
    of the decoder's frames: they must not change until written.

    Audio (when kept) is read by the same process straight from the source, seeking to the clip's
    start time, so the clip's audio stays in sync with exactly the frames that were written.
    """

    def __init__(self, out_path: Path, width: int, height: int, fps: Fraction, settings: EncoderSettings,
                 audio_source: Path | None = None, audio_start: float = 0.0, audio_duration: float = 0.0,
                 backlog: Backlog | None = None):
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
               "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}",
               "-framerate", f"{fps.numerator}/{fps.denominator}", "-i", "pipe:0"]
        if audio_source is not None:
            cmd += ["-ss", f"{max(audio_start, 0.0):.6f}", "-t", f"{audio_duration:.6f}",
                    "-i", media_path(audio_source),
                    "-map", "0:v:0", "-map", "1:a:0?", "-c:a", "aac", "-b:a", "128k", "-shortest"]
        else:
            cmd += ["-map", "0:v:0", "-an"]
        cmd += ["-c:v", settings.codec, "-preset", settings.preset, "-crf", str(settings.crf), "-pix_fmt", "yuv420p"]
        if settings.threads:
            cmd += ["-threads", str(settings.threads)]
        cmd += ["-f", "mp4", media_path(out_path)]
        self.out_path = out_path
        self.frames = 0
        self._frame_bytes = width * height * 3 // 2
        self._backlog = backlog or Backlog(0)
        # stderr goes to a file: a pipe nobody reads could fill up and stall the encoder.
        self._log = tempfile.TemporaryFile()
        # A killed worker takes its encoders along (they would finish a clip nobody will use).
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                      preexec_fn=die_with_parent)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._broken = False  # ffmpeg stopped reading: the frames still queued are thrown away
        self._closed = False
        self._writer = threading.Thread(target=self._write_queued, name="encoder-writer", daemon=True)
        self._writer.start()

    def write(self, planes: list) -> None:
        """Queue one frame given as its Y, U and V buffers."""
        if self._broken:
            self._fail("encoder stopped")
        self._backlog.add(self._frame_bytes)
        self._queue.put(planes)
        self.frames += 1

    def _write_queued(self) -> None:
        fd = self._proc.stdin.fileno()
        while (planes := self._queue.get()) is not _END:
            try:
                if not self._broken:
                    _write_all(fd, planes)
            except OSError:  # BrokenPipeError, or the pipe closed by ``kill``
                self._broken = True
            finally:
                self._backlog.remove(self._frame_bytes)
        try:
            self._proc.stdin.close()
        except OSError:
            pass

    def _fail(self, what: str) -> None:
        """Raise the encoder's failure: OSError when the output disk is at fault, else MediaError."""
        self._proc.wait()
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace").strip().splitlines()[-3:]
        message = f"{what}: {' | '.join(tail) or f'exit {self._proc.returncode}'}"
        for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            if os.strerror(code) in message:
                raise OSError(code, os.strerror(code), str(self.out_path))
        raise MediaError(message)

    def close(self) -> None:
        """Signal end of input; the queued frames are written and the encoder finishes in the
        background until ``wait``."""
        if not self._closed:
            self._closed = True
            self._queue.put(_END)

    def done(self) -> bool:
        """Whether ``wait`` would return at once: every frame written and the encoder exited."""
        return not self._writer.is_alive() and self._proc.poll() is not None

    def wait(self) -> None:
        """Wait for the encoder; raise MediaError if it failed."""
        self.close()
        self._writer.join()
        if self._proc.wait() != 0 or self._broken:
            self._fail("encoder failed")
        self._log.close()

    def kill(self) -> None:
        self._broken = True
        self._proc.kill()
        self._proc.wait()
        self.close()
        self._writer.join()
        self._log.close()


def _write_all(fd: int, planes: list) -> None:
    """Write a frame's planes to ``fd`` in as few system calls as the pipe allows."""
    views = [memoryview(p).cast("B") for p in planes]
    while views:
        written = os.writev(fd, views)
        while views and written >= views[0].nbytes:
            written -= views[0].nbytes
            views.pop(0)
        if views:
            views[0] = views[0][written:]
