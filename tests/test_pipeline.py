"""run_pipeline.sh: the three stage scripts in one command on the demo dataset, run from another
folder with relative paths, the run summary and its plain-words result, a rerun of the same command
that finds everything done, and settings errors that stop the run before any stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO
from scripted_server import ScriptedServer
from vlm_helpers import save_tiny_qwen2_vl

from video_caption.manifest import read_rows


def pipeline(env: dict, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "run_pipeline.sh")], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable, **env}, timeout=1200)


def test_one_command_runs_every_stage_and_a_rerun_resumes(tmp_path):
    """Run from another folder with relative paths, as a user types them."""
    out = tmp_path / "out"
    (tmp_path / "in").symlink_to(REPO / "datasets" / "demo" / "videos")
    env = {"VIDEO_FOLDER": "in", "OUTPUT_FOLDER": "out",
           "SCORERS": "motion", "MOTION_MIN": "0", "MOTION_MAX": "1e9",
           "VLM_BACKEND": "transformers", "VLM_MODEL": str(save_tiny_qwen2_vl(tmp_path / "vlm")), "CPU": "1",
           "FRAMES": "1", "MAX_SIDE": "128", "VLM_MAX_TOKENS": "8", "LLM_MAX_TOKENS": "24",
           # A random VLM's eight tokens never pass the reply checks; CLIP ViT-L/14 is not here.
           "STEPS": "caption,summary,train", "CHECKS": "none"}
    first = pipeline(env, cwd=tmp_path)
    assert first.returncode in (0, 2), first.stderr[-3000:]
    assert not (REPO / "out").exists()
    summary = json.loads((out / "summary.json").read_text())
    cut, score, caption = (summary["stages"][s] for s in ("cut", "score", "caption"))
    clips = read_rows(out / "meta_clips.jsonl")
    assert cut["sources"] == cut["sources_done"] == 2 and cut["clips"] == len(clips) > 0
    assert score["gates"]["motion"]["reached"] == len(clips) == score["train_clips"]
    assert caption["clips"] == len(clips) and caption["rows"]["frame_caption.jsonl"] == len(clips)
    entries = json.loads((out / "train.json").read_text())
    assert caption["train_json"] == len(entries) > 0
    assert {e["file_path"] for e in entries} <= {c["video_path"] for c in clips}
    assert "stage 1 cut:     2 sources, 2 cut, 0 failed" in first.stderr
    assert f"stage 3 caption: {len(clips)} clips, {len(entries)} in train.json" in first.stderr
    totals = summary["totals"]
    assert (totals["sources"], totals["clips"], totals["train_clips"], totals["captioned"]) == \
        (2, len(clips), len(clips), len(entries))
    assert totals["errors"] == len(read_rows(out / "errors.jsonl"))
    assert totals["stages_wall_s"] == round(sum(summary["stages"][s]["run"]["wall_s"]
                                                for s in ("cut", "score", "caption")), 2)
    assert f"whole dataset:   2 sources, {len(clips)} clips" in first.stderr and " s this run" in first.stderr
    result, report = first.stderr.strip().splitlines()[-2:]
    assert result.startswith(f"result: {len(entries)} clips with a caption in train.json"), result
    assert report.startswith(f"report: {out / 'report' / 'index.html'} "), report

    manifests = {p.name: p.read_bytes() for p in out.glob("*.jsonl")}
    again = pipeline(env, cwd=tmp_path)
    assert again.returncode in (0, 2), again.stderr[-3000:]
    resumed = json.loads((out / "summary.json").read_text())["stages"]
    assert resumed["cut"]["run"]["sources"] == 0 and resumed["score"]["run"]["clip_steps"] == 0
    assert resumed["caption"]["run"]["clip_steps"] == caption["missing"] + len(read_rows(out / "errors.jsonl"))
    assert json.loads((out / "train.json").read_text()) == entries
    for name, data in manifests.items():
        if name != "errors.jsonl":
            assert (out / name).read_bytes() == data, f"{name} changed on a rerun with nothing to do"


def test_a_settings_typo_stops_the_run_before_any_stage(tmp_path):
    out = tmp_path / "out"
    expected = {"CAPTION_MODE": "not 'frames_then_sumary' (did you mean frames_then_summary?)",
                "SCORERS": "unknown 'motoin'", "MIN_SIDE": "use MIN_SOURCE_SIDE (stage 1"}
    for name, value in (("CAPTION_MODE", "frames_then_sumary"), ("SCORERS", "motoin"), ("MIN_SIDE", "256")):
        proc = pipeline({"VIDEO_FOLDER": str(REPO / "datasets" / "demo" / "videos"), "OUTPUT_FOLDER": str(out),
                         name: value})
        assert proc.returncode == 1, (name, proc.stderr[-2000:])
        assert expected[name] in proc.stderr, proc.stderr[-2000:]
        assert "=== stage" not in proc.stderr and not out.exists(), f"{name}: a stage ran"


def test_a_stage_that_cannot_start_stops_the_run_with_its_reason(tmp_path):
    out = tmp_path / "out"
    with ScriptedServer(lambda body, attempt: (200, "A frame.", 0.0)) as vlm:
        proc = pipeline({"OUTPUT_FOLDER": str(out), "STAGES": "3", "VLM_BASE_URL": vlm.url,  # no stage 2 before
                         "STEPS": "caption,train", "CAPTION_MODE": "video_then_rewrite", "LLM_BACKEND": "none"})
    assert proc.returncode == 1
    assert "no clip manifest" in proc.stderr and "stage 3 failed (exit 1)" in proc.stderr


def test_a_server_that_does_not_answer_stops_the_run_before_stage_1(tmp_path):
    out = tmp_path / "out"
    proc = pipeline({"VIDEO_FOLDER": str(REPO / "datasets" / "demo" / "videos"), "OUTPUT_FOLDER": str(out),
                     "VLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert proc.returncode == 1
    assert "error: stage 3, caption: no OpenAI-compatible server answers at http://127.0.0.1:9/v1" in proc.stderr
    assert "=== stage" not in proc.stderr and not out.exists()


def test_demo_mode_skips_models_this_machine_cannot_have_and_lists_them(tmp_path):
    out = tmp_path / "out"
    proc = pipeline({"VIDEO_FOLDER": str(REPO / "datasets" / "demo" / "videos"), "OUTPUT_FOLDER": str(out),
                     "SKIP_MISSING_MODELS": "1", "SCORERS": "aesthetic,motion", "MOTION_MIN": "0",
                     "MOTION_MAX": "1e9", "HF_HOME": str(tmp_path / "empty_hf_cache"),
                     # a hub that never answers, asked once for the whole run
                     "HF_HUB_OFFLINE": "", "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("cannot be reached") == 1, proc.stderr[-3000:]
    stages = json.loads((out / "summary.json").read_text())["stages"]
    assert [s["scorer"] for s in stages["score"]["skipped"]] == ["aesthetic"]
    assert "vit_large_patch14_clip_224.openai" in stages["score"]["skipped"][0]["reason"]
    assert set(stages["score"]["gates"]) == {"metadata", "motion"} and stages["score"]["train_clips"] > 0
    assert [s["step"] for s in stages["caption"]["skipped"]] == ["caption", "match"]
    assert "skipped in score: aesthetic" in proc.stderr and "skipped in caption: caption" in proc.stderr
    assert "skipped in caption: match" in proc.stderr
    assert json.loads((out / "train.json").read_text()) == []
    result = proc.stderr.strip().splitlines()[-2]
    assert result.startswith("result: no caption: the caption step was skipped (model 'Qwen/Qwen2-VL-2B-Instruct' "
                             "is neither a folder nor in the Hugging Face cache"), result
