"""Plain reference implementations of the stage-2 scores, written straight from their definitions.

They are what the fast scorers are checked against (tests/test_score.py) and raced against
(bench/stage2_speed.py): no batching, no workers, every frame decoded with OpenCV.  ``motion_scores``
is the plain way to use more cores: the same ``motion_score``, one clip per task, in a process pool.
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


def motion_scores(paths: list[str], processes: int = 2) -> list[float]:
    """``motion_score`` of each clip, in order, from a pool of ``processes`` processes; one clip per
    task (chunksize 1), so that no process waits on another's queue while clips remain."""
    from multiprocessing import Pool

    with Pool(processes) as pool:
        return list(pool.imap(motion_score, paths, chunksize=1))


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


def aesthetic_score(path: str, model, preprocess, head, frames: int = 4) -> float:
    """Four frames spread over the clip, read with cv2, CLIP-embedded one clip at a time, into the head."""
    import torch
    from PIL import Image

    cap = cv2.VideoCapture(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    images = []
    for index in np.linspace(0, total - 1, frames).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        if ok:
            images.append(preprocess(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))))
    cap.release()
    with torch.no_grad():
        emb = model.encode_image(torch.stack(images))
        emb = emb / emb.norm(dim=-1, keepdim=True)
        return float(head(emb).mean())


def main() -> None:
    """python support/reference.py {motion,motion_pool,text,aesthetic} MANIFEST ROOT [CLIP_MODEL CLIP_WEIGHTS HEAD]:
    prints {"scores": {video_path: score}, "seconds": time spent scoring (models loaded before)}.
    motion_pool: ``motion_scores`` with 2 processes (the pool's start counts in the seconds)."""
    import json
    import sys
    import time

    kind, manifest, root = sys.argv[1:4]
    paths = [json.loads(line)["video_path"] for line in open(manifest) if line.strip()]
    if kind == "motion_pool":
        start = time.perf_counter()
        scores = motion_scores([f"{root}/{p}" for p in paths])
        print(json.dumps({"scores": dict(zip(paths, scores, strict=True)), "seconds": time.perf_counter() - start}))
        return
    if kind == "motion":
        fn = motion_score
    elif kind == "text":
        reader = text_reader()

        def fn(path):
            return text_score(path, reader)
    else:
        import open_clip
        import torch
        from torch import nn

        model, _, preprocess = open_clip.create_model_and_transforms(sys.argv[4], pretrained=sys.argv[5])
        model.eval()
        state = torch.load(sys.argv[6], map_location="cpu", weights_only=True)
        head = nn.Sequential(nn.Linear(768, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                             nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))
        head.load_state_dict({k.removeprefix("layers."): v for k, v in state.items()})
        head.eval()

        def fn(path):
            return aesthetic_score(path, model, preprocess, head)
    start = time.perf_counter()
    scores = {p: fn(f"{root}/{p}") for p in paths}
    print(json.dumps({"scores": scores, "seconds": time.perf_counter() - start}))


if __name__ == "__main__":
    main()
