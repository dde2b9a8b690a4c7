"""Stage 3's gates and each clip's fate there (pure functions, no I/O).

Stage 3's gates are the same ``Gate`` objects as stage 2's (video_caption/gate.py), and its
decisions the same rows: ``caption_decisions.jsonl`` holds one per clip of stage 3's input, in its
order, with ``outcome`` (``passed``: into train.json; ``rejected``: by ``step``'s ``gate``, with the
clip's ``value`` there; ``unscored``: the step has no row for it yet, its errors.jsonl row says why or
the step has not run on it), checked in the order the steps run:

  category     CATEGORY_KEEP (``category in (...)``) and CATEGORY_DROP (``category not in (...)``)
  caption      a reply that was degenerate twice (``degenerate not in (...)``, the value its reason)
  summary      the same for the LLM's reply
  clean        a caption with nothing left after cleaning (``1 <= caption_chars``)
  match        ``MATCH_MIN <= match_score``
  tags, materialize   no gate: a clip with no row is unscored
"""

from __future__ import annotations

from dataclasses import dataclass, field

from video_caption.caption.settings import REASONS
from video_caption.gate import Gate, decision
from video_caption.manifest import KEY

DEGENERATE = Gate("degenerate", values=REASONS, excluded=True)
NOT_EMPTY = Gate("caption_chars", min=1)


def category_gates(keep: list[str] | None, drop: list[str] | None) -> list[Gate]:
    return ([Gate("category", values=tuple(keep))] if keep else []) + \
        ([Gate("category", values=tuple(drop), excluded=True)] if drop else [])


@dataclass
class Made:
    """What the steps that ran made of the clips (None: the step did not run)."""

    category: dict[str, dict] | None = None  # category rows by clip
    category_gates: list[Gate] = field(default_factory=list)
    captioned: set[str] = field(default_factory=set)  # clips with a caption row
    summarized: set[str] | None = None  # clips with a summary of their current caption (None: no LLM)
    degenerate: dict[str, tuple[str, str]] = field(default_factory=dict)  # clip -> (step, reason)
    captions: dict[str, str] = field(default_factory=dict)  # the final captions, cleaned
    match: dict[str, dict] | None = None  # match rows by clip
    match_gate: Gate | None = None
    tagged: set[str] | None = None
    unmade: set[str] = field(default_factory=set)  # deferred clips materialize could not make


def fate(key: str, made: Made) -> dict:
    """One clip's decision row."""
    if made.category is not None:
        if key not in made.category:
            return decision(key, "unscored", "category")
        row = made.category[key]
        failed = next((g for g in made.category_gates if not g.passes(row)), None)
        if failed is not None:
            return decision(key, "rejected", "category", failed, row.get("category"))
    if key not in made.captioned:
        return decision(key, "unscored", "caption")
    if key in made.degenerate:
        step, reason = made.degenerate[key]
        return decision(key, "rejected", step, DEGENERATE, reason)
    if made.summarized is not None and key not in made.summarized:
        return decision(key, "unscored", "summary")
    if key not in made.captions:
        return decision(key, "rejected", "clean", NOT_EMPTY, 0)
    if made.match is not None:
        if key not in made.match:
            return decision(key, "unscored", "match")
        if not made.match_gate.passes(made.match[key]):
            return decision(key, "rejected", "match", made.match_gate, made.match[key].get("match_score"))
    if made.tagged is not None and key not in made.tagged:
        return decision(key, "unscored", "tags")
    if key in made.unmade:
        return decision(key, "unscored", "materialize")
    return decision(key, "passed")


def fates(rows: list[dict], made: Made) -> list[dict]:
    """Every input clip's decision row, in input order."""
    return [fate(row[KEY], made) for row in rows]
