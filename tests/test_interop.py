"""Exports as the tools that read them need them: Open-Sora's and mindone's columns, types, flags and
label vocabulary (the lists below are written from their readers' code, cited), mindone's captions
where its loader looks, one Parquet schema for any data (two exports read as one dataset by pyarrow
and DuckDB), and an export with nothing to write refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from conftest import REPO, run_module
from score_helpers import write_manifest

from video_caption.datautil.formats import checked, export, fields_table

# Open-Sora v1.3, tools/datasets/datautil.py: --merge-cmotion looks each clip's cmotion up in
# CMOTION_TEXT, whose keys are these seven (mindone's tools/t2v_curation/pipeline/datasets/datautil.py
# has the same table).
CMOTION = {"static", "pan_right", "pan_left", "zoom_in", "zoom_out", "tilt_up", "tilt_down"}
# The columns Open-Sora v1.3 reads (tools/datasets/datautil.py: --info, --fmin/--fmax, --fpsmax,
# --aesmin, --flowmin, --matchmin, --merge-cmotion; opensora/datasets/datasets.py and sampler.py:
# path, text, num_frames, height, width) with the kinds its comparisons need; ``ocr`` is what
# tools/scoring/ocr/inference.py writes (the number of text boxes).
OPENSORA = {"path": "str", "text": "str", "num_frames": "int", "height": "int", "width": "int",
            "aspect_ratio": "float", "fps": "float", "resolution": "int", "aes": "float", "flow": "float",
            "ocr": "int", "match": "float", "cmotion": "str"}
# The columns mindone's curation asserts (tools/t2v_curation/pipeline/datasets/datautil.py:
# --ocr_box_max, --ocr_single_max, --ocr_total_max, --safety_check keeping nsfw == 0, --matchmin,
# --aesmin, --lpipsmin), in the units its scorers write them: pipeline/scoring/ocr/inference.py's
# box counts and shares of the frame (0-1), pipeline/scoring/nsfw/inference.py's 0/1 flag (1: NSFW).
MINDONE = {"num_boxes": "int", "max_single_percentage": "float", "total_text_percentage": "float",
           "nsfw": "int", "match": "float", "aes": "float", "flow": "float", "cmotion": "str",
           "lpips": "float"}
CLIPS = ["clips/src.mp4/src_000000-000024.mp4", "clips/src.mp4/src_000024-000048.mp4"]  # stage 1's names
NSFW_MAX = 0.5


def kind(column: pd.Series) -> str:
    """How pandas read a CSV column: int, float or str."""
    types = pd.api.types
    return "int" if types.is_integer_dtype(column) else "float" if types.is_float_dtype(column) else "str"


def make_folder(out: Path, clip: Path, variant: str) -> Path:
    """An output folder of two real clips of one source with stage-2 and stage-3 rows; ``variant`` b
    differs in its data (a duplicate, other NSFW classes, no camera_motion file, no caption)."""
    a = variant == "a"
    rows = [{"video_path": key, "source_path": "src.mp4", "type": "video", "start_frame": 24 * i,
             "end_frame": 24 * i + 24, "start_time": float(i), "end_time": i + 1.0, "duration": 1.0, "fps": 24.0,
             "num_frames": 24, "width": 64, "height": 48, "shot_change": 0.1} for i, key in enumerate(CLIPS)]
    for key in CLIPS:
        (out / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, out / key)
    write_manifest(out / "meta_clips.jsonl", rows)
    steps = {
        "text_score.jsonl": [{"text_score": 0.04, "num_boxes": 2, "max_single_percentage": 0.03,
                              "text_frame_scores": [0.04]}, {"text_score": 0.0, "num_boxes": 0,
                                                            "max_single_percentage": 0.0, "text_frame_scores": [0.0]}],
        "motion_score.jsonl": [{"motion_score": 3.5, "motion_mode": "exact"}, {"motion_score": 4.25,
                                                                             "motion_mode": "exact"}],
        "nsfw_score.jsonl": [{"nsfw_score": 0.7, "nsfw_classes": {"BUTTOCKS_EXPOSED": 0.7, "FACE_FEMALE": 0.486}},
                             {"nsfw_score": 0.1, "nsfw_classes": {}}] if a else
                            [{"nsfw_score": 0.3, "nsfw_classes": {"BELLY_EXPOSED": 0.3}},
                             {"nsfw_score": 0.0, "nsfw_classes": {}}],
        "duplicates.jsonl": [{"duplicate": False, "dup_of": None, "similarity": None}] * 2 if a else
                            [{"duplicate": False, "dup_of": None, "similarity": None},
                             {"duplicate": True, "dup_of": CLIPS[0], "similarity": 0.93}],
        "match_score.jsonl": [{"match_score": 21.5}],  # one clip only: a partly empty column
    }
    if a:
        steps["camera_motion.jsonl"] = [{"camera_motion": "pan_tilt", "camera_motion_pairs": ["pan_left", "tilt_up"]},
                                        {"camera_motion": "zoom_in", "camera_motion_pairs": ["zoom_in", "zoom_in"]}]
        (out / "train.json").write_text(json.dumps([{"file_path": key, "text": f"A test pattern, part {i}.",
                                                     "type": "video"} for i, key in enumerate(CLIPS)]))
    for name, step_rows in steps.items():
        write_manifest(out / name, [{"video_path": key, **row} for key, row in zip(CLIPS, step_rows, strict=False)])
    bound = {"key": "nsfw_score", "min": None, "max": NSFW_MAX, "strict": False, "values": None}
    (out / "summary.json").write_text(json.dumps({"stages": {"score": {"gates": {"nsfw": {"bounds": [bound]}}}}}))
    return out


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("interop")
    clip = work / "pattern.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=24", "-frames:v", "24",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)
    return make_folder(work / "a", clip, "a"), make_folder(work / "b", clip, "b")


def test_opensora_csv_and_parquet_have_opensoras_columns_types_and_labels(folders, tmp_path):
    a = folders[0]
    assert export(a, "opensora", tmp_path / "meta.csv", input=a / "meta_clips.jsonl") == 2
    frame = pd.read_csv(tmp_path / "meta.csv")
    assert "aes" not in frame.columns, "no aesthetic score: no column (--aesmin 4 on an empty one keeps none)"
    assert not frame.isna().all().any(), "a column with no value is left out"
    assert frame["match"].isna().tolist() == [False, True], "one clip's missing value stays an empty cell"
    written = {name: kind(frame[name]) for name in OPENSORA if name in frame.columns}
    assert written == {name: wanted for name, wanted in OPENSORA.items() if name != "aes"}
    assert frame["cmotion"].tolist() == ["static", "zoom_in"] and set(frame["cmotion"]) <= CMOTION  # pan_tilt
    assert frame["path"].tolist() == [str(a / key) for key in CLIPS] and frame["ocr"].tolist() == [2, 0]

    assert export(a, "opensora", tmp_path / "meta.parquet", input=a / "meta_clips.jsonl") == 2
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "meta.parquet"), frame)  # v2.0's read_file: `path`


def test_mindone_csv_has_its_columns_flags_and_captions_where_it_looks(folders, tmp_path):
    a = folders[0]
    output = tmp_path / "mindone" / "meta.csv"
    assert export(a, "mindone", output, input=a / "meta_clips.jsonl") == 2
    frame = pd.read_csv(output)
    assert "lpips" not in frame.columns and "ocr" not in frame.columns  # not computed; mindone's ocr is boxes
    written = {name: kind(frame[name]) for name in MINDONE if name in frame.columns}
    assert written == {name: wanted for name, wanted in MINDONE.items() if name not in ("aes", "lpips")}
    assert frame["nsfw"].tolist() == [1, 0], f"1 where nsfw_score > the run's NSFW_MAX ({NSFW_MAX})"
    assert frame["num_boxes"].tolist() == [2, 0] and frame["total_text_percentage"].tolist() == [0.04, 0.0]
    assert set(frame["cmotion"]) <= CMOTION
    for row, key in zip(frame.itertuples(), CLIPS, strict=True):
        assert os.path.realpath(row.path) == os.path.realpath(a / key)
        caption = row.path.split(".")[0] + ".json"  # mindone's load_caption, as it is written
        assert json.loads(Path(caption).read_text())["caption"] == row.text
    assert len({row.path.split(".")[0] for row in frame.itertuples()}) == 2, "one caption file per clip"

    one = write_manifest(tmp_path / "one.jsonl", [{"video_path": CLIPS[1]}])
    assert export(a, "mindone", output, input=one) == 1
    assert len(list(output.with_suffix("").iterdir())) == 2, "the links folder is replaced: one link, one caption"
    with pytest.raises(ValueError, match="no dot"):
        export(a, "mindone", tmp_path / "my.data" / "meta.csv")


def test_two_parquet_exports_read_as_one_dataset_with_every_value(folders, tmp_path):
    paths = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    for folder, path in zip(folders, paths, strict=True):
        assert export(folder, "parquet", path, input=folder / "meta_clips.jsonl") == 2
    tables = [pq.read_table(path) for path in paths]
    assert tables[0].schema == tables[1].schema
    assert {str(tables[0].schema.field(name).type) for name in ("dup_of", "caption")} == {"string"}
    classes = tables[0].schema.field("nsfw_classes").type
    assert pa.types.is_map(classes) and classes.item_type == pa.float64()
    expected = tables[0].to_pylist() + tables[1].to_pylist()
    assert [row["caption"] for row in expected] == ["A test pattern, part 0.", "A test pattern, part 1.", None, None]
    assert dict(expected[0]["nsfw_classes"])["FACE_FEMALE"] == 0.486 and expected[3]["dup_of"] == CLIPS[0]

    def same(rows: list[dict]) -> bool:  # the same rows, in whatever order a reader gives them
        def text(row):
            return json.dumps({k: dict(v) if k == "nsfw_classes" and v is not None else v for k, v in row.items()},
                              sort_keys=True)
        return sorted(map(text, rows)) == sorted(map(text, expected))

    files = [str(p) for p in paths]
    assert same(pq.read_table(files).to_pylist())
    assert same(ds.dataset(files).to_table().to_pylist())
    assert same(duckdb.sql("SELECT * FROM read_parquet(?)", params=[files]).to_arrow_table().to_pylist())  # no union


def test_typed_columns_refuse_values_of_another_kind():
    assert checked(3.0, "int") == 3 and checked(float("nan"), "float") is None
    assert checked({"A": 1}, "map") == {"A": 1.0}
    for value, kind in ((3.5, "int"), (True, "float"), ("4", "float"), (1, "bool"), ({"A": "x"}, "map")):
        with pytest.raises(TypeError):
            checked(value, kind)


def test_an_export_with_nothing_to_write_is_refused_saying_what_to_pass(folders, tmp_path):
    a = folders[0]
    output = tmp_path / "meta.csv"
    proc = run_module("video_caption.datautil", "export", "--output-folder", a, "--format", "opensora",
                      "--output", output, "--root", tmp_path, check=False)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "none of the 2 clips" in proc.stderr and "pass --root" in proc.stderr and not output.exists()

    captioned_none = tmp_path / "out"
    captioned_none.mkdir()
    shutil.copy(a / "meta_clips.jsonl", captioned_none)
    (captioned_none / "train.json").write_text("[]")
    with pytest.raises(ValueError, match="captioned none: pass --input .*train.jsonl"):
        export(captioned_none, "parquet", tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="none of the 2 clips has a caption"):
        export(folders[1], "easyanimate", tmp_path / "train.json", input=folders[1] / "meta_clips.jsonl")
    assert not (tmp_path / "x.parquet").exists() and not (tmp_path / "train.json").exists()


def test_the_formats_table_is_made_from_the_declarations():
    doc = (REPO / "docs" / "formats.md").read_text()
    table = doc.split("<!-- formats table -->\n")[1].split("<!-- end of formats table -->")[0]
    assert table == fields_table({}), "docs/formats.md's table drifted: put fields_table({}) in it"
