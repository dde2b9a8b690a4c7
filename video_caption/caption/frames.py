"""Which frames of a clip the captioner sees, resized and JPEG-encoded once (in loader workers)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_caption.caption.settings import SAMPLINGS
from video_caption.loader import FramePlan
from video_caption.media.decode import middle_indices, uniform_indices


def pick_frames(sampling: str, count: int, num_frames: int, keyframes: list[int] | None = None) -> list[int]:
    """Decode indices for a sampling method.  ``uniform``: ``count`` frames from first to last;
    ``mid``: the centres of ``count`` equal parts; ``first`` / ``last``: that one frame;
    ``keyframes``: the codec's key frames, thinned evenly to ``count`` (the middle frame when none)."""
    if num_frames <= 0:
        return []
    if sampling == "uniform":
        return uniform_indices(num_frames, count)
    if sampling == "mid":
        return middle_indices(num_frames, count)
    if sampling == "first":
        return [0]
    if sampling == "last":
        return [num_frames - 1]
    if sampling == "keyframes":
        keys = [k for k in keyframes or [] if k < num_frames]
        if not keys:
            return middle_indices(num_frames, 1)
        return [keys[i] for i in uniform_indices(len(keys), count)]
    raise ValueError(f"unknown frame sampling {sampling!r} (known: {', '.join(SAMPLINGS)})")


def encode_jpeg(frame: np.ndarray, max_side: int, quality: int = 90) -> bytes:
    """An RGB frame as JPEG, its longest side shrunk to ``max_side`` (never enlarged)."""
    import cv2

    h, w = frame.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        frame = cv2.resize(frame, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


@dataclass(frozen=True)
class CaptionFrames(FramePlan):
    sampling: str = "uniform"
    count: int = 4
    max_side: int = 768
    quality: int = 90
    fmt = "rgb24"

    @property
    def needs_keyframes(self) -> bool:
        return self.sampling == "keyframes"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        return pick_frames(self.sampling, self.count, num_frames, keyframes if num_frames > 1 else None)

    def prepare(self, frames: list[np.ndarray]) -> list[bytes]:
        return [encode_jpeg(f, self.max_side, self.quality) for f in frames]
