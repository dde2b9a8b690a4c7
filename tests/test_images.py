"""Images among the videos: a mixed folder (a shared video, and stills taken from the shared videos as
jpg, png and webp, one stored sideways with an EXIF turn, one a copy, one truncated) through
run_pipeline.sh.  Images are not cut, go through the one-frame steps (aesthetic, text, NSFW,
duplicates, caption with the image prompt, summary, match), skip motion and camera motion with the
reason, pass the duration and fps gates, and reach train.json as ``"type": "image"``.

The VLM and CLIP are tiny random-weight models of the real architectures (no real ones can be
loaded here); OCR, NudeNet, the hashes and the LLM (SmolLM2 through llama.cpp) are real."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import REPO, ffprobe
from mixed_helpers import IMAGES

from video_caption.manifest import read_rows
from video_caption.media.image import copy_upright, probe_image, read_image
from video_caption.media.process import MediaError
from video_caption.runner import digest

PROMPTS = REPO / "video_caption" / "caption" / "prompts"


def test_images_are_read_upright_and_a_broken_one_is_a_clear_error(mixed, tmp_path):
    upright = read_image(mixed / "photos" / "bikes.jpg")
    turned = read_image(mixed / "photos" / "bikes_sideways.jpg")
    assert turned.shape == upright.shape and np.abs(turned.astype(int) - upright).mean() < 3
    info = probe_image(mixed / "photos" / "bikes_sideways.jpg")
    assert (info.width, info.height, info.upright) == (upright.shape[1], upright.shape[0], False)
    gray = read_image(mixed / "photos" / "chaplin.webp", "gray")
    assert gray.ndim == 2 and gray.shape == read_image(mixed / "photos" / "chaplin.webp").shape[:2]

    copied = copy_upright(mixed / "photos" / "bikes_sideways.jpg", tmp_path / "turned.jpg")
    assert not copied.upright and probe_image(tmp_path / "turned.jpg").upright, "the copy is stored upright"
    copy_upright(mixed / "photos" / "bikes.jpg", tmp_path / "same.jpg")
    assert (tmp_path / "same.jpg").read_bytes() == (mixed / "photos" / "bikes.jpg").read_bytes()
    with pytest.raises(MediaError, match="cannot read image"):
        probe_image(mixed / "photos" / "broken.jpg")


def test_a_mixed_folder_runs_end_to_end_and_images_get_the_right_steps(mixed, mixed_run):
    out, proc = mixed_run
    assert proc.returncode == 2, proc.stderr[-3000:]  # 2: the broken image

    clips = {row["source_path"]: row for row in read_rows(out / "meta_clips.jsonl")}
    assert set(clips) == {*IMAGES, "carphone.mp4"}
    for name in IMAGES:
        row = clips[name]
        assert row["type"] == "image" and row["num_frames"] == 1 and row["video_path"].startswith("clips/")
        assert (row["width"], row["height"]) == read_image(mixed / name).shape[1::-1]
        assert (out / row["video_path"]).is_file()
    assert clips["carphone.mp4"]["type"] == "video" and clips["carphone.mp4"]["deferred"]
    errors = read_rows(out / "errors.jsonl")
    assert [(e["stage"], e["video_path"]) for e in errors] == [("cut", "photos/broken.jpg")]
    assert "cannot read image" in errors[0]["message"]

    path = {name: clips[name]["video_path"] for name in clips}
    images = {path[name] for name in IMAGES}
    fates = {row["video_path"]: row for row in read_rows(out / "gate_decisions.jsonl")}
    assert fates[path["photos/bars.png"]]["step"] == "text", "the test card's text is found on the image"
    duplicates = {row["video_path"]: row for row in read_rows(out / "duplicates.jsonl")}
    for copy in ("photos/bikes_copy.png", "photos/bikes_sideways.jpg"):
        assert fates[path[copy]]["step"] == "dedup" and duplicates[path[copy]]["dup_of"] == path["photos/bikes.jpg"]
    passed = {key for key, fate in fates.items() if fate["outcome"] == "passed"}
    assert passed == {path["photos/bikes.jpg"], path["photos/chaplin.webp"], path["carphone.mp4"]}

    def keys(name):
        return {row["video_path"] for row in read_rows(out / name)}

    reached_text = images | {path["carphone.mp4"]}
    assert keys("aesthetic_score.jsonl") == keys("text_score.jsonl") == reached_text
    assert keys("nsfw_score.jsonl") == keys("dedup_signatures.jsonl") == reached_text - {path["photos/bars.png"]}
    assert keys("motion_score.jsonl") == keys("camera_motion.jsonl") == {path["carphone.mp4"]}
    score = json.loads((out / "summary.json").read_text())["stages"]["score"]["gates"]
    assert score["metadata"]["passed"] == 6, "the duration and fps gates let images through"
    assert score["motion"]["skip_reasons"] == {"an image has one frame: no motion to measure": 4}
    assert score["camera_motion"]["skip_reasons"] == {"an image has one frame: no camera motion to measure": 4}
    assert score["motion"]["skipped"] == score["camera_motion"]["skipped"] == 4
    assert "motion: 4 clips skipped: an image has one frame" in proc.stderr

    image_prompt = (PROMPTS / "image_caption.txt").read_text().strip()
    for row in read_rows(out / "frame_caption.jsonl"):
        if row["video_path"] in images:
            assert row["prompt"] == image_prompt and row["sampled_frame_idx"] == [0]
            assert len(row["sampled_frame_caption"]) == 1
        else:
            assert row["prompt"] != image_prompt and len(row["sampled_frame_idx"]) == 2
    summary_prompt = digest((PROMPTS / "image_summary.txt").read_text().strip())
    summaries = {row["video_path"]: row["summary_settings"]["prompt"] == summary_prompt
                 for row in read_rows(out / "summary_caption.jsonl")}
    assert summaries == {key: key in images for key in passed}, "images, and only they, use the image template"
    assert keys("match_score.jsonl") <= passed and keys("match_score.jsonl") & images

    entries = json.loads((out / "train.json").read_text())
    types = {row["video_path"]: row["type"] for row in clips.values()}
    assert {e["type"] for e in entries} == {"image", "video"}
    assert all(e["type"] == types[e["file_path"]] for e in entries)
    # The deferred video clip passed every step: stage 3 made its file, and train.json points at it.
    video = path["carphone.mp4"]
    assert keys("materialized.jsonl") == {video} and "source_file" not in str(entries)
    assert ffprobe(out / video, "stream=nb_read_frames")["streams"][0]["nb_read_frames"] == "120"
