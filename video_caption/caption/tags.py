"""The tags step: the LLM lists named keys (``objects``, ``actions`` ...) of each final caption, as
Open-Sora's ``caption_llama3 --key objects`` does, writing tags.jsonl.

The reply must be one JSON object with exactly the requested keys, each a list of short strings.  The
schema goes with the request, so backends that can constrain decoding to it do (llama.cpp grammars,
vLLM/SGLang structured output); any other reply is parsed and checked here.  A malformed reply is asked
again once with another seed, then the clip is an errors.jsonl row.  Each row also says ``no_object``:
true when the caption yields no grounded object (its ``objects`` list, else its first TAG_KEYS list, is
empty), as a caption about no picture does; counted in summary.json and the report, not gated."""

from __future__ import annotations

import json
import re
from collections import Counter

from video_caption.caption.backends import Request
from video_caption.caption.checks import Problem, Rejected, words
from video_caption.caption.roles import Role
from video_caption.loader import Item
from video_caption.runner import Step, digest
from video_caption.settings import Setting, names
from video_caption.steps import Field, StepSpec

OUTPUT = "tags.jsonl"

# What each usual key asks for, and its answer for the prompt's example caption; any other key is
# asked for by its name.
KEY_HINTS = {"objects": "the people, animals and things seen (nouns)",
             "actions": "what happens or what they do (verbs or verb phrases)",
             "setting": "where it takes place"}
EXAMPLE = {"objects": ["girl", "red coat", "ball", "brown dog"], "actions": ["throws a ball"], "setting": ["beach"]}
MAX_ITEMS, MAX_CHARS = 8, 40  # bounds of the schema, so a looping model cannot run to the token limit


class MalformedTags(ValueError):
    """A reply that is not the requested JSON, twice: an errors.jsonl row."""


def tag_schema(keys: list[str]) -> dict:
    item = {"type": "string", "minLength": 1, "maxLength": MAX_CHARS}
    return {"type": "object", "properties": {k: {"type": "array", "items": item, "maxItems": MAX_ITEMS}
                                             for k in keys},
            "required": list(keys), "additionalProperties": False}


def tags_request(template: str, keys: list[str], caption: str) -> Request:
    wanted = "\n".join(f"- {k}: {KEY_HINTS.get(k, k)}" for k in keys)
    example = json.dumps({k: EXAMPLE.get(k, []) for k in keys})
    text = (template.replace("{keys}", wanted).replace("{names}", ", ".join(json.dumps(k) for k in keys))
            .replace("{example}", example).replace("{caption}", " ".join(caption.split())))
    return Request(text, schema=tag_schema(keys))


def _stem(word: str) -> str:
    return word[:4] if len(word) > 4 else word


def grounded(tag: str, caption: str) -> str | None:
    """The tag without a leading article, when each of its words is in the caption (up to its ending:
    "walking" for "walks"); None for a tag the caption does not hold, such as one copied from the
    prompt's example (small models do)."""
    tag = re.sub(r"^(?:a|an|the)\s+", "", " ".join(tag.lower().split()))
    said = {_stem(w) for w in words(caption)}
    tag_words = words(tag)
    return tag if tag_words and all(_stem(w) in said for w in tag_words) else None


def parse_tags(text: str, keys: list[str], caption: str) -> dict[str, list[str]]:
    """The reply's lists, lowercased, without repeats and without tags the caption does not hold
    (``grounded``); ValueError when it is not one JSON object holding every key as a list of strings
    (a fenced ```json block is accepted)."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        # strict=False: llama-cpp-python's grammar for JSON strings lets raw newlines through.
        value = json.loads(body, strict=False)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"a JSON {type(value).__name__}, not an object")
    missing = [k for k in keys if k not in value]
    if missing:
        raise ValueError(f"no key {', '.join(missing)}")
    tags = {}
    for key in keys:
        items = value[key]
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"{key} is not a list of strings")
        tags[key] = list(dict.fromkeys(filter(None, (grounded(i, caption) for i in items))))
    return tags


class TagsStep(Step):
    """Its input rows carry the clip's final caption as ``caption``; a digest of it is recorded with
    the settings, so a changed caption is tagged again."""

    stage = "caption"
    name = "tags"
    output = OUTPUT

    def __init__(self, role: Role, template: str, keys: list[str]):
        self.role, self.template, self.keys = role, template, keys
        self.objects = "objects" if "objects" in keys else keys[0]  # the list a clip with no object has empty
        self.backend = None
        self.counts: Counter = Counter()

    def settings(self) -> dict:
        s = self.role.sampling
        return {"model": self.role.model, "prompt": digest(self.template), "keys": self.keys,
                "max_tokens": s.max_tokens, "temperature": s.temperature, "top_p": s.top_p, "seed": s.seed,
                "repeat_penalty": s.repeat_penalty}

    def input_digest(self, row: dict) -> str:
        return digest(row["caption"])

    def setup(self, device: str) -> None:
        self.backend = self.role.open()

    def close(self) -> None:
        self.role.close()

    def process(self, items: list[Item]) -> list[dict | Exception]:
        captions = [item.row["caption"] for item in items]
        requests = [tags_request(self.template, self.keys, caption) for caption in captions]

        def judge(index: int, reply) -> Problem | None:
            try:
                parse_tags(reply, self.keys, captions[index])
            except ValueError as exc:
                return Problem("malformed", str(exc))
            return None

        rows: list[dict | Exception] = []
        for caption, result in zip(captions, self.role.ask(self.backend, requests, judge, self.counts), strict=True):
            if isinstance(result, Rejected):
                rows.append(MalformedTags(f"{result.problem.detail}, twice; last reply: {result.text[:200]!r}"))
            elif isinstance(result, Exception):
                rows.append(result)
            else:
                tags = parse_tags(result, self.keys, caption)
                rows.append({"tags_model": self.backend.model, **tags, "no_object": not tags[self.objects]})
        return rows


# Its lists are named by TAG_KEYS (recorded in each row's tags_settings).
STEP = StepSpec(
    "tags", 3,
    fields=(Field("no_object", "true when the caption yields no grounded object (its objects list, else its first "
                  "TAG_KEYS list, is empty): often a caption about no picture; counted, not gated", label=True,
                  type="bool"),),
    settings=(Setting("TAG_KEYS", names(), ["objects", "actions"], "the lists the LLM extracts from each final "
                      "caption", (3,), "tags"),),
    outputs=(OUTPUT,),
    more_fields=True,
)
