"""Where model weights come from, and the one error for weights that are not on this machine."""

from __future__ import annotations

import os


class ModelMissing(RuntimeError):
    """A weights file that is not on this machine; the message says where it must go and how to get it."""


def hf_cache_dir() -> str:
    """The Hugging Face hub cache this process reads (what ``huggingface-cli download`` fills)."""
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")
