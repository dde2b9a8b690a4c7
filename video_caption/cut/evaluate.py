"""Shot-boundary scoring against ground truth (pure functions).

A detected cut matches a true cut within ``tolerance`` frames (each true cut matches at most
one detection, nearest first).  A detection that matches nothing but falls inside a listed
gradual transition counts neither way.
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


def score_cuts(detected, truth, gradual=(), tolerance: int = 2) -> Score:
    unmatched = sorted(set(truth))
    score = Score()
    for cut in sorted(set(detected)):
        near = [t for t in unmatched if abs(t - cut) <= tolerance]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - cut)))
            score.true_positives += 1
        elif not any(lo <= cut <= hi for lo, hi in gradual):
            score.false_positives += 1
    score.false_negatives = len(unmatched)
    return score
