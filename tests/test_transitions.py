"""Gradual transitions on short synthetic frame sequences: a dissolve and a fade are found where they
are, and moving or still shots, and hard cuts, give none."""

from __future__ import annotations

import numpy as np
import pytest

from video_caption.cut.transitions import SIZE, TransitionSettings, find_transitions, grey, merge_ranges

SETTINGS = TransitionSettings.for_fps(25)  # k 2, runs of 4 to 50 frames
W, H = SIZE


def texture(seed: int) -> np.ndarray:
    """A random picture with detail at several scales, twice as wide as a frame (to pan across)."""
    import cv2

    rng = np.random.default_rng(seed)
    picture = np.zeros((H, 2 * W), np.float32)
    for cells in (4, 8, 16):
        noise = rng.uniform(-1, 1, (max(2, H * cells // W), 2 * cells)).astype(np.float32)
        picture += cv2.resize(noise, (2 * W, H), interpolation=cv2.INTER_CUBIC) * (120 / cells ** 0.5)
    return (picture - picture.min()) / (picture.max() - picture.min()) * 200 + 25


def shot(seed: int, frames: int, pan: float = 0.3) -> list[np.ndarray]:
    """A camera panning ``pan`` pixels a frame over one texture, with a little sensor noise."""
    import cv2

    picture, rng = texture(seed), np.random.default_rng(seed + 100)
    out = []
    for i in range(frames):
        shift = np.float32([[1, 0, -i * pan], [0, 1, 0]])
        moved = cv2.warpAffine(picture, shift, (2 * W, H), borderMode=cv2.BORDER_REFLECT)[:, :W]
        out.append(moved + rng.normal(0, 0.5, (H, W)).astype(np.float32))
    return out


def dissolve(a: list, b: list, frames: int) -> list[np.ndarray]:
    """``a``'s last ``frames`` frames mixed into ``b``'s first: a linear cross-dissolve."""
    mix = [(1 - (i + 1) / (frames + 1)) * x + (i + 1) / (frames + 1) * y
           for i, (x, y) in enumerate(zip(a[-frames:], b[:frames], strict=True))]
    return a[:-frames] + mix + b[frames:]


@pytest.mark.parametrize("pan", [0.0, 0.05])
@pytest.mark.parametrize("length", [8, 20, 37])
def test_a_dissolve_is_found_where_it_is(length, pan):
    frames = dissolve(shot(1, 60, pan), shot(2, 60, pan), length)
    [found] = find_transitions(frames, SETTINGS)
    first, last = 60 - length, 59  # the mixed frames
    assert found.kind == "dissolve"
    # Never short by more than the 2 margin frames stage 1 trims at each side of a cut.
    assert first - 2 * SETTINGS.k <= found.first <= first + 2 and last - 2 <= found.last <= last + 2 * SETTINGS.k


def test_a_fade_through_black_is_one_transition():
    a, b = shot(3, 50), shot(4, 50)
    out = [x * (1 - (i + 1) / 12) for i, x in enumerate(a[-12:])]
    into = [y * (i + 1) / 12 for i, y in enumerate(b[:12])]
    frames = a[:-12] + out + [np.zeros((H, W), np.float32)] * 4 + into + b[12:]
    found = merge_ranges(find_transitions(frames, SETTINGS), gap=12)
    assert [t.kind for t in found] == ["fade_black"]
    assert found[0].first <= 38 + 1 and found[0].last >= 38 + 12 + 4 + 12 - 2


@pytest.mark.parametrize("pan", [0.0, 0.1, 0.3, 1.0, 2.0, 4.0])
def test_still_and_panning_shots_and_hard_cuts_give_none(pan):
    """A slow pan over a smooth picture is close to a mix locally; its ends are one picture moved."""
    frames = shot(5, 80, pan) + shot(6, 80, pan) + shot(7, 80, pan)
    assert find_transitions(frames, SETTINGS) == []


def test_grey_is_numpys_float32_channel_mean_exactly():
    rng = np.random.default_rng(0)
    for shape in [(SIZE[1], SIZE[0], 3), (1, 1, 3), (35, 63, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        assert np.array_equal(grey(image), image.mean(axis=2, dtype=np.float32))
    plain = rng.integers(0, 256, (4, 5), dtype=np.uint8)
    assert np.array_equal(grey(plain), plain.astype(np.float32))


def test_a_slow_change_longer_than_a_transition_is_part_of_the_shot():
    a, b = shot(8, 1, pan=0)[0], shot(9, 1, pan=0)[0]
    frames = [a + (b - a) * i / 200 for i in range(200)]  # 8 s of slow mixing
    assert find_transitions(frames, SETTINGS) == []


def test_stage1_keeps_every_clip_clear_of_a_real_dissolve_and_fade(videos, tmp_path):
    """Real footage spliced with a dissolve and a fade through black (support/splicing.py, ranges
    known by construction): with --transitions both are found and no clip reaches into them."""
    from fractions import Fraction

    from conftest import run_module
    from splicing import Shot, Spec, Transition, build, truth_row

    from video_caption.cut.evaluate import clip_faults
    from video_caption.manifest import read_rows

    spec = Spec(shots=(Shot("moviepy/chaplin.mp4", 0.5, 150), Shot("moviepy/timecode_example.mp4", 2.0, 150),
                       Shot("moviepy/smpte-2997.mp4", 1.0, 150)),
                transitions=(Transition("dissolve", frames=20), Transition("fade_black", fade_out=12, hold=3,
                                                                             fade_in=12)),
                width=320, height=180, fps=Fraction(25))
    (tmp_path / "in").mkdir()
    build(spec, videos, tmp_path / "in" / "spliced.mp4")
    truth = truth_row(spec)
    run_module("video_caption.cut", "--video-folder", tmp_path / "in", "--output-folder", tmp_path / "out",
               "--transitions")
    [scene] = read_rows(tmp_path / "out" / "meta_scene_info.jsonl")
    found = [(first, last) for first, last, _ in scene["transitions"]]
    for (first, last), kind in zip(truth["gradual"], truth["gradual_kinds"], strict=True):
        assert any(a <= last and first <= b for a, b in found), (kind, first, last, scene["transitions"])
    clips = read_rows(tmp_path / "out" / "meta_clips.jsonl")
    assert clips
    for clip in clips:
        assert clip_faults(clip["start_frame"], clip["end_frame"], truth["cuts"], truth["gradual"]) == ([], []), clip
