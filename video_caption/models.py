"""Where model weights come from, and the one error for weights that are not on this machine."""

from __future__ import annotations

import os


class ModelMissing(RuntimeError):
    """A weights file that is not on this machine; the message says where it must go and how to get it."""


def hf_cache_dir() -> str:
    """The Hugging Face hub cache this process reads (what ``huggingface-cli download`` fills)."""
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")


def from_hub(repo: str, filename: str | None = None) -> str | None:
    """A file of a Hugging Face repo (or, without ``filename``, the repo's snapshot folder) from the
    cache, downloaded into the cache first when it is not there and the machine is online
    (``HF_HUB_OFFLINE`` unset).  None when it cannot be had."""
    from huggingface_hub import constants, hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    for cached_only in (True, False):
        if not cached_only and constants.HF_HUB_OFFLINE:
            break
        try:
            if filename:
                return hf_hub_download(repo, filename, local_files_only=cached_only)
            return snapshot_download(repo, local_files_only=cached_only)
        except (OSError, ValueError, EntryNotFoundError):  # not cached; offline, unknown repo or file
            continue
    return None
