"""NSFW score: NudeNet's nudity detector on frames spread over the clip.

The detector is NudeNet's YOLOv8n ONNX model (``320n.onnx``, shipped in the ``nudenet`` wheel),
run in onnxruntime.  Everything around it is NudeNet 3.4.2's own, reproduced so that the scores equal
``NudeDetector().detect(frame)`` on the same RGB frame: the frame padded to a square at the bottom and
right with black, resized to 320x320 (bilinear, uint8), scaled by 1/255; candidates whose best class
scores at least 0.2, boxes mapped back to the frame, then OpenCV's NMS (score 0.25, IoU 0.45, across
classes, so an exposed box under a stronger covered one is dropped, as NudeNet drops it).

NudeNet's ``detect`` feeds the model the channels in the order it is given them (its two swaps
cancel out, so a file path, read BGR by OpenCV, reaches the model BGR: notAI-tech/NudeNet#203).  Here
the model sees RGB, as YOLOv8 models are trained (on the shared videos, RGB finds faces that BGR
misses), so the scores equal ``detect`` on RGB frames, not on image files.

Per clip, ``frames`` uniform frames (default 4).  The row holds ``nsfw_classes``: every class
detected, with its highest confidence over the frames; ``nsfw_frame_scores``: per frame, the highest
confidence among the counted ``classes``; ``nsfw_score``: the highest of those (0.0 when none was
detected).  The counted classes default to the explicit ones (``EXPLICIT``); the gate keeps clips
with ``nsfw_score <= NSFW_MAX``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_caption.gate import Gate
from video_caption.loader import FramePlan
from video_caption.media.decode import uniform_indices
from video_caption.models import ModelMissing, weights_digest
from video_caption.score.base import Scorer
from video_caption.score.settings import GATES
from video_caption.settings import WEIGHTS, Setting, integer, names, number
from video_caption.steps import Field, StepSpec

# The model's classes, in the order of its outputs (nudenet/nudenet.py's label list).
LABELS = (
    "FEMALE_GENITALIA_COVERED", "FACE_FEMALE", "BUTTOCKS_EXPOSED", "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED", "MALE_BREAST_EXPOSED", "ANUS_EXPOSED", "FEET_EXPOSED", "BELLY_COVERED",
    "FEET_COVERED", "ARMPITS_COVERED", "ARMPITS_EXPOSED", "FACE_MALE", "BELLY_EXPOSED", "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED", "FEMALE_BREAST_COVERED", "BUTTOCKS_COVERED",
)
EXPLICIT = ("FEMALE_GENITALIA_EXPOSED", "MALE_GENITALIA_EXPOSED", "FEMALE_BREAST_EXPOSED", "BUTTOCKS_EXPOSED",
            "ANUS_EXPOSED")
# Default gate: keep clips whose nsfw_score <= this.  NudeNet reports nothing under 0.25, so any
# value below that rejects every explicit detection.  On benign footage the explicit classes do
# fire, on skin, rocks and bare cartoon bodies: over every 3rd frame of the shared test videos (1848
# frames) 14 explicit detections exceed 0.4 (a rounded rock 0.42, a hand close-up 0.40) and 7
# exceed 0.5, all of them Big Buck Bunny's bare cartoon rabbit (up to 0.76); the clips stage 1 cuts
# from those videos score at most 0.42.  Real nudity scores 0.54-0.68 in NudeNet's issue reports for
# this model (notAI-tech/NudeNet#117), and 0.5 is what its author calls "a decent threshold".  0.5
# keeps the misreads of ordinary footage and rejects a clip when one frame shows an explicit class
# with the confidence the detector gives real detections.
NSFW_MAX = 0.5

# NudeNet 3.4.2's post-processing (nudenet.nudenet._postprocess).
CANDIDATE_SCORE = 0.2
NMS_SCORE, NMS_IOU = 0.25, 0.45
INPUT_SIDE = 320  # the 320n model's input
FRAMES_PER_RUN = 32  # frames per onnxruntime call (the model takes any batch; results do not depend on it)


def default_weights() -> Path:
    """nudenet's packaged ``320n.onnx`` (found without importing nudenet); a bare name when it is not installed."""
    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        return Path("320n.onnx")
    return Path(next(iter(spec.submodule_search_locations))) / "320n.onnx"


