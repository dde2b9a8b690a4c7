"""Stage 3's pure pieces: openings, frame picking, train.json entries, request building."""

from __future__ import annotations

import base64

import pytest
from caption_helpers import default_gguf
from scripted_server import ScriptedServer

from video_caption.caption.__main__ import parse_args, read_prompt
from video_caption.caption.backends import Request, Sampling, openai_messages
from video_caption.caption.backends.openai_http import HTTPStatusError, OpenAIHTTP, api_root, request_body
from video_caption.caption.frames import encode_jpeg, pick_frames
from video_caption.caption.roles import Role
from video_caption.caption.server import server_command
from video_caption.caption.settings import PROMPTS
from video_caption.caption.summarize import summary_request
from video_caption.formats.clean import clean_caption, read_openings
from video_caption.formats.train_json import final_captions, train_entries

OPENINGS = read_openings(PROMPTS / "strip_openings.txt")


def test_openings_file_ignores_comments(tmp_path):
    path = tmp_path / "openings.txt"
    path.write_text("# comment\n\nThe clip shows\n  Look:  \n")
    assert read_openings(path) == ["The clip shows", "Look:"]
    assert clean_caption("look: a horse", read_openings(path)) == "A horse"


def test_pick_frames():
    assert pick_frames("uniform", 4, 100) == [0, 33, 66, 99]
    assert pick_frames("uniform", 4, 2) == [0, 1]
    assert pick_frames("mid", 1, 100) == [50]
    assert pick_frames("mid", 2, 100) == [25, 75]
    assert pick_frames("first", 4, 100) == [0]
    assert pick_frames("last", 4, 100) == [99]
    assert pick_frames("keyframes", 2, 100, [0, 30, 60, 90, 120]) == [0, 90]
    assert pick_frames("keyframes", 8, 100, [0, 48]) == [0, 48]
    assert pick_frames("keyframes", 3, 100, []) == [50]
    assert pick_frames("uniform", 4, 0) == []
    with pytest.raises(ValueError, match="unknown frame sampling"):
        pick_frames("random", 4, 100)


def test_encode_jpeg_shrinks_to_max_side_and_keeps_aspect():
    import cv2
    import numpy as np

    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[:, :640] = (255, 0, 0)  # left half red in RGB
    data = encode_jpeg(frame, 320)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert data[:2] == b"\xff\xd8" and image.shape == (180, 320, 3)
    assert image[90, 40, 2] > 200 and image[90, 40, 0] < 50  # still red (BGR on disk)
    assert cv2.imdecode(np.frombuffer(encode_jpeg(frame[:100, :100], 320), np.uint8), 1).shape == (100, 100, 3)


def test_train_entries_keep_input_order_and_only_clips_that_passed():
    rows = [{"video_path": p} for p in ("a.mp4", "b.mp4", "c.mp4", "d.mp4")] + [{"video_path": "e.jpg",
                                                                                 "type": "image"}]
    texts = {"c.mp4": "The video shows a cat.", "a.mp4": "A dog.", "b.mp4": "   ", "x.mp4": "not an input clip",
             "e.jpg": "A cow."}
    captions, missing, dropped = final_captions(rows, texts, OPENINGS)
    assert captions == {"a.mp4": "A dog.", "c.mp4": "A cat.", "e.jpg": "A cow."} and (missing, dropped) == (1, 1)
    entries = train_entries(rows, captions, {"c.mp4", "a.mp4", "e.jpg"})
    assert entries == [{"file_path": "a.mp4", "text": "A dog.", "type": "video"},
                       {"file_path": "c.mp4", "text": "A cat.", "type": "video"},
                       {"file_path": "e.jpg", "text": "A cow.", "type": "image"}]


def test_summary_prompt_lists_frame_captions_in_order():
    request = summary_request(read_prompt(str(PROMPTS / "summary.txt")), ["A dog\nsits.", "It runs."])
    assert "Frame 1: A dog sits.\nFrame 2: It runs." in request.text and "{captions}" not in request.text
    assert request.images == ()


def test_vision_request_body_is_the_documented_openai_format():
    """vLLM and SGLang document OpenAI vision requests as a user message whose content is a list of
    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}} and {"type": "text"} parts."""
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg"
    body = request_body("Qwen/Qwen2-VL-2B-Instruct", Request("Describe.", (jpeg, jpeg)), Sampling(64, 0.0, 1.0, 7))
    assert body["model"] == "Qwen/Qwen2-VL-2B-Instruct"
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (64, 0.0, 1.0, 7)
    [message] = body["messages"]
    assert message["role"] == "user"
    images, text = message["content"][:2], message["content"][2]
    assert text == {"type": "text", "text": "Describe."}
    for part in images:
        assert set(part) == {"type", "image_url"} and part["type"] == "image_url"
        prefix, encoded = part["image_url"]["url"].split(",", 1)
        assert prefix == "data:image/jpeg;base64" and base64.b64decode(encoded) == jpeg
    assert openai_messages(Request("Hi", system="Be brief.")) == [{"role": "system", "content": "Be brief."},
                                                                  {"role": "user", "content": "Hi"}]


def test_api_root_and_server_commands_are_argument_lists():
    assert api_root("http://h:8000") == api_root("http://h:8000/v1/") == "http://h:8000/v1"
    model = "/models/my model; rm -rf ~"
    vllm = server_command("vllm", model, 8001)
    assert vllm[:3] == ["vllm", "serve", model] and vllm[-2:] == ["--port", "8001"]
    assert server_command("sglang", model, 8002)[1:4] == ["-m", "sglang.launch_server", "--model-path"]
    assert model in server_command("lmdeploy", model, 8003) and model in server_command("llamacpp", model, 8004)


def test_every_5xx_and_the_passing_4xx_are_retried_other_4xx_are_not():
    script = {"a": [507, 501, 200], "b": [429, 425, 200], "c": [404, 200]}
    with ScriptedServer(lambda body, attempt: (script[body["messages"][-1]["content"]][attempt - 1], "ok", 0.0)) \
            as server:
        results = OpenAIHTTP(server.url, "m", retries=2, backoff=0).generate(
            [Request("a"), Request("b"), Request("c")], Sampling())
    assert results[:2] == ["ok", "ok"]
    assert isinstance(results[2], HTTPStatusError) and "HTTP 404" in str(results[2])
    assert [b["messages"][-1]["content"] for b in server.bodies].count("c") == 1, "a 404 would fail again"


def test_a_served_llamacpp_without_a_model_is_the_packaged_gguf(tmp_path):
    def served(*argv):
        return Role("llm", parse_args(["--output-folder", str(tmp_path), "--llm-serve", "llamacpp", *argv]),
                    "cpu", tmp_path).served()

    assert served() == (str(default_gguf()), [])
    assert served("--llm-serve-args=--chat_format chatml --n_ctx 2048")[1] == ["--chat_format", "chatml", "--n_ctx",
                                                                               "2048"]
    assert served("--llm-model", "my.gguf") == ("my.gguf", [])
