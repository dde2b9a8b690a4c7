"""Degenerate model output: replies that look like text but are not a caption (pure functions).

Small and misconfigured models fail in recognisable ways; each has a reason name, recorded with the
reply and never reaching train.json:

- ``empty``: nothing but whitespace, punctuation or markup (``[/INST]``, ``<end_of_turn>``, ``[image: 1]``);
- ``refusal``: "I'm sorry, I cannot ..." and the like;
- ``echo``: the prompt's instructions given back (half the reply's word 4-grams are the
  instruction's, or any 5 words in a row of them), the prompt's frame list given back ("Frame 1 ...
  Frame 2"), one source text (a frame caption) given back (80 % of the reply's 4-grams from it), or
  two sources or more copied whole (each 80 % inside the reply);
- ``repetition``: a phrase of 1-8 words (not only numbers) said 3 times back to back, a run of 10
  words said twice, a sentence of 5 words or more said twice, fewer than 60 % distinct word 4-grams
  in 20 words or more, or (for loops without spaces) text of 200 characters or more that zlib packs
  below 25 % of its size.  Natural captions stay far from each bound: the hand-written frame captions
  of the shared videos pass every check;
- ``language``: with a language set, langdetect names another with probability 0.9 or more, on
  replies of 8 words or more (langdetect takes "A dog runs after a ball." for Danish);
- ``truncated``: the model stopped at the token limit (``finish_reason`` "length") mid-sentence;
- ``unfaithful``: a summary not about the clip its frame captions (or the caption it rewrites)
  describe: its main subjects missing, much of it in no caption, or filler that describes no
  picture (video_caption/caption/faithful.py).

They are tried in that order, and the first found is the reason.

The thresholds were tested on 63 real replies of the offline models, labelled by reading them
(tests/fixtures/degenerate_replies.jsonl), and on the hand-written frame captions of bench/data.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from video_caption.caption.faithful import DEFAULT, Faithfulness, unfaithful
from video_caption.caption.settings import REASONS

REFUSALS = ("i'm sorry", "i am sorry", "i cannot", "i can't", "i can not", "as an ai", "i'm unable", "i am unable",
            "sorry, i", "unfortunately, i", "i apologize", "i won't be able")

ECHO_PROMPT_SHARE = 0.5
ECHO_PHRASES, ECHO_PHRASE_WORDS = 1, 5
ECHO_SOURCE_SHARE = 0.8
REPEATED_RUN_WORDS = 10
LOOP_TIMES, LOOP_MAX_WORDS = 3, 8
SENTENCE_MIN_WORDS = 5
DISTINCT_MIN, DISTINCT_MIN_WORDS = 0.6, 20
PACKED_MIN, PACKED_MIN_CHARS = 0.25, 200
LANGUAGE_MIN_PROBABILITY, LANGUAGE_MIN_WORDS = 0.9, 8

_MARKUP = re.compile(r"<[^<>]*>|\[[^\[\]]*\]")  # <end_of_turn>, <|im_end|>, [/INST], <em>, [image: 1]
_FRAME_MARK = re.compile(r"\bframe\s+(\d+)\b", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ENDS = (".", "!", "?", '"', "'", "”", "’", ")", "]", "}", "…")


@dataclass(frozen=True)
class Problem:
    reason: str  # one of REASONS
    detail: str

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"

    def record(self) -> dict:
        return {"reason": self.reason, "detail": self.detail}


@dataclass(frozen=True)
class Rejected:
    """A reply kept for the record but not used: its text and its problem."""

    text: str
    problem: Problem

    def record(self) -> dict:
        return {**self.problem.record(), "text": self.text}


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int = 4) -> list[tuple[str, ...]]:
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def share_inside(text: str, other: str) -> float:
    """The share of ``text``'s word 4-grams that ``other`` holds too (0 when text has none)."""
    mine = ngrams(words(text))
    if not mine:
        return 0.0
    theirs = set(ngrams(words(other)))
    return sum(g in theirs for g in mine) / len(mine)


def echo(text: str, prompt: str, sources: Sequence[str]) -> str | None:
    if prompt and share_inside(text, prompt) >= ECHO_PROMPT_SHARE:
        return f"{share_inside(text, prompt):.0%} of it is the prompt's instructions"
    shared = set(ngrams(words(text), ECHO_PHRASE_WORDS)) & set(ngrams(words(prompt), ECHO_PHRASE_WORDS))
    if len(shared) >= ECHO_PHRASES:
        return f"{len(shared)} phrases of the prompt's instructions, e.g. {' '.join(sorted(shared)[0])!r}"
    if len(set(_FRAME_MARK.findall(text))) >= 2:
        return "it lists frames as the prompt does (Frame 1, Frame 2 ...)"
    for i, source in enumerate(sources, start=1):
        if len(words(text)) >= 4 and share_inside(text, source) >= ECHO_SOURCE_SHARE:
            return f"{share_inside(text, source):.0%} of it is source {i} of {len(sources)}"
    copied = [i for i, source in enumerate(sources, start=1) if share_inside(source, text) >= ECHO_SOURCE_SHARE]
    if len(copied) >= 2:
        return f"sources {', '.join(map(str, copied))} copied whole"
    return None


