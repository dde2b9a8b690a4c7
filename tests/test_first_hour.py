"""What a new user hits in the first hour: scripts run from another folder with relative paths, no
silent demo defaults, exit codes that mean one thing, one line per foreseeable error, one lock per
folder, honest summaries and a plain-words result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, run_module
from scripted_server import ScriptedServer

from video_caption.manifest import lock_folder, read_rows
from video_caption.summary import errors_by_kind, result

SCRIPTS = ["stage_1_video_cut.sh", "stage_2_filter_data.sh", "stage_3_video_caption.sh", "run_pipeline.sh"]
DEMO = REPO / "datasets" / "demo" / "videos"


def script(name: str, cwd, env: dict, *args) -> subprocess.CompletedProcess:
    keep = {k: v for k, v in os.environ.items() if k not in ("VIDEO_FOLDER", "OUTPUT_FOLDER")}
    return subprocess.run(["bash", str(REPO / name), *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**keep, "PYTHON": sys.executable, **env})


def test_every_stage_script_reads_relative_paths_from_where_it_is_run(tmp_path):
    (tmp_path / "in").mkdir()
    # Not sintel_trailer: every long stretch of it is a transition, so stage 1 keeps no clip of it.
    (tmp_path / "in" / "film.webm").symlink_to(DEMO / "big_buck_bunny_0_30.webm")
    env = {"VIDEO_FOLDER": "in", "OUTPUT_FOLDER": "out"}
    for name, args in ((SCRIPTS[0], ()), (SCRIPTS[1], ("--scorers=",))):  # stage 2: the metadata gates only
        proc = script(name, tmp_path, env, *args)
        assert proc.returncode == 0, proc.stderr[-2000:]
    clips = read_rows(tmp_path / "out" / "meta_clips.jsonl")
    assert clips and len(read_rows(tmp_path / "out" / "train.jsonl")) == len(clips)
    with ScriptedServer(lambda body, attempt: (200, "A red kite flies over a beach.", 0.0)) as vlm:
        proc = script(SCRIPTS[2], tmp_path, {**env, "CAPTION_MODE": "video_then_rewrite", "LLM_BACKEND": "none",
                                             "STEPS": "caption,train",
                                             "VLM_BASE_URL": vlm.url, "FRAMES": "1", "MAX_SIDE": "64"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(json.loads((tmp_path / "out" / "train.json").read_text())) == len(clips)
    assert proc.stderr.strip().splitlines()[-1].endswith(f"result: {len(clips)} clips with a caption in train.json")
    # A rerun of stage 1 speaks for stage 1, not for the stage 3 outputs beside its own.
    proc = run_module("video_caption.cut", "--video-folder", "in", "--output-folder", "out", cwd=tmp_path)
    assert proc.stderr.strip().splitlines()[-1].endswith(
        f"result: {len(clips)} clips in clips/ (meta_clips.jsonl); stages 2 and 3 have not run since"), proc.stderr
    assert not (REPO / "out").exists() and not (REPO / "in").exists()


def snapshot(folder) -> list | None:
    """Every path under ``folder`` (itself included) with its size and time; None when it does not exist."""
    if not folder.exists():
        return None
    return sorted((str(p.relative_to(folder)), p.lstat().st_size, p.lstat().st_mtime_ns)
                  for p in [folder, *folder.rglob("*")])


def test_scripts_answer_help_and_never_fall_back_to_the_demo(tmp_path):
    # The demo's output folder may hold a run of `setup.sh --demo` or not: either way no script touches it.
    demo_output = REPO / "datasets" / "demo" / "output"
    before = snapshot(demo_output)
    for name in [*SCRIPTS, "setup.sh"]:
        proc = script(name, tmp_path, {}, "--help")
        assert proc.returncode == 0 and ("OUTPUT_FOLDER" in proc.stdout or "--demo" in proc.stdout), name
    for name in SCRIPTS:
        proc = script(name, tmp_path, {})
        assert proc.returncode == 1 and "error: set " in proc.stderr and "--help" in proc.stderr, name
    assert list(tmp_path.iterdir()) == [] and snapshot(demo_output) == before


def test_run_tests_help_says_what_it_does_and_runs_nothing(tmp_path):
    for flag in ("--help", "-h"):
        proc = script("run_tests.sh", tmp_path, {"PYTHON": "false"}, flag)  # ruff or pytest run: exit 1
        assert proc.returncode == 0 and "lint" in proc.stdout and "go to pytest" in proc.stdout, proc.stdout


def test_a_folder_without_video_is_an_error_and_writes_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = run_module("video_caption.cut", "--video-folder", tmp_path / "empty", "--output-folder", tmp_path / "out",
                      check=False)
    assert proc.returncode == 1 and "no video in" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_foreseeable_errors_are_one_line_and_exit_1(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    good = tmp_path / "good.jsonl"
    good.write_text('{"video_path": "a.mp4"}\n')
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text('{"video_path": "a.mp4"}\n{"video_path": \n{"video_path": "c.mp4"}\n')
    runs = [(("video_caption.cut", "--video-folder", DEMO, "--output-folder", a_file), "is a file, not a folder"),
            (("video_caption.score", "--output-folder", a_file, "--input", good, "--scorers", ""),
             "is a file, not a folder"),
            (("video_caption.score", "--output-folder", tmp_path / "o", "--input", damaged, "--scorers", ""),
             "damaged.jsonl: line 2 is not valid JSON"),
            (("video_caption.score", "--output-folder", tmp_path / "o", "--score-batch-size", "eight"),
             "an integer, not 'eight'"),
            (("video_caption.caption", "--output-folder", tmp_path / "o", "--steps", "captions"),
             "unknown 'captions' (known: category, caption, summary, match, tags, materialize, train)")]
    for args, message in runs:
        proc = run_module(*args, check=False)
        assert proc.returncode == 1, (args, proc.stderr[-2000:])
        assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


def test_a_second_stage_in_the_same_folder_is_refused_naming_the_first(tmp_path):
    (tmp_path / "out").mkdir()
    with lock_folder(tmp_path / "out", "stage 2"):
        proc = run_module("video_caption.cut", "--video-folder", DEMO, "--output-folder", tmp_path / "out",
                          check=False)
    assert proc.returncode == 1 and f"stage 2 (pid {os.getpid()}" in proc.stderr
    assert not (tmp_path / "out" / "meta_clips.jsonl").exists()


def test_summary_counts_only_the_errors_still_unresolved(tmp_path):
    rows = [{"stage": "score:motion", "video_path": "a.mp4"}, {"stage": "score:motion", "video_path": "b.mp4"},
            {"stage": "score:motion", "video_path": "b.mp4"}, {"stage": "caption:summary", "video_path": "a.mp4"},
            {"stage": "cut", "video_path": "raw/x.mp4"}, {"stage": "score:camera_motion", "video_path": "a.mp4"},
            {"stage": "score:dedup", "video_path": "a.mp4"}, {"stage": "score:dedup", "video_path": "c.mp4"},
            # rows written before errors named their step's output: materialize's (stage 3's or datautil's)
            {"stage": "caption:materialize", "video_path": "a.mp4"},
            {"stage": "materialize:materialize", "video_path": "c.mp4"}]
    (tmp_path / "errors.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "motion_score.jsonl").write_text(json.dumps({"video_path": "a.mp4", "motion_score": 4.0}) + "\n")
    (tmp_path / "meta_scene_info.jsonl").write_text(json.dumps({"video_path": "raw/x.mp4"}) + "\n")
    # Steps whose files are not <scorer>_score.jsonl: a row there resolves the error too.
    (tmp_path / "camera_motion.jsonl").write_text(json.dumps({"video_path": "a.mp4"}) + "\n")
    (tmp_path / "dedup_signatures.jsonl").write_text(json.dumps({"video_path": "a.mp4"}) + "\n")
    (tmp_path / "materialized.jsonl").write_text(json.dumps({"video_path": "a.mp4"}) + "\n")
    assert errors_by_kind(tmp_path) == {"caption:summary": 1, "materialize:materialize": 1, "score:dedup": 1,
                                        "score:motion": 1}


@pytest.mark.parametrize(("stages", "expected"), [
    ({"cut": {"sources": 2, "sources_failed": 0, "clips": 0}}, "result: no clip: stage 1 cut none from 2 sources"),
    ({"cut": {"clips": 5}, "score": {"clips": 5, "train_clips": 0, "gates": {
        "metadata": {"gate": "", "reached": 5, "passed": 5, "rejected": 0, "unscored": 0},
        "aesthetic": {"gate": "4 <= aesthetic_score", "settings": ["AESTHETIC_MIN"], "reached": 5, "passed": 0,
                      "rejected": 5, "unscored": 0}}}},
     "result: no clip passed stage 2: the aesthetic gate (4 <= aesthetic_score) rejected 5 of the 5 clips it saw"),
    ({"score": {"clips": 5, "train_clips": 3}, "caption": {"clips": 3, "train_json": 0, "missing": 3, "dropped": 0,
                                                           "skipped": [{"step": "caption", "reason": "no server. x"}]}},
     "result: no caption: the caption step was skipped (no server)"),
    ({"score": {"clips": 5, "train_clips": 3}}, "result: 3 clips passed stage 2 into train.jsonl; stage 3 has not run"),
])
def test_the_result_says_what_came_out_and_why_nothing_did(stages, expected):
    [line] = result({"stages": stages})
    assert line.startswith(expected), line
    if "aesthetic gate" in expected:
        assert "AESTHETIC_MIN" in line


def test_each_stage_result_speaks_for_that_stage():
    later = {"cut": {"sources": 2, "sources_failed": 0, "clips": 7},
             "score": {"clips": 7, "train_clips": 3, "gates": {}}, "caption": {"clips": 3, "train_json": 3}}
    assert result({"stages": later}, "cut") == [
        "result: 7 clips in clips/ (meta_clips.jsonl); stages 2 and 3 have not run since"]
    assert result({"stages": later}, "score") == [
        "result: 3 clips passed stage 2 into train.jsonl; stage 3 has not run since"]
    assert result({"stages": later}, "caption") == result({"stages": later}) == [
        "result: 3 clips with a caption in train.json"]
    # A stage that got no clip says why, from the stage before it.
    nothing = {"cut": {"sources": 2, "sources_failed": 1, "clips": 0}, "score": {"clips": 0}, "caption": {"clips": 0}}
    assert result({"stages": nothing}, "cut")[0].startswith("result: no clip: stage 1 cut none from 2 sources")
    gate = {"gate": "0.5 <= motion_score", "reached": 7, "passed": 0, "rejected": 7, "unscored": 0}
    rejected = {**later, "score": {"clips": 7, "train_clips": 0, "gates": {"motion": gate}}, "caption": {"clips": 0}}
    assert result({"stages": rejected}, "caption")[0].startswith("result: no clip passed stage 2: the motion gate")
    assert result({"stages": later}, "materialize") == []
