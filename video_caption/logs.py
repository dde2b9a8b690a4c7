"""Logging and progress bars, the same for every entry point."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time

PROGRESS_SECONDS = "VIDEO_CAPTION_PROGRESS_SECONDS"  # seconds between progress lines in a log (default 30)
# Log every HTTP request at INFO (httpx: the OpenAI backend; httpx2: huggingface_hub): one line per
# clip drowns the stage's own lines.
CHATTY = ("httpx", "httpx2")


def setup_logging(verbose: bool = False) -> logging.Logger:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    if not verbose:
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    return logging.getLogger("video_caption")


@contextlib.contextmanager
def native_stderr_hidden():
    """Hides what C libraries write to file descriptor 2 inside the block (llama.cpp's load chatter
    ignores ``verbose=False``) unless ``-v``; when the block raises, that output is printed after all,
    since it may say why."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):  # -v: setup_logging(True)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as hidden:
        os.dup2(hidden.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                hidden.seek(0)
                sys.stderr.write(hidden.read().decode(errors="replace"))


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class LoggedProgress:
    """tqdm's interface (``update``, ``set_postfix``, ``close``, a context manager) as a log line every
    ``interval`` seconds: for a stderr that is not a terminal (nohup, CI, a log file), where tqdm's
    bar would be off and a long stage would print nothing between its first and last line."""

    def __init__(self, total: int, desc: str, interval: float):
        self.total, self.desc, self.interval = total, desc, interval
        self.n = 0
        self.postfix = ""
        self.started = self.logged = time.monotonic()
        self.log = logging.getLogger("video_caption")

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.logged >= self.interval:
            self.logged = now
            self._line(now - self.started)

    def set_postfix(self, **values) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def _line(self, elapsed: float) -> None:
        rate = self.n / elapsed if elapsed > 0 else 0.0
        eta = _duration((self.total - self.n) / rate) if rate > 0 else "?"
        extra = f", {self.postfix}" if self.postfix else ""
        self.log.info("%s: %d/%d done, %.2f/s, %s elapsed, ETA %s%s", self.desc, self.n, self.total, rate,
                      _duration(elapsed), eta, extra)

    def close(self) -> None:
        """Nothing to clear: the stage logs its own last line."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(total: int, desc: str):
    """A tqdm bar on a terminal, else progress lines in the log (every $VIDEO_CAPTION_PROGRESS_SECONDS)."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="video", dynamic_ncols=True)
    try:
        interval = float(os.environ.get(PROGRESS_SECONDS, "30"))
    except ValueError:
        logging.getLogger("video_caption").warning("%s=%r is not a number of seconds: using 30",
                                                   PROGRESS_SECONDS, os.environ[PROGRESS_SECONDS])
        interval = 30.0
    return LoggedProgress(total, desc, interval)
