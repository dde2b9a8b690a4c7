"""Shared pieces of the stage-2 tests: clip manifests cut from the shared videos, a tiny CLIP."""

from __future__ import annotations

import json
from pathlib import Path

from video_caption.manifest import read_rows


def clip_rows(stage1: Path, sources: list[str]) -> list[dict]:
    """Stage 1's clip rows of the given source files (paths relative to the videos folder)."""
    rows = [r for r in read_rows(stage1 / "meta_clips.jsonl") if r["source_path"] in sources]
    assert {r["source_path"] for r in rows} == set(sources), "stage 1 gave no clip for some test source"
    return rows


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def by_key(path: Path) -> dict[str, dict]:
    rows = read_rows(path)
    keys = [r["video_path"] for r in rows]
    assert len(keys) == len(set(keys)), f"duplicate rows in {path}"
    return {r["video_path"]: r for r in rows}


def tiny_clip(folder: Path, real_text: bool = False) -> tuple[Path, Path]:
    """A random-weight open_clip model with a 768-wide embedding (so the real LAION head fits):
    its JSON config and its safetensors weights, saved like a real model's.  ``real_text``: CLIP's
    real vocabulary (49408 tokens) and context (77), so CLIP's own tokenizer feeds it
    (model ``tiny-clip-768-text``)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    name = "tiny-clip-768-text" if real_text else "tiny-clip-768"
    text = {"context_length": 77, "vocab_size": 49408} if real_text else {"context_length": 16, "vocab_size": 1000}
    config = {"embed_dim": 768,
              "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
              "text_cfg": {**text, "width": 64, "heads": 2, "layers": 1}}
    config_path = folder / f"{name}.json"
    config_path.write_text(json.dumps(config))
    open_clip.add_model_config(config_path)
    torch.manual_seed(0)
    model = open_clip.create_model(name)
    weights = folder / f"{name}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    return config_path, weights
