"""The hard-negative set (support/hard_negatives.py, bench/hard_negatives.py): one short file with
an event of each kind, its events at the frames the ground truth says on the decoded file; and the
footage-kept figure of bench/shot_detection.py (support/footage.py) on a hand-made case."""

from __future__ import annotations

from fractions import Fraction

from footage import footage_kept
from hard_negatives import Event, Spec, build, compose, lights_gain, truth_row
from splicing import decoded_frames, psnr

# 25 fps, 5 s of one shot of chaplin.mp4 (a single-shot stretch of SEGMENTS), 125 frames.
SPEC = Spec("moviepy/chaplin.mp4", 1.0, 125, 320, 180, Fraction(25), events=(
    Event("flash", 15, 2, 0.8),
    Event("strobe", 30, 8, 0.5),
    Event("whip_pan", 50, 12, 0.7, direction=-1),
    Event("fast_zoom", 75, 10, 2.0),
    Event("lights_off", 95, 17, 0.25, ramp=1),
))


def test_events_sit_at_their_frames(videos, tmp_path):
    row = truth_row(SPEC)
    assert row["frames_decoded"] == 125 and row["cuts"] == [] and row["gradual"] == []
    assert [(e["kind"], e["first"], e["last"]) for e in row["events"]] == [
        ("flash", 15, 16), ("strobe", 30, 37), ("whip_pan", 50, 61), ("fast_zoom", 75, 84), ("lights_off", 95, 111)]

    path = tmp_path / "hardneg.mp4"
    build(SPEC, videos, path)
    decoded = list(decoded_frames(path))
    shot = [own for _, own in compose(SPEC, videos)]  # the shot's frames before any event
    assert len(decoded) == len(shot) == 125
    level = [float(frame.mean()) for frame in decoded]
    assert row["events"]
    for e in row["events"]:
        first, last = e["first"], e["last"]
        # each event alters exactly first..last: the frames either side of it are the shot's own
        for t in (first - 1, last + 1):
            assert psnr(decoded[t], shot[t]) > 32, (e, t)
        for t in (first, last):
            assert psnr(decoded[t], shot[t]) < 25, (e, t)
        inside = range(first, last + 1)
        if e["kind"] == "flash":
            assert all(level[t] > level[first - 1] + 80 for t in inside)
        elif e["kind"] == "strobe":  # brighter, darker, brighter, ... than the shot
            assert all((level[t] > shot[t].mean() + 40) == (k % 2 == 0) for k, t in enumerate(inside))
            assert all(level[t] < shot[t].mean() - 20 for t in inside[1::2])
        elif e["kind"] == "lights_off":
            middle = (first + last) // 2
            assert lights_gain(SPEC.events[-1], middle - first) == 0.25
            assert level[middle] < 0.3 * shot[middle].mean()
        else:  # whip pan and fast zoom: another view of the picture, every frame of the event
            assert all(psnr(decoded[t], shot[t]) < 22 for t in inside), e


def test_footage_kept_counts_the_usable_frames_that_clips_cover():
    # 100 frames, cuts at 40 and 90, a gradual range 60..69, shots of at least 15 frames, margin 2:
    # usable [0, 38) + [42, 58) + [72, 88) = 70 frames ([90, 100) is too short, the range is no shot's).
    cuts, gradual = [40, 90], [(60, 69)]
    assert footage_kept(100, cuts, gradual, [], 15, 2) == (70, 0)
    # clips cover [0, 30) 30 + [45, 58) 13 + [75, 88) 13 of them; [88, 95) is margin or too short
    assert footage_kept(100, cuts, gradual, [(0, 30), (45, 58), (75, 95)], 15, 2) == (70, 56)
    assert footage_kept(50, [], [], [(0, 50)], 15, 2) == (50, 50)  # no margin at the file's ends
    assert footage_kept(10, [], [], [], 15, 2) == (0, 0)  # one shot, shorter than a clip
