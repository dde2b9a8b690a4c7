"""The category step: zero-shot classification of a clip's frames against the user's labels, by CLIP
(category.jsonl), to keep or drop clips by what they show.

Labels come from a file, one a line: ``label`` (its prompt is the template with the label, by
default ``a video frame of {label}``) or ``label: prompt text``; blank lines and lines starting with
``#`` are skipped.  The prompts are embedded once.  Each of ``frames`` frames spread uniformly over
the clip gets a softmax over the labels of ``exp(logit_scale) * cos(frame, prompt)`` (CLIP's
zero-shot classifier); the clip's probabilities are their mean over its frames.

Rows: ``category`` (the most probable label), ``category_scores`` ({label: probability}, in file
order), ``category_frame_idx``.  Its gates (CATEGORY_KEEP, CATEGORY_DROP) keep or drop clips by label, like
mindone's ``option`` filtering (tools/t2v_curation), which keeps the clips that match one text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from video_caption.clip import ClipFrames, ClipSpec, encode_images, encode_texts, load_clip, logit_scale
from video_caption.gate import Gate
from video_caption.loader import Item
from video_caption.runner import Step, digest
from video_caption.settings import Setting, names, path
from video_caption.steps import Field, StepSpec

TEMPLATE = "a video frame of {label}"
OUTPUT = "category.jsonl"
GROUP = "match and category"


class LabelsError(ValueError):
    """A labels file that cannot be used: the run stops before any work, naming the line."""


def parse_labels(text: str, template: str = TEMPLATE) -> list[tuple[str, str]]:
    """(label, prompt) pairs of a labels file's text, in order."""
    pairs: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label, sep, prompt = line.partition(":")
        label, prompt = label.strip(), prompt.strip()
        if not label or (sep and not prompt):
            raise LabelsError(f"labels line {number}: expected 'label' or 'label: prompt', got {line!r}")
        if label in {known for known, _ in pairs}:
            raise LabelsError(f"labels line {number}: label {label!r} given twice")
        pairs.append((label, prompt or template.replace("{label}", label)))
    if len(pairs) < 2:
        raise LabelsError("a labels file needs at least two labels to choose between")
    return pairs


def category_gates(keep: list[str] | None, drop: list[str] | None) -> list[Gate]:
    """CATEGORY_KEEP's gate (the label is one of them) and CATEGORY_DROP's (it is none of them)."""
    return ([Gate("category", values=tuple(keep))] if keep else []) + \
        ([Gate("category", values=tuple(drop), excluded=True)] if drop else [])


class CategoryStep(Step):
    stage = "caption"
    name = "category"
    output = OUTPUT

    def __init__(self, clip: ClipSpec, labels_file: str | Path, template: str = TEMPLATE, frames: int = 3):
        self.clip = clip
        self.labels = parse_labels(Path(labels_file).read_text(encoding="utf-8"), template)
        self.frames = ClipFrames(transform=clip.transform(), count=frames)
        self.model = self.prompts = None

    def settings(self) -> dict:
        # The prompts (template included) define the classifier; the labels name its answers.
        return {**self.clip.settings(), "labels": digest(self.labels), "frames": self.frames.count}

    def setup(self, device: str) -> None:
        self.model = load_clip(self.clip, device)  # shared with the process's other CLIP steps
        self.prompts = encode_texts(self.model, self.clip.tokenizer(), [prompt for _, prompt in self.labels])

    def close(self) -> None:
        # The CLIP stays in the process's cache for a later CLIP step; release_clip() frees it.
        self.model = self.prompts = None

    def process(self, items: list[Item]) -> list[dict]:
        import torch

        images = encode_images(self.model, torch.cat([item.data for item in items]))
        probs = (logit_scale(self.model) * (images @ self.prompts.T)).softmax(dim=-1)
        rows, start = [], 0
        for item in items:
            mean = probs[start:start + len(item.data)].mean(dim=0).cpu().tolist()
            start += len(item.data)
            best = int(np.argmax(mean))
            rows.append({"category": self.labels[best][0],
                         "category_scores": {label: p for (label, _), p in zip(self.labels, mean, strict=True)},
                         "category_frame_idx": item.frame_indices})
        return rows


def _setting(env: str, kind, help: str, **more) -> Setting:
    return Setting(env, kind, None, help, (3,), GROUP, **more)


STEP = StepSpec(
    "category", 3,
    fields=(Field("category", "the labels file's label whose prompt CLIP finds likeliest over the frames",
                  label=True),),
    settings=(
        _setting("CATEGORY_LABELS", path(what="a labels file"), "labels file: one 'label' or 'label: prompt' per "
                 "line (the category step is skipped without one)"),
        _setting("CATEGORY_KEEP", names(), "keep only clips of these labels", gate="category"),
        _setting("CATEGORY_DROP", names(), "drop clips of these labels", gate="category"),
    ),
    gates=lambda a: category_gates(a.category_keep, a.category_drop),
    outputs=(OUTPUT,),
)
