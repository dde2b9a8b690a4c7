"""The ffmpeg encoder that writes clips from raw frames."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
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


class Encoder:
    """An ffmpeg process that turns raw upright YUV frames on stdin into one clip file.

    Audio (when kept) is read by the same process straight from the source, seeking to the clip's
    start time, so the clip's audio stays in sync with exactly the frames that were written.
    """

    def __init__(self, out_path: Path, width: int, height: int, fps: Fraction, settings: EncoderSettings,
                 audio_source: Path | None = None, audio_start: float = 0.0, audio_duration: float = 0.0):
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
        # stderr goes to a file: a pipe nobody reads could fill up and stall the encoder.
        self._log = tempfile.TemporaryFile()
        # A killed worker takes its encoders along (they would finish a clip nobody will use).
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                      preexec_fn=die_with_parent)

    def write(self, planes: list) -> None:
        """Write one frame given as its Y, U and V buffers."""
        try:
            for plane in planes:
                self._proc.stdin.write(plane)
        except BrokenPipeError:
            self._fail("encoder stopped")
        self.frames += 1

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
        """Signal end of input; the encoder finishes in the background until ``wait``."""
        try:
            self._proc.stdin.close()
        except BrokenPipeError:
            pass

    def wait(self) -> None:
        """Wait for the encoder; raise MediaError if it failed."""
        self.close()
        if self._proc.wait() != 0:
            self._fail("encoder failed")
        self._log.close()

    def kill(self) -> None:
        self._proc.kill()
        self._proc.wait()
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        self._log.close()
