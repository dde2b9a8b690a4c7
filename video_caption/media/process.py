"""The bottom layer for media tools: their error, the subprocess helper, absolute paths, and
processes that die with their parent.  Nothing here imports from the project."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


class MediaError(RuntimeError):
    """A file that cannot be probed, decoded or encoded; the message is meant for errors.jsonl."""


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies: a worker, tool or
    server must not outlive a killed run (it would race the rerun or hold a GPU)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG


def check_not_empty(path: str | os.PathLike) -> None:
    """Raise MediaError saying plainly that ``path`` is an empty file (libav calls it "Invalid data
    found when processing input", Pillow "cannot identify image file"); called where opening failed."""
    try:
        empty = os.stat(path).st_size == 0
    except OSError:
        return  # the opener's own error says why
    if empty:
        raise MediaError("empty file (0 bytes)")


def run(cmd: list[str], timeout: float | None = None, stdin: bytes | None = None, tied: bool = True
        ) -> subprocess.CompletedProcess:
    """Run a command (an argument list, never a shell string); raise MediaError with its stderr.

    ``tied``: the command dies with this process (``die_with_parent``, run between fork and exec).
    Not from a process running native threads of its own (libx264's): there, measured, the child
    hung before exec on a lock one of them held at the fork."""
    if not isinstance(cmd, list):
        raise TypeError("commands are argument lists")
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False,
                              preexec_fn=die_with_parent if tied else None)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{Path(cmd[0]).name} timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise MediaError(f"{Path(cmd[0]).name} exited {proc.returncode}: {' | '.join(tail) or 'no message'}")
    return proc


def media_path(path: str | os.PathLike) -> str:
    """The path to give ffmpeg, ffprobe or PyAV: absolute, so it never starts with '-' and never
    looks like 'proto:...'."""
    return os.path.abspath(path)
