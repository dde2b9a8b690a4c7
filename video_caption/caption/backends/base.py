"""The backends' interface: a request, a reply, the sampling settings, the error, the Backend class,
and the OpenAI chat messages of a request (what several backends send)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    text: str
    images: tuple[bytes, ...] = ()  # JPEG files, shown to the model before the text
    system: str | None = None
    schema: dict | None = None  # a JSON schema the reply must follow (constrained decoding where offered)


class Reply(str):
    """A model's text, and why it stopped: ``finish_reason`` is "stop", "length" (the token limit)
    or None (the backend did not say)."""

    finish_reason: str | None

    def __new__(cls, text: str, finish_reason: str | None = None) -> Reply:
        reply = super().__new__(cls, text)
        reply.finish_reason = finish_reason
        return reply


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 256
    temperature: float = 0.2
    top_p: float = 0.9
    seed: int | None = None
    repeat_penalty: float | None = None  # None: the engine's default


class BackendError(RuntimeError):
    """A backend that cannot work at all (no server, no model): raised before any clip is processed."""


class Backend:
    """Load or connect once (``setup``), then ``generate`` for batches, then ``close``."""

    kind = ""
    model = ""  # the model's name, written into the manifests

    def check(self) -> None:
        """Fail now if ``setup`` cannot work (the model is not on this machine, the server does not
        answer), loading nothing big: every step is checked before the first one starts."""

    def setup(self) -> None:
        pass

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply | Exception]:
        """One reply per request, or the exception that request ended with (the others still count)."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Backend:
        self.setup()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def data_url(jpeg: bytes) -> str:
    import base64

    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def openai_messages(request: Request) -> list[dict]:
    """The request as OpenAI chat messages: images as base64 ``image_url`` parts (what vLLM, SGLang
    and LMDeploy document for vision requests), plain string content when there is no image."""
    messages = [{"role": "system", "content": request.system}] if request.system else []
    if request.images:
        content = [{"type": "image_url", "image_url": {"url": data_url(jpeg)}} for jpeg in request.images]
        content.append({"type": "text", "text": request.text})
        messages.append({"role": "user", "content": content})
    else:
        messages.append({"role": "user", "content": request.text})
    return messages
