"""The project as users get it: a non-editable install (pip install .) run from another folder, and
the Docker image's command."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from caption_helpers import frame_caption_rows
from conftest import REPO
from score_helpers import tiny_clip, write_manifest
from scripted_server import ScriptedServer


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory) -> Path:
    """A fresh virtual environment with the project installed, not editable, from a copy of its source
    (the build writes build/ and egg-info beside the source, so not into the repository), which is then
    deleted: only what the install holds can be found.  Dependencies, pip and setuptools come from the
    system site (a venv's own bundled setuptools cannot build a wheel offline)."""
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(REPO / "video_caption", source / "video_caption", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", work / "venv"],
                   check=True)
    python = work / "venv" / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", source], check=True,
                   capture_output=True)
    shutil.rmtree(source)
    return python


def run_installed(python: Path, cwd: Path, *args) -> subprocess.CompletedProcess:
    # The system site also holds an editable install of this repository: nothing may point there.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([python, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_a_non_editable_install_finds_its_prompts_and_aesthetic_head(venv_python, videos, tmp_path):
    where = run_installed(venv_python, tmp_path, "-c", "import video_caption; print(video_caption.__file__)")
    assert Path(where.stdout.strip()).is_relative_to(venv_python.parents[1]), where.stdout + where.stderr

    # Stage 3: the summary step reads the packaged prompts.
    out = tmp_path / "caption"
    keys = ["clips/a.mp4", "clips/b.mp4"]
    out.mkdir()
    write_manifest(out / "train.jsonl", [{"video_path": k} for k in keys])
    write_manifest(out / "frame_caption.jsonl", frame_caption_rows(keys))
    with ScriptedServer(lambda body, attempt: (200, "A dog runs after a ball.", 0.0)) as llm:
        proc = run_installed(venv_python, tmp_path, "-m", "video_caption.caption", "--output-folder", out,
                             "--steps", "summary,train", "--llm-backend", "openai", "--llm-base-url", llm.url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(llm.bodies) == 2 and "Frame 1: A brown dog" in llm.bodies[0]["messages"][-1]["content"]
    assert [e["file_path"] for e in json.loads((out / "train.json").read_text())] == keys

    # Stage 2: the aesthetic scorer finds the packaged LAION head (a tiny CLIP stands in for ViT-L/14).
    config, weights = tiny_clip(tmp_path)
    out = tmp_path / "score"
    manifest = write_manifest(tmp_path / "clips.jsonl", [{"video_path": "moviepy/sintel_5s.mp4"}])
    proc = run_installed(venv_python, tmp_path, "-m", "video_caption.score", "--output-folder", out, "--input",
                         manifest, "--root", videos, "--scorers", "aesthetic", "--clip-model", "tiny-clip-768",
                         "--clip-config", config, "--clip-weights", weights, "--aesthetic-min", "-1000",
                         "--num-workers", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = [json.loads(line) for line in (out / "aesthetic_score.jsonl").read_text().splitlines()]
    assert row["aesthetic_settings"]["head"] == "21dd590f3ccdc646", "not the packaged head"


def test_the_docker_image_runs_the_pipeline_script_with_every_file_it_needs():
    """run_pipeline.sh, as the README runs it: chained with &&, one bad source (exit 2) would skip
    stages 2 and 3.  Every copied path exists, and every script a copied script runs is copied."""
    dockerfile = (REPO / "Dockerfile").read_text()
    [cmd] = re.findall(r"^CMD (.+)$", dockerfile, re.M)
    assert json.loads(cmd) == ["bash", "run_pipeline.sh"]
    copied = [REPO / source for line in re.findall(r"^COPY (.+)$", dockerfile, re.M)
              for source in shlex.split(line)[:-1]]
    assert all(path.exists() for path in copied), copied
    scripts = [path for path in copied if path.suffix == ".sh"] + [s for path in copied for s in path.glob("**/*.sh")]
    for script in scripts:
        code = re.sub(r"^\s*#.*$", "", script.read_text(), flags=re.M)  # comments may name any script
        for name in re.findall(r"[\w./-]+\.sh\b", code):  # "$(dirname ...)/scripts/common.sh": relative
            needed = REPO / name.lstrip("/")
            assert any(path == needed or path in needed.parents for path in copied), (script, name)
