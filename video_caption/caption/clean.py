"""Caption cleaning before train.json: pure functions, no I/O."""

from __future__ import annotations

import re

REFUSALS = ("i'm sorry", "i am sorry", "i cannot", "i can't", "i can not", "as an ai", "i'm unable", "i am unable",
            "sorry, i", "unfortunately, i")
_SPACE = re.compile(r"\s+")
_MARKUP = re.compile(r"^(?:\*\*|__)?(?:caption|description|summary)\s*:\s*(?:\*\*|__)?\s*", re.IGNORECASE)


def clean_caption(text: str | None, openings: list[str]) -> str | None:
    """The caption with whitespace collapsed, wrapping quotes and "Caption:" labels removed and a
    boilerplate opening ("The video shows", "In this video," ...) cut; None when nothing is left or
    the model refused."""
    if not text:
        return None
    text = _SPACE.sub(" ", text).strip()
    text = _MARKUP.sub("", text).strip().strip('"').strip()
    if not text or text.lower().startswith(REFUSALS):
        return None
    lowered = text.lower()
    for opening in sorted(openings, key=len, reverse=True):
        if opening and lowered.startswith(opening.lower()):
            text = text[len(opening):].lstrip(" ,:;-")
            break
    text = text.strip()
    if not text:
        return None
    return text[0].upper() + text[1:]


def read_openings(path) -> list[str]:
    """One opening per line; blank lines and lines starting with # are ignored."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
