"""Clip purity: every clip shows one shot, whatever joins its shots.

The blend test (``transitions.py``) finds dissolves and fades; a wipe, a push, an effect, or a cut
the detector missed is no mix of two pictures.  What they all have: the colours before the change
are one set and the colours after it another.  On small HSV colour histograms (cheap, and nearly
blind to camera motion, which moves colours around without changing them)

    contrast(B, A) = d(mean B, mean A) - max(spread B, spread A)

for two runs of frames B and A, with d the Bhattacharyya distance and a run's spread the mean
distance of its frames to its mean.  Within one shot, panning or with subjects moving, colours
drift slowly: two runs differ about as much as the frames inside each.  Two shots give two tight
runs far apart.  Measured on real footage (docs/benchmarks.md): one-shot clips up to 0.30 (a tilt
from sky to fields), the clips holding two shots that the per-clip check dropped from 0.36.

Two uses:
- ``ChangeFinder`` (stage 1, with transitions): at frame t, B is the ``side`` frames ending ``gap``
  frames before t and A the ``side`` frames starting ``gap`` after it, so a change up to ``2 * gap``
  frames long fits between them.  A run of frames with contrast at least ``min_contrast`` is a
  change; its range is the frames between that belong to neither side (a frame leaves B once it is
  ``leave`` of the way from B's typical frame towards A's, and reaches A likewise).  Stage 1 keeps clips clear of
  it like a transition, so the shot is split there.  With no frame between, it is a hard cut.  A
  camera move that brings new colours into view also changes them: when the frames at the two ends
  of a change are one picture moved (phase correlation, as for the blend test), it is no change.
- ``clip_contrast`` (every clip, when it is complete): the largest contrast over the clip's split
  points.  A clip above ``max_clip_contrast`` holds two shots that nothing found; it is dropped and
  the reason recorded.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from video_caption.cut.transitions import Transition, picture_shift

BINS = (16, 4, 4)  # hue, saturation, value


@dataclass(frozen=True)
class PuritySettings:
    gap: int = 20  # frames from t to each side: a change up to 2 * gap frames fits between B and A
    side: int = 19  # frames in each of B and A
    min_contrast: float = 0.35  # a change between B and A
    max_run: int = 42  # a run of changing frames is closed after this many (bounds the lag)
    cut_share: float = 0.5  # one frame-to-frame step this share of the way from B to A is a hard cut
    leave: float = 0.08  # share of the way from B to A at which a frame has left B (or not reached A)
    max_clip_contrast: float = 0.3  # a clip above this holds two shots
    max_shift_match: float = 0.4  # phase-correlation peak above which a change's ends are one picture moved
    min_shift: float = 1.0  # pixels (of 64x36) the picture must move for that: a fade moves nothing
    min_part: int = 6  # frames at each side of a split point in clip_contrast

    @classmethod
    def for_fps(cls, fps: float) -> PuritySettings:
        """The window in frames for a frame rate: gap 0.8 s, sides 0.75 s, parts of 0.25 s; a run is
        closed once the gap has slid past a change as long as the gap."""
        gap = max(2, round(fps * 0.8))
        return cls(gap=gap, side=max(2, round(fps * 0.75)), max_run=2 * gap + 2, min_part=max(2, round(fps * 0.25)))


def colour_root(small: np.ndarray, fmt: str = "bgr24") -> np.ndarray:
    """The square root of the normalised HSV histogram of a small colour frame: the Bhattacharyya
    coefficient of two frames is then the dot product of their roots."""
    import cv2

    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV if fmt == "rgb24" else cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return np.sqrt(hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bhattacharyya distance between roots (rows of ``a`` against ``b``), 0 (same colours) to 1."""
    return np.sqrt(np.clip(1.0 - (a * b).sum(axis=-1), 0.0, 1.0))


def mean_root(roots: np.ndarray) -> np.ndarray:
    """The root of the mean histogram of some frames."""
    return np.sqrt((roots ** 2).mean(axis=0))


def contrast(before: np.ndarray, after: np.ndarray) -> float:
    """contrast(B, A) of the module docstring, for two runs of roots."""
    mb, ma = mean_root(before), mean_root(after)
    spread = max(float(distance(before, mb).mean()), float(distance(after, ma).mean()))
    return float(distance(mb, ma)) - spread


def clip_contrast(roots: np.ndarray, min_part: int) -> tuple[float, int]:
    """(the largest contrast over every split of the clip into a first part and the rest, each at
    least ``min_part`` frames; the index of the first frame after that split).  (0.0, 0) for a clip
    too short to split."""
    n = len(roots)
    splits = np.arange(min_part, n - min_part + 1)
    if len(splits) == 0:
        return 0.0, 0
    squares = np.vstack([np.zeros((1, roots.shape[1]), np.float32), np.cumsum(roots.astype(np.float64) ** 2, axis=0)])
    mb = np.sqrt(squares[splits] / splits[:, None])
    ma = np.sqrt((squares[n] - squares[splits]) / (n - splits)[:, None])
    # Distances of every frame to every split's two means: frames x splits.
    to_b = np.sqrt(np.clip(1.0 - roots @ mb.T, 0.0, 1.0))
    to_a = np.sqrt(np.clip(1.0 - roots @ ma.T, 0.0, 1.0))
    frame = np.arange(n)[:, None]
    in_b = frame < splits[None, :]
    spread = np.maximum((to_b * in_b).sum(0) / splits, (to_a * ~in_b).sum(0) / (n - splits))
    values = distance(mb, ma) - spread
    best = int(np.argmax(values))
    return float(values[best]), int(splits[best])


