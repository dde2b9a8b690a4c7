"""Aesthetic score: CLIP image embeddings into the LAION improved-aesthetic-predictor head.

Four frames spread uniformly over the clip are embedded with CLIP ViT-L/14 (OpenAI weights, through
open_clip), L2-normalised and scored by the MLP head ``sac+logos+ava1-l14-linearMSE.pth``; the row
holds the per-frame scores and their mean, ``aesthetic_score`` (roughly 1 to 10), and the frames'
mean embedding (``aesthetic_embedding``, base64 float16), which the duplicates step reuses.

``MODELS`` names the supported heads with the CLIP they expect, so another head is one entry more.
CLIP is loaded through ``video_caption.clip`` (shared with stage 3's CLIP steps): weights from a
local file (``--clip-weights PATH``) or, for a pretrained tag such as ``openai``, from the Hugging
Face cache; nothing is downloaded at run time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from video_caption.clip import ClipFrames, ClipSpec, encode_embedding, encode_images, load_clip
from video_caption.gate import Gate
from video_caption.models import ModelMissing, weights_digest
from video_caption.score.base import Scorer
from video_caption.score.settings import GATES
from video_caption.settings import WEIGHTS, Setting, choice, integer, number, path
from video_caption.steps import Field, StepSpec

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


class AestheticScorer(Scorer):
    name = "aesthetic"
    key = "aesthetic_score"

    def __init__(self, model: str = "laion-aesthetic-v2", clip_model: str | None = None,
                 clip_weights: str | None = None, clip_config: str | None = None, head: str | None = None,
                 models_folder: str | None = None, frames: int = 4):
        spec = MODELS[model]
        self.clip = ClipSpec.resolve(clip_model or spec.clip, clip_weights or spec.clip_weights, clip_config)
        self.head_path = find_head(head or "", spec, models_folder)
        self.frames = ClipFrames(transform=self.clip.transform(), count=frames)
        self.model_name = model
        self.model = self.head = None
        self.device = "cpu"

    def settings(self) -> dict:
        return {"model": self.model_name, **self.clip.settings(), "head": weights_digest(self.head_path),
                "frames": self.frames.count}

    def setup(self, device: str) -> None:
        self.model = load_clip(self.clip, device)  # shared with the process's other CLIP steps
        head, width = load_head(self.head_path)
        embed = self.model.visual.output_dim
        if width != embed:
            raise ModelMissing(f"aesthetic head {self.head_path} takes {width}-wide embeddings; "
                               f"{self.clip.model} gives {embed}")
        self.head = head.to(device)
        self.device = device

    def close(self) -> None:
        # The CLIP stays in the process's cache for a later CLIP step; release_clip() frees it.
        self.model = self.head = None

    def score(self, batch: list) -> list[dict]:
        import torch

        emb = encode_images(self.model, torch.cat(batch))
        with torch.inference_mode():
            scores = self.head(emb).squeeze(-1).cpu().tolist()
        rows, start = self.frame_means(scores, batch), 0
        for row, clip in zip(rows, batch, strict=True):
            # The clip's mean embedding, for the duplicates step (no second CLIP pass there).
            row["aesthetic_embedding"] = encode_embedding(emb[start:start + len(clip)].mean(0).cpu().numpy())
            start += len(clip)
        return rows


STEP = StepSpec(
    "aesthetic", 2,
    fields=(Field("aesthetic_score", "LAION aesthetic predictor on CLIP ViT-L/14 embeddings, mean over frames "
                  "(1-10)", opensora="aes"),),
    settings=(
        Setting("AESTHETIC_MIN", number(minimum=None), 4.0, "keep aesthetic_score >= this", (2,), GATES,
                gate="aesthetic"),
        Setting("AESTHETIC_HEAD", WEIGHTS, None, "the aesthetic head's weights file", (2,),
                "aesthetic", default_text="from MODELS_FOLDER, else the packaged LAION head"),
        Setting("MODELS_FOLDER", path(what="a folder"), None, "folder holding aesthetic/<head file>", (2,),
                "aesthetic", default_text="$VIDEO_CAPTION_MODELS"),
        Setting("AESTHETIC_MODEL", choice(MODELS), "laion-aesthetic-v2", "the aesthetic head and the CLIP it expects",
                (2,), "aesthetic"),
        Setting("AESTHETIC_FRAMES", integer(minimum=1), 4, "frames per clip, spread uniformly", (2,), "aesthetic"),
    ),
    gates=lambda a: [Gate("aesthetic_score", min=a.aesthetic_min)],
    make=lambda a, device, order: AestheticScorer(a.aesthetic_model, a.clip_model, a.clip_weights, a.clip_config,
                                                  a.aesthetic_head,
                                                  a.models_folder or os.environ.get("VIDEO_CAPTION_MODELS"),
                                                  a.aesthetic_frames),
)
