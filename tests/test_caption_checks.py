"""Stage 3's pure checks: degenerate replies (on real replies of the offline models and on made-up
ones for what they never produce), cleaning rules, tags parsing, and the retry of a bad reply."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from video_caption.caption.__main__ import parse_args, read_prompt
from video_caption.caption.backends import Backend, Reply, Request, Sampling
from video_caption.caption.backends.openai_http import request_body
from video_caption.caption.checks import Rejected, check_reply
from video_caption.caption.roles import Role
from video_caption.caption.settings import PROMPTS
from video_caption.caption.summarize import instructions
from video_caption.caption.tags import parse_tags, tag_schema, tags_request
from video_caption.formats.clean import clean_caption, read_openings

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BENCH_DATA = Path(__file__).resolve().parents[1] / "bench" / "data"
OPENINGS = read_openings(PROMPTS / "strip_openings.txt")
SUMMARY = read_prompt(str(PROMPTS / "summary.txt"))


def test_real_replies_of_the_offline_models_get_the_reason_a_reader_gave_them():
    """Replies collected from Gemma 3 270M and SmolLM2-135M, labelled by reading them."""
    rows = [json.loads(line) for line in (FIXTURES / "degenerate_replies.jsonl").read_text().splitlines() if line]
    wrong = []
    for row in rows:
        problem = check_reply(row["reply"], prompt=row.get("template", ""), sources=row.get("sources") or (),
                              finish_reason=row.get("finish_reason"), language="en")
        found = problem.reason if problem else "ok"
        # A reply can be degenerate in several ways at once: the reader named the others in "also".
        if found != row["label"] and found not in row.get("also", []):
            wrong.append((row["label"], found, row["reply"][:120]))
    labels = Counter(row["label"] for row in rows)
    assert labels["ok"] >= 8 and len(labels) >= 5, labels
    assert not wrong, wrong


def test_hand_written_frame_captions_pass_every_check():
    """Natural captions of the shared videos' frames: no false alarm (each against its clip's others)."""
    rows = [json.loads(line) for line in (BENCH_DATA / "shared_frame_captions.jsonl").read_text().splitlines()
            if line]
    prompt = read_prompt(str(PROMPTS / "frame_caption.txt"))
    for row in rows:
        for caption in row["sampled_frame_caption"]:
            assert check_reply(caption, prompt=prompt, finish_reason="stop", language="en") is None, caption


CAPTIONS = ["A white rabbit sits in a green meadow under a blue sky.",
            "The rabbit stands up and looks at a yellow butterfly near a tree."]


@pytest.mark.parametrize(("reply", "finish", "reason"), [
    ("", "stop", "empty"),
    ("  ...  ", "stop", "empty"),
    ("<end_of_turn>", "stop", "empty"),
    ("I'm sorry, but I can't describe images.", "stop", "refusal"),
    ("As an AI language model, I cannot see the video.", "stop", "refusal"),
    (SUMMARY.replace("{captions}", ""), "stop", "echo"),
    (CAPTIONS[1], "stop", "echo"),
    (" ".join(CAPTIONS), "stop", "echo"),
    ("A rabbit hops. " + "and then it hops " * 6, "length", "repetition"),
    ("A rabbit sits in a meadow. The sky is blue. A rabbit sits in a meadow.", "stop", "repetition"),
    ("[/INST]" * 40, "length", "empty"),
    ("A white rabbit in a meadow watches a butterfly while the", "length", "truncated"),
    ("Un lapin blanc est assis dans une prairie verte et regarde un papillon jaune.", "stop", "language"),
    ("A white rabbit in a green meadow watches a yellow butterfly fly past a tree.", "stop", None),
    ("A white rabbit in a green meadow watches a yellow butterfly fly past a tree.", "length", None),
    ("A rabbit sits.", "length", None),
])
def test_each_kind_of_degenerate_reply(reply, finish, reason):
    problem = check_reply(reply, prompt=instructions(SUMMARY), sources=CAPTIONS, finish_reason=finish, language="en")
    assert (problem.reason if problem else None) == reason, problem


def test_a_summary_may_reuse_phrases_of_its_captions_and_any_language_passes_when_none_is_set():
    summary = "A white rabbit sits in a green meadow, then stands up to look at a yellow butterfly."
    assert check_reply(summary, prompt=instructions(SUMMARY), sources=CAPTIONS) is None
    french = "Un lapin blanc est assis dans une prairie verte et regarde un papillon jaune."
    assert check_reply(french, language=None) is None and check_reply(french, language="fr") is None


@pytest.mark.parametrize(("raw", "clean"), [
    ("The video shows a man  riding\na bike.", "A man riding a bike."),
    ("In this video, a dog runs on the beach.", "A dog runs on the beach."),
    ('  "A red car drives past."  ', "A red car drives past."),
    ("**Caption:** A bird lands on a branch.", "A bird lands on a branch."),
    ("## Summary\n1. The video shows a fox.", "A fox."),
    ("- **A dog** runs on `wet` sand.<end_of_turn>", "A dog runs on wet sand."),
    ("<p>A cat &amp; a dog</p> play (https://example.com/v.mp4) at www.x.org.", "A cat & a dog play at."),
    ("Ｔｈｅ ｆｉｓｈ swims\u00a0past ﬁve rocks.", "The fish swims past five rocks."),
    ("“A woman walks.” ", "A woman walks."),
    ("A woman walks. The video shows her smiling.", "A woman walks. The video shows her smiling."),
])
def test_cleaning_rules(raw, clean):
    assert clean_caption(raw, OPENINGS) == clean


@pytest.mark.parametrize("raw", ["", "   \n ", None, "The video shows", '""', "<br/>", "**Caption:**", "[/INST]"])
def test_cleaning_leaves_nothing_of_empty_captions(raw):
    assert clean_caption(raw, OPENINGS) is None


CAPTION = "A man in a bowler hat walks along a city street, twirling his cane."


def test_tags_keep_the_requested_keys_grounded_in_the_caption():
    reply = '{"objects": ["A man", "a man", "Bowler Hat", "brown dog"], "actions": ["walking", "throws a ball"]}'
    assert parse_tags(reply, ["objects", "actions"], CAPTION) == {"objects": ["man", "bowler hat"],
                                                                 "actions": ["walking"]}
    assert parse_tags('```json\n{"objects": [], "actions": []}\n```', ["objects", "actions"], CAPTION) == \
        {"objects": [], "actions": []}


@pytest.mark.parametrize(("reply", "message"), [
    ('{"objects": ["man"]', "not JSON"), ('["man"]', "not an object"), ('{"objects": ["man"]}', "no key actions"),
    ('{"objects": "man", "actions": []}', "objects is not a list"),
])
def test_malformed_tags_are_refused(reply, message):
    with pytest.raises(ValueError, match=message):
        parse_tags(reply, ["objects", "actions"], CAPTION)


def test_tags_requests_carry_their_schema_in_either_form():
    request = tags_request(read_prompt(str(PROMPTS / "tags.txt")), ["objects", "actions"], CAPTION)
    assert CAPTION in request.text and '"objects", "actions"' in request.text and "{" not in request.text[:30]
    schema = tag_schema(["objects", "actions"])
    assert request.schema == schema and schema["required"] == ["objects", "actions"]
    body = request_body("m", request, Sampling())
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    assert request_body("m", request, Sampling(), "json_object")["response_format"] == {"type": "json_object",
                                                                                        "schema": schema}
    assert "response_format" not in request_body("m", Request("Hi"), Sampling())


class Scripted(Backend):
    """Replies in turn from a list per request text; records the seeds asked with."""

    def __init__(self, script: dict[str, list[str]]):
        self.script, self.seeds = {k: list(v) for k, v in script.items()}, []

    def generate(self, requests, sampling):
        self.seeds.append(sampling.seed)
        return [Reply(self.script[r.text].pop(0), "stop") for r in requests]


def test_a_bad_reply_is_asked_again_once_with_another_seed(tmp_path):
    role = Role("llm", parse_args(["--output-folder", str(tmp_path), "--seed", "7"]), "cpu", tmp_path)
    backend = Scripted({"a": ["A dog runs."], "b": ["", "A cat sleeps."], "c": ["", "I'm sorry, I cannot."]})
    counts = Counter()
    replies = role.ask(backend, [Request("a"), Request("b"), Request("c")],
                       lambda i, reply: check_reply(reply), counts)
    assert replies[:2] == ["A dog runs.", "A cat sleeps."] and backend.seeds == [7, 8]
    assert isinstance(replies[2], Rejected) and replies[2].problem.reason == "refusal"
    assert counts == {"retried": 2, "recovered": 1, "refusal": 1}


def test_faithfulness_on_replies_labelled_by_reading_them():
    """Real summaries of SmolLM2 and Gemma over the shared clips' frame captions, the issue's three
    examples and hand-written faithful summaries, each labelled by reading it against the frame
    captions (tests/fixtures/summary_faithfulness.jsonl; bench/faithfulness.py prints the figures).
    The floor asserted is today's measure: docs/benchmarks.md says what is still missed."""
    import sys

    sys.path.insert(0, str(BENCH_DATA.parent))
    from faithfulness import CAPTIONS, LABELS, judged, load, scores

    from video_caption.caption.faithful import Faithfulness

    rows = load(LABELS)
    labels = Counter(row["label"] for row in rows)
    assert labels["faithful"] >= 50 and labels["unfaithful"] >= 50, labels
    results = judged(rows, {r["video_path"]: r["sampled_frame_caption"] for r in load(CAPTIONS)}, Faithfulness())
    found = scores(results)
    assert found["precision"] >= 0.9 and found["kept_out"] >= 0.9 and found["faithful_kept"] >= 0.95, found
    assert found["alone_precision"] >= 0.9 and found["alone_recall"] >= 0.9, found
    examples = [found for row, found, _ in results if row["model"] == "issue-35 example"]
    assert examples == ["unfaithful"] * 3