def change_range(roots: np.ndarray, centre: int, settings: PuritySettings) -> tuple[int, int]:
    """Within a window of roots around the frame ``centre`` (B before, A after, as in the module
    docstring), the first and last frame that belong to neither side; first > last when there is
    none: a hard cut at ``first``.  A single step from one frame to the next that makes most of the
    way from B to A is a hard cut too; the frames around it that belong to neither side are motion
    in the shots, not a transition."""
    g, s = settings.gap, settings.side
    mb, ma = mean_root(roots[centre - g - s:centre - g]), mean_root(roots[centre + g:centre + g + s])
    lean = distance(roots, mb) - distance(roots, ma)  # negative: like B; positive: like A
    b_level = float(np.median(lean[centre - g - s:centre - g]))
    a_level = float(np.median(lean[centre + g:centre + g + s]))
    steps = np.diff(lean[centre - g - 1:centre + g + 1])
    jump = int(np.argmax(steps))
    if steps[jump] >= settings.cut_share * (a_level - b_level):
        cut = centre - g + jump
        return cut, cut - 1
    step = settings.leave * (a_level - b_level)
    between = range(centre - g, centre + g)
    first = next((i for i in between if lean[i] > b_level + step), centre + g)
    last = next((i for i in reversed(between) if lean[i] < a_level - step), centre - g - 1)
    return first, last


class _Recent:
    """The last ``length`` rows appended, readable as one array without copying them on every
    frame: rows go into a buffer twice as long, whose tail is moved to the front when it is full."""

    def __init__(self, length: int, width: int):
        self._buffer = np.empty((2 * length, width), np.float32)
        self._length, self._end = length, 0

    def append(self, row: np.ndarray) -> None:
        if self._end == len(self._buffer):
            keep = self._length - 1
            self._buffer[:keep] = self._buffer[self._end - keep:self._end]
            self._end = keep
        self._buffer[self._end] = row
        self._end += 1

    def latest(self, count: int | None = None) -> np.ndarray:
        """The last ``count`` rows (all held when None), oldest first: a view."""
        count = min(self._end, self._length if count is None else count)
        return self._buffer[self._end - count:self._end]


class ChangeFinder:
    """Push every frame's root in order; changes come back once they are certain, as transitions of
    kind ``gradual`` (frames to keep out of clips) or ``cut`` (first == last: the cut's frame).
    ``lag``: once frame ``i + lag`` has been pushed, nothing reaching back to ``i`` can appear."""

    def __init__(self, settings: PuritySettings):
        self.s = settings
        self.reach = settings.gap + settings.side  # frames from t to the far end of B or A
        self.lag = settings.max_run + 2 * self.reach + settings.side + 2
        self._roots = _Recent(settings.max_run + 2 * self.reach + 1, math.prod(BINS))
        self._greys: deque[np.ndarray] = deque(maxlen=settings.max_run + 2 * self.reach + 1)
        self._run: list[tuple[int, float]] = []  # (t, contrast) of the run going on
        self._last = -1

    def push(self, index: int, root: np.ndarray, grey: np.ndarray) -> list[Transition]:
        """``root``: ``colour_root`` of the frame; ``grey``: its grey copy (``transitions.grey``)."""
        self._last = index
        self._roots.append(root)
        self._greys.append(grey)
        t = index - self.reach + 1  # A ends at the frame just pushed
        if t - self.reach < 0:
            return []
        window = self._roots.latest(2 * self.reach)
        g, s = self.s.gap, self.s.side
        value = contrast(window[:s], window[s + 2 * g:])
        if value >= self.s.min_contrast:
            self._run.append((t, value))
            return self._close() if len(self._run) >= self.s.max_run else []
        return self._close()

    def finish(self) -> list[Transition]:
        return self._close()

    def _close(self) -> list[Transition]:
        run, self._run = self._run, []
        if not run:
            return []
        centre = max(run, key=lambda item: item[1])[0]
        roots = self._roots.latest()
        offset = self._last - len(roots) + 1  # the frame index of the first root held
        first, last = change_range(roots, centre - offset, self.s)
        first, last = first + offset, last + offset
        if first > last:
            return [Transition(first, first, "cut")]
        # A camera move that brings new colours into view: the frames at both ends are one picture moved.
        before = self._greys[max(0, first - 1 - offset)]
        after = self._greys[min(last + 1 - offset, len(self._greys) - 1)]
        peak, shift = picture_shift(before, after)
        if peak >= self.s.max_shift_match and shift >= self.s.min_shift:
            return []
        # A slow change starts and ends with frames that barely differ from the shots: pad by an
        # eighth of its length (measured: a 4.4 s fade to black whose first 7 frames darken by < 2 %).
        pad = min(self.s.side, (last - first + 1) // 8)
        return [Transition(max(0, first - pad), min(self._last, last + pad), "gradual")]
