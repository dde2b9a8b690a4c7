"""Stage 3's gates and each clip's fate there (pure functions, no I/O).

Stage 3's gates are the same ``Gate`` objects as stage 2's (video_caption/gate.py), each step's made
by its declaration (``STEP.gates``), and its decisions the same rows: ``caption_decisions.jsonl``
holds one per clip of stage 3's input, in its order, with ``outcome`` (``passed``: into train.json;
``rejected``: by ``step``'s ``gate``, with the clip's ``value`` there, and for a reply kept out its
``detail``, what was wrong with it: "missing: pancake, pan"; ``unscored``: the step has no
row for it yet, its errors.jsonl row says why or the step has not run on it), checked in the order
the steps run:

  the steps before the caption (category)   their declared gates
  caption      a reply that was degenerate twice (``degenerate not in (...)``, the value its reason)
  summary      the same for the LLM's reply
  clean        a caption with nothing left after cleaning (``1 <= caption_chars``)
  the steps after it (match, tags)          their declared gates (tags: none)
  materialize  no gate: a clip it could not make is unscored
"""

from __future__ import annotations

from dataclasses import dataclass, field

from video_caption.caption.settings import REASONS
from video_caption.gate import Gate, decision
from video_caption.manifest import KEY

DEGENERATE = Gate("degenerate", values=REASONS, excluded=True)
NOT_EMPTY = Gate("caption_chars", min=1)


@dataclass
class Gated:
    """A step that ran: its rows by clip, and its gates on them (none: a clip with a row passes)."""

    step: str
    rows: dict[str, dict]
    gates: list[Gate] = field(default_factory=list)

    def decide(self, key: str) -> dict | None:
        """The clip's decision row when this step stops it (no row, or a gate it fails), else None."""
        if key not in self.rows:
            return decision(key, "unscored", self.step)
        failed = next((g for g in self.gates if not g.passes(self.rows[key])), None)
        return None if failed is None else decision(key, "rejected", self.step, failed, self.rows[key].get(failed.key))


@dataclass
class Made:
    """What the steps that ran made of the clips (None: the step did not run)."""

    before: list[Gated] = field(default_factory=list)  # the steps before the caption, in order
    captioned: set[str] = field(default_factory=set)  # clips with a caption row
    summarized: set[str] | None = None  # clips with a summary of their current caption (None: no LLM)
    degenerate: dict[str, tuple[str, dict]] = field(default_factory=dict)  # clip -> (step, {reason, detail})
    captions: dict[str, str] = field(default_factory=dict)  # the final captions, cleaned
    after: list[Gated] = field(default_factory=list)  # the steps on the final caption, in order
    unmade: set[str] = field(default_factory=set)  # deferred clips materialize could not make


def fate(key: str, made: Made) -> dict:
    """One clip's decision row."""
    for step in made.before:
        if (stopped := step.decide(key)) is not None:
            return stopped
    if key not in made.captioned:
        return decision(key, "unscored", "caption")
    if key in made.degenerate:
        step, problem = made.degenerate[key]
        return {**decision(key, "rejected", step, DEGENERATE, problem["reason"]), "detail": problem.get("detail")}
    if made.summarized is not None and key not in made.summarized:
        return decision(key, "unscored", "summary")
    if key not in made.captions:
        return decision(key, "rejected", "clean", NOT_EMPTY, 0)
    for step in made.after:
        if (stopped := step.decide(key)) is not None:
            return stopped
    if key in made.unmade:
        return decision(key, "unscored", "materialize")
    return decision(key, "passed")


def fates(rows: list[dict], made: Made) -> list[dict]:
    """Every input clip's decision row, in input order (each with a ``detail``, so the file loads as
    one table)."""
    return [{**decided, "detail": decided.get("detail")} for decided in (fate(row[KEY], made) for row in rows)]