def nudenet_input(frame: np.ndarray, side: int = INPUT_SIDE) -> tuple[np.ndarray, tuple[int, int]]:
    """One frame as NudeNet prepares it, still uint8 HxWx3 (a quarter of the float size while it waits
    in the loader's queue): padded to a square at the bottom and right with black, resized to
    ``side`` x ``side`` bilinear.  And the frame's (height, width), to map boxes back."""
    import cv2

    h, w = frame.shape[:2]
    size = max(h, w)
    padded = cv2.copyMakeBorder(frame, 0, size - h, 0, size - w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return cv2.resize(padded, (side, side), interpolation=cv2.INTER_LINEAR), (h, w)


def nudenet_blob(images: list[np.ndarray]) -> np.ndarray:
    """The model's float NCHW input for ``nudenet_input`` images: bit for bit what NudeNet's
    ``cv2.dnn.blobFromImage(..., 1 / 255.0)`` gives."""
    return np.stack(images).transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255.0)


def detections(output: np.ndarray, height: int, width: int, side: int = INPUT_SIDE) -> list[tuple[int, float]]:
    """(class index, confidence) of what NudeNet's ``detect`` reports, from one frame's model output
    (4 + classes, anchors): its candidate threshold, box mapping (float32, as it computes them) and NMS."""
    import cv2

    rows = output.T  # (anchors, 4 + classes)
    class_scores = rows[:, 4:]
    best = class_scores.max(axis=1)
    keep = np.flatnonzero(best >= CANDIDATE_SCORE)
    if not keep.size:
        return []
    classes = class_scores[keep].argmax(axis=1)
    scores = best[keep]
    size = max(height, width)  # the padded square: original side + its padding
    cx, cy, w, h = (rows[keep, i] for i in range(4))
    x = (cx - w / 2) * size / side
    y = (cy - h / 2) * size / side
    w = w * size / side
    h = h * size / side
    x = np.clip(x, 0, width)
    y = np.clip(y, 0, height)
    w = np.minimum(w, width - x)
    h = np.minimum(h, height - y)
    boxes = np.stack([x, y, w, h], axis=1).astype(np.float64).tolist()
    kept = cv2.dnn.NMSBoxes(boxes, scores.astype(np.float64).tolist(), NMS_SCORE, NMS_IOU)
    return [(int(classes[i]), float(scores[i])) for i in np.asarray(kept, dtype=int).reshape(-1)]


@dataclass
class NsfwInput:
    """One frame ready for the detector: its padded, resized image and the frame's size."""

    image: np.ndarray  # uint8, INPUT_SIDE x INPUT_SIDE x 3, RGB
    size: tuple[int, int]  # the frame's (height, width)


@dataclass(frozen=True)
class NsfwFrames(FramePlan):
    """``count`` frames spread uniformly over the clip, prepared for NudeNet in DataLoader workers."""

    count: int = 4
    fmt = "rgb24"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        return uniform_indices(num_frames, self.count)

    def prepare(self, frames: list[np.ndarray]) -> list[NsfwInput]:
        return [NsfwInput(*nudenet_input(frame)) for frame in frames]

    def prepared_bytes(self, row: dict) -> int:
        return self.count * INPUT_SIDE * INPUT_SIDE * 3


def check_classes(classes) -> tuple[str, ...]:
    """``classes`` as a tuple, or ValueError naming the classes the model knows."""
    classes = tuple(classes)
    unknown = [c for c in classes if c not in LABELS]
    if unknown:
        raise ValueError(f"unknown NSFW class{'es' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(known: {', '.join(LABELS)})")
    if not classes:
        raise ValueError(f"no NSFW class to count (known: {', '.join(LABELS)})")
    return classes


