"""The two model roles of stage 3, the VLM and the LLM: each one's backend, checked before any work
and opened only for the step that uses it (one model in memory at a time)."""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from video_caption.caption.backends import Backend, BackendError, Reply, Request, Sampling, make_backend
from video_caption.caption.backends.llamacpp import default_gguf
from video_caption.caption.checks import Problem, Rejected
from video_caption.caption.server import ManagedServer, check_engine

RETRY_TEMPERATURE = 0.7  # a greedy (temperature 0) reply is asked again at this one
EMBEDDED_REPEAT_PENALTY = 1.3


class Role:
    """``role`` is ``vlm`` or ``llm``: its settings are the ``--<role>-*`` flags."""

    def __init__(self, role: str, args, device: str, out: Path):
        self.role, self.args, self.device, self.out = role, args, device, out
        self.kind = getattr(args, f"{role}_backend")
        self.engine = getattr(args, f"{role}_serve")
        self.model_arg = getattr(args, f"{role}_model")
        self.model = self.model_arg or ""  # the name results are recorded with: check() fills it in
        # The small embedded models loop without a penalty (docs/benchmarks.md); others keep their engine's default.
        penalty = args.repeat_penalty if args.repeat_penalty is not None else \
            EMBEDDED_REPEAT_PENALTY if self.kind == "llamacpp" else None
        self.sampling = Sampling(getattr(args, f"{role}_max_tokens"), args.temperature, args.top_p, args.seed, penalty)
        self._stack: contextlib.ExitStack | None = None

    def _backend(self, base_url: str | None = None) -> Backend:
        a = self.args
        return make_backend("openai" if base_url else self.kind, self.model_arg,
                            base_url or getattr(a, f"{self.role}_base_url"), device=self.device,
                            concurrency=a.concurrency, timeout=a.timeout, retries=a.retries,
                            api_key=getattr(a, f"{self.role}_api_key"))

    def served(self) -> tuple[str, list[str]]:
        """The model the ``--<role>-serve`` engine serves, and the server's extra arguments (llama.cpp
        with no model named serves the packaged SmolLM2 GGUF, in the chat template it carries)."""
        extra = shlex.split(getattr(self.args, f"{self.role}_serve_args"))
        if self.model_arg:
            return self.model_arg, extra
        if self.engine != "llamacpp":
            raise BackendError(f"--{self.role}-serve {self.engine} needs --{self.role}-model")
        return str(default_gguf()), extra

    def check(self) -> None:
        """Raise now if the model or server cannot be had, loading nothing: a missing LLM must not
        be found after hours of VLM work."""
        if self.engine:
            model, _ = self.served()
            check_engine(self.engine)
            self.model = self.model_arg or Path(model).name
            return
        backend = self._backend()
        backend.check()
        self.model = backend.model

    def open(self) -> Backend:
        """The backend, set up: its model loaded, or its server started and health-checked."""
        self._stack = contextlib.ExitStack()
        base_url = None
        if self.engine:
            model, extra = self.served()
            base_url = self._stack.enter_context(
                ManagedServer(self.engine, model, self.out / f"{self.role}_server.log", extra=extra))
        return self._stack.enter_context(self._backend(base_url))

    def ask(self, backend: Backend, requests: list[Request], judge: Callable[[int, Reply], Problem | None],
            counts: Counter) -> list[Reply | Rejected | Exception]:
        """The replies to ``requests``; one that ``judge`` (given the request's index) finds a problem
        with is asked once more with another seed (and, after greedy decoding, which any seed would
        repeat, at RETRY_TEMPERATURE), and is ``Rejected`` when that reply has one too.  ``counts``
        gets ``retried``, ``recovered`` and one count per reason rejected."""
        replies = backend.generate(requests, self.sampling)
        again = [i for i, reply in enumerate(replies) if not isinstance(reply, Exception) and judge(i, reply)]
        if not again:
            return replies
        counts["retried"] += len(again)
        other_seed = dataclasses.replace(self.sampling, seed=(self.sampling.seed or 0) + 1,
                                         temperature=self.sampling.temperature or RETRY_TEMPERATURE)
        for i, reply in zip(again, backend.generate([requests[i] for i in again], other_seed), strict=True):
            problem = judge(i, replies[i]) if isinstance(reply, Exception) else judge(i, reply)
            if problem is None:
                counts["recovered"] += 1
                replies[i] = reply
            else:
                counts[problem.reason] += 1
                replies[i] = Rejected(str(reply if not isinstance(reply, Exception) else replies[i]), problem)
        return replies

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None
