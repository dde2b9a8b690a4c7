"""The caption step: the VLM describes each sampled frame (``frames_then_summary``, writing
frame_caption.jsonl) or all sampled frames in one request (``video_then_rewrite``, video_caption.jsonl).
An image is one frame, described with the single-image prompt in either mode.

Every reply is checked (video_caption.caption.checks) and asked again once when degenerate; a clip
with a reply degenerate twice keeps its row, with ``degenerate`` saying why, and goes no further."""

from __future__ import annotations

from collections import Counter

from video_caption.caption.backends import Request
from video_caption.caption.checks import Rejected, check_reply
from video_caption.caption.frames import CaptionFrames
from video_caption.caption.roles import Role
from video_caption.loader import Item
from video_caption.manifest import FRAME_CAPTION, IMAGE, VIDEO_CAPTION, media_type
from video_caption.runner import Step, digest
from video_caption.steps import Field, StepSpec


class CaptionStep(Step):
    stage = "caption"
    name = "caption"

    def __init__(self, role: Role, per_frame: bool, prompt: str, image_prompt: str, frames: CaptionFrames,
                 language: str | None, checks: list[str]):
        self.role, self.per_frame, self.prompt, self.frames = role, per_frame, prompt, frames
        self.image_prompt = image_prompt
        self.language, self.checks = language, checks
        self.output = FRAME_CAPTION if per_frame else VIDEO_CAPTION
        self.backend = None
        self.counts: Counter = Counter()

    def settings(self) -> dict:
        f, s = self.frames, self.role.sampling
        return {"model": self.role.model, "per_frame": self.per_frame, "prompt": digest(self.prompt),
                "sampling": f.sampling, "frames": f.count, "max_side": f.max_side, "jpeg_quality": f.quality,
                "max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed,
                "repeat_penalty": s.repeat_penalty,
                "language": self.language, "checks": self.checks}

    def image_settings(self) -> dict:
        return {**self.settings(), "prompt": digest(self.image_prompt)}

    def setup(self, device: str) -> None:
        self.backend = self.role.open()

    def close(self) -> None:
        self.role.close()

    def process(self, items: list[Item]) -> list[dict | Exception]:
        prompts = [self.image_prompt if media_type(item.row) == IMAGE else self.prompt for item in items]
        if self.per_frame:
            requests = [Request(prompt, (jpeg,)) for item, prompt in zip(items, prompts, strict=True)
                        for jpeg in item.data]
        else:
            requests = [Request(prompt, tuple(item.data)) for item, prompt in zip(items, prompts, strict=True)]

        def judge(index: int, reply):
            return check_reply(reply, prompt=requests[index].text,
                               finish_reason=getattr(reply, "finish_reason", None), language=self.language,
                               only=self.checks)

        results = self.role.ask(self.backend, requests, judge, self.counts)
        rows, i = [], 0
        for item, prompt in zip(items, prompts, strict=True):
            mine = results[i:i + len(item.data)] if self.per_frame else results[i:i + 1]
            i += len(mine)
            failure = next((r for r in mine if isinstance(r, Exception)), None)
            if failure is not None:
                rows.append(failure)
                continue
            texts = [(r.text if isinstance(r, Rejected) else r).strip() for r in mine]
            row = {"model": self.backend.model, "prompt": prompt, "sampled_frame_idx": item.frame_indices}
            if self.per_frame:
                row["sampled_frame_caption"] = texts
            else:
                row["video_caption"] = texts[0]
            bad = next(((k, r) for k, r in enumerate(mine) if isinstance(r, Rejected)), None)
            if bad is not None:
                row["degenerate"] = {**bad[1].problem.record(), "frame": bad[0]} if self.per_frame \
                    else bad[1].problem.record()
            rows.append(row)
        return rows


STEP = StepSpec(
    "caption", 3,
    fields=(Field("video_caption", "the VLM's caption of the clip's frames at once (video_then_rewrite)", text=True),),
    outputs=(VIDEO_CAPTION, FRAME_CAPTION),  # frame captions: per frame, not joined onto the clip
)
