"""CLIP through open_clip: one loading and encoding path for every step that uses it.

Stage 2's aesthetic score and stage 3's caption matching and category filter all embed frames (and
text) with the same CLIP.  This module holds what they share:

- ``ClipSpec``: which CLIP (open_clip model name, local weights file, quick_gelu), resolved from a
  weights file or a pretrained tag (``openai``) looked up in the Hugging Face cache; a model that is
  not on this machine is a ``ModelMissing`` naming what to fetch.  ``settings()`` is what a result
  made with it records (the weights file's digest, not its path).
- its eval image transform (picklable: it runs in DataLoader workers) and its tokenizer;
- ``load_clip``: the model, loaded once per process and device, so that several steps of one
  process share it (fp16 on CUDA, fp32 elsewhere); ``release_clip`` drops it;
- ``encode_images`` / ``encode_texts``: L2-normalised float32 embeddings; ``logit_scale``;
- ``encode_embedding`` / ``decode_embedding``: an embedding kept in a manifest (base64 float16): the
  aesthetic step keeps its frames' mean embedding, the duplicates step reads it back.

Nothing is downloaded at run time except into the Hugging Face cache on a connected machine.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import numpy as np

from video_caption.loader import FramePlan
from video_caption.media.decode import uniform_indices
from video_caption.models import ModelMissing, from_hub, hf_cache_dir, weights_digest

DEFAULT_MODEL, DEFAULT_WEIGHTS = "ViT-L-14", "openai"  # CLIP ViT-L/14, OpenAI's weights
HF_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
# What a pretrained tag says about preprocessing (the rest of its config is about where it lives).
PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")
# Where open_clip's registry keeps the default tag's weights on the hub (tests/test_score.py
# checks it against the registry): that they are missing is then known without importing open_clip,
# which takes 3 s of CPU (torchvision, transformers) on every stage-2 run of a machine without them.
KNOWN_HUBS = {(DEFAULT_MODEL, DEFAULT_WEIGHTS): "timm/vit_large_patch14_clip_224.openai"}


def resolve_clip_weights(model: str, weights: str) -> tuple[str, dict]:
    """(local weights file, open_clip's pretrained config of the tag) for a weights file or a tag.

    A tag (``openai``) is looked up in the Hugging Face cache, and downloaded into it on a connected
    machine; when that fails the error names the file, where it must go and how to fetch it."""
    if os.path.isfile(weights):
        return weights, {}
    known = KNOWN_HUBS.get((model, weights))
    if known and not any(from_hub(known, name) for name in HF_NAMES):
        raise _not_cached(model, weights, known)
    import open_clip

    cfg = open_clip.get_pretrained_cfg(model, weights)
    hub = cfg.get("hf_hub", "").rstrip("/")
    if not hub:
        raise ModelMissing(f"CLIP weights {weights!r} for {model}: no such file, and not a pretrained tag of open_clip "
                           f"(tags for {model}: {', '.join(open_clip.list_pretrained_tags_by_model(model)) or 'none'})")
    for name in HF_NAMES:
        found = from_hub(hub, name)
        if found:
            return found, cfg
    raise _not_cached(model, weights, hub)


def _not_cached(model: str, weights: str, hub: str) -> ModelMissing:
    return ModelMissing(
        f"CLIP {model} weights ({weights}) are not in the Hugging Face cache {hf_cache_dir()} and could not be "
        f"downloaded (offline?): "
        f"it needs {hub}/{HF_NAMES[0]}. "
        f"On a connected machine run 'huggingface-cli download {hub} {HF_NAMES[0]}' and copy the cache folder here "
        "(or set HF_HOME to it), or pass --clip-weights PATH to the weights file.")


def _frozen(value):
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class ClipSpec:
    """One CLIP, resolved to a local file.  Frozen and hashable: it keys the process's model cache."""

    model: str  # open_clip model name
    weights: str  # local weights file
    quick_gelu: bool = False
    preprocess: tuple = ()  # (key, value) pairs of PREPROCESS_KEYS that the pretrained tag sets

    @classmethod
    def resolve(cls, model: str | None = None, weights: str | None = None, config: str | None = None) -> ClipSpec:
        """The CLIP ``model`` (default ViT-L-14) with ``weights`` (a file or a pretrained tag; default
        ``openai``); ``config``: a JSON model config (file or folder) for a model open_clip does not know."""
        model, weights = model or DEFAULT_MODEL, weights or DEFAULT_WEIGHTS
        if config:
            import open_clip

            open_clip.add_model_config(config)
        path, pretrained = resolve_clip_weights(model, weights)  # first: missing weights spare the import
        import open_clip

        if open_clip.get_model_config(model) is None:
            raise ModelMissing(f"unknown CLIP model {model!r} (give its JSON config with --clip-config)")
        # Loading from a file path tells open_clip nothing about the tag: keep what the tag implies.
        return cls(model, path, bool(pretrained.get("quick_gelu")),
                   tuple((k, _frozen(pretrained[k])) for k in PREPROCESS_KEYS if k in pretrained))

    def settings(self) -> dict:
        """What defines results made with this CLIP, recorded on their rows (stage 2's keys)."""
        return {"clip": self.model, "clip_weights": weights_digest(self.weights), "quick_gelu": self.quick_gelu}

    def transform(self):
        """open_clip's eval transform (PIL image -> tensor): torchvision transforms, so it pickles
        into DataLoader workers."""
        import open_clip

        config = open_clip.get_model_config(self.model)
        pre = {**config.get("preprocess_cfg", {}), **dict(self.preprocess)}
        return open_clip.image_transform(
            config["vision_cfg"].get("image_size", 224), is_train=False, mean=pre.get("mean"), std=pre.get("std"),
            interpolation=pre.get("interpolation", "bicubic"), resize_mode=pre.get("resize_mode", "shortest"))

    def tokenizer(self):
        """CLIP's own tokenizer for this model: texts -> token ids at the model's context length; a
        longer text is cut there, keeping the end-of-text token (as OpenAI's ``truncate=True``)."""
        import open_clip

        return open_clip.get_tokenizer(self.model)


@dataclass(frozen=True)
class ClipFrames(FramePlan):
    """``count`` frames spread uniformly over the clip, as one CLIP input tensor (frames, 3, H, W),
    prepared in DataLoader workers."""

    transform: object  # ClipSpec.transform(), picklable
    count: int = 4
    fmt = "rgb24"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        return uniform_indices(num_frames, self.count)

    def prepare(self, frames: list[np.ndarray]):
        import torch
        from PIL import Image

        return torch.stack([self.transform(Image.fromarray(f)) for f in frames])


_models: dict[tuple[ClipSpec, str], object] = {}


def load_clip(spec: ClipSpec, device: str):
    """The CLIP model of ``spec`` on ``device`` in eval mode, loaded at the first call of this process
    and shared afterwards (a stage that runs two CLIP steps loads it once).  fp16 on CUDA (half the
    memory, the speed of tensor cores), fp32 elsewhere (CPUs have no fast fp16)."""
    key = (spec, device)
    if key not in _models:
        import open_clip

        half = device.startswith("cuda")
        _models[key] = open_clip.create_model(spec.model, pretrained=spec.weights, device=device,
                                              precision="fp16" if half else "fp32",
                                              force_quick_gelu=spec.quick_gelu).eval()
    return _models[key]


def release_clip() -> None:
    """Drop every cached CLIP (call it when no step of the process needs CLIP any more)."""
    _models.clear()
    import torch

    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()  # give the freed blocks back, for a model loaded after this


def _place(model):
    p = next(model.parameters())
    return p.device, p.dtype


def encode_images(model, batch):
    """Image embeddings of a (n, 3, H, W) batch, float32, L2-normalised."""
    import torch

    device, dtype = _place(model)
    with torch.inference_mode():
        emb = model.encode_image(batch.to(device, dtype=dtype)).float()
        return emb / emb.norm(dim=-1, keepdim=True)


def encode_texts(model, tokenizer, texts: list[str]):
    """Text embeddings, float32, L2-normalised (each text tokenized, and cut, by ``tokenizer``)."""
    import torch

    device, _ = _place(model)
    with torch.inference_mode():
        emb = model.encode_text(tokenizer(texts).to(device)).float()
        return emb / emb.norm(dim=-1, keepdim=True)


def logit_scale(model) -> float:
    """CLIP's learned temperature, exp(logit_scale) (100 for OpenAI's models): cosine similarity times
    this is CLIP's logit, the scale of Open-Sora's matching score."""
    return float(model.logit_scale.detach().exp())


def encode_embedding(emb: np.ndarray) -> str:
    """An embedding as a manifest keeps it: base64 of its float16 bytes."""
    return base64.b64encode(np.asarray(emb, dtype=np.float16).tobytes()).decode()


def decode_embedding(text: str) -> np.ndarray:
    """A CLIP embedding kept in a manifest (base64 float16), as a unit float32 vector."""
    emb = np.frombuffer(base64.b64decode(text), dtype=np.float16).astype(np.float32)
    return emb / max(float(np.linalg.norm(emb)), 1e-12)
