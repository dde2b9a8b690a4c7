"""Batching of clips for the models: by count, and by bytes so that big clips cannot fill the memory."""

from __future__ import annotations

from video_caption.loader import batch_indices
from video_caption.score.flow import MotionFrames


def test_batches_keep_order_and_respect_count_and_bytes():
    assert batch_indices([0] * 6, 2) == [[0], [1, 2], [3, 4], [5]]  # the first batch is one clip
    assert [len(b) for b in batch_indices([0] * 20, 8)] == [1, 2, 4, 8, 5]
    assert batch_indices([10, 40, 40, 40, 10, 10], 8, budget=100) == [[0], [1, 2], [3, 4, 5]]
    assert batch_indices([1, 500, 1, 1], 8, budget=100) == [[0], [1], [2, 3]]  # an oversized clip goes alone


def test_motion_batches_of_8k_clips_stay_within_the_budget():
    row_8k = {"width": 7680, "height": 4320, "num_frames": 240, "fps": 24.0}
    exact = MotionFrames().prepared_bytes(row_8k)
    assert exact == 7680 * 4320 * 20  # 20 sampled gray frames at full size
    assert MotionFrames(max_side=480).prepared_bytes(row_8k) == 480 * 270 * 20
    batches = batch_indices([exact] * 6, 8)
    assert [len(b) for b in batches] == [1] * 6  # 660 MB each: one per batch under 1 GiB
    small = MotionFrames().prepared_bytes({"width": 1280, "height": 720, "num_frames": 240, "fps": 24.0})
    assert [len(b) for b in batch_indices([small] * 23, 8)] == [1, 2, 4, 8, 8]
