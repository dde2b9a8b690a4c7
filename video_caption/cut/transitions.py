"""Gradual transitions (dissolves, fades through black or white), found on small grey frames.

Inside a dissolve or a fade every frame is a mix of the frames around it: frame t is close to the
mean of frames t-k and t+k while those two differ.  Under camera or object motion the middle frame
is no such mix (pixels move, they do not blend), and in a still shot nothing changes.  So per frame

    change(t) = mean |f(t+k) - f(t-k)|                          how much the picture changes around t
    blend(t)  = mean |f(t) - (f(t-k) + f(t+k)) / 2| / change(t)  0 for a perfect linear mix

and a run of at least ``min_frames`` frames with ``change >= min_change`` and ``blend <= max_blend``
is a candidate, widened by ``k`` frames at each side (the run starts once both neighbours are inside
the mix).  Slow motion over smooth surfaces also looks like a local mix, so a candidate must pass a
second test on a whole range: every frame in it must be a mix ``a * first + (1 - a) * last`` of the
range's end frames (relative residual at most ``max_residual``), with ``a`` falling from 1 to 0, and
the end frames must differ (``min_contrast``) and not be one picture moved (phase correlation
below ``max_shift_match``; a slow pan over a smooth scene is close to a mix of its ends).  A run longer
than ``max_frames`` (a dissolve inside a slow pan, or a slow change such as a sunrise) is searched
for the widest range around its largest change that passes; runs are closed after
``2 * max_frames`` frames, which bounds the lag.  The kind is ``fade_black`` or ``fade_white`` when
the picture passes through (near) black or white, else ``dissolve``.  Wipes are no mix: the clip
purity check (``purity.py``) keeps clips clear of what this misses.

``find_transitions`` works on a whole sequence (tests, benchmarks); ``TransitionFinder`` reaches
the same ranges frame by frame with a bounded lag, as stage 1 needs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

SIZE = (64, 36)  # (width, height) of the grey frames compared
BLACK, WHITE = 16.0, 235.0  # mean levels a fade through black or white passes


@dataclass(frozen=True)
class TransitionSettings:
    k: int = 2  # frames either side of the frame tested
    min_change: float = 1.5  # grey levels (0-255), mean over pixels, between t-k and t+k
    max_blend: float = 0.3
    min_frames: int = 4  # a shorter run of blends is noise
    max_frames: int = 60  # a longer run is a slow change inside a shot
    max_residual: float = 0.45
    min_contrast: float = 8.0  # grey levels between the end frames
    max_shift_match: float = 0.4  # phase-correlation peak above which the ends are one picture moved

    @classmethod
    def for_fps(cls, fps: float) -> TransitionSettings:
        """k and the run lengths in frames for a frame rate: k about 80 ms, runs from 160 ms to 2 s."""
        k = max(1, round(fps * 0.08))
        return cls(k=k, min_frames=max(2, round(fps * 0.16)), max_frames=max(4, round(fps * 2)))


@dataclass(frozen=True)
class Transition:
    first: int
    last: int  # inclusive
    kind: str

    def as_row(self) -> list:
        return [self.first, self.last, self.kind]


def shrink(image: np.ndarray) -> np.ndarray:
    """A detector image (BGR or RGB, any size) at ``SIZE``, the size the tests compare."""
    import cv2

    return cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA)


_CHANNEL_SUM = np.ones((1, 3), np.float32)


def grey(small: np.ndarray) -> np.ndarray:
    """The float grey frame the blend test runs on, from a ``shrink``-ed image: the mean of its
    channels, as numpy's float32 mean gives it (an exact integer sum, divided by 3) at a tenth of
    the cost."""
    import cv2

    if small.ndim == 2:
        return small.astype(np.float32)
    total = cv2.transform(small.astype(np.float32), _CHANNEL_SUM)
    total /= np.float32(3)
    return total


def blend_score(before: np.ndarray, middle: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(change, blend) of ``middle`` between ``before`` and ``after`` (see the module docstring)."""
    change = float(np.abs(after - before).mean())
    if change == 0.0:
        return 0.0, 1.0
    return change, float(np.abs(middle - (before + after) / 2).mean()) / change


