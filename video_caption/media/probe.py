"""What a video file holds (frame rate, size, rotation, codec, audio), read in-process with PyAV."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from fractions import Fraction

from video_caption.media.process import MediaError, check_not_empty, media_path, run

# Packets tried for a first decodable frame (the display rotation is only on frames in PyAV).
_ROTATION_PACKETS = 250


@dataclass
class VideoInfo:
    fps: Fraction  # average frame rate (what a variable-frame-rate file averages to)
    num_frames: int  # from the container; the decoded count may differ and is what stage 1 records
    duration: float
    width: int  # as displayed, after rotation
    height: int
    rotation: int  # clockwise degrees the decoded picture must be turned to display it upright
    codec: str
    pix_fmt: str
    start_time: float  # the video stream's first timestamp
    variable_frame_rate: bool
    has_audio: bool

    def as_row(self) -> dict:
        return {
            "fps": round(float(self.fps), 6),
            "num_frames": self.num_frames,
            "duration": round(self.duration, 6),
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "codec": self.codec,
            "start_time": round(self.start_time, 6),
            "variable_frame_rate": self.variable_frame_rate,
        }


def _rate(value: Fraction | None) -> Fraction:
    return Fraction(value) if value and value > 0 else Fraction(0)


def _seconds(value: int | None, time_base: Fraction) -> float | None:
    # Rounded to the microsecond, as ffprobe prints times.
    return None if value is None else round(float(value * time_base), 6)


def _scan(container, stream, count: bool) -> tuple[int, int]:
    """(clockwise rotation, video packets): the rotation from the display matrix on the first frame
    that decodes (PyAV 18 gives no stream side data; 0 when none decodes); with ``count``, every
    video packet is demuxed and counted (nothing more is decoded), else the count stops there."""
    import av

    stream.thread_type = "SLICE"  # frame threads would hold the first frame back
    rotation, packets = None, 0
    for packet in container.demux(stream):
        packets += packet.size > 0  # the demuxer ends with an empty packet
        if rotation is None and packets <= _ROTATION_PACKETS:
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                frames = []
            if frames:
                rotation = int(round(-frames[0].rotation)) % 360  # PyAV reports counter-clockwise degrees
        if not count and (rotation is not None or packets >= _ROTATION_PACKETS):
            break
    return rotation or 0, packets


def probe(path: str | os.PathLike) -> VideoInfo:
    """Probe the first video stream (not cover art), in-process: a tenth of an ffprobe run's cost
    (0.1 s of CPU per source, most of it the process start).  Raises MediaError."""
    import av

    try:
        container = av.open(media_path(path), timeout=60)
    except (av.error.FFmpegError, OSError) as exc:
        check_not_empty(path)
        raise MediaError(f"cannot read {media_path(path)}: {getattr(exc, 'strerror', None) or exc}") from exc
    with container:
        attached = av.stream.Disposition.attached_pic
        video = next((s for s in container.streams.video if not s.disposition & attached), None)
        if video is None:
            raise MediaError("no video stream")
        avg, nominal = _rate(video.average_rate), _rate(video.base_rate)
        fps = avg or nominal
        if not fps:
            raise MediaError("no frame rate")
        context = video.codec_context
        width, height = context.width, context.height
        if not width or not height:
            raise MediaError("video stream has no size")
        microseconds = Fraction(1, av.time_base)
        duration = _seconds(video.duration, video.time_base) or _seconds(container.duration, microseconds) or 0.0
        # Neither a frame count nor a duration (a stream read from a pipe): the packets are counted.
        count = not video.frames and not duration
        rotation, packets = _scan(container, video, count)
        start = _seconds(video.start_time, video.time_base)
        if start is None:
            start = _seconds(container.start_time, microseconds) or 0.0
        info = VideoInfo(
            fps=fps,
            num_frames=packets if count else video.frames or round(duration * fps),
            duration=round(float(packets / fps), 6) if count else duration,
            width=width,
            height=height,
            rotation=rotation,
            codec=context.codec.canonical_name,
            pix_fmt=context.format.name if context.format else "unknown",
            start_time=start,
            variable_frame_rate=bool(avg and nominal and avg != nominal),
            has_audio=bool(container.streams.audio),
        )
    if info.rotation in (90, 270):
        info.width, info.height = info.height, info.width
    return info


@functools.lru_cache(maxsize=64)
def _ffmpeg_start_time(path: str, size: int, mtime_ns: int) -> float:
    # Untied: asked from encoder threads, beside libx264's (see process.run); it ends by itself.
    out = run(["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "json", path], timeout=60,
              tied=False).stdout
    return float(json.loads(out or b"{}").get("format", {}).get("start_time") or 0)


def ffmpeg_start_time(path: str | os.PathLike) -> float:
    """The file's start time as the ffmpeg command line reads it, where its ``-ss`` counts from (the
    audio's start when that comes first).  Asked of ffprobe, not PyAV: their libavformat versions
    differ (Debian's ffmpeg 5.1 puts an Opus track in MKV at -7 ms, PyAV's 8.1 at 0)."""
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise MediaError(f"cannot read {os.fspath(path)}: {exc.strerror}") from exc
    return _ffmpeg_start_time(media_path(path), stat.st_size, stat.st_mtime_ns)
