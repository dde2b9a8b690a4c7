"""datautil import: Open-Sora CSVs that survive a round trip through export, Open-Sora's rule for
relative paths, Panda-70M metadata as deferred clips that the real stage 2 reads, and filter / stats
over every clip of a folder (--all), on the demo videos."""

from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, run_module
from score_helpers import by_key

from video_caption.datautil.formats import export, import_file
from video_caption.datautil.panda70m import Span, clip_rows, seconds, spans
from video_caption.manifest import read_rows
from video_caption.media.probe import VideoInfo

DEMO = REPO / "datasets" / "demo" / "videos"
WALKTHROUGH = REPO / "datasets" / "panda70m" / "panda70m_demo.csv"


def test_opensora_csv_round_trip_keeps_every_caption_and_score(tmp_path):
    """A CSV of clips outside the output folder, imported for stage 3 by the command line (which
    logs the --root / the stages then need) and exported back: the same captions, word for word
    (stage 3's cleaning would cut "The video shows"), and the same scores."""
    original = pd.DataFrame({
        "path": [str(DEMO / "sintel_trailer.mp4"), str(DEMO / "big_buck_bunny_0_30.webm")],
        "text": ["The video shows a girl, then a dragon.\nIt ends in sand.", 'A bird, "purple", on a branch.'],
        "num_frames": [1253, 720], "height": [480, 720], "width": [854, 1280], "fps": [24.0, 24.0],
        "aes": [5.25, 4.5], "flow": [3.75, 6.125], "ocr": [2, 0], "match": [21.5, 24.0],
        "cmotion": ["static", "tilt_down"]})
    original.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out"
    proc = run_module("video_caption.datautil", "import", tmp_path / "in.csv", "--output-folder", out, "--stage", "3")
    assert "video_path is relative to /: run stages 2 and 3, and export, with --root /" in proc.stderr
    assert len(read_rows(out / "meta_clips.jsonl")) == len(read_rows(out / "train.jsonl")) == 2

    assert export(out, "opensora", tmp_path / "back.csv", root=Path("/")) == 2
    back = pd.read_csv(tmp_path / "back.csv")
    assert list(back["text"]) == list(original["text"])
    for column in original.columns:
        assert list(back[column]) == list(original[column]), column


def test_relative_paths_follow_the_working_folder(tmp_path, monkeypatch):
    """Open-Sora's rule (the working folder) by default, the CSV's folder on request; inside the
    output folder paths stay relative to it; a quoted caption keeps its newline; a repeated path is
    kept once; an image is typed; stage 3 gets the captions in train.json; the same import again
    is a no-op."""
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    frame = pd.DataFrame({"path": ["clips/a.mp4", "clips/b.mp4", "clips/a.mp4", "img/c.jpg"],
                          "text": ["two\nlines", None, "x", "a cat"], "num_frames": [48, 60, 48, 1],
                          "fps": [24.0, None, 24.0, None], "aes": [5.5, None, 5.5, 6.0]})
    frame.to_csv(out / "meta.csv", index=False)
    expected = [{"video_path": "clips/a.mp4", "caption": "two\nlines", "num_frames": 48, "fps": 24.0,
                 "aesthetic_score": 5.5, "duration": 2.0},
                {"video_path": "clips/b.mp4", "num_frames": 60},
                {"video_path": "img/c.jpg", "caption": "a cat", "num_frames": 1, "aesthetic_score": 6.0,
                 "type": "image"}]

    monkeypatch.chdir(elsewhere)
    rows = read_rows(import_file(out / "meta.csv", tmp_path / "other"))
    assert [row["video_path"] for row in rows] == [str((elsewhere / r["video_path"]).relative_to("/"))
                                                   for r in expected]
    assert read_rows(import_file(out / "meta.csv", out, stage=3, relative_to_file=True)) == expected
    monkeypatch.chdir(out)
    assert import_file(Path("meta.csv"), out, stage=3) == out / "train.jsonl"  # the same rows: a no-op
    assert read_rows(out / "meta_clips.jsonl") == expected
    assert json.loads((out / "train.json").read_text()) == [
        {"file_path": "clips/a.mp4", "text": "two\nlines", "type": "video"},
        {"file_path": "img/c.jpg", "text": "a cat", "type": "image"}]
    monkeypatch.chdir(elsewhere)
    with pytest.raises(FileExistsError, match="meta_clips.jsonl"):  # other paths: refused, nothing replaced
        import_file(out / "meta.csv", out)
    listing = out / "list.txt"  # a plain list: the same rule
    listing.write_text("# two clips\nclips/a.mp4\n\nclips/b.mp4\n")
    train_jsonl = import_file(listing, tmp_path / "listed", stage=3, relative_to_file=True)
    assert read_rows(train_jsonl) == [{"video_path": str((out / "clips" / name).relative_to("/"))}
                                      for name in ("a.mp4", "b.mp4")]


