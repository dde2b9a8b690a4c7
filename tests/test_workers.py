"""The worker pool under stage 1: an item that crashes or hangs its worker is reported as that item's
failure, a slow item that keeps reporting progress is left alone, and the others all finish."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from video_caption.workers import CRASHED, Stalled, at_lower_priority, heartbeat, run_isolated


def work(item: str, pause: float, pids: str = "") -> str:
    if pids:  # the test checks afterwards that this worker is gone
        open(os.path.join(pids, str(os.getpid())), "w").close()
    if item == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if item == "hang":
        time.sleep(600)
    if item == "slow":  # longer than the stall timeout, but never silent for long
        for _ in range(12):
            time.sleep(0.25)
            heartbeat()
    time.sleep(pause)
    if item == "bad":
        raise ValueError("bad item")
    return item.upper()


def test_crashed_and_stalled_items_are_reported_and_the_rest_finish():
    items = ["a", "crash", "b", "hang", "slow", "bad", "c", "d"]
    results, errors = {}, {}
    started = time.monotonic()
    run_isolated(items, work, (0.05,), 2, results.__setitem__, errors.__setitem__, stall_timeout=1.5)
    assert results == {"a": "A", "b": "B", "c": "C", "d": "D", "slow": "SLOW"}
    assert set(errors) == {"crash", "hang", "bad"}
    assert str(errors["crash"]) == CRASHED
    assert isinstance(errors["hang"], Stalled) and "no progress for 1.5 s" in str(errors["hang"])
    assert isinstance(errors["bad"], ValueError)
    assert time.monotonic() - started < 120, "the hanging item was not cut off"


def test_a_callback_that_gives_up_stops_every_worker(tmp_path):
    def give_up(item, exc):
        raise RuntimeError("stop the run")

    try:
        run_isolated(["hang", "bad", "hang"], work, (1.0, str(tmp_path)), 2, lambda *_: None, give_up)
    except RuntimeError as exc:
        assert str(exc) == "stop the run"
    else:
        raise AssertionError("the callback's exception was swallowed")
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 2  # both workers started an item
    time.sleep(0.5)
    assert not [pid for pid in pids if _alive(pid)], "workers outlived the run"


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_default_workers_follow_cores_and_the_memory_available(monkeypatch):
    from video_caption import workers

    monkeypatch.setattr(workers, "usable_cores", lambda: 8)
    for available, expected in ((100 << 30, 8), (10 << 30, 3), (1 << 30, 1)):
        monkeypatch.setattr(workers, "available_memory", lambda available=available: available)
        assert workers.default_workers(3 << 30) == expected
    monkeypatch.undo()
    assert 0 < workers.available_memory() and 1 <= workers.usable_cores() <= (os.cpu_count() or 1)


def test_loader_workers_leave_a_core_to_the_step_and_fit_the_memory(monkeypatch):
    from video_caption import loader, workers

    for cores, available, expected in ((2, 100 << 30, 1), (8, 100 << 30, 4), (8, 7 << 30, 2), (1, 100 << 30, 1),
                                       (16, 1 << 30, 1)):
        monkeypatch.setattr(workers, "usable_cores", lambda cores=cores: cores)
        monkeypatch.setattr(workers, "available_memory", lambda available=available: available)
        assert loader.default_loader_workers() == expected, (cores, available)


def own_priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_at_lower_priority_runs_lower_and_leaves_the_caller_as_it_was():
    before = own_priority()
    assert at_lower_priority(own_priority) == min(19, before + 10)
    assert at_lower_priority(own_priority, nice=3) == min(19, before + 3)
    assert own_priority() == before

    def fail():
        raise ValueError("from the thread")

    with pytest.raises(ValueError, match="from the thread"):
        at_lower_priority(fail)
