"""Clip purity on short synthetic colour sequences: a wipe (no mix of two pictures) is found where it
is, a hard cut comes back as a cut, and one shot panning or standing still gives nothing; the
per-clip check tells one shot from two; black runs and overlapping ranges are recorded once."""

from __future__ import annotations

import numpy as np
import pytest
from test_transitions import texture as grey_texture

from video_caption.cut.purity import ChangeFinder, PuritySettings, clip_contrast, colour_root
from video_caption.cut.transitions import SIZE, BlackFrames, Transition, grey, merge_ranges

SETTINGS = PuritySettings.for_fps(25)
W, H = SIZE
TINTS = [(1.0, 0.6, 0.3), (0.3, 0.8, 1.0), (0.5, 1.0, 0.5), (1.0, 1.0, 1.0)]  # BGR gains per shot


def texture(seed: int) -> np.ndarray:
    """test_transitions' grey picture, tinted: each shot has its own colours."""
    return np.stack([grey_texture(seed) * gain for gain in TINTS[seed % len(TINTS)]], axis=2)


def shot(seed: int, frames: int, pan: float = 1.0) -> list[np.ndarray]:
    import cv2

    picture, rng = texture(seed), np.random.default_rng(seed + 100)
    out = []
    for i in range(frames):
        moved = cv2.warpAffine(picture, np.float32([[1, 0, -i * pan], [0, 1, 0]]), (2 * W, H),
                               borderMode=cv2.BORDER_REFLECT)[:, :W]
        out.append(np.clip(moved + rng.normal(0, 1.0, moved.shape), 0, 255).astype(np.uint8))
    return out


def wipe(a: list, b: list, frames: int) -> list[np.ndarray]:
    """``b`` enters from the left over ``a``'s last ``frames`` frames."""
    mixed = []
    for i, (x, y) in enumerate(zip(a[-frames:], b[:frames], strict=True)):
        columns = round(W * (i + 1) / (frames + 1))
        frame = x.copy()
        frame[:, :columns] = y[:, :columns]
        mixed.append(frame)
    return a[:-frames] + mixed + b[frames:]


def changes(frames: list[np.ndarray]) -> list[Transition]:
    finder = ChangeFinder(SETTINGS)
    found = []
    for index, frame in enumerate(frames):
        found += finder.push(index, colour_root(frame), grey(frame))
    return found + finder.finish()


@pytest.mark.parametrize("length", [8, 20, 36])
def test_a_wipe_is_found_where_it_is(length):
    frames = wipe(shot(1, 80), shot(2, 80), length)
    found = merge_ranges(changes(frames))
    first, last = 80 - length, 79  # the wipe's frames
    assert [t.kind for t in found] == ["gradual"]
    # No frame of the wipe left to a clip beyond the margin stage 1 trims (2) and the 2 frames allowed.
    assert found[0].first <= first + 4 and found[0].last >= last - 4
    assert found[0].first >= first - 12 and found[0].last <= last + 12  # and not much of the shots lost


def test_a_hard_cut_comes_back_as_a_cut():
    found = changes(shot(1, 80) + shot(2, 80))
    assert {(t.first, t.kind) for t in found} == {(80, "cut")}


@pytest.mark.parametrize("pan", [0.0, 0.5, 2.0, 4.0])
def test_one_shot_still_or_panning_gives_nothing(pan):
    frames = shot(3, 200, pan)
    assert changes(frames) == []
    value, _ = clip_contrast(np.asarray([colour_root(f) for f in frames]), SETTINGS.min_part)
    assert value < SETTINGS.max_clip_contrast


def test_the_clip_check_tells_two_shots_from_one():
    frames = wipe(shot(1, 100), shot(2, 100), 12)
    value, split = clip_contrast(np.asarray([colour_root(f) for f in frames]), SETTINGS.min_part)
    assert value > SETTINGS.max_clip_contrast
    assert 100 - 12 - 6 <= split <= 100 + 6
    assert clip_contrast(np.asarray([colour_root(f) for f in frames[:10]]), SETTINGS.min_part) == (0.0, 0)


def test_black_runs_and_overlapping_ranges():
    black = BlackFrames(level=4.0)
    levels = [50, 3, 2, 50, 50, 1, 1]
    runs = [t for i, level in enumerate(levels) for t in black.push(i, level)] + black.finish()
    assert runs == [Transition(1, 2, "black"), Transition(5, 6, "black")]
    assert BlackFrames(level=0).push(0, 0.0) == [] and BlackFrames(level=0).finish() == []
    merged = merge_ranges([Transition(10, 20, "gradual"), Transition(15, 30, "fade_black"),
                                Transition(31, 33, "black"), Transition(40, 45, "gradual")])
    assert merged == [Transition(10, 33, "fade_black"), Transition(40, 45, "gradual")]