def test_panda_times_and_clips():
    assert seconds("0:00:08.708") == pytest.approx(8.708) and seconds("01:02:03.5") == 3723.5 and seconds(7) == 7.0
    with pytest.raises(ValueError, match="H:MM:SS"):
        seconds("8.7 s")
    record = {"timestamp": "[['0:00:01.000', '0:00:03.000'], ['0:00:03.000', '0:00:09.000']]",
              "caption": "['A cat.', \"A dog's bowl.\"]", "matching_score": "[0.5, 0.25]"}
    assert spans(record) == [Span(1.0, 3.0, "A cat.", 0.5), Span(3.0, 9.0, "A dog's bowl.", 0.25)]
    assert spans({"timestamp": "['0:00:01.000', '0:00:02.000']"}) == [Span(1.0, 2.0)]  # one pair, no lists
    for bad, message in ((dict(record, caption="['one']"), "2 timestamps but 1 items in caption"),
                         (dict(record, timestamp="[['0:00:05.000', '0:00:04.000']]", caption="", matching_score=""),
                          "ends before it starts"),
                         (dict(record, timestamp="__import__('os')"), "not a list literal")):
        with pytest.raises(ValueError, match=message):
            spans(bad)
    info = VideoInfo(Fraction(25), 250, 10.0, 641, 361, 0, "h264", "yuv420p", 0.0, False, True)
    rows, problems = clip_rows("a/v.mp4", Path("/v/a/v.mp4"), info,
                               [Span(1.0, 3.0, "x", 0.5), Span(8.0, 12.0), Span(11.0, 12.0)], "u")
    assert [(r["start_frame"], r["end_frame"], r["video_path"]) for r in rows] == [
        (25, 75, "clips/a/v.mp4/v_000025-000075.mp4"), (200, 250, "clips/a/v.mp4/v_000200-000250.mp4")]
    assert rows[0]["width"] == 640 and rows[0]["height"] == 360 and rows[0]["deferred"] is True
    assert rows[0]["encoder"]["audio"] is False and rows[0]["source_file"] == "/v/a/v.mp4"
    assert (rows[0]["panda_caption"], rows[0]["panda_matching_score"], rows[0]["panda_url"]) == ("x", 0.5, "u")
    assert "panda_caption" not in rows[1]
    assert problems == ["clip 2 (11.000-12.000 s) holds no frame of the video's 250 (10.000 s)"]


def test_the_walkthrough_metadata_imports(tmp_path):
    """datasets/panda70m's CSV: 7 clips of the two demo videos, the third video (not downloaded) an
    errors.jsonl row; importing it again is a no-op that adds no error row."""
    out = tmp_path / "out"
    for _ in range(2):
        import_file(WALKTHROUGH, out, fmt="panda70m", videos=DEMO)
    rows = read_rows(out / "meta_clips.jsonl")
    assert len(rows) == 7 and {r["source_path"] for r in rows} == {"sintel_trailer.mp4", "big_buck_bunny_0_30.webm"}
    assert (rows[0]["start_frame"], rows[0]["end_frame"]) == (19, 223)  # 0:00:00.792-0:00:09.292 at 24 fps
    errors = read_rows(out / "errors.jsonl")
    assert [(e["stage"], e["video_path"]) for e in errors] == [("import", "elephants_dream")]
    with pytest.raises(ValueError, match="no clip to import .3 failed; the first: no video sintel_trailer"):
        import_file(WALKTHROUGH, tmp_path / "none", fmt="panda70m", videos=tmp_path)  # the wrong folder
    assert not (tmp_path / "none").exists()


