"""Where model weights come from, their digests, and the one error for weights that are not on this machine."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from video_caption.manifest import write_atomic

HUB_CHECK_SECONDS = 3.0


class ModelMissing(RuntimeError):
    """A weights file that is not on this machine; the message says where it must go and how to get it."""


def hf_cache_dir() -> str:
    """The Hugging Face hub cache this process reads (what ``huggingface-cli download`` fills)."""
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub")


@functools.cache
def hub_reachable() -> bool:
    """Whether the Hugging Face hub answers one request within HUB_CHECK_SECONDS, checked once per process.

    Without it, each download attempt on an offline machine costs half a minute of huggingface_hub's
    retries and warnings.  ``HF_HUB_OFFLINE=1`` skips the check."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if constants.HF_HUB_OFFLINE:
        return False
    reached = []

    def ask():
        # huggingface_hub's own client, so a proxy (HTTPS_PROXY) or CA bundle that downloads use counts.
        try:
            reached.append(get_session().head(constants.ENDPOINT, timeout=HUB_CHECK_SECONDS).status_code < 500)
        except Exception:  # noqa: BLE001 - no answer, whatever the reason, is unreachable
            pass

    # In a thread, because the name lookup before the connect has no timeout of its own.
    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(HUB_CHECK_SECONDS)
    reachable = any(reached)  # read once: an answer that lands after the timeout does not count
    if not reachable:
        logging.getLogger("video_caption").warning(
            "the Hugging Face hub (%s) cannot be reached: using models from the local cache %s only "
            "(set HF_HUB_OFFLINE=1 to skip this check)", constants.ENDPOINT, hf_cache_dir())
    return reachable


def from_hub(repo: str, filename: str | None = None) -> str | None:
    """A file of a Hugging Face repo (or, without ``filename``, the repo's snapshot folder) from the
    cache, downloaded into the cache first when it is not there and the hub is reachable
    (``hub_reachable``).  None when it cannot be had."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError

    for cached_only in (True, False):
        if not cached_only and not hub_reachable():
            break
        try:
            if filename:
                return hf_hub_download(repo, filename, local_files_only=cached_only)
            return snapshot_download(repo, local_files_only=cached_only)
        except (OSError, ValueError, EntryNotFoundError):  # not cached; offline, unknown repo or file
            continue
    return None


def cache_dir() -> Path:
    """Where the project keeps what it derives from weights (exported models, digests)."""
    return Path(os.environ.get("VIDEO_CAPTION_CACHE") or Path.home() / ".cache" / "video_caption")


def weights_digest(path: str | os.PathLike) -> str:
    """The first 16 hex digits of a weights file's sha256, recorded with every result the file made.

    Hashing a 1.7 GB CLIP takes seconds, so digests are cached per path, size and modification time
    (a cache that cannot be written only costs the hashing again)."""
    path = Path(path).resolve()
    stat = path.stat()
    return _digest(path, stat.st_size, stat.st_mtime_ns)


@functools.cache
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    entry = f"{path}|{size}|{mtime_ns}"
    cache = cache_dir() / "weights_digests.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if entry not in known:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        known[entry] = digest.hexdigest()[:16]
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache, json.dumps(known, indent=0).encode())
        except OSError:
            pass
    return known[entry]
