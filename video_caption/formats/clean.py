"""Caption cleaning before train.json (pure functions, no I/O), as Open-Sora's ``--clean-caption``,
``--refine-llm-caption`` and ``--remove-empty-caption`` do: what a model or a web source wraps
around a caption is cut, the caption itself is kept word for word.

In order: unicode normalised (NFKC: full-width letters, ligatures, odd spaces), HTML entities decoded
and tags removed, URLs removed, special tokens of chat formats removed, Markdown emphasis, headings,
bullets, numbering and label lines ("## Summary") removed, whitespace collapsed, a chatty preamble
ending in a colon ("Sure! Here is the caption:", "Here's a description of the video:") cut, a
"Caption:" label and wrapping quotes removed, a boilerplate opening ("The video shows", from the openings file) cut,
the first letter capitalised.
Nothing left means None: the clip gets no caption.
"""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"</?[a-zA-Z][^<>]*>")
_URL = re.compile(r"\b(?:https?://|ftp://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]']", re.IGNORECASE)
_EMPTY_BRACKETS = re.compile(r"\(\s*\)|\[\s*\]")
_SPACE_BEFORE = re.compile(r"\s+([.,;:!?])")
_SPECIAL = re.compile(r"<\|[^|<>]*\|>|<(?:start|end)_of_turn>|</?s>|\[/?INST\]|<<SYS>>|<</SYS>>")
_LABEL_LINE = re.compile(r"^\s*(?:#{1,6}\s*)?(?:\*\*|__)?(?:final |video )?(?:caption|description|summary)\s*:?"
                         r"\s*(?:\*\*|__)?\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•·▪‣◦]|\d{1,2}[.)])\s+", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(?=\S)(.+?)(?<=\S)\1")
_SPACE = re.compile(r"\s+")
_LABEL = re.compile(r"^(?:\*\*|__)?(?:final |video )?(?:caption|description|summary)\s*:\s*(?:\*\*|__)?\s*",
                    re.IGNORECASE)
# A chatty opening, up to the colon before the caption proper: it starts as an assistant's reply
# does and names what follows ("Certainly! Here's a short summary of the clip:").
_PREAMBLE = re.compile(r"^(?:sure|certainly|of course|okay|ok|absolutely|alright|great|here(?:'s|’s| is| are)|"
                       r"below is|the following is)\b[^:]{0,100}?\b(?:caption|description|summary|rewrite|"
                       r"rewritten|version|video|clip|scene|frames?)\b[^:]{0,30}:\s*", re.IGNORECASE)
_QUOTES = "\"'“”‘’«»"


def strip_markup(text: str) -> str:
    """Unicode normalised; HTML, URLs, special tokens and Markdown removed; lines kept."""
    text = unicodedata.normalize("NFKC", text)
    text = _TAG.sub(" ", html.unescape(text))
    text = _URL.sub(" ", text)
    text = _SPECIAL.sub(" ", text)
    text = _LABEL_LINE.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    return _EMPHASIS.sub(r"\2", text)


def cut_opening(text: str, openings: list[str]) -> str:
    """``text`` without the longest boilerplate opening it starts with (case-insensitive)."""
    lowered = text.lower()
    for opening in sorted(openings, key=len, reverse=True):
        if opening and lowered.startswith(opening.lower()):
            return text[len(opening):].lstrip(" ,:;-")
    return text


def unquote(text: str) -> str:
    """``text`` without quotes wrapped around the whole of it."""
    while len(text) > 1 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return "" if text in _QUOTES else text


def clean_caption(text: str | None, openings: list[str]) -> str | None:
    """The caption as train.json holds it, or None when nothing is left."""
    if not text:
        return None
    text = _SPACE.sub(" ", _EMPTY_BRACKETS.sub(" ", strip_markup(text))).strip()
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = unquote(_LABEL.sub("", _PREAMBLE.sub("", unquote(text))).strip())
    text = unquote(cut_opening(text, openings).strip())
    if not any(ch.isalnum() for ch in text):
        return None
    return text[0].upper() + text[1:]


def read_openings(path) -> list[str]:
    """One opening per line; blank lines and lines starting with # are ignored."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip() and not line.lstrip().startswith("#")]
