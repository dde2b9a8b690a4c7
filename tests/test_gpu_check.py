"""bench/gpu_check.sh --dry-run: the GPU check's every path reached on the CPU, with tiny inputs, and its
result file written in the shape a GPU run writes (the GPU run itself needs a CUDA machine: CI never does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO, VIDEOS

# The CUDA paths issue 37 names: aesthetic CLIP, CRAFT, NudeNet, TransNetV2, the VLM backend, stage 2
# under accelerate launch.
PATHS = ("aesthetic", "text", "nsfw", "transnetv2", "vlm", "stage2")


def test_dry_run_reaches_every_path_on_the_cpu(videos, tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([str(REPO / "bench" / "gpu_check.sh"), "--dry-run", "--work", str(tmp_path / "work"),
                           "--out", str(out), "--videos", str(VIDEOS)], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=600)
    result = json.loads(out.read_text())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert result["dry_run"] is True and result["device"] == "cpu (dry run)"
    assert set(result["paths"]) == set(PATHS)
    for name in PATHS:
        path = result["paths"][name]
        assert path["device"] == "cpu", name
        assert "error" not in path, (name, path.get("error"))
        assert path["ok"] is True, (name, path)
        # A time on each side, and each path's difference against the CPU: on the CPU, none.
        assert path["seconds"]["cpu"] > 0 and path["seconds"]["device"] > 0, name
        assert set(path).intersection({"max_diff", "max_cut_shift", "logits_cosine_min"}), name
    assert result["paths"]["stage2"]["launcher"].startswith("accelerate launch")
    assert set(result["paths"]["stage2"]["max_diff"]) == {"aesthetic_score", "motion_score", "nsfw_score"}
    assert all(v == 0 for v in result["paths"]["stage2"]["max_diff"].values())
    assert result["paths"]["transnetv2"]["frames"] > 0
    assert result["paths"]["vlm"]["same_top_token_share"] == 1.0
    assert result["ok"] is True
