"""The caption step: the VLM describes each sampled frame (``frames_then_summary``, writing
frame_caption.jsonl) or all sampled frames in one request (``video_then_rewrite``, video_caption.jsonl)."""

from __future__ import annotations

from video_caption.caption.backends import Request
from video_caption.caption.frames import CaptionFrames
from video_caption.caption.roles import Role
from video_caption.loader import Item
from video_caption.manifest import FRAME_CAPTION, VIDEO_CAPTION
from video_caption.runner import Step, digest


class CaptionStep(Step):
    stage = "caption"
    name = "caption"

    def __init__(self, role: Role, per_frame: bool, prompt: str, frames: CaptionFrames):
        self.role, self.per_frame, self.prompt, self.frames = role, per_frame, prompt, frames
        self.output = FRAME_CAPTION if per_frame else VIDEO_CAPTION
        self.backend = None

    def settings(self) -> dict:
        f, s = self.frames, self.role.sampling
        return {"model": self.role.model, "per_frame": self.per_frame, "prompt": digest(self.prompt),
                "sampling": f.sampling, "frames": f.count, "max_side": f.max_side, "jpeg_quality": f.quality,
                "max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed}

    def setup(self, device: str) -> None:
        self.backend = self.role.open()

    def close(self) -> None:
        self.role.close()

    def process(self, items: list[Item]) -> list[dict | Exception]:
        if self.per_frame:
            requests = [Request(self.prompt, (jpeg,)) for item in items for jpeg in item.data]
        else:
            requests = [Request(self.prompt, tuple(item.data)) for item in items]
        results, rows, i = self.backend.generate(requests, self.role.sampling), [], 0
        for item in items:
            mine = results[i:i + len(item.data)] if self.per_frame else results[i:i + 1]
            i += len(mine)
            failure = next((r for r in mine if isinstance(r, Exception)), None)
            if failure is not None:
                rows.append(failure)
                continue
            row = {"model": self.backend.model, "prompt": self.prompt, "sampled_frame_idx": item.frame_indices}
            if self.per_frame:
                row["sampled_frame_caption"] = [r.strip() for r in mine]
            else:
                row["video_caption"] = mine[0].strip()
            rows.append(row)
        return rows
