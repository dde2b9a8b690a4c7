"""OpenAI-compatible chat completions over HTTP: what ``vllm serve``, SGLang's ``launch_server``,
``lmdeploy serve api_server`` and llama.cpp's server speak.

Many requests are in flight at once (asyncio, at most ``concurrency``), so the server can batch
them.  A request that times out, loses its connection or gets 408/429/5xx is retried with
exponential backoff; after ``retries`` retries its exception is that request's result.
"""

from __future__ import annotations

import asyncio
import logging
import random

from video_caption.caption.backends.base import Backend, BackendError, Reply, Request, Sampling, openai_messages

log = logging.getLogger("video_caption.caption")
# Worth another try: every 5xx (the server's fault, often passing) and these 4xx (timeout, conflict, too early,
# rate limit).  Other 4xx are the request's fault and would fail again.
RETRY_4XX = {408, 409, 425, 429}


class HTTPStatusError(RuntimeError):
    pass


class SchemaRefused(HTTPStatusError):
    """The server refused the request's response_format: it takes the other form."""


def api_root(base_url: str) -> str:
    """``http://host:port``, ``…/v1`` and ``…/v1/`` all name the same API root."""
    root = base_url.rstrip("/")
    return root if root.endswith("/v1") else root + "/v1"


# How a JSON schema is asked for: OpenAI's json_schema (vLLM, SGLang, LMDeploy, llama.cpp's llama-server),
# else json_object with a schema (llama-cpp-python's server, whose error for the first names it).
SCHEMA_FORMATS = ("json_schema", "json_object")


def response_format(schema: dict, kind: str) -> dict:
    if kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    return {"type": "json_object", "schema": schema}


def request_body(model: str, request: Request, sampling: Sampling, schema_format: str = SCHEMA_FORMATS[0]) -> dict:
    body = {"model": model, "messages": openai_messages(request), "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature, "top_p": sampling.top_p}
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.repeat_penalty is not None:
        body["repetition_penalty"] = sampling.repeat_penalty  # vLLM's, SGLang's and LMDeploy's name
    if request.schema:
        body["response_format"] = response_format(request.schema, schema_format)
    return body


class OpenAIHTTP(Backend):
    kind = "openai"

    def __init__(self, base_url: str, model: str | None = None, *, api_key: str | None = None, concurrency: int = 16,
                 timeout: float = 120.0, retries: int = 3, backoff: float = 1.0):
        self.root = api_root(base_url)
        self.model = model or ""
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency, self.timeout, self.retries, self.backoff = concurrency, timeout, retries, backoff
        self.schema_format = SCHEMA_FORMATS[0]

    def setup(self) -> None:
        self.check()

    def check(self) -> None:
        """Health check before any work: the server answers ``/models`` (and serves the model asked for)."""
        import httpx

        try:
            reply = httpx.get(f"{self.root}/models", headers=self.headers, timeout=min(self.timeout, 30.0))
            reply.raise_for_status()
            served = [m.get("id", "") for m in reply.json().get("data", [])]
        except (httpx.HTTPError, ValueError) as exc:
            raise BackendError(f"no OpenAI-compatible server answers at {self.root} ({type(exc).__name__}: {exc}); "
                               "start one (for example 'vllm serve MODEL') or fix the base URL") from exc
        if not self.model:
            if not served:
                raise BackendError(f"the server at {self.root} lists no model; name one with --*-model")
            self.model = served[0]
        elif served and self.model not in served:
            log.warning("the server at %s serves %s, not %s; sending requests for %s anyway",
                        self.root, ", ".join(served), self.model, self.model)

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply | Exception]:
        return asyncio.run(self._generate(requests, sampling))

    async def _generate(self, requests: list[Request], sampling: Sampling) -> list[Reply | Exception]:
        import httpx

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        gate = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(headers=self.headers, timeout=self.timeout, limits=limits) as client:
            async def one(request: Request) -> Reply | Exception:
                async with gate:
                    try:
                        return await self._ask(client, request, sampling)
                    except Exception as exc:  # noqa: BLE001 - the failure is this request's result
                        return exc

            return await asyncio.gather(*(one(r) for r in requests))

    async def _ask(self, client, request: Request, sampling: Sampling) -> Reply:
        try:
            return await self._post(client, request_body(self.model, request, sampling, self.schema_format))
        except SchemaRefused:
            self.schema_format = SCHEMA_FORMATS[1]
            return await self._post(client, request_body(self.model, request, sampling, self.schema_format))

    async def _post(self, client, body: dict) -> Reply:
        import httpx

        attempt = 0
        while True:
            try:
                reply = await client.post(f"{self.root}/chat/completions", json=body)
                if reply.status_code >= 400 and body.get("response_format", {}).get("type") == SCHEMA_FORMATS[0] \
                        and SCHEMA_FORMATS[0] in reply.text:  # llama-cpp-python's server says so with a 500
                    raise SchemaRefused(f"HTTP {reply.status_code} from {self.root}: {reply.text[:300]}")
                if reply.status_code < 500 and reply.status_code not in RETRY_4XX:
                    if reply.status_code >= 400:
                        raise HTTPStatusError(f"HTTP {reply.status_code} from {self.root}: {reply.text[:300]}")
                    choice = reply.json()["choices"][0]
                    return Reply(choice["message"].get("content") or "", choice.get("finish_reason"))
                failure: Exception = HTTPStatusError(f"HTTP {reply.status_code} from {self.root}: {reply.text[:300]}")
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                failure = exc
            if attempt == self.retries:
                raise failure
            delay = min(30.0, self.backoff * 2 ** attempt) * (0.5 + random.random())
            log.debug("request failed (%s), retry %d of %d in %.1f s", failure, attempt + 1, self.retries, delay)
            await asyncio.sleep(delay)
            attempt += 1