@pytest.fixture(scope="module")
def panda(tmp_path_factory) -> Path:
    """Panda-70M metadata of two clips of the Sintel trailer (an old man talking: motion 8; a woman
    looking down: motion 1.5), a video not downloaded and a broken row, imported and run through the
    real stage 2 (motion, fast) with a gate that rejects the second clip."""
    folder = tmp_path_factory.mktemp("panda")
    with open(folder / "meta.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["videoID", "url", "timestamp", "caption", "matching_score"])
        writer.writerow(["sintel_trailer", "https://durian.blender.org/",
                         "[['0:00:12.083', '0:00:13.917'], ['0:00:13.917', '0:00:15.708']]",
                         "['An old man talks.', 'A young woman looks down.']", "[0.44, 0.51]"])
        writer.writerow(["not_downloaded", "https://example.com/x", "[['0:00:01.000', '0:00:04.000']]", "['x']",
                         "[0.5]"])
        writer.writerow(["broken", "", "[['0:00:01.000']]", "", ""])
    out = folder / "out"
    run_module("video_caption.datautil", "import", "--format", "panda70m", folder / "meta.csv", "--videos", DEMO,
               "--output-folder", out)
    run_module("video_caption.score", "--output-folder", out, "--scorers", "motion", "--motion-fast",
               "--motion-min", "3", "--motion-max", "1e9")
    return out


def test_stage_2_reads_panda_clips_and_missing_videos_are_errors(panda):
    clips = read_rows(panda / "meta_clips.jsonl")
    assert [(c["start_frame"], c["end_frame"]) for c in clips] == [(290, 334), (334, 377)]
    scores = by_key(panda / "motion_score.jsonl")
    assert set(scores) == {c["video_path"] for c in clips}
    assert scores[clips[0]["video_path"]]["motion_score"] > 3 > scores[clips[1]["video_path"]]["motion_score"] > 0
    train = read_rows(panda / "train.jsonl")
    assert [(r["video_path"], r["panda_caption"], r["panda_matching_score"]) for r in train] == [
        (clips[0]["video_path"], "An old man talks.", 0.44)]
    errors = read_rows(panda / "errors.jsonl")
    assert [(e["stage"], e["video_path"]) for e in errors] == [("import", "not_downloaded"), ("import", "broken")]
    assert "no video not_downloaded" in errors[0]["message"] and "not a [start, end] pair" in errors[1]["message"]


def test_filter_and_stats_over_all_clips_see_stage_2_rejects(panda, tmp_path):
    for flags, expected in (([], 1), (["--all"], 2)):
        run_module("video_caption.datautil", "filter", panda, *flags, "--where", "motion_score >= 0",
                   "--output", tmp_path / "kept.jsonl")
        assert len(read_rows(tmp_path / "kept.jsonl")) == expected, flags
    rejected = read_rows(panda / "meta_clips.jsonl")[1]["video_path"]
    assert rejected in {r["video_path"] for r in read_rows(tmp_path / "kept.jsonl")}
    stats = json.loads(run_module("video_caption.datautil", "stats", panda, "--all", "--json").stdout)
    assert stats["rows"] == 2 and stats["columns"]["motion_score"]["count"] == 2
    refused = run_module("video_caption.datautil", "stats", panda / "train.jsonl", "--all", check=False)
    assert refused.returncode == 1 and "--all takes an output folder" in refused.stderr
