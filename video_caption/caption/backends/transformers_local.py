"""transformers in this process: the model's own processor and chat template, then ``generate``.

Runs on CPU too, so a laptop can caption a few clips.  The default VLM is Qwen2-VL-2B-Instruct,
loaded from a local folder or the Hugging Face cache (downloaded into it on a connected machine).  A text-only
model (for the LLM step) loads as a causal LM through the same code.
"""

from __future__ import annotations

import io
import os

from video_caption.caption.backends.base import Backend, Reply, Request, Sampling
from video_caption.models import ModelMissing, from_hub, hf_cache_dir

DEFAULT_MODEL = "Qwen/Qwen2-VL-2B-Instruct"


def local_model(model: str) -> str:
    """A model folder: ``model`` itself, or its snapshot in the Hugging Face cache (downloaded there
    first on a connected machine)."""
    if os.path.isdir(model):
        return model
    found = from_hub(model)
    if found is None:
        raise ModelMissing(
            f"model {model!r} is neither a folder nor in the Hugging Face cache {hf_cache_dir()}, and it could not "
            f"be downloaded (offline?). On a connected machine run 'huggingface-cli download {model}' and copy the "
            "cache here (or set HF_HOME to it), or pass the model's folder")
    return found


def _messages(request: Request) -> list[dict]:
    from PIL import Image

    messages = [{"role": "system", "content": [{"type": "text", "text": request.system}]}] if request.system else []
    if request.images:
        content = [{"type": "image", "image": Image.open(io.BytesIO(jpeg)).convert("RGB")} for jpeg in request.images]
        messages.append({"role": "user", "content": [*content, {"type": "text", "text": request.text}]})
    else:
        messages.append({"role": "user", "content": [{"type": "text", "text": request.text}]})
    return messages


class TransformersLocal(Backend):
    kind = "transformers"

    def __init__(self, model: str | None = None, device: str | None = None, batch_size: int = 8):
        self.model = model or DEFAULT_MODEL
        self.device, self.batch_size = device, batch_size
        self.processor = self.net = None

    def check(self) -> None:
        local_model(self.model)

    def setup(self) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor
        from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

        path = local_model(self.model)
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        on_gpu = self.device.startswith("cuda")
        dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if on_gpu else torch.float32
        config = AutoConfig.from_pretrained(path)
        vision = config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
        auto = AutoModelForImageTextToText if vision else AutoModelForCausalLM
        # safetensors only: a pickled .bin checkpoint can run code when loaded.
        self.net = auto.from_pretrained(path, dtype=dtype, use_safetensors=True).to(self.device).eval()
        self.processor = AutoProcessor.from_pretrained(path)
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"  # generation appends on the right of every row of the batch
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def generate(self, requests: list[Request], sampling: Sampling) -> list[Reply | Exception]:
        results: list[Reply | Exception] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = requests[start:start + self.batch_size]
            try:
                results += self._generate(chunk, sampling)
            except Exception as exc:  # noqa: BLE001 - retry alone, so one bad request fails alone
                if len(chunk) == 1:
                    results.append(exc)
                else:
                    results += [r for request in chunk for r in self.generate([request], sampling)]
        return results

    def _generate(self, requests: list[Request], sampling: Sampling) -> list[Reply]:
        import torch

        inputs = self.processor.apply_chat_template(
            [_messages(r) for r in requests], add_generation_prompt=True, tokenize=True, return_dict=True,
            return_tensors="pt", processor_kwargs={"padding": True}).to(self.device)
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        sample = sampling.temperature > 0
        options = {"temperature": sampling.temperature, "top_p": sampling.top_p} if sample else {}
        if sampling.repeat_penalty is not None:
            options["repetition_penalty"] = sampling.repeat_penalty
        with torch.inference_mode():
            out = self.net.generate(**inputs, max_new_tokens=sampling.max_tokens, do_sample=sample, **options)
        new = out[:, inputs["input_ids"].shape[1]:]
        stops = self.net.generation_config.eos_token_id
        stops = set(stops if isinstance(stops, list) else [stops])
        texts = self.processor.batch_decode(new, skip_special_tokens=True)
        # A row that used every new token without a stop token was cut at the limit.
        return [Reply(text.strip(), "length" if len(row) == sampling.max_tokens and not stops & set(row.tolist())
                      else "stop") for text, row in zip(texts, new, strict=True)]
