"""Model backends of stage 3: one small interface for the VLM and the LLM alike.

A backend turns a batch of chat requests (a prompt, optional JPEG images) into texts.  The HTTP
backend keeps many requests in flight against any OpenAI-compatible server (vLLM, SGLang, LMDeploy,
llama.cpp); the in-process ones (vLLM's offline engine, transformers, llama.cpp) batch.  Engines are
imported only when chosen, so none of them is needed to use another.
"""

from __future__ import annotations

from video_caption.caption.backends.base import (
    Backend,
    BackendError,
    Reply,
    Request,
    Sampling,
    openai_messages,
)
from video_caption.caption.settings import BACKENDS

# The interface, for the stage's modules; each backend imports it from base.py, so that this package
# imports a backend (only when chosen) and no backend imports this package.
__all__ = ["Backend", "BackendError", "Reply", "Request", "Sampling", "make_backend", "openai_messages"]


def make_backend(kind: str, model: str | None = None, base_url: str | None = None, *, device: str | None = None,
                 concurrency: int = 16, timeout: float = 120.0, retries: int = 3, api_key: str | None = None,
                 batch_size: int = 8) -> Backend:
    if kind == "openai":
        from video_caption.caption.backends.openai_http import OpenAIHTTP

        if not base_url:
            raise BackendError("the openai backend needs a server URL (--*-base-url / *_BASE_URL), "
                               "or an engine to start (--*-serve / *_SERVE)")
        return OpenAIHTTP(base_url, model, api_key=api_key, concurrency=concurrency, timeout=timeout, retries=retries)
    if kind == "vllm":
        from video_caption.caption.backends.vllm_engine import VLLMEngine

        if not model:
            raise BackendError("the vllm backend needs a model (a local path or a Hugging Face repo id)")
        return VLLMEngine(model)
    if kind == "transformers":
        from video_caption.caption.backends.transformers_local import TransformersLocal

        return TransformersLocal(model, device=device, batch_size=batch_size)
    if kind == "llamacpp":
        from video_caption.caption.backends.llamacpp import LlamaCpp

        return LlamaCpp(model)
    raise BackendError(f"unknown backend {kind!r} (known: {', '.join(BACKENDS)})")
