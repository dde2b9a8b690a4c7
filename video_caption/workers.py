"""Run a function over many items in worker processes, surviving items that crash or hang a worker.

Each worker process takes one item at a time, so when a worker dies (a segfault in a native decoder
on a hostile file) or stops making progress (a read that never returns), the parent knows exactly
which item did it: that item is reported as failed, the worker is replaced, and the run goes on.
Progress is what ``heartbeat()`` reports: the work function calls it as it goes (stage 1: once per
decoded frame), so a long source that keeps decoding is never cut off, while one that stalls is.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait

from video_caption.media.process import die_with_parent

CRASHED = "the worker process crashed while processing this file"

_beat = None  # this worker's shared last-progress time (None outside a worker)


def usable_cores() -> int:
    """The cores this process may run on (a job scheduler's CPU set, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes that can be used now without swapping: the kernel's MemAvailable, or less when a
    container's memory limit (cgroup v2) leaves less."""
    found = []
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            found += [int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:")]
    except OSError:
        found.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as limit, \
                open("/sys/fs/cgroup/memory.current", encoding="ascii") as current:
            text = limit.read().strip()
            if text != "max":
                found.append(int(text) - int(current.read()))
    except (OSError, ValueError):
        pass
    return max(0, min(found))


def default_workers(bytes_per_worker: int, spare_cores: int = 0, most: int | None = None) -> int:
    """As many parallel workers as there are usable cores (less ``spare_cores`` left to other work,
    at most ``most``), but no more than the available memory holds at ``bytes_per_worker`` each
    (at least 1)."""
    count = min(usable_cores() - spare_cores, available_memory() // bytes_per_worker)
    return max(1, count if most is None else min(most, count))


def heartbeat() -> None:
    """Tell the parent this item is still making progress (cheap; a no-op outside a worker)."""
    if _beat is not None:
        _beat.value = time.monotonic()


def at_lower_priority(fn: Callable, *args, nice: int = 10):
    """``fn(*args)`` in a thread of its own whose CPU priority is ``nice`` steps lower (on Linux,
    where each thread has its own nice value; elsewhere at the same priority); returns its result or
    raises its exception.  An unprivileged process cannot raise a priority again, so the lowered
    thread ends with the call; the threads it starts inherit its priority."""
    outcome: dict = {}

    def call() -> None:
        if sys.platform.startswith("linux"):
            with contextlib.suppress(OSError):
                me = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + nice))
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, name="lower-priority", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def start_forkserver(preload: list[str] | None = None) -> None:
    """Start multiprocessing's fork server (``preload``: the modules it imports once for every worker)
    with SIGINT ignored, unless it runs already.  It and every worker it forks then ignore Ctrl-C,
    which the terminal sends to the whole process group: the parent stops them, and reports the
    interrupt alone (``cli.entry_point``), instead of each process printing a traceback."""
    from multiprocessing import forkserver

    if preload is not None:
        multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    if threading.current_thread() is not threading.main_thread():  # only the main thread sets handlers
        forkserver.ensure_running()
        return
    # An ignored signal stays ignored across exec (Python then installs no handler of its own) and
    # the fork server restores that in each child; a Ctrl-C in these few milliseconds is lost.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


@contextlib.contextmanager
def interrupts_deferred():
    """Hold a Ctrl-C (SIGINT) back until the block ends, then raise it: for a block that must not stop
    halfway, such as starting worker processes (a pool cut off while it starts its workers can neither
    stop them in order nor keep alive what they are still to unpickle)."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda *_: caught.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)  # Python's default handler raises KeyboardInterrupt


class Stalled(Exception):
    """An item made no progress for the stall timeout; its worker was killed."""


def _serve(conn, beat, fn: Callable, args: tuple) -> None:
    global _beat
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers on Ctrl-C
    die_with_parent()
    _beat = beat
    while (item := conn.recv()) is not None:
        heartbeat()
        try:
            message = (True, fn(item, *args))
        except Exception as exc:  # noqa: BLE001 - the item's failure is reported, the worker goes on
            message = (False, exc)
        try:
            conn.send(message)
        except Exception as exc:  # noqa: BLE001 - an exception that does not pickle still reports
            conn.send((False, RuntimeError(f"{type(message[1]).__name__}: {message[1]} ({exc})")))


class _Worker:
    def __init__(self, context, fn: Callable, args: tuple):
        self.conn, child = context.Pipe()
        self.beat = context.RawValue("d", time.monotonic())
        self.process = context.Process(target=_serve, args=(child, self.beat, fn, args), daemon=True)
        self.process.start()
        child.close()
        self.item = None

    def give(self, item) -> None:
        self.item = item
        self.beat.value = time.monotonic()
        self.conn.send(item)

    def idle_for(self) -> float:
        return time.monotonic() - self.beat.value

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.kill()


def run_isolated(items: Sequence, fn: Callable, args: tuple, workers: int, on_result: Callable,
                 on_error: Callable, stall_timeout: float = 0) -> None:
    """Call ``fn(item, *args)`` for every item in ``workers`` processes; ``on_result(item, value)``
    or ``on_error(item, exc)`` is called in this process as each one finishes.  With
    ``stall_timeout`` > 0, an item whose worker reports no ``heartbeat()`` for that many seconds is
    killed and reported with ``Stalled``."""
    context = multiprocessing.get_context("forkserver")
    start_forkserver()
    queue = deque(items)
    pool = [_Worker(context, fn, args) for _ in range(max(1, min(workers, len(queue))))]
    try:
        while True:
            for i, worker in enumerate(pool):
                if worker.item is None and queue:
                    if not worker.process.is_alive():  # died after its last result
                        worker.kill()
                        pool[i] = worker = _Worker(context, fn, args)
                    worker.give(queue.popleft())
            busy = [w for w in pool if w.item is not None]
            if not busy:
                break
            waits = [stall_timeout - w.idle_for() for w in busy] if stall_timeout > 0 else []
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy],
                 timeout=max(0.0, min(waits)) + 0.05 if waits else None)
            for i, worker in enumerate(pool):
                if worker.item is not None:
                    pool[i] = _collect(worker, context, fn, args, on_result, on_error, stall_timeout)
    except BaseException:
        for worker in pool:  # a callback gave up on the run: the items in flight are abandoned
            worker.kill()
        raise
    for worker in pool:
        worker.stop()


def _collect(worker: _Worker, context, fn, args, on_result, on_error, stall_timeout: float) -> _Worker:
    """Hand a finished item to its callback; replace a worker that died or stalled."""
    item = worker.item
    if worker.conn.poll():
        try:
            ok, value = worker.conn.recv()
        except (EOFError, OSError):
            ok, value = False, None
        else:
            worker.item = None
            (on_result if ok else on_error)(item, value)
            return worker
    if worker.process.is_alive() and not (stall_timeout > 0 and worker.idle_for() > stall_timeout):
        return worker
    if worker.process.is_alive():
        error = Stalled(f"no progress for {stall_timeout:g} s (a decoder or read that hangs): killed")
    else:
        error = RuntimeError(CRASHED)
    worker.kill()
    on_error(item, error)
    return _Worker(context, fn, args)
