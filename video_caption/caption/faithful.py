"""Whether a summary is about its clip: checked against the clip's own frame captions (pure functions).

A fluent reply can pass every degenerate-reply check and still describe no picture ("a classic
example of storytelling") or another one.  Three measures, on words stemmed (Snowball's English
stemmer: "pancakes" is "pancake", "flipping" is "flip") with a few simple synonyms made one
(``SYNONYMS``), stop words and the words every caption uses about the picture itself (camera, light,
frame) left out:

- ``subjects``: the words most of the frame captions share (at least half of them, ranked by how many
  and how early), the clip's subjects.  The summary must name the first of them (its main subject)
  or, failing that, ``MIN_SUBJECTS`` of the first three;
- ``invented``: the share of the summary's words that no frame caption has, at most ``max_invented``,
  and no quoted text (a title, words on screen) that none has: small models name their clip ("In the
  video 'The Black and White Sunset'");
- ``filler``: phrases that describe no picture ("a classic example of", "an immersive experience",
  "the art and science of storytelling"; prompts/faithful_filler.txt): more than ``max_filler`` fail
  a summary.

``unfaithful`` gives the first problem found, with a detail naming what was missing or invented.
The thresholds were set on real replies of the offline models labelled by reading them
(tests/fixtures/summary_faithfulness.jsonl; precision and recall in docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from video_caption.caption.settings import PROMPTS

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_QUOTED = re.compile(r'"([^"]{3,100})"|“([^”]{3,100})”|(?<!\w)[\'‘]([^\'‘’]{3,100})[\'’](?!\w)')
SUBJECTS = 3  # the summary names one of the captions' first three subjects


@dataclass(frozen=True)
class Faithfulness:
    max_invented: float = 0.35  # share of the summary's words no frame caption has
    max_filler: int = 1  # filler phrases allowed in a summary that names its subjects


DEFAULT = Faithfulness()


def _lines(name: str) -> list[str]:
    text = (PROMPTS / name).read_text(encoding="utf-8")
    return [line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#")]


@functools.cache
def _stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.cache
def _vocabulary() -> tuple[frozenset[str], dict[str, str], tuple[str, ...]]:
    """(words left out, synonym -> the word it stands for, filler phrases), from prompts/."""
    ignored = frozenset(_stem(w) for line in _lines("faithful_ignored.txt") for w in line.split())
    synonyms = {}
    for line in _lines("faithful_synonyms.txt"):
        first, *others = [_stem(w) for w in line.split(",")]
        synonyms.update({other: first for other in others})
    return ignored, synonyms, tuple(_lines("faithful_filler.txt"))


def _stem(word: str) -> str:
    return _stemmer().stemWord(word.strip().lower().removesuffix("'s"))


def terms(text: str) -> list[tuple[str, str]]:
    """The text's content words, in order: (the word stemmed and made one with its synonyms, the word)."""
    ignored, synonyms, _ = _vocabulary()
    found = []
    for word in _WORD.findall(text.lower()):
        stem = _stem(word)
        if len(stem) > 1 and stem not in ignored:
            found.append((synonyms.get(stem, stem), word))
    return found


def subjects(captions: Sequence[str]) -> list[str]:
    """The words at least half of the captions share, those in more captions first, then those said
    earlier (a caption names its subject first)."""
    if not captions:
        return []
    need = max(1, -(-len(captions) // 2))
    seen: dict[str, list[float]] = {}
    for caption in captions:
        words = [key for key, _ in terms(caption)]
        for position, word in enumerate(dict.fromkeys(words)):
            seen.setdefault(word, []).append(position / max(1, len(words)))
    shared = [w for w, places in seen.items() if len(places) >= need]
    return sorted(shared, key=lambda w: (-len(seen[w]), sum(seen[w]) / len(seen[w])))


def filler(text: str) -> list[str]:
    lowered = " ".join(text.lower().split())
    return [phrase for phrase in _vocabulary()[2] if phrase in lowered]


def unfaithful(summary: str, captions: Sequence[str], settings: Faithfulness = DEFAULT) -> str | None:
    """What makes ``summary`` untrue to the clip its ``captions`` describe, naming the words missing or
    invented (None: nothing)."""
    said = terms(summary)
    if not said or not captions:
        return None
    spoken = {key for key, _ in said}
    words = dict(reversed([pair for caption in captions for pair in terms(caption)]))  # key -> its first word
    main = subjects(captions)[:SUBJECTS]
    fillers = filler(summary)
    if main and not spoken & set(main):
        detail = f"missing: {', '.join(words[key] for key in main if key not in spoken)}"
        return detail + (f"; filler: {'; '.join(fillers)}" if fillers else "")
    if len(fillers) > settings.max_filler:
        return f"filler: {'; '.join(fillers)}"
    for quote in (next(filter(None, m.groups())) for m in _QUOTED.finditer(summary)):
        inside = terms(quote)
        if inside and sum(key not in words for key, _ in inside) * 2 > len(inside):
            return f"invented: quoted {quote!r}, in no frame caption"
    invented = [word for key, word in said if key not in words]
    if len(invented) / len(said) > settings.max_invented:
        return (f"invented: {', '.join(dict.fromkeys(invented))} ({len(invented) / len(said):.0%} of its words in "
                "no frame caption)")
    return None