@pytest.mark.parametrize(("summary", "detail"), [
    ("A brown dog sits on the grass, then runs after a red ball in the park.", None),
    ("Brown dogs sitting on grass; the dog chases a red ball.", None),  # inflections
    ("The scene is a classic example of storytelling, creating an immersive experience.", "missing: dog"),
    ("A red sports car drives along a wet street at night.", "invented: car, drives"),  # red is like brown
    ("A brown dog sits with a cat, a horse and a farmer beside a barn and a tractor.", "invented: horse, farmer"),
    ('In the video "The Water of Life", a brown dog sits on the grass.', "invented: quoted 'The Water of Life'"),
    ("A brown dog sits on the grass, a classic example of an immersive experience.", "filler: classic example"),
])
def test_a_summary_is_true_to_its_frame_captions(summary, detail):
    from video_caption.caption.faithful import unfaithful

    frames = ["A brown dog sits on green grass in a sunny park.", "The dog stands up and runs toward a red ball."]
    found = unfaithful(summary, frames)
    assert found == detail if detail is None else found.startswith(detail), found



@pytest.mark.parametrize(("summary", "detail"), [
    ("2 men in gray coats stand by a red car on a quiet street and talk; one opens its door.", None),  # 2 is two
    ("Two people in grey coats stand beside a red car on a quiet street.", None),  # men are people
    ("For ten seconds, two men in grey coats talk beside a red car on a quiet street.", None),  # a duration
    ("Three men in grey coats stand beside a red car on a quiet street.", "invented: 'three' (the frame captions "
                                                                          "say: two)"),
    ("Two men and a third man stand beside a red car on a quiet street.", "invented: 'third'"),
    ("Two men in grey coats stand beside a blue car on a quiet street.", "invented: 'blue' (the frame captions say: "
                                                                         "grey, red)"),
    ("Two women in grey coats stand beside a red car on a quiet street.", "invented: 'women' (the frame captions "
                                                                          "say: men)"),
])
def test_a_summary_says_the_counts_colours_and_people_of_its_frame_captions(summary, detail):
    """Words the embedding finds alike ("three" and "two", "blue" and "red", "women" and "men") are matched
    literally."""
    from video_caption.caption.faithful import facts, unfaithful

    frames = ["Two men in grey coats stand beside a red car on a quiet street.",
              "The men talk, and one of them opens the car's door."]
    found = unfaithful(summary, frames)
    assert found == detail if detail is None else found.startswith(detail), found
    assert facts("Twenty-five red cars, 1,024 lamps, a second girl; one dog for 3 minutes") == [
        ("count", "25", "twenty-five"), ("colour", "red", "red"), ("count", "1024", "1,024"),
        ("count", "2", "second"), ("person", "woman", "girl")]

def test_chatty_preambles_are_cleaned_and_captions_kept():
    assert clean_caption("Sure! Here is the caption: A cat sleeps.", OPENINGS) == "A cat sleeps."
    assert clean_caption('Certainly! Here\'s a short summary of the clip: "A cat sleeps."', OPENINGS) == "A cat sleeps."
    assert clean_caption("Here's a description of the video: a man walks.", OPENINGS) == "A man walks."
    kept = "Here is a woman in a kitchen: she cooks."  # no word about a caption before the colon
    assert clean_caption(kept, OPENINGS) == kept
    assert clean_caption("A dog runs: it is fast.", OPENINGS) == "A dog runs: it is fast."
