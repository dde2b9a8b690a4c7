"""Progress where there is no terminal, and native stderr chatter hidden unless -v."""

from __future__ import annotations

import io
import logging
import os
import sys

import pytest

from video_caption import logs


def test_progress_without_a_terminal_logs_a_line_per_interval(monkeypatch, caplog):
    clock = [100.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: clock[0])
    monkeypatch.setenv(logs.PROGRESS_SECONDS, "30")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a terminal
    caplog.set_level(logging.INFO, "video_caption")
    with logs.progress(10, "stage 1: cut") as bar:
        for now in (110, 125, 131, 140):
            clock[0] = now
            bar.update(1)
            bar.set_postfix(clips=3 * bar.n, failed=0)
    # One line at 31 s (the first update past the interval), none before or until the next interval.
    [line] = [r.getMessage() for r in caplog.records]
    assert line == "stage 1: cut: 3/10 done, 0.10/s, 0:31 elapsed, ETA 1:12, clips=6, failed=0"


def test_a_bad_progress_interval_is_named_and_the_default_used(monkeypatch, caplog):
    monkeypatch.setenv(logs.PROGRESS_SECONDS, "often")
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert logs.progress(1, "x").interval == 30
    assert "VIDEO_CAPTION_PROGRESS_SECONDS='often'" in caplog.text


def test_native_stderr_is_hidden_unless_verbose_and_shown_when_the_block_fails(capfd):
    with logs.native_stderr_hidden():
        os.write(2, b"llama_chatter: loading\n")
    with pytest.raises(ValueError), logs.native_stderr_hidden():
        os.write(2, b"gguf_init: bad magic\n")
        raise ValueError("failed to load")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)  # what setup_logging(verbose=True) sets
    try:
        with logs.native_stderr_hidden():
            os.write(2, b"llama_verbose: shown\n")
    finally:
        root.setLevel(level)
    assert capfd.readouterr().err == "gguf_init: bad magic\nllama_verbose: shown\n"


def test_a_terminal_keeps_the_tqdm_bar(monkeypatch):
    from tqdm import tqdm

    main, terminal = os.openpty()
    with os.fdopen(terminal, "w") as stderr:
        monkeypatch.setattr(sys, "stderr", stderr)
        bar = logs.progress(2, "x")
        assert isinstance(bar, tqdm) and not bar.disable
        bar.close()
    os.close(main)
