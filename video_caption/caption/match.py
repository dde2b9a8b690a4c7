"""The match step: how well a clip's final caption matches its frames, by CLIP (match_score.jsonl).

The score is Open-Sora's matching score (hpcaitech/Open-Sora, tools/scoring/matching/inference.py):
``exp(logit_scale) * cos(image embedding, text embedding)`` with CLIP ViT-L/14, the caption
tokenized by CLIP's own tokenizer and cut to its context (77 tokens), about 100 times the cosine.
Frames (``frames``):

- ``middle``: the middle frame, as Open-Sora;
- ``max3``: the first, middle and last frames, the score being the best of the three, as mindone's
  t2v_curation with ``--num_frames 3`` (its frames sit at 10 %, 50 % and 90 % of the clip; here at
  the ends).

Rows: ``match_score``, ``match_frame_scores`` (one per frame), ``match_frame_idx``.  The caption's
digest is recorded with the settings, so a clip whose caption changed is scored again.

Gate: ``match_score >= MATCH_MIN``.  ``MATCH_MIN = 20`` is mindone's default
(tools/t2v_curation/config/config.yaml, ``caption_filtering: matchmin: 20.0``) for this score of
ViT-L/14; Open-Sora documents the ``--matchmin`` filter but recommends no value.
"""

from __future__ import annotations

from dataclasses import dataclass

from video_caption.clip import ClipFrames, ClipSpec, encode_images, encode_texts, load_clip, logit_scale
from video_caption.gate import Gate
from video_caption.loader import Item
from video_caption.runner import Step, digest
from video_caption.settings import Setting, choice, number
from video_caption.steps import Field, StepSpec

OUTPUT = "match_score.jsonl"
MATCH_MIN = 20.0  # mindone's matchmin for ViT-L/14 logit-scaled scores (about 100 x cosine)
FRAME_MODES = ("middle", "max3")
GROUP = "match and category"


def match_indices(num_frames: int, mode: str) -> list[int]:
    """The frames a mode scores: the middle one (``num_frames // 2``), or first, middle and last."""
    if num_frames <= 0:
        return []
    middle = num_frames // 2
    return [middle] if mode == "middle" else sorted({0, middle, num_frames - 1})


@dataclass(frozen=True)
class MatchFrames(ClipFrames):
    mode: str = "middle"

    def indices(self, num_frames: int, fps: float, keyframes: list[int] | None = None) -> list[int]:
        return match_indices(num_frames, self.mode)


class NoCaption(ValueError):
    """The input row has no caption to score: the clip is an errors.jsonl row."""


class MatchStep(Step):
    """Scores ``row[caption_key]`` (the cleaned final caption) against the clip's frames."""

    stage = "caption"
    name = "match"
    output = OUTPUT

    def __init__(self, clip: ClipSpec, caption_key: str = "caption", frames: str = "middle"):
        if frames not in FRAME_MODES:
            raise ValueError(f"match frames: {frames!r} is not one of {', '.join(FRAME_MODES)}")
        self.clip, self.caption_key = clip, caption_key
        self.frames = MatchFrames(transform=clip.transform(), mode=frames)
        self.model = self.tokenizer = None

    def settings(self) -> dict:
        return {**self.clip.settings(), "frames": self.frames.mode}

    def input_digest(self, row: dict) -> str:
        return digest(row.get(self.caption_key))

    def setup(self, device: str) -> None:
        self.model = load_clip(self.clip, device)  # shared with the process's other CLIP steps
        self.tokenizer = self.clip.tokenizer()

    def close(self) -> None:
        # The CLIP stays in the process's cache for a later CLIP step; release_clip() frees it.
        self.model = None

    def process(self, items: list[Item]) -> list[dict | Exception]:
        import torch

        results: list[dict | Exception] = [NoCaption(f"no {self.caption_key!r} caption to match")] * len(items)
        good = [i for i, item in enumerate(items)
                if isinstance(item.row.get(self.caption_key), str) and item.row[self.caption_key].strip()]
        if not good:
            return results
        images = encode_images(self.model, torch.cat([items[i].data for i in good]))
        texts = encode_texts(self.model, self.tokenizer, [items[i].row[self.caption_key] for i in good])
        scale, start = logit_scale(self.model), 0
        for text, i in zip(texts, good, strict=True):
            count = len(items[i].data)
            scores = (scale * (images[start:start + count] @ text)).cpu().tolist()
            start += count
            results[i] = {"match_score": max(scores), "match_frame_scores": scores,
                          "match_frame_idx": items[i].frame_indices}
        return results


STEP = StepSpec(
    "match", 3,
    fields=(Field("match_score", "CLIP's logit-scaled cosine of the final caption and the clip's frames, the best "
                  "frame's (about 100 x cosine)", opensora="match"),),
    settings=(
        Setting("MATCH_MIN", number(minimum=None), MATCH_MIN, "keep match_score (CLIP caption-clip score) >= this",
                (3,), GROUP, gate="match"),
        Setting("MATCH_FRAMES", choice(FRAME_MODES), "middle", "middle: Open-Sora's one frame; max3: the best of "
                "first, middle and last (mindone)", (3,), GROUP),
    ),
    gates=lambda a: [Gate("match_score", min=a.match_min)],
    outputs=(OUTPUT,),
)
