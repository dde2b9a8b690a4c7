"""Shared pieces of the stage-3 tests: the default GGUF (SmolLM2) and hand-written frame captions (the
scripted OpenAI-style server is support/scripted_server.py, shared with bench/)."""

from __future__ import annotations

from pathlib import Path


def default_gguf() -> Path:
    from video_caption.caption.backends.llamacpp import default_gguf as packaged

    return packaged()


def frame_caption_rows(keys: list[str]) -> list[dict]:
    """frame_caption.jsonl rows as the caption step writes them, with human-written captions."""
    return [{"video_path": key, "model": "hand-written", "prompt": "Describe this frame.", "sampled_frame_idx": [0, 9],
             "sampled_frame_caption": [f"A brown dog number {i} sits on green grass in a sunny park.",
                                       f"The dog number {i} stands up and runs toward a red ball."]}
            for i, key in enumerate(keys)]