def picture_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(the peak of the phase correlation of two grey frames, the shift it finds, pixels): a peak
    near 1 when ``b`` is ``a`` moved by that shift."""
    import cv2

    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_32F)
    (dx, dy), peak = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), window)
    return float(peak), float(np.hypot(dx, dy))


def one_picture_moved(a: np.ndarray, b: np.ndarray, settings: TransitionSettings) -> bool:
    """Whether ``b`` is ``a`` shifted (a pan), by the peak of their phase correlation.  A fade's
    black or white end says nothing either way."""
    if any(not BLACK < float(x.mean()) < WHITE for x in (a, b)):
        return False
    return picture_shift(a, b)[0] >= settings.max_shift_match


def mix_of_ends(frames: list[np.ndarray], settings: TransitionSettings) -> list[float] | None:
    """When every frame of a range is a mix of its first and last frames, the mix moving from the
    first to the last, and the ends are two pictures (see the module docstring): each inner frame's
    share of the first frame.  None otherwise."""
    first, last = frames[0], frames[-1]
    span = (first - last).ravel()
    contrast = float(np.abs(span).mean())
    if contrast < settings.min_contrast or one_picture_moved(first, last, settings):
        return None
    norm = float(span @ span)
    alphas, residuals = [], []
    for frame in frames[1:-1]:
        offset = (frame - last).ravel()
        alpha = float(offset @ span) / norm
        alphas.append(alpha)
        residuals.append(float(np.abs(offset - alpha * span).mean()) / contrast)
    falling = all(b <= a + 0.15 for a, b in zip(alphas, alphas[1:], strict=False))
    return alphas if falling and float(np.median(residuals)) <= settings.max_residual else None


def _kind(levels: list[float]) -> str:
    if min(levels) <= BLACK:
        return "fade_black"
    if max(levels) >= WHITE:
        return "fade_white"
    return "dissolve"


class TransitionFinder:
    """Push every grey frame in order; transitions come back once they are certain.  ``lag``: once
    frame ``i + lag`` has been pushed, no transition reaching back to ``i`` can appear any more."""

    def __init__(self, settings: TransitionSettings, num_frames: int | None = None):
        self.s = settings
        self.lag = 2 * settings.max_frames + 3 * settings.k + 2
        self._frames: deque[np.ndarray] = deque(maxlen=2 * settings.max_frames + 3 * settings.k + 2)
        self._run: list[tuple[int, float]] = []  # (frame, change) of the blend frames of the run going on
        self._last = -1

    def push(self, index: int, frame: np.ndarray) -> list[Transition]:
        self._last = index
        self._frames.append(frame)
        k = self.s.k
        if index < 2 * k:
            return []
        t = index - k  # the middle frame can be tested now
        change, blend = blend_score(self._frames[-2 * k - 1], self._frames[-k - 1], self._frames[-1])
        if change >= self.s.min_change and blend <= self.s.max_blend:
            self._run.append((t, change))
            return self._close() if len(self._run) >= 2 * self.s.max_frames else []
        return self._close()

    def finish(self) -> list[Transition]:
        return self._close()

    def _range(self, first: int, last: int) -> list[np.ndarray]:
        return list(self._frames)[-(self._last - first + 1):][: last - first + 1]

    def _close(self) -> list[Transition]:
        run, self._run = self._run, []
        if len(run) < self.s.min_frames:
            return []
        k = self.s.k
        if len(run) <= self.s.max_frames:
            windows = [(run[0][0] - k, run[-1][0] + k)]
        else:
            centre = max(run, key=lambda item: item[1])[0]
            half = self.s.max_frames // 2
            windows = []
            while half >= max(1, self.s.min_frames // 2):
                windows.append((max(run[0][0], centre - half) - k, min(run[-1][0], centre + half) + k))
                half = half * 2 // 3
        for first, last in windows:
            first, last = max(0, first), min(self._last, last)
            frames = self._range(first, last)
            alphas = mix_of_ends(frames, self.s)
            if alphas is None:
                continue
            # The window may reach into the shots on either side: the transition is where the mix moves.
            mixing = [first + 1 + i for i, a in enumerate(alphas) if 0.1 < a < 0.9]
            if len(mixing) < self.s.min_frames:
                continue
            first, last = max(first, mixing[0] - k), min(last, mixing[-1] + k)
            return [Transition(first, last, _kind([float(f.mean()) for f in self._range(first, last)]))]
        return []


class BlackFrames:
    """Runs of black frames (mean level at most ``level``, PySceneDetect's ThresholdDetector rule):
    the middle of a fade through black, or an empty title card, and no part of any clip.  Push
    every frame's mean level; a run comes back (kind ``black``) when it ends, and ``current`` /
    ``last`` tell the run going on."""

    def __init__(self, level: float):
        self.level = level
        self.current: int | None = None  # first frame of the run going on
        self.last = -1

    def push(self, index: int, mean: float) -> list[Transition]:
        if self.level > 0 and mean <= self.level:
            if self.current is None:
                self.current = index
            self.last = index
            return []
        return self.finish()

    def finish(self) -> list[Transition]:
        if self.current is None:
            return []
        run, self.current = Transition(self.current, self.last, "black"), None
        return [run]


GENERIC = ("gradual", "black")  # kinds that say less than a test that recognised a dissolve or fade


def merge_ranges(transitions: list[Transition], gap: int = 0) -> list[Transition]:
    """The ranges as recorded: those that overlap or touch as one, with the kind a test recognised
    (``gradual`` or ``black`` only when none did), and a fade out to black (or white) with the fade
    in after it, at most ``gap`` frames apart (a black stretch), as the one transition they are."""
    merged: list[Transition] = []
    for t in sorted(transitions, key=lambda t: t.first):
        previous = merged[-1] if merged else None
        touching = previous is not None and t.first <= previous.last + 1
        fades = (previous is not None and t.kind == previous.kind and t.kind.startswith("fade")
                 and t.first - previous.last - 1 <= gap)
        if touching or fades:
            kind = previous.kind if previous.kind not in GENERIC else t.kind
            merged[-1] = Transition(previous.first, max(previous.last, t.last), kind)
        else:
            merged.append(t)
    return merged


def find_transitions(frames: list[np.ndarray], settings: TransitionSettings) -> list[Transition]:
    """The transitions of a whole sequence of grey frames."""
    finder = TransitionFinder(settings)
    found = []
    for index, frame in enumerate(frames):
        found += finder.push(index, frame)
    return found + finder.finish()
