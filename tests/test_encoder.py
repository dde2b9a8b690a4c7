"""The in-process clip encoder: what it writes, and how it fails (no hang, a clear error)."""

from __future__ import annotations

import threading
from fractions import Fraction

import av
import numpy as np
import pytest

from video_caption.media.encode import Encoder, EncoderSettings
from video_caption.media.process import MediaError

SIZE = (64, 48)


def frames(count: int):
    for i in range(count):
        frame = av.VideoFrame.from_ndarray(np.full((SIZE[1] * 3 // 2, SIZE[0]), 16 + 5 * i, np.uint8),
                                           format="yuv420p")
        frame.pict_type = av.video.frame.PictureType.I  # as a decoder's frame would say: ignored
        yield frame


def finish(encoder: Encoder, count: int) -> None:
    """Write ``count`` frames and wait, in a thread: a hang fails the test instead of stalling it."""
    failure: list[BaseException] = []

    def work():
        try:
            for frame in frames(count):
                encoder.write(frame)
            encoder.wait()
        except BaseException as exc:  # noqa: BLE001
            failure.append(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the encoder hung"
    if failure:
        raise failure[0]


def test_writes_every_frame_at_the_clip_rate(tmp_path):
    out = tmp_path / "clip.mp4"
    finish(Encoder(out, *SIZE, Fraction(30000, 1001), EncoderSettings(audio=False)), 40)
    with av.open(str(out)) as clip:
        stream = clip.streams.video[0]
        levels = [float(f.to_ndarray()[:SIZE[1]].mean()) for f in clip.decode(stream)]
        assert stream.average_rate == Fraction(30000, 1001)
    assert len(levels) == 40
    assert np.allclose(levels, [16 + 5 * i for i in range(40)], atol=2), "the frames, in order"


@pytest.mark.parametrize(("settings", "name"), [(EncoderSettings(codec="no_such_codec"), "clip.mp4"),
                                                (EncoderSettings(), "no_such_folder/clip.mp4")])
def test_a_failing_encoder_raises_a_media_error_and_never_hangs(tmp_path, settings, name):
    out = tmp_path / name
    with pytest.raises(MediaError, match="encoder"):
        finish(Encoder(out, *SIZE, Fraction(25), settings), 20)