class NsfwScorer(Scorer):
    name = "nsfw"
    key = "nsfw_score"

    def __init__(self, frames: int = 4, classes: tuple[str, ...] = EXPLICIT, weights: str | None = None):
        self.classes = check_classes(classes)
        self.frames = NsfwFrames(count=frames)
        self.weights = Path(weights) if weights else default_weights()
        self._counted = np.array([label in self.classes for label in LABELS])
        self.session = None

    def settings(self) -> dict:
        return {"weights": weights_digest(self.weights), "frames": self.frames.count, "classes": list(self.classes)}

    def setup(self, device: str) -> None:
        """The model in onnxruntime on the CPU (it is small: about 33 ms a frame on one core), with the
        threads torch would use in this process (as the text scorer), which sleep between calls instead
        of spinning: while the model waits for frames, the cores belong to the loader's decoders
        (measured on 2 cores, spinning cost 40% more CPU for the same scores)."""
        if not self.weights.is_file():
            raise ModelMissing(
                f"NudeNet model not found: {self.weights}. Install it with 'pip install nudenet==3.4.2' (its wheel "
                "ships 320n.onnx), or give the path to a 320n.onnx (NudeNet's detector, from its GitHub releases "
                "on a connected machine).")
        import onnxruntime
        import torch

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(self.weights), options, providers=["CPUExecutionProvider"])
        model_input, output = self.session.get_inputs()[0], self.session.get_outputs()[0]
        if output.shape[1] != 4 + len(LABELS) or model_input.shape[2:] not in (
                [INPUT_SIDE, INPUT_SIDE], ["height", "width"]):
            raise ModelMissing(f"{self.weights} is not NudeNet's {INPUT_SIDE}n detector: input {model_input.shape}, "
                               f"output {output.shape} (expected {4 + len(LABELS)} rows: a box and "
                               f"{len(LABELS)} classes)")
        self._input = model_input.name

    def close(self) -> None:
        self.session = None

    def _detect(self, frames: list[NsfwInput]) -> list[list[tuple[int, float]]]:
        found = []
        for start in range(0, len(frames), FRAMES_PER_RUN):
            chunk = frames[start:start + FRAMES_PER_RUN]
            out = self.session.run(None, {self._input: nudenet_blob([f.image for f in chunk])})[0]
            found += [detections(o, *f.size) for o, f in zip(out, chunk, strict=True)]
        return found

    def score(self, batch: list[list[NsfwInput]]) -> list[dict]:
        found = iter(self._detect([f for clip in batch for f in clip]))
        rows = []
        for clip in batch:
            per_class: dict[str, float] = {}
            frame_scores = []
            for frame in (next(found) for _ in clip):
                counted = [score for cls, score in frame if self._counted[cls]]
                frame_scores.append(max(counted, default=0.0))
                for cls, score in frame:
                    per_class[LABELS[cls]] = max(score, per_class.get(LABELS[cls], 0.0))
            rows.append({"nsfw_score": max(frame_scores, default=0.0), "nsfw_frame_scores": frame_scores,
                         "nsfw_classes": dict(sorted(per_class.items()))})
        return rows


def _make(a, device: str, order: list[str]) -> NsfwScorer:
    scorer = NsfwScorer(frames=a.nsfw_frames, classes=tuple(a.nsfw_classes), weights=a.nsfw_weights)
    if not scorer.weights.is_file():
        scorer.setup("cpu")  # raises ModelMissing naming the file
    return scorer


STEP = StepSpec(
    "nsfw", 2,
    fields=(Field("nsfw_score", "NudeNet's highest confidence of the counted classes over the frames (0-1)",
                  mindone="nsfw", mindone_flag=True),
            Field("nsfw_classes", "NudeNet's highest confidence over the frames of each class it found (0-1)",
                  card=False, type="map")),
    settings=(
        Setting("NSFW_MAX", number(minimum=None), NSFW_MAX, "keep nsfw_score <= this (NudeNet reports nothing under "
                "0.25; ordinary footage reaches 0.42)", (2,), GATES, gate="nsfw"),
        Setting("NSFW_CLASSES", names(LABELS), list(EXPLICIT), "NudeNet classes whose highest confidence is "
                "nsfw_score", (2,), "nsfw", default_text="the exposed classes"),
        Setting("NSFW_FRAMES", integer(minimum=1), 4, "frames per clip, spread uniformly", (2,), "nsfw"),
        Setting("NSFW_WEIGHTS", WEIGHTS, None, "the detector's model", (2,), "nsfw",
                default_text="the one the nudenet package ships"),
    ),
    gates=lambda a: [Gate("nsfw_score", max=a.nsfw_max)],
    make=_make,
)
