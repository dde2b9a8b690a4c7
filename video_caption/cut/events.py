"""Events inside a shot that look like cuts: a camera flash, a strobe, a whip pan or a fast zoom that
comes back, lights switched off or on.  The picture changes at once, so the shot detector (and the
purity check) fire there; what tells such an event from a cut is that the shot's picture from before
it is there again after it, once brightness and contrast are taken out.

Each frame is kept as its small grey picture (transitions.SIZE), blurred a little (a camera back to
within a few pixels still matches) and normalised to zero mean and unit contrast (a flash, a strobe
or dimmed lights leave it nearly the same), and its colour (the channels' shares of its light).  A
candidate cut at frame ``c`` (or a candidate transition over frames ``c`` to ``e - 1``) is an event
when a frame of the ``window`` before ``c`` and a frame of the window from ``e`` (= ``c`` for a cut) on
correlate at least ``min_similarity`` and have the same colour (within
``COLOUR``): across a real cut, no picture of the outgoing shot is the incoming shot's, and a cut
between two pictures alike but for their colour (a title card's background) stays a cut.  A flat
picture (black, white, a plain colour) matches nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

FLAT = 2.0  # grey levels of contrast (standard deviation) under which a picture is flat
COLOUR = 0.03  # the most two pictures' channel shares may differ and still be the same shot's
# The default correlation of an event's pictures: real cuts of the shared videos reach 0.84 at most,
# events added to their shots 0.94 at least (tests/test_events.py, docs/benchmarks.md).
MIN_SIMILARITY = 0.9


@dataclass(frozen=True)
class EventSettings:
    window: int  # frames either side of a candidate cut that are compared
    min_similarity: float  # correlation from which the pictures are the same shot's; above 1: off
    # A gradual change found (transitions.py) can be an event only when it is this short and alone: a
    # light switched.  A fade or a zoom is found as several pieces close together, each of whose
    # pictures before and after are alike: those stay transitions.
    abrupt: int = 3
    alone: int = 12  # frames from the nearest other change found

    @classmethod
    def for_fps(cls, fps: float, min_similarity: float, seconds: float = 1.0) -> EventSettings:
        # 1 s covers a whip pan or a strobe of up to 16 frames at 24 fps, with the frames around it;
        # a light switches within 0.12 s; the finder's pieces of one fade lie within half a second.
        return cls(max(2, round(seconds * fps)), min_similarity, max(3, round(0.12 * fps)), round(fps / 2))

    def may_be_event(self, first: int, last: int, others: list[tuple[int, int]]) -> bool:
        """Whether a gradual change over frames ``first`` to ``last`` is short and alone among the
        ``others`` found (pure)."""
        return last - first < self.abrupt and not any(
            (a, b) != (first, last) and a - self.alone <= last and first <= b + self.alone for a, b in others)


@dataclass(frozen=True)
class Picture:
    shape: np.ndarray  # the grey picture blurred, zero mean, unit standard deviation, as one vector
    colour: np.ndarray  # each channel's share of the light


def picture(small: np.ndarray) -> Picture | None:
    """A frame's ``Picture`` from its small colour image (None: flat)."""
    import cv2

    pixels = small.astype(np.float32).reshape(-1, small.shape[-1])
    blurred = cv2.blur(pixels.mean(axis=1).reshape(small.shape[:2]), (5, 5))
    std = float(blurred.std())
    if std < FLAT:
        return None
    light = pixels.sum(axis=0)
    return Picture(((blurred - blurred.mean()) / std).ravel(), light / max(float(light.sum()), 1.0))


def best_match(before: list[Picture], after: list[Picture]) -> float:
    """The highest correlation between a picture of ``before`` and one of ``after`` of the same colour
    (-1 when there is no such pair)."""
    if not before or not after:
        return -1.0
    correlation = np.stack([p.shape for p in before]) @ np.stack([p.shape for p in after]).T / before[0].shape.size
    colours = np.abs(np.stack([p.colour for p in before])[:, None] - np.stack([p.colour for p in after])[None])
    correlation[colours.max(axis=2) > COLOUR] = -1.0
    return float(correlation.max())


class SameShot:
    """The last frames' small images, and whether a candidate cut among them is an event inside one
    shot.  Pictures are made only around candidates (most frames are never compared)."""

    def __init__(self, settings: EventSettings, keep: int):
        self.settings = settings
        self._keep = keep + 2 * settings.window  # frames held: the caller's look-ahead and both windows
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._pictures: dict[int, Picture | None] = {}

    def push(self, index: int, small: np.ndarray) -> None:
        """Frame ``index``'s small colour image (any channel order, the same for every frame)."""
        self._images[index] = small
        while len(self._images) > self._keep:
            self._pictures.pop(self._images.popitem(last=False)[0], None)

    def _picture(self, index: int) -> Picture | None:
        if index not in self._pictures:
            self._pictures[index] = picture(self._images[index])
        return self._pictures[index]

    def similarity(self, first: int, end: int | None = None) -> float:
        """How alike the pictures before ``first`` and from ``end`` on (default ``first``: a cut) are:
        the best pair within the window either side."""
        w, end = self.settings.window, first if end is None else end

        def pictures(first: int, last: int) -> list[Picture]:
            found = (self._picture(i) for i in range(first, last) if i in self._images)
            return [p for p in found if p is not None]

        return best_match(pictures(first - w, first), pictures(end, end + w + 1))

    def is_event(self, first: int, end: int | None = None) -> bool:
        return self.similarity(first, end) >= self.settings.min_similarity
