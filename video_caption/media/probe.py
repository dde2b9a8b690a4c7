"""ffprobe: what a video file holds (frame rate, size, rotation, codec, audio)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from fractions import Fraction

from video_caption.media.process import MediaError, media_path, run


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
    file_start_time: float  # the file's, where ffmpeg's -ss counts from (earlier when the audio starts first)

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


def _rate(text: str | None) -> Fraction:
    try:
        rate = Fraction(text or "0")
    except (ValueError, ZeroDivisionError):
        return Fraction(0)
    return rate if rate > 0 else Fraction(0)


def _rotation(stream: dict) -> int:
    degrees = 0.0
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            degrees = float(side["rotation"])
    if not degrees and "rotate" in stream.get("tags", {}):
        degrees = -float(stream["tags"]["rotate"])
    # ffprobe reports counter-clockwise degrees; display needs the clockwise turn.
    return int(round(-degrees)) % 360


def probe(path: str | os.PathLike, timeout: float = 60) -> VideoInfo:
    """Probe the first video stream with ffprobe."""
    out = run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", media_path(path)], timeout=timeout
    ).stdout
    data = json.loads(out or b"{}")
    streams = data.get("streams", [])
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")),
        None,
    )
    if video is None:
        raise MediaError("no video stream")
    fmt = data.get("format", {})
    avg, nominal = _rate(video.get("avg_frame_rate")), _rate(video.get("r_frame_rate"))
    fps = avg or nominal
    if not fps:
        raise MediaError("no frame rate")
    duration = float(video.get("duration") or fmt.get("duration") or 0)
    num_frames = int(video.get("nb_frames") or round(duration * fps))
    rotation = _rotation(video)
    width, height = int(video.get("width", 0)), int(video.get("height", 0))
    if not width or not height:
        raise MediaError("video stream has no size")
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(
        fps=fps,
        num_frames=num_frames,
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        codec=video.get("codec_name", "unknown"),
        pix_fmt=video.get("pix_fmt", "unknown"),
        start_time=float(video.get("start_time") or fmt.get("start_time") or 0),
        variable_frame_rate=bool(avg and nominal and avg != nominal),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        file_start_time=float(fmt.get("start_time") or 0),
    )
