"""Aesthetic score: CLIP image embeddings into the LAION improved-aesthetic-predictor head.

Four frames spread uniformly over the clip are embedded with CLIP ViT-L/14 (OpenAI weights, through
open_clip), L2-normalised and scored by the MLP head ``sac+logos+ava1-l14-linearMSE.pth``; the row
holds the per-frame scores and their mean, ``aesthetic_score`` (roughly 1 to 10).

``MODELS`` names the supported heads with the CLIP they expect, so another head is one entry more.
CLIP weights come from a local file (``--clip-weights PATH``) or, for a pretrained tag such as
``openai``, from the Hugging Face cache; nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_caption.loader import FramePlan
from video_caption.models import ModelMissing, from_hub, hf_cache_dir, weights_digest
from video_caption.score.base import Scorer

# Package data (video_caption/weights/aesthetic/, with its LICENSE), so a non-editable install has it too.
PACKAGED_WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


@dataclass(frozen=True)
class AestheticModel:
    clip: str  # open_clip model name
    clip_weights: str  # pretrained tag of open_clip, or a file
    head: str  # file name of the head, looked up in --models-folder and the packaged weights
    head_url: str


MODELS = {
    "laion-aesthetic-v2": AestheticModel(
        clip="ViT-L-14", clip_weights="openai", head="aesthetic/sac+logos+ava1-l14-linearMSE.pth",
        head_url="https://github.com/christophschuhmann/improved-aesthetic-predictor "
                 "(file sac+logos+ava1-l14-linearMSE.pth)"),
}


def load_head(path: Path):
    """The LAION MLP head (state dict keys ``layers.{0,2,4,6,7}``) and the embedding width it takes."""
    import torch
    from torch import nn

    state = torch.load(path, map_location="cpu", weights_only=True)
    width = state["layers.0.weight"].shape[1]
    holder = nn.Module()
    holder.layers = nn.Sequential(nn.Linear(width, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
                                  nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1))
    holder.load_state_dict(state)
    return holder.layers.eval(), width


HF_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def resolve_clip_weights(model: str, weights: str) -> tuple[str, dict]:
    """(local weights file, open_clip's pretrained config of the tag) for a weights file or a tag.

    A tag (``openai``) is looked up in the Hugging Face cache, and downloaded into it on a connected
    machine; when that fails the error names the file, where it must go and how to fetch it."""
    import open_clip

    if os.path.isfile(weights):
        return weights, {}
    cfg = open_clip.get_pretrained_cfg(model, weights)
    hub = cfg.get("hf_hub", "").rstrip("/")
    if not hub:
        raise ModelMissing(f"CLIP weights {weights!r} for {model}: no such file, and not a pretrained tag of open_clip "
                           f"(tags for {model}: {', '.join(open_clip.list_pretrained_tags_by_model(model)) or 'none'})")
    for name in HF_NAMES:
        found = from_hub(hub, name)
        if found:
            return found, cfg
    raise ModelMissing(
        f"CLIP {model} weights ({weights}) are not in the Hugging Face cache {hf_cache_dir()} and could not be "
        f"downloaded (offline?): "
        f"it needs {hub}/{HF_NAMES[0]}. "
        f"On a connected machine run 'huggingface-cli download {hub} {HF_NAMES[0]}' and copy the cache folder here "
        "(or set HF_HOME to it), or pass --clip-weights PATH to the weights file.")


def find_head(name: str, model: AestheticModel, folder: str | os.PathLike | None) -> Path:
    """The head file: ``name`` itself if it is a file, else looked up in ``folder`` and the packaged weights."""
    if os.path.isfile(name):
        return Path(name)
    folders = [Path(folder)] if folder else []
    folders.append(PACKAGED_WEIGHTS)
    for base in folders:
        if (base / model.head).is_file():
            return base / model.head
    raise ModelMissing(f"aesthetic head {model.head} not found in {', '.join(map(str, folders))}: put it there "
                       f"(fetch it from {model.head_url}) or pass --aesthetic-head PATH.")


@dataclass(frozen=True)
class AestheticFrames(FramePlan):
    transform: object  # open_clip's eval transform (PIL image -> tensor), picklable
    count: int = 4
    fmt = "rgb24"

    def indices(self, num_frames: int, fps: float, path: Path) -> list[int]:
        from video_caption.media.decode import uniform_indices

        return uniform_indices(num_frames, self.count)

    def prepare(self, frames: list[np.ndarray]):
        import torch
        from PIL import Image

        return torch.stack([self.transform(Image.fromarray(f)) for f in frames])


class AestheticScorer(Scorer):
    name = "aesthetic"
    key = "aesthetic_score"

    def __init__(self, model: str = "laion-aesthetic-v2", clip_model: str | None = None,
                 clip_weights: str | None = None, clip_config: str | None = None, head: str | None = None,
                 models_folder: str | None = None, frames: int = 4):
        import open_clip

        spec = MODELS[model]
        if clip_config:
            open_clip.add_model_config(clip_config)
        self.clip_model = clip_model or spec.clip
        self.clip_weights, pretrained = resolve_clip_weights(self.clip_model, clip_weights or spec.clip_weights)
        # Loading from a file path tells open_clip nothing about the tag: pass on what the tag implies.
        self.quick_gelu = bool(pretrained.get("quick_gelu"))
        self.head_path = find_head(head or "", spec, models_folder)
        config = open_clip.get_model_config(self.clip_model)
        if config is None:
            raise ModelMissing(f"unknown CLIP model {self.clip_model!r} (give its JSON config with --clip-config)")
        pre = {**config.get("preprocess_cfg", {}), **pretrained}
        transform = open_clip.image_transform(
            config["vision_cfg"].get("image_size", 224), is_train=False, mean=pre.get("mean"), std=pre.get("std"),
            interpolation=pre.get("interpolation", "bicubic"), resize_mode=pre.get("resize_mode", "shortest"))
        self.frames = AestheticFrames(transform=transform, count=frames)
        self.model_name = model
        self.model = self.head = None
        self.device = "cpu"

    def settings(self) -> dict:
        return {"model": self.model_name, "clip": self.clip_model, "clip_weights": weights_digest(self.clip_weights),
                "quick_gelu": self.quick_gelu, "head": weights_digest(self.head_path), "frames": self.frames.count}

    def setup(self, device: str) -> None:
        import open_clip

        half = device.startswith("cuda")
        self.model = open_clip.create_model(self.clip_model, pretrained=self.clip_weights, device=device,
                                            precision="fp16" if half else "fp32",
                                            force_quick_gelu=self.quick_gelu).eval()
        head, width = load_head(self.head_path)
        embed = self.model.visual.output_dim
        if width != embed:
            raise ModelMissing(f"aesthetic head {self.head_path} takes {width}-wide embeddings; "
                               f"{self.clip_model} gives {embed}")
        self.head = head.to(device)
        self.device = device

    def score(self, batch: list) -> list[dict]:
        import torch

        x = torch.cat(batch).to(self.device, dtype=next(self.model.parameters()).dtype)
        with torch.inference_mode():
            emb = self.model.encode_image(x).float()
            emb = emb / emb.norm(dim=-1, keepdim=True)
            scores = self.head(emb).squeeze(-1).cpu().tolist()
        return self.frame_means(scores, batch)
