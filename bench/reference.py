"""Plain reference implementations of the stage-2 scores, written straight from their definitions.

They are what the fast scorers are checked against (tests/test_score_*.py) and raced against
(bench/stage2_speed.py): no batching, no workers, every frame decoded with OpenCV.
"""

from __future__ import annotations

import cv2
import numpy as np


def motion_score(path: str) -> float:
    """Decode every frame with cv2; Farneback on frames 0, k, 2k, ... with k = int(fps / 2)."""
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    step = max(1, min(int(fps / 2), total - 1))
    previous, magnitudes, index = None, [], -1
    while True:
        ok, frame = cap.read()
        index += 1
        if not ok:
            break
        if index % step:
            continue
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        if previous is not None:
            flow = cv2.calcOpticalFlowFarneback(previous, gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)
            magnitude, _ = cv2.cartToPolar(flow[..., 0], flow[..., 1])
            magnitudes.append(np.mean(magnitude))
        previous = gray
    cap.release()
    return float(np.mean(magnitudes))


def text_score(path: str, reader=None) -> float:
    """One plain EasyOCR detector call on the middle frame (read with cv2, given as RGB); the union
    area of its boxes inside the frame over the frame area."""
    from shapely.geometry import Polygon, box
    from shapely.ops import unary_union

    reader = reader or text_reader()
    cap = cv2.VideoCapture(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.set(cv2.CAP_PROP_POS_FRAMES, int(0.5 * total))
    ok, frame = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read the middle frame of {path}")
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    horizontal, free = reader.detect(rgb)
    shapes = [box(x0, y0, x1, y1) for x0, x1, y0, y1 in horizontal[0]] + [Polygon(p) for p in free[0]]
    height, width = rgb.shape[:2]
    if not shapes:
        return 0.0
    return unary_union(shapes).intersection(box(0, 0, width, height)).area / (width * height)


def text_reader():
    import easyocr
    from easyocr_en_models import model_dir

    return easyocr.Reader(["en"], gpu=False, model_storage_directory=model_dir(), download_enabled=False,
                          recognizer=False, verbose=False)