def repetition(text: str) -> str | None:
    tokens = words(text)
    for n in range(1, LOOP_MAX_WORDS + 1):
        for start in range(len(tokens) - n * LOOP_TIMES + 1):
            phrase = tokens[start:start + n]
            if not any(w.isalpha() for w in phrase):  # a timecode's "00 00 00" is no loop
                continue
            if all(tokens[start + k * n:start + (k + 1) * n] == phrase for k in range(1, LOOP_TIMES)):
                return f"{' '.join(phrase)!r} {LOOP_TIMES} times in a row"
    seen = set()
    for sentence in _SENTENCE.split(text):
        key = tuple(words(sentence))
        if len(key) >= SENTENCE_MIN_WORDS:
            if key in seen:
                return f"sentence said twice: {sentence[:80]!r}"
            seen.add(key)
    runs = ngrams(tokens, REPEATED_RUN_WORDS)
    twice = next((run for run in runs if len(tokens) >= REPEATED_RUN_WORDS and runs.count(run) > 1), None)
    if twice:
        return f"{' '.join(twice)!r} said twice"
    grams = ngrams(tokens)
    if len(tokens) >= DISTINCT_MIN_WORDS and len(set(grams)) / len(grams) < DISTINCT_MIN:
        return f"only {len(set(grams)) / len(grams):.0%} of its word 4-grams are distinct"
    data = text.encode()
    if len(data) >= PACKED_MIN_CHARS and len(zlib.compress(data, 9)) / len(data) < PACKED_MIN:
        return f"packs to {len(zlib.compress(data, 9)) / len(data):.0%} of its size"
    return None


def language_of(text: str) -> tuple[str, float]:
    """(language code, probability) by langdetect, made deterministic."""
    from langdetect import DetectorFactory, detect_langs

    DetectorFactory.seed = 0
    best = detect_langs(text)[0]
    return best.lang, best.prob


def same_language(found: str, wanted: str) -> bool:
    return found.split("-")[0] == wanted.lower().split("-")[0]


def check_reply(text: str, *, prompt: str = "", sources: Sequence[str] = (), finish_reason: str | None = None,
                language: str | None = None, only: Collection[str] = REASONS, describes: Sequence[str] = (),
                faithfulness: Faithfulness = DEFAULT) -> Problem | None:
    """The first problem of a model reply, or None for a usable one.  ``prompt``: the instruction part
    of the request (not the inputs it quotes); ``sources``: texts the reply is made from (frame
    captions), which it may draw on but not give back; ``language``: an ISO 639-1 code, or None;
    ``only``: the reasons looked for; ``describes``: the texts whose picture it must be about (a
    summary's frame captions, a rewrite's caption; none: not checked)."""
    stripped = text.strip() if text else ""
    if not words(_MARKUP.sub(" ", stripped)):
        if "empty" in only:
            return Problem("empty", f"no words: {stripped[:40]!r}" if stripped else "no text")
        return None
    lowered = stripped.lower()
    if "refusal" in only and (lowered.lstrip("\"'*_ ").startswith(REFUSALS) or "as an ai language model" in lowered):
        return Problem("refusal", stripped[:80])
    found = echo(stripped, prompt, sources) if "echo" in only else None
    if found:
        return Problem("echo", found)
    found = repetition(stripped) if "repetition" in only else None
    if found:
        return Problem("repetition", found)
    if language and "language" in only and len(words(stripped)) >= LANGUAGE_MIN_WORDS:
        found_language, probability = language_of(stripped)
        if not same_language(found_language, language) and probability >= LANGUAGE_MIN_PROBABILITY:
            return Problem("language", f"{found_language} ({probability:.2f}), not {language}")
    if finish_reason == "length" and not stripped.endswith(_ENDS) and "truncated" in only:
        return Problem("truncated", f"stopped at the token limit: ...{stripped[-40:]!r}")
    found = unfaithful(stripped, describes, faithfulness) if describes and "unfaithful" in only else None
    if found:
        return Problem("unfaithful", found)
    return None
