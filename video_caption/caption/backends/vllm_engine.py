"""vLLM's offline engine in this process (``vllm.LLM``): the whole batch in one ``chat`` call, several
images per prompt.  Imported only when chosen; needs a GPU machine with vLLM installed."""

from __future__ import annotations

from video_caption.caption.backends.base import Backend, BackendError, Reply, Request, Sampling, openai_messages


class VLLMEngine(Backend):
    kind = "vllm"

    def __init__(self, model: str, max_images: int = 8, max_model_len: int | None = None,
                 tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.9):
        self.model = model
        self.options = {"limit_mm_per_prompt": {"image": max_images}, "tensor_parallel_size": tensor_parallel_size,
                        "gpu_memory_utilization": gpu_memory_utilization}
        if max_model_len:
            self.options["max_model_len"] = max_model_len
        self.llm = None

    def check(self) -> None:
        import importlib.util

        if importlib.util.find_spec("vllm") is None:
            raise BackendError("the vllm backend needs vLLM ('pip install vllm', on a CUDA machine), "
                               "or use the openai backend against a running server")

    def setup(self) -> None:
        self.check()
        from vllm import LLM

        self.llm = LLM(model=self.model, **self.options)

    @staticmethod
    def _params(request: Request, sampling: Sampling):
        from vllm import SamplingParams

        extra = {}
        if request.schema:
            try:
                from vllm.sampling_params import StructuredOutputsParams

                extra["structured_outputs"] = StructuredOutputsParams(json=request.schema)
            except ImportError:  # vLLM before 0.11 names it guided decoding
                from vllm.sampling_params import GuidedDecodingParams

                extra["guided_decoding"] = GuidedDecodingParams(json=request.schema)
        return SamplingParams(max_tokens=sampling.max_tokens, temperature=sampling.temperature,
                              top_p=sampling.top_p, seed=sampling.seed,
                              repetition_penalty=sampling.repeat_penalty or 1.0, **extra)

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply | Exception]:
        params = [self._params(r, sampling) for r in requests]
        try:
            outputs = self.llm.chat([openai_messages(r) for r in requests], params, use_tqdm=False)
        except Exception as exc:  # noqa: BLE001 - then try them one by one, so one bad request fails alone
            if len(requests) == 1:
                return [exc]
            return [result for r in requests for result in self.generate([r], sampling)]
        return [Reply(out.outputs[0].text, out.outputs[0].finish_reason) if out.outputs else Reply("")
                for out in outputs]
