"""Shot-boundary scoring against ground truth (pure functions).

A detected cut matches a true cut within ``tolerance`` frames (each true cut matches at most
one detection, nearest first).  A detection that matches nothing but marks a listed gradual
transition (from ``tolerance`` frames before its first frame to ``tolerance`` after ``last + 1``)
counts neither way.  Gradual transitions are ``[first, last]`` frame ranges,
inclusive; a cut is the first frame of the new shot, so a boundary that a detector puts at either
end of a transition is at ``first`` or ``last + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        truth = self.true_positives + self.false_negatives
        return self.true_positives / truth if truth else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Score) -> Score:
        return Score(self.true_positives + other.true_positives, self.false_positives + other.false_positives,
                     self.false_negatives + other.false_negatives)


def _match(detected, truth, tolerance: int) -> tuple[int, list[int], list[int]]:
    """(true positives, detections that matched no true cut, true cuts that no detection matched)."""
    unmatched = sorted(set(truth))
    matched, extra = 0, []
    for cut in sorted(set(detected)):
        near = [t for t in unmatched if abs(t - cut) <= tolerance]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - cut)))
            matched += 1
        else:
            extra.append(cut)
    return matched, extra, unmatched


def score_cuts(detected, truth, gradual=(), tolerance: int = 2) -> Score:
    matched, extra, missed = _match(detected, truth, tolerance)
    marks = [(lo - tolerance, hi + 1 + tolerance) for lo, hi in gradual]
    false_positives = sum(1 for cut in extra if not any(lo <= cut <= hi for lo, hi in marks))
    return Score(matched, false_positives, len(missed))


def gradual_found(detected, truth, gradual, detected_ranges=(), tolerance: int = 2) -> list[bool]:
    """For each true gradual range: whether a detection marks it.  A detected range ``[first, last]``
    that overlaps it (within ``tolerance``) does, and so does a detected cut that matched no true
    hard cut and lies from ``first - tolerance`` to ``last + 1 + tolerance``.  Such a cut outside
    ``[first, last]`` counts neither way in ``score_cuts``."""
    _, extra, _ = _match(detected, truth, tolerance)
    return [any(first - tolerance <= cut <= last + 1 + tolerance for cut in extra)
            or any(a <= last + tolerance and b >= first - tolerance for a, b in detected_ranges)
            for first, last in gradual]


def clip_faults(start: int, end: int, cuts, gradual, max_overlap: int = 2) -> tuple[list[int], list[int]]:
    """For the clip of frames ``[start, end)``: (the true cuts inside it, with frames of both
    shots, and the indices of the gradual ranges it overlaps by more than ``max_overlap`` frames)."""
    inside = [c for c in cuts if start < c < end]
    overlapped = [i for i, (first, last) in enumerate(gradual) if min(end, last + 1) - max(start, first) > max_overlap]
    return inside, overlapped
