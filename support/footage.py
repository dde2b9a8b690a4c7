"""How much of a video's usable footage a stage-1 run kept as clips (a pure function).

Usable frames: those of each true shot (the frames between the true cuts and gradual ranges; the
file's start and end bound the first and last shot) that lasts at least ``min_frames``, less
``margin`` frames at each side that touches a true boundary: what stage 1's plan
(video_caption/cut/plan.py) would cut from a shot of at least MIN_SECONDS with the true boundaries,
before it splits it into clips of at most MAX_SECONDS.
"""

from __future__ import annotations

import numpy as np

from video_caption.cut.plan import in_transition, shots, transition_bounds


def usable(num_frames: int, cuts, gradual, min_frames: int, margin: int) -> np.ndarray:
    """One bool per frame: whether it is usable footage."""
    mask = np.zeros(num_frames, bool)
    for start, end in shots(set(cuts) | transition_bounds(gradual), num_frames):
        if end - start < min_frames or in_transition(start, gradual):
            continue
        mask[start + (margin if start > 0 else 0): end - (margin if end < num_frames else 0)] = True
    return mask


def footage_kept(num_frames: int, cuts, gradual, clips, min_frames: int, margin: int) -> tuple[int, int]:
    """(usable frames, of those the frames that some clip ``[start, end)`` covers)."""
    mask = usable(num_frames, cuts, gradual, min_frames, margin)
    covered = np.zeros(num_frames, bool)
    for start, end in clips:
        covered[max(0, start): min(num_frames, end)] = True
    return int(mask.sum()), int((mask & covered).sum())
