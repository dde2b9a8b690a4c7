"""Clips with the source's audio (``--keep-audio``): one AAC track as long as the clip's video, in sync
with the source.  The audio is compared with the source's own by an independent reader (ffmpeg's
command line), so an offset, a gap or a garbled placement of the samples shows as a lag or a lost
correlation."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import run_module

from video_caption.manifest import META_CLIPS, read_rows

# Vorbis in WebM (timestamps in ms, coarser than samples), Opus mono in Matroska, AAC in a rotated MP4.
SOURCES = ["moviepy/big_buck_bunny_0_30.webm", "decord/flipping_a_pancake.mkv", "pyscenedetect/issue-134-rotate.mp4"]
# Made here: noise (no period a lag could hide in) as 16-bit PCM at 96 kHz in 7.1 in MOV, a track
# PyAV 18 crashes on when its layout is read (measured: a double free), so ffmpeg adds the audio.
PCM_71 = "pcm_71.mov"
RATE = 16_000  # both sides are compared as mono at this rate
EARLY = 0.1  # the source is read from this long before the clip's start, so a lag either way shows


def pcm(*args: str) -> np.ndarray:
    cmd = ["ffmpeg", "-v", "error", *args, "-f", "f32le", "-ac", "1", "-ar", str(RATE), "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.float32)


def streams(path) -> dict:
    """The file's streams by type, and its format under "format"."""
    cmd = ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,duration,sample_rate,channels,"
           "start_time:format=start_time", "-of", "json", str(path)]
    found = json.loads(subprocess.run(cmd, capture_output=True, check=True).stdout)
    return {**{s["codec_type"]: s for s in found["streams"]}, "format": found["format"]}


@pytest.fixture(scope="module")
def with_audio(videos, tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio_sources")
    for name in SOURCES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).symlink_to(videos / name)
    pan = "|".join(f"c{i}=c0" for i in range(8))
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6",
                    "-f", "lavfi", "-i", "anoisesrc=d=6:c=pink:r=96000:a=0.3", "-filter_complex",
                    f"[1:a]pan=7.1|{pan}[a]", "-map", "0:v", "-map", "[a]",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", str(folder / PCM_71)],
                   check=True)
    out = tmp_path_factory.mktemp("audio_clips")
    run_module("video_caption.cut", "--video-folder", folder, "--output-folder", out, "--keep-audio")
    return folder, out


def test_clips_keep_the_sources_audio_in_sync(with_audio):
    folder, out = with_audio
    rows = read_rows(out / META_CLIPS)
    assert {row["source_path"] for row in rows} == {*SOURCES, PCM_71}
    checked = 0
    for row in rows:
        clip, source = out / row["video_path"], folder / row["source_path"]
        got, original = streams(clip), streams(source)
        assert got["audio"]["codec_name"] == "aac", row["video_path"]
        assert (got["audio"]["sample_rate"], got["audio"]["channels"]) == (
            original["audio"]["sample_rate"], original["audio"]["channels"])
        # As long as the video, to within one AAC frame.
        frame_s = 1024 / int(got["audio"]["sample_rate"])
        assert abs(float(got["audio"]["duration"]) - float(got["video"]["duration"])) <= frame_s + 1e-3

        # The clip's first frame on the reader's timeline, which ffmpeg starts at the file's start time.
        start = (float(original["video"].get("start_time") or 0) - float(original["format"].get("start_time") or 0)
                 + row["start_time"])
        early = min(EARLY, start)
        mine = pcm("-i", str(clip), "-t", "2")
        theirs = pcm("-i", str(source), "-af", f"atrim=start={start - early:.6f}:duration={2 + 2 * EARLY:.6f}")
        if np.sqrt(np.mean(mine ** 2)) < 0.005:
            continue  # too quiet to correlate
        n, reach = len(mine) - round(2 * EARLY * RATE), round(2 * EARLY * RATE)
        lag = max(range(reach), key=lambda k: float(np.dot(mine[:n], theirs[k:k + n])))
        # 5 ms: Opus after a seek lands 3.8 ms from where the reader's trim does (an AAC frame is 21-23 ms).
        assert abs(lag / RATE - early) <= 0.005, f"{row['video_path']}: audio off by {lag / RATE - early:+.4f} s"
        # 128 kb/s of AAC keeps 0.99 of plain sound, 0.87 of the 7.1 noise (16 kb/s a channel).
        assert np.corrcoef(mine[:n], theirs[lag:lag + n])[0, 1] > 0.8, row["video_path"]
        checked += 1
    assert checked >= len(rows) - 1, "most clips have audio loud enough to check"
