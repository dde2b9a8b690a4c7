"""Run a function over many items in worker processes, surviving items that crash a worker.

A decoder can crash its process on a hostile file (a segfault in a native library).  When that
happens every item then in flight is retried alone, in a fresh one-worker pool; an item that
crashes its worker again is reported as failed and the run goes on.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

CRASHED = "the worker process crashed while processing this file"


def die_with_parent() -> None:
    """Pool initializer: a worker must not outlive a killed run (it would race the rerun)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_isolated(items: Sequence, fn: Callable, args: tuple, workers: int,
                 on_result: Callable, on_error: Callable) -> None:
    """Call ``fn(item, *args)`` for every item; ``on_result(item, value)`` or ``on_error(item, exc)``
    is called in this process as each one finishes."""
    queue, suspects = list(reversed(items)), []
    context = multiprocessing.get_context("forkserver")
    while queue or suspects:
        solo = not queue
        batch = [suspects.pop()] if solo else queue
        size = 1 if solo else workers
        with ProcessPoolExecutor(size, mp_context=context, initializer=die_with_parent) as pool:
            running = {}
            try:
                while batch or running:
                    while batch and len(running) < size * 2:
                        item = batch.pop()
                        running[pool.submit(fn, item, *args)] = item
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        try:
                            value = future.result()
                        except BrokenProcessPool:
                            raise
                        except Exception as exc:
                            on_error(running.pop(future), exc)
                        else:
                            on_result(running.pop(future), value)
            except BrokenProcessPool:
                if solo:
                    on_error(next(iter(running.values())), RuntimeError(CRASHED))
                else:
                    suspects += list(running.values())
