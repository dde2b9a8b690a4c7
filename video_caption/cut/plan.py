"""Clip planning: which source frames become which clip.  Pure functions, no I/O.

A shot runs from one cut to the next.  A gradual transition [first, last] (a dissolve, a fade) is
bounded by a cut at ``first`` and one at ``last + 1``, and its frames belong to no clip.  Each shot
loses ``margin`` frames at every side that touches a cut (so a cut detected a frame or two late or
early leaks nothing from the neighbour), is dropped when what remains is shorter than
``min_frames``, and is otherwise split into consecutive pieces of ``max_frames``; a last piece
shorter than ``min_frames`` is dropped.

``plan_clips`` computes the plan for a whole video; ``ClipAssembler`` reaches the same plan frame
by frame, so stage 1 can cut while it decodes without holding a whole shot in memory.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise


@dataclass(frozen=True)
class PlanSettings:
    min_seconds: float = 3.0
    max_seconds: float = 10.0
    margin_frames: int = 2

    def frame_limits(self, fps: Fraction | float) -> tuple[int, int]:
        """(min_frames, max_frames): the clip lengths, in frames, that last min..max seconds."""
        fps = Fraction(fps).limit_denominator(1_000_000)
        min_frames = max(1, math.ceil(Fraction(self.min_seconds).limit_denominator(1000) * fps))
        max_frames = math.floor(Fraction(self.max_seconds).limit_denominator(1000) * fps)
        if max_frames < min_frames:
            raise ValueError(f"max_seconds {self.max_seconds} < min_seconds {self.min_seconds} at {float(fps):.3f} fps")
        return min_frames, max_frames


def clean_cuts(cuts, num_frames: int) -> list[int]:
    """Sorted unique cuts strictly inside (0, num_frames): frame 0 is never a cut."""
    return sorted({int(c) for c in cuts if 0 < int(c) < num_frames})


def shots(cuts, num_frames: int) -> list[tuple[int, int]]:
    """Shots as [start, end) frame ranges."""
    bounds = [0, *clean_cuts(cuts, num_frames), num_frames]
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def split_shot(start: int, end: int, min_frames: int, max_frames: int) -> list[tuple[int, int]]:
    """Consecutive pieces of max_frames from start; a remainder is kept only if >= min_frames."""
    pieces = []
    while end - start >= max_frames:
        pieces.append((start, start + max_frames))
        start += max_frames
    if end - start >= min_frames:
        pieces.append((start, end))
    return pieces


def transition_bounds(transitions) -> set[int]:
    """The cuts that bound gradual transitions given as (first, last) frame ranges."""
    return {bound for first, last in transitions for bound in (first, last + 1)}


def in_transition(index: int, transitions) -> bool:
    return any(first <= index <= last for first, last in transitions)


def plan_clips(cuts, num_frames: int, min_frames: int, max_frames: int, margin: int,
               transitions=()) -> list[tuple[int, int]]:
    """All clips of a video as [start_frame, end_frame) ranges, in order."""
    clips = []
    for start, end in shots(set(cuts) | transition_bounds(transitions), num_frames):
        if in_transition(start, transitions):
            continue
        start += margin if start > 0 else 0
        end -= margin if end < num_frames else 0
        clips += split_shot(start, end, min_frames, max_frames)
    return clips


@dataclass(frozen=True)
class Event:
    """What to do with frames: ``add`` frame ``start`` to the open piece; ``commit`` or ``drop``
    the open piece [start, end)."""

    kind: str  # "add" | "commit" | "drop"
    start: int
    end: int = -1


class ClipAssembler:
    """``plan_clips`` computed incrementally.

    Push every frame in order with whether it starts a new shot and whether it lies in a gradual
    transition (final: the caller has waited out the detectors' lag; a transition's bounds come as
    cuts).  A frame is decided once the ``margin`` frames after it are known; at most
    ``margin + 1`` frames are pending at any time.
    """

    def __init__(self, min_frames: int, max_frames: int, margin: int):
        self.min_frames, self.max_frames, self.margin = min_frames, max_frames, margin
        self._shot_start = 0
        self._in_transition = False  # the current shot is a gradual transition: no frame of it is placed
        self._pending: deque[int] = deque()
        self._piece_start: int | None = None
        self._piece_end = 0

    def push(self, index: int, is_cut: bool, in_transition: bool = False) -> list[Event]:
        events: list[Event] = []
        if is_cut and index > 0:
            for frame in self._pending:
                if frame < index - self.margin:
                    events += self._place(frame)
            self._pending.clear()
            events += self._end_piece()
            self._shot_start = index
        if index == 0 or (is_cut and index > 0):
            self._in_transition = in_transition
        self._pending.append(index)
        while self._pending and self._pending[0] + self.margin <= index:
            events += self._place(self._pending.popleft())
        return events

    def finish(self) -> list[Event]:
        """The video ended: no margin at its end, so every pending frame is placed."""
        events: list[Event] = []
        while self._pending:
            events += self._place(self._pending.popleft())
        return events + self._end_piece()

    def _place(self, frame: int) -> list[Event]:
        if self._in_transition or (self._shot_start > 0 and frame < self._shot_start + self.margin):
            return []
        if self._piece_start is None:
            self._piece_start = frame
        self._piece_end = frame + 1
        events = [Event("add", frame)]
        if frame + 1 - self._piece_start == self.max_frames:
            events.append(Event("commit", self._piece_start, frame + 1))
            self._piece_start = None
        return events

    def _end_piece(self) -> list[Event]:
        if self._piece_start is None:
            return []
        start, end, self._piece_start = self._piece_start, self._piece_end, None
        return [Event("commit" if end - start >= self.min_frames else "drop", start, end)]
