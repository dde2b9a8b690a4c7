"""Hard negatives for shot detection: files of ONE shot each, with flashes, strobes, whip pans, fast
zooms and lights going off and on at frames known by construction.  No frame of a file is a cut.

bench/hard_negatives.py plans a whole set with this; tests/test_hard_negatives.py builds one file.

A file (``Spec``) is one shot of real footage: either a stretch of a SEGMENTS stretch of a shared
video (``footage``), or a slow camera move over one real frame of one (``pan``: the view slides
across the frame; ``zoom``: the view closes in on, or backs away from, its centre).  Each
``Event`` alters the frames ``first .. last`` (inclusive) of that shot and no other: frame
``first - 1`` and frame ``last + 1`` are the shot's own frames.
- ``flash``: every frame blended toward white by ``strength`` (a camera flash).
- ``strobe``: frames alternately blended toward white and darkened, both by ``strength``.
- ``whip_pan``: the picture slides sideways, wrapping round, by up to ``strength`` of its width and
  back (a half sine), blurred along the motion by as many columns as it moved since the frame
  before (a camera whipped away and back).
- ``fast_zoom``: a centred view of 1 / z of the frame, z rising to ``strength`` and back (a half sine).
- ``lights_off``: the level falls to ``strength`` over ``ramp`` frames, stays there, and comes back
  over ``ramp`` frames (the last of them still darker than the shot).
Frames are composed here in numpy and written by support/splicing.py's encoder (``encode``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from splicing import CODECS, Shot, encode, render
from splicing import Spec as SpliceSpec

KINDS = ("flash", "strobe", "whip_pan", "fast_zoom", "lights_off")
BACKGROUNDS = ("footage", "pan", "zoom")
STILL_SCALE = 1.4  # a still is read this much larger than the output, so the camera has room to move
WHITE = np.float32(255)


@dataclass(frozen=True)
class Event:
    kind: str  # one of KINDS
    first: int  # first altered frame
    frames: int  # altered frames: first .. first + frames - 1
    strength: float  # see the module's docstring, per kind
    ramp: int = 0  # lights_off: frames to go dark and to come back
    direction: int = 1  # whip_pan: +1 slides right, -1 left

    @property
    def last(self) -> int:
        return self.first + self.frames - 1


@dataclass(frozen=True)
class Spec:
    source: str  # path relative to the videos folder
    start: float  # seconds into the source: the footage's first frame, or the still
    frames: int
    width: int
    height: int
    fps: Fraction
    codec: str = "libx264"
    background: str = "footage"  # one of BACKGROUNDS
    move: float = 0.0  # pan: share of the free room crossed, signed; zoom: the zoom at the end (< 1: backs away)
    events: tuple[Event, ...] = ()

    def __post_init__(self):
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background {self.background!r}: one of {', '.join(BACKGROUNDS)}")
        for e in self.events:
            if e.kind not in KINDS:
                raise ValueError(f"unknown event {e.kind!r}")
            if e.first < 1 or e.last >= self.frames - 1:
                raise ValueError(f"{e} leaves no frame of the shot before or after it")
            if e.kind == "lights_off" and not (1 <= e.ramp and 2 * e.ramp < e.frames):
                raise ValueError(f"{e}: needs 1 <= ramp and a dark frame between its ramps")
        for a, b in zip(self.events, self.events[1:], strict=False):
            if b.first <= a.last + 1:
                raise ValueError(f"events {a} and {b} overlap or touch: no shot frame between them")


def _view(image: np.ndarray, x0: float, y0: float, cw: float, ch: float, width: int, height: int) -> np.ndarray:
    """The window (x0, y0, cw, ch) of ``image`` scaled to width x height, sub-pixel (bilinear)."""
    sx, sy = cw / width, ch / height
    # inverse map from output pixel centres to image pixel centres
    m = np.array([[sx, 0, x0 + 0.5 * sx - 0.5], [0, sy, y0 + 0.5 * sy - 0.5]], np.float64)
    return cv2.warpAffine(image, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _mix(image: np.ndarray, target: np.float32, weight: float) -> np.ndarray:
    out = image.astype(np.float32) + np.float32(weight) * (target - image)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _bump(k: int, n: int) -> float:
    """A half sine over the n frames of an event, k = 0..n-1: above 0 at each one, 0 just outside."""
    return math.sin(math.pi * (k + 1) / (n + 1))


def _whip_offset(event: Event, k: int, width: int) -> int:
    return event.direction * round(event.strength * width * _bump(k, event.frames)) if 0 <= k < event.frames else 0


def lights_gain(event: Event, k: int) -> float:
    """The level (share of the shot's) at the k-th frame of a lights_off event."""
    g, r = event.strength, event.ramp
    if k < r:
        return 1 - (1 - g) * (k + 1) / r
    if k >= event.frames - r:
        return g + (1 - g) * (k - (event.frames - r) + 1) / (r + 1)
    return g


def altered(image: np.ndarray, event: Event, k: int) -> np.ndarray:
    """The shot's frame ``image`` at the k-th frame of ``event``."""
    h, w = image.shape[:2]
    if event.kind == "flash":
        return _mix(image, WHITE, event.strength)
    if event.kind == "strobe":
        return _mix(image, WHITE, event.strength) if k % 2 == 0 else _mix(image, np.float32(0), event.strength)
    if event.kind == "lights_off":
        return _mix(image, np.float32(0), 1 - lights_gain(event, k))
    if event.kind == "fast_zoom":
        z = 1 + (event.strength - 1) * _bump(k, event.frames)
        return _view(image, w * (1 - 1 / z) / 2, h * (1 - 1 / z) / 2, w / z, h / z, w, h)
    offset = _whip_offset(event, k, w)
    speed = max(abs(offset - _whip_offset(event, k - 1, w)), abs(_whip_offset(event, k + 1, w) - offset))
    return cv2.blur(np.roll(image, offset, axis=1), (max(3, speed), 1))


def _still(spec: Spec, videos: Path) -> np.ndarray:
    """The source's frame at ``start``, read at STILL_SCALE times the output size."""
    w, h = round(spec.width * STILL_SCALE), round(spec.height * STILL_SCALE)
    one = SpliceSpec((Shot(spec.source, spec.start, 1),), (), w, h, spec.fps)
    image, _ = next(iter(render(one, videos)))
    return image


def shot_frames(spec: Spec, videos: Path) -> Iterator[np.ndarray]:
    """The shot's own frames, before any event."""
    if spec.background == "footage":
        one = SpliceSpec((Shot(spec.source, spec.start, spec.frames),), (), spec.width, spec.height, spec.fps)
        for image, _ in render(one, videos):
            yield image
        return
    still = _still(spec, videos)
    sh, sw = still.shape[:2]
    for t in range(spec.frames):
        u = t / max(1, spec.frames - 1)
        if spec.background == "pan":
            cw, ch = sw / 1.2, sh / 1.2  # a view a little tighter than the still: room on both axes
            along = 0.5 + spec.move * (u - 0.5)  # where the view is in the free room, 0..1
            yield _view(still, (sw - cw) * along, (sh - ch) * (0.5 + 0.2 * (u - 0.5)), cw, ch, spec.width, spec.height)
        else:
            # the same ratio from frame to frame; move < 1 backs away from 1 / move to the whole still
            z = spec.move**u if spec.move >= 1 else spec.move ** (u - 1)
            cw, ch = sw / z, sh / z
            yield _view(still, (sw - cw) / 2, (sh - ch) / 2, cw, ch, spec.width, spec.height)


def compose(spec: Spec, videos: Path) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every output frame in order, with the shot's own frame it was made from."""
    at = {e.first + k: (e, k) for e in spec.events for k in range(e.frames)}
    for t, image in enumerate(shot_frames(spec, videos)):
        yield (altered(image, *at[t]) if t in at else image), image


def build(spec: Spec, videos: Path, out: Path) -> None:
    """Write the file ``out`` (container from its suffix)."""
    encode((frame for frame, _ in compose(spec, videos)), spec.width, spec.height, spec.fps, spec.codec, out)


def truth_row(spec: Spec) -> dict:
    """The file's ground_truth.json entry, in bench/splice.py's schema: no cut, no gradual range, one
    shot, and ``events`` (kind, first, last and the event's parameters)."""
    fps, n = spec.fps, spec.frames
    events = []
    for e in spec.events:
        row = {"kind": e.kind, "first": e.first, "last": e.last, "strength": round(e.strength, 4)}
        if e.kind == "lights_off":
            row["ramp"] = e.ramp
        if e.kind == "whip_pan":
            row["direction"] = e.direction
        events.append(row)
    return {
        "width": spec.width,
        "height": spec.height,
        "fps": f"{fps.numerator}/{fps.denominator}",
        "frames_decoded": n,
        "duration_s": round(float(n / fps), 3),
        "video_codec": CODECS[spec.codec][1],
        "has_cuts": False,
        "cuts": [],
        "cuts_seconds": [],
        "cuts_src": "construction (support/hard_negatives.py)",
        "kind": "hard negatives: one shot with events",
        "gradual": [],
        "gradual_kinds": [],
        "events": events,
        "shots": [{"source": spec.source, "source_start_s": spec.start, "frames": n, "first": 0, "last": n - 1,
                   "background": spec.background, "move": round(spec.move, 4)}],
    }
