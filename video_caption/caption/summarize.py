"""The summary step: the LLM merges a clip's frame captions into one caption, or rewrites its video
caption to the target style, writing summary_caption.jsonl."""

from __future__ import annotations

from video_caption.caption.backends import Request
from video_caption.caption.clean import clean_caption
from video_caption.caption.roles import Role
from video_caption.loader import Item
from video_caption.manifest import SUMMARY_CAPTION
from video_caption.runner import Step, digest


def summary_request(template: str, captions: list[str]) -> Request:
    lines = "\n".join(f"Frame {i}: {' '.join(c.split())}" for i, c in enumerate(captions, start=1))
    return Request(template.replace("{captions}", lines))


def rewrite_request(template: str, caption: str) -> Request:
    return Request(template.replace("{caption}", " ".join(caption.split())))


class EmptyCaption(ValueError):
    """The model answered with nothing usable: the clip is an errors.jsonl row, retried next run."""


class SummaryStep(Step):
    """Its input rows are the caption step's rows; a digest of their captions is recorded with its
    settings, so a clip whose captions were made again differently is summarised again."""

    stage = "caption"
    name = "summary"
    output = SUMMARY_CAPTION

    def __init__(self, role: Role, template: str, per_frame: bool, openings: list[str]):
        self.role, self.template, self.per_frame, self.openings = role, template, per_frame, openings
        self.backend = None

    def settings(self) -> dict:
        s = self.role.sampling
        return {"model": self.role.model, "prompt": digest(self.template), "max_tokens": s.max_tokens,
                "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed}

    def input_digest(self, row: dict) -> str:
        return digest(row["sampled_frame_caption"] if self.per_frame else row["video_caption"])

    def setup(self, device: str) -> None:
        self.backend = self.role.open()

    def close(self) -> None:
        self.role.close()

    def process(self, items: list[Item]) -> list[dict | Exception]:
        requests = [summary_request(self.template, item.row["sampled_frame_caption"]) if self.per_frame
                    else rewrite_request(self.template, item.row["video_caption"]) for item in items]
        rows: list[dict | Exception] = []
        for result in self.backend.generate(requests, self.role.sampling):
            if isinstance(result, Exception):
                rows.append(result)
            elif clean_caption(result, self.openings) is None:
                rows.append(EmptyCaption(f"empty or refused caption: {result.strip()[:200]!r}"))
            else:
                rows.append({"summary_model": self.backend.model, "summary_caption": result.strip()})
        return rows
