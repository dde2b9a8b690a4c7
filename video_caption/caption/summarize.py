"""The summary step: the LLM merges a clip's frame captions into one caption, or rewrites its video
caption to the target style, writing summary_caption.jsonl.  An image's one caption is rewritten
with the image template, in either mode.

Every reply is checked (video_caption.caption.checks: a summary may draw on its frame captions but
not give one back) and asked again once when degenerate; a summary degenerate twice keeps its row,
with ``degenerate`` saying why, and does not reach train.json."""

from __future__ import annotations

import dataclasses
from collections import Counter

from video_caption.caption.backends import Request
from video_caption.caption.checks import Rejected, check_reply
from video_caption.caption.faithful import DEFAULT, Faithfulness
from video_caption.caption.roles import Role
from video_caption.loader import Item
from video_caption.manifest import IMAGE, SUMMARY_CAPTION, media_type
from video_caption.runner import Step, digest
from video_caption.steps import Field, StepSpec


def summary_request(template: str, captions: list[str]) -> Request:
    lines = "\n".join(f"Frame {i}: {' '.join(c.split())}" for i, c in enumerate(captions, start=1))
    return Request(template.replace("{captions}", lines))


def rewrite_request(template: str, caption: str) -> Request:
    return Request(template.replace("{caption}", " ".join(caption.split())))


def instructions(template: str) -> str:
    """A prompt template without its placeholders: what a reply must not give back."""
    return template.replace("{captions}", " ").replace("{caption}", " ")


class SummaryStep(Step):
    """Its input rows are the caption step's rows; a digest of their captions is recorded with its
    settings, so a clip whose captions were made again differently is summarised again."""

    stage = "caption"
    name = "summary"
    output = SUMMARY_CAPTION

    def __init__(self, role: Role, template: str, image_template: str, per_frame: bool, language: str | None,
                 checks: list[str], faithfulness: Faithfulness = DEFAULT):
        self.role, self.template, self.per_frame, self.language = role, template, per_frame, language
        self.image_template = image_template
        self.checks, self.faithfulness = checks, faithfulness
        self.backend = None
        self.counts: Counter = Counter()

    def settings(self) -> dict:
        s = self.role.sampling
        return {"model": self.role.model, "prompt": digest(self.template), "max_tokens": s.max_tokens,
                "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed,
                "repeat_penalty": s.repeat_penalty, "language": self.language,
                "checks": self.checks, "faithfulness": dataclasses.asdict(self.faithfulness)}

    def image_settings(self) -> dict:
        return {**self.settings(), "prompt": digest(self.image_template)}

    def input_digest(self, row: dict) -> str:
        return digest(row["sampled_frame_caption"] if self.per_frame else row["video_caption"])

    def setup(self, device: str) -> None:
        self.backend = self.role.open()

    def close(self) -> None:
        self.role.close()

    def _request(self, row: dict) -> Request:
        if media_type(row) == IMAGE:
            return rewrite_request(self.image_template, " ".join(row["sampled_frame_caption"]) if self.per_frame
                                   else row["video_caption"])
        if self.per_frame:
            return summary_request(self.template, row["sampled_frame_caption"])
        return rewrite_request(self.template, row["video_caption"])

    def process(self, items: list[Item]) -> list[dict | Exception]:
        requests = [self._request(item.row) for item in items]
        # A rewrite may say what its one source says; only frame captions merged are checked for echoes.
        sources = [item.row["sampled_frame_caption"] if self.per_frame and media_type(item.row) != IMAGE else []
                   for item in items]
        prompts = [instructions(self.image_template if media_type(item.row) == IMAGE else self.template)
                   for item in items]

        # What each reply must be about: the clip's frame captions, or the one caption it rewrites.
        describes = [item.row["sampled_frame_caption"] if self.per_frame else [item.row["video_caption"]]
                     for item in items]

        def judge(index: int, reply):
            return check_reply(reply, prompt=prompts[index], sources=sources[index],
                               finish_reason=getattr(reply, "finish_reason", None), language=self.language,
                               only=self.checks, describes=describes[index], faithfulness=self.faithfulness)

        rows: list[dict | Exception] = []
        for result in self.role.ask(self.backend, requests, judge, self.counts):
            if isinstance(result, Exception):
                rows.append(result)
            elif isinstance(result, Rejected):
                rows.append({"summary_model": self.backend.model, "summary_caption": result.text.strip(),
                             "degenerate": result.problem.record()})
            else:
                rows.append({"summary_model": self.backend.model, "summary_caption": result.strip()})
        return rows


STEP = StepSpec(
    "summary", 3,
    fields=(Field("summary_caption", "the LLM's caption merging the frame captions, or rewriting the video caption",
                  text=True),),
    outputs=(SUMMARY_CAPTION,),
)
