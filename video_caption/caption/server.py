"""Start an OpenAI-compatible inference server for the run, and stop it on exit, also on failure.

The command is an argument list (the model path is never read by a shell); the server gets its own
process group so that stopping it also stops the workers it spawned.  Its output goes to a log
file in the output folder, whose tail is shown when it fails to come up.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

from video_caption.caption.backends import BackendError
from video_caption.caption.settings import ENGINES
from video_caption.media.process import die_with_parent

log = logging.getLogger("video_caption.caption")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def check_engine(engine: str) -> None:
    """Fail now if the engine cannot be started on this machine."""
    import importlib.util
    import shutil

    program = server_command(engine, "MODEL", 0)
    module = program[2] if program[0] == sys.executable else None
    if module and importlib.util.find_spec(module.split(".")[0]) is None:
        raise BackendError(f"cannot start a {engine} server: Python module {module} is not installed")
    if not module and shutil.which(program[0]) is None:
        raise BackendError(f"cannot start a {engine} server: {program[0]!r} is not on PATH (is {engine} installed?)")


def server_command(engine: str, model: str, port: int, host: str = "127.0.0.1", extra: list[str] = ()) -> list[str]:
    if engine == "vllm":
        cmd = ["vllm", "serve", model, "--host", host, "--port", str(port)]
    elif engine == "sglang":
        cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", model, "--host", host, "--port", str(port)]
    elif engine == "lmdeploy":
        cmd = ["lmdeploy", "serve", "api_server", model, "--server-name", host, "--server-port", str(port)]
    elif engine == "llamacpp":
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", host, "--port", str(port)]
    else:
        raise BackendError(f"unknown server engine {engine!r} (known: {', '.join(ENGINES)})")
    return cmd + list(extra)


class ManagedServer:
    """``with ManagedServer(...) as url:`` a healthy server at ``url`` for the block, stopped after it."""

    def __init__(self, engine: str, model: str, log_path: Path, startup_timeout: float = 900.0,
                 extra: list[str] = ()):
        self.port = free_port()
        self.cmd = server_command(engine, model, self.port, extra=extra)
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path, self.startup_timeout = log_path, startup_timeout
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> str:
        import httpx

        log.info("starting %s (log: %s)", " ".join(self.cmd), self.log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            try:
                # A server outliving a killed run would hold its GPU: it gets SIGTERM when we die.
                self.process = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True,
                                                preexec_fn=partial(die_with_parent, signal.SIGTERM))
            except FileNotFoundError as exc:
                raise BackendError(f"cannot start {self.cmd[0]}: {exc} (is the engine installed?)") from None
        deadline = time.monotonic() + self.startup_timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise BackendError(f"the server exited with status {self.process.returncode} before it was "
                                       f"ready; last lines of {self.log_path}:\n{self._tail()}")
                try:
                    if httpx.get(f"{self.url}/models", timeout=5).status_code == 200:
                        log.info("server ready at %s", self.url)
                        return self.url
                except httpx.HTTPError:
                    pass
                time.sleep(1)
            raise BackendError(f"the server was not ready after {self.startup_timeout:.0f} s; see {self.log_path}")
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def _tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue
