"""datautil: --where parsing (unit), then the real command line on small made-up manifests and folders,
one real stage-2 folder, and ffprobe on the shared videos."""

from __future__ import annotations

import json

import pytest
from conftest import run_module
from score_helpers import write_manifest

from video_caption.datautil.expr import ExpressionError, parse, where_sql
from video_caption.manifest import read_rows

KINDS = {"aesthetic_score": "number", "camera_motion": "text", "duplicate": "bool", "nsfw_classes": "other"}


def datautil(*args, check=True):
    return run_module("video_caption.datautil", *args, check=check)


def lines(path) -> list[str]:
    return path.read_text().splitlines()


@pytest.mark.parametrize("text, op, values", [
    ("aesthetic_score>=5", ">=", ("5",)), ("aesthetic_score <= 5.5", "<=", ("5.5",)),
    ("aesthetic_score>5", ">", ("5",)), ("aesthetic_score<-1e3", "<", ("-1e3",)),
    ("camera_motion==static", "=", ("static",)), ("camera_motion = static", "=", ("static",)),
    ("camera_motion != 'pan left'", "!=", ("pan left",)), ('camera_motion=="a,b (c)"', "=", ("a,b (c)",)),
    ("camera_motion in (static,pan_left)", "in", ("static", "pan_left")),
    ("camera_motion NOT IN ( static , 'x, y' )", "not in", ("static", "x, y")),
    ("camera_motion in (\"it's\")", "in", ("it's",)),
])
def test_expressions_parse(text, op, values):
    condition = parse(text)
    assert (condition.op, condition.values) == (op, values)


@pytest.mark.parametrize("text", ["aesthetic_score", "aesthetic_score>=", "5>=aesthetic_score", "a b>=1",
                                  "camera_motion in ()", "camera_motion in (a,)", "camera_motion in (a b c",
                                  "camera_motion == 'open", "camera_motion == a,b", "x ~= 1", ""])
def test_malformed_expressions_are_refused_naming_them(text):
    with pytest.raises(ExpressionError) as error:
        parse(text)
    assert repr(text) in str(error.value)


def test_where_sql_quotes_columns_and_passes_values_as_parameters():
    conditions = [parse(t) for t in ("aesthetic_score>=5", "camera_motion not in (static,\"x');drop\")",
                                     "duplicate == False", "aesthetic_score < 7")]
    sql, params, columns = where_sql(conditions, KINDS)
    assert columns == ["aesthetic_score", "camera_motion", "duplicate"]
    assert sql == ("TRY_CAST(_v[1] AS DOUBLE) >= ? AND (_v[2] ->> '$') NOT IN (?, ?) AND "
                   "TRY_CAST(_v[3] AS BOOLEAN) = ? AND TRY_CAST(_v[1] AS DOUBLE) < ?")
    assert params == [5.0, "static", "x');drop", False, 7.0]


@pytest.mark.parametrize("text, message", [
    ("clip_score>=5", "unknown column 'clip_score'"), ("aesthetic_score>=high", "not a number"),
    ("duplicate==maybe", "true/false"), ("nsfw_classes==1", "lists, objects"),
    ("aesthetic_score>=nan", "not a number"),
])
def test_where_sql_refuses_what_it_cannot_compare(text, message):
    with pytest.raises(ExpressionError, match=message):
        where_sql([parse(text)], KINDS)


def made_up_folder(folder):
    """A stage-2-like output folder: clips, three score files (lists, objects, a settings column, a
    column that train.jsonl also has), duplicates; one clip without scores."""
    folder.mkdir()
    clips = [{"video_path": f"clips/c{i}.mp4", "num_frames": 24 * (i + 1), "duration": 1.0 + i} for i in range(6)]
    write_manifest(folder / "meta_clips.jsonl", clips)
    write_manifest(folder / "aesthetic_score.jsonl", [
        {"video_path": f"clips/c{i}.mp4", "aesthetic_score": 3.5 + i, "aesthetic_frame_scores": [3.0 + i, 4.0 + i],
         "aesthetic_settings": {"head": "laion", "frames": 4}} for i in range(5)])
    write_manifest(folder / "nsfw_score.jsonl", [
        {"video_path": f"clips/c{i}.mp4", "nsfw_score": 0.1 * i, "nsfw_classes": {f"CLASS_{i}": 0.1 * i} if i else {},
         "num_frames": -1, "nsfw_settings": {"frames": 4}} for i in range(5)])
    write_manifest(folder / "camera_motion.jsonl", [
        {"video_path": f"clips/c{i}.mp4", "camera_motion": ["static", "pan_left", "zoom_in"][i % 3]} for i in range(5)])
    write_manifest(folder / "duplicates.jsonl", [
        {"video_path": f"clips/c{i}.mp4", "dup_of": "clips/c0.mp4" if i == 3 else None, "duplicate": i == 3}
        for i in range(5)])
    return folder


def test_filter_on_a_folder_joins_the_score_files_and_keeps_exactly_the_matching_rows(tmp_path):
    folder = made_up_folder(tmp_path / "out")
    out = tmp_path / "kept.jsonl"
    datautil("filter", folder, "--where", "aesthetic_score>=4.5", "--where", "camera_motion in (static,pan_left)",
             "--where", "duplicate == false", "--output", out)
    rows = read_rows(out)
    assert [r["video_path"] for r in rows] == ["clips/c1.mp4", "clips/c4.mp4"]  # c3 is a duplicate, c2 zooms
    assert rows[0] == {"video_path": "clips/c1.mp4", "num_frames": 48, "duration": 2.0, "aesthetic_score": 4.5,
                       "aesthetic_frame_scores": [4.0, 5.0], "nsfw_score": 0.1, "nsfw_classes": {"CLASS_1": 0.1},
                       "camera_motion": "pan_left", "dup_of": None, "duplicate": False}
    assert rows[1]["nsfw_classes"] == {"CLASS_4": 0.4}  # objects keep their own keys, no nulls added
    # The clip with no score row is in the folder's rows, with nulls.
    everything = tmp_path / "all.jsonl"
    datautil("filter", folder, "--where", "num_frames>=0", "--output", everything)
    last = read_rows(everything)[-1]
    assert last["video_path"] == "clips/c5.mp4" and last["aesthetic_score"] is None and last["num_frames"] == 144


def test_filter_on_a_manifest_writes_the_rows_byte_for_byte(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"video_path":"a","x":1,"d":{"k":[1.50,2]},"y":null}\n'
                        '{"video_path":"b","x":2.0,"extra":"only here","d":{}}\n'
                        '{"video_path":"c","x":3,"d":{"z":1e-7}}\n')
    out = tmp_path / "out.jsonl"
    datautil("filter", manifest, "--where", "x > 1", "--output", out)
    assert lines(out) == lines(manifest)[1:]


def test_an_unknown_column_is_one_line_and_writes_nothing(tmp_path):
    folder = made_up_folder(tmp_path / "out")
    out = tmp_path / "kept.jsonl"
    proc = datautil("filter", folder, "--where", "aesthetic_score>=4", "--where", "clip_score>=0.3", "--output",
                    out, check=False)
    assert proc.returncode == 1 and "clip_score" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()
    proc = datautil("filter", folder, "--where", "aesthetic_score=>", "--output", out, check=False)
    assert proc.returncode == 1 and "aesthetic_score=>" in proc.stderr and not out.exists()


def test_set_operations_shard_merge_sample_head(tmp_path):
    rows = [{"video_path": f"v{i:03d}.mp4", "score": i, "frames": [i, i + 1]} for i in range(200)]
    manifest = write_manifest(tmp_path / "m.jsonl", rows)
    datautil("difference", manifest, manifest, "--output", tmp_path / "none.jsonl")
    assert (tmp_path / "none.jsonl").read_text() == ""
    datautil("shard", manifest, "--parts", 3, "--output-folder", tmp_path / "shards")
    parts = sorted((tmp_path / "shards").iterdir())
    assert [p.name for p in parts] == [f"part-0000{i}-of-00003.jsonl" for i in range(3)]
    assert all(40 < len(lines(p)) < 95 for p in parts)
    datautil("shard", manifest, "--parts", 3, "--output-folder", tmp_path / "again")
    assert all(p.read_bytes() == (tmp_path / "again" / p.name).read_bytes() for p in parts)
    datautil("merge", *parts, "--output", tmp_path / "merged.jsonl")
    assert sorted(lines(tmp_path / "merged.jsonl")) == sorted(lines(manifest))
    datautil("intersection", manifest, parts[1], "--output", tmp_path / "both.jsonl")
    assert sorted(lines(tmp_path / "both.jsonl")) == sorted(lines(parts[1]))
    datautil("difference", manifest, parts[1], "--output", tmp_path / "rest.jsonl")
    assert len(lines(tmp_path / "rest.jsonl")) == 200 - len(lines(parts[1]))
    # Merge: the later file's row wins.
    newer = write_manifest(tmp_path / "newer.jsonl", [{"video_path": "v005.mp4", "score": -5},
                                                     {"video_path": "new.mp4", "score": 1}])
    datautil("merge", manifest, newer, "--output", tmp_path / "merged2.jsonl")
    merged = {r["video_path"]: r for r in read_rows(tmp_path / "merged2.jsonl")}
    assert len(merged) == 201 and merged["v005.mp4"] == {"video_path": "v005.mp4", "score": -5}
    # Sample: the same rows for the same seed whatever the input order, in input order; head: the first rows.
    datautil("sample", manifest, "--n", 20, "--seed", 3, "--output", tmp_path / "s1.jsonl")
    datautil("sample", tmp_path / "merged.jsonl", "--n", 20, "--seed", 3, "--output", tmp_path / "s2.jsonl")
    datautil("sample", manifest, "--n", 20, "--seed", 4, "--output", tmp_path / "s3.jsonl")
    sampled = lines(tmp_path / "s1.jsonl")
    assert len(sampled) == 20 and sampled == sorted(sampled) and sorted(lines(tmp_path / "s2.jsonl")) == sampled
    assert lines(tmp_path / "s3.jsonl") != sampled
    datautil("head", manifest, "--n", 7, "--output", tmp_path / "head.jsonl")
    assert lines(tmp_path / "head.jsonl") == lines(manifest)[:7]


def test_stats_of_a_known_manifest_and_a_folders_gates(tmp_path):
    rows = [{"video_path": f"v{i}.mp4", "duration": 360.0 * (i + 1), "aesthetic_score": float(i),
             "camera_motion": "static" if i < 3 else "pan_left", "duplicate": i == 4} for i in range(5)]
    rows[4]["aesthetic_score"] = None
    manifest = write_manifest(tmp_path / "m.jsonl", rows)
    stats = json.loads(datautil("stats", manifest, "--json").stdout)
    assert stats["rows"] == 5 and stats["hours"] == pytest.approx(1.5)
    assert stats["columns"]["aesthetic_score"] == pytest.approx(
        {"count": 4, "min": 0, "p5": 0.15, "p25": 0.75, "p50": 1.5, "p75": 2.25, "p95": 2.85, "max": 3})
    assert stats["labels"] == {"camera_motion": {"static": 3, "pan_left": 2}, "duplicate": {"false": 4, "true": 1}}
    text = datautil("stats", manifest).stdout
    assert "5 rows, 1.50 hours" in text and "static 3 (60.0%)" in text
    folder = made_up_folder(tmp_path / "out")
    write_manifest(folder / "gate_decisions.jsonl", [
        {"video_path": "clips/c0.mp4", "outcome": "rejected", "step": "aesthetic", "gate": "aesthetic_score >= 4",
         "value": 3.5},
        {"video_path": "clips/c5.mp4", "outcome": "unscored", "step": "aesthetic", "gate": "aesthetic_score >= 4",
         "value": None},
        *({"video_path": f"clips/c{i}.mp4", "outcome": "passed", "step": None, "gate": None, "value": None}
          for i in range(1, 5))])
    stats = json.loads(datautil("stats", folder, "--json").stdout)
    assert stats["rows"] == 6 and stats["columns"]["aesthetic_score"]["count"] == 5
    assert "aesthetic_settings" not in stats["columns"] and stats["labels"]["camera_motion"]["null"] == 1
    assert stats["gates"] == {"clips": 6, "passed": 4, "steps": [
        {"step": "aesthetic", "gate": "aesthetic_score >= 4", "rejected": 1, "unscored": 1}]}


def test_info_probes_real_videos_and_lists_a_broken_file(videos, tmp_path):
    broken = tmp_path / "notes.mp4"
    broken.write_text("not a video\n")
    out = tmp_path / "info.jsonl"
    proc = datautil("info", videos / "moviepy/chaplin.mp4", videos / "decord/flipping_a_pancake.mkv", broken,
                    "--output", out, check=False)
    assert proc.returncode == 2, proc.stderr
    chaplin, pancake, error = read_rows(out)
    assert pancake["codec"] and pancake["fps"] > 0 and pancake["width"] > 0 and pancake["duration"] > 0
    assert chaplin["num_frames"] > 0 and error["video_path"] == str(broken) and "Invalid data" in error["error"]
    fewer = min(chaplin["num_frames"], pancake["num_frames"]) + 1
    proc = datautil("info", videos / "moviepy/chaplin.mp4", videos / "decord/flipping_a_pancake.mkv", "--fmin",
                    fewer)
    kept = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(kept) == 1 and kept[0]["num_frames"] >= fewer


def test_a_real_stage2_folder(stage1, tmp_path):
    clips = sorted(read_rows(stage1 / "meta_clips.jsonl"), key=lambda r: r["num_frames"])[:3]  # the quickest
    manifest = write_manifest(tmp_path / "clips.jsonl", clips)
    out = tmp_path / "out"
    run_module("video_caption.score", "--output-folder", out, "--input", manifest, "--root", stage1, "--scorers",
               "motion", "--motion-min", "-1", "--motion-max", "1e9", "--num-workers", 0)
    scores = {r["video_path"]: r for r in read_rows(out / "motion_score.jsonl")}
    middle = sorted(r["motion_score"] for r in scores.values())[1]
    kept = tmp_path / "moving.jsonl"
    datautil("filter", out, "--where", f"motion_score>={middle!r}", "--output", kept)
    rows = read_rows(kept)
    assert {r["video_path"] for r in rows} == {k for k, r in scores.items() if r["motion_score"] >= middle}
    for row in rows:
        assert "motion_settings" not in row
        assert row["motion_frame_idx"] == scores[row["video_path"]]["motion_frame_idx"]
        assert row["start_frame"] == next(c for c in clips if c["video_path"] == row["video_path"])["start_frame"]
    stats = json.loads(datautil("stats", out, "--json").stdout)
    assert stats["rows"] == 3 and stats["gates"]["passed"] == 3
