"""A tiny random-weight Qwen2-VL for the captioning tests.

Tests cannot download a real VLM, so they build one of the same architecture (Qwen2VLForConditionalGeneration,
Qwen2VLProcessor, a byte-level BPE Qwen2Tokenizer, Qwen2-VL's chat template) and save it with save_pretrained. The
folder then loads through the same code path as Qwen2-VL-2B-Instruct (AutoProcessor / AutoModelForImageTextToText),
only with ~1 MB of weights, a few hundred tokens of vocabulary and images shrunk to a handful of patches."""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|image_pad|>", "<|video_pad|>"]

# Qwen2-VL-2B-Instruct's chat template, verbatim.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = """system user assistant. You are a helpful assistant. Describe this image. Describe the video in detail.
A brown dog runs across green grass in a sunny park while a child throws a red ball.
The camera pans slowly over a city street at night; cars pass and lights reflect on wet roads.
Two people sit at a wooden table and talk, a cup of coffee and a laptop between them.
A white cat sleeps on a blue sofa next to a window, and the sun moves across the room.
Waves break on a sandy beach under a cloudy sky; a boat sails far away on the sea."""


def _tokenizer():
    """A byte-level BPE trained in memory with Qwen2's pre-tokenizer, wrapped in Qwen2Tokenizer like the real one."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    template = Qwen2Tokenizer()  # empty vocab; only its pre-tokenizer (the Qwen2 regex + byte level) is borrowed
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = template.backend_tokenizer.pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS.splitlines() * 4, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) for m in model["merges"]]  # BPE wants (left, right) pairs, not "left right" strings
    tokenizer = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                               unk_token=None, extra_special_tokens=SPECIAL_TOKENS[1:], padding_side="left")
    return tokenizer


def save_tiny_qwen2_vl(folder: Path) -> Path:
    """Build a tiny random Qwen2-VL (model, processor, tokenizer, chat template) and save it into `folder`."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    folder = Path(folder)
    tokenizer = _tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text_config = {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
                   # head_dim 16 -> 8 rotary frequencies split over (temporal, height, width), as [16, 24, 24] for 128
                   "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
                   "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
                   "pad_token_id": ids["<|endoftext|>"]}
    vision_config = {"depth": 2, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2, "hidden_size": 64, "patch_size": 14,
                     "spatial_merge_size": 2, "temporal_patch_size": 2}
    config = Qwen2VLConfig(text_config=text_config, vision_config=vision_config,
                           image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                           vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    # The seed fixes the random weights; seed 0 gives greedy outputs that do not start with eos, so decoded captions
    # are non-empty (checked by the __main__ block below).
    with torch.random.fork_rng():  # seeded, without disturbing the caller's random state
        torch.manual_seed(0)
        model = Qwen2VLForConditionalGeneration(config).eval()
    # Random weights would mostly pick lone non-ASCII bytes, which decode to "\ufffd": zero their output rows (logit 0,
    # below the best of the other random logits) so greedy captions read as word pieces. Special tokens are untouched.
    with torch.no_grad():
        for i in range(len(tokenizer)):
            piece = tokenizer.decode([i])
            if not (piece.isascii() and piece.isprintable()):
                model.lm_head.weight[i] = 0
    # As in Qwen2-VL-2B-Instruct's generation_config.json: stop at <|im_end|> or <|endoftext|>, pad with <|endoftext|>.
    model.generation_config = GenerationConfig(bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
                                               eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]])
    model.save_pretrained(folder)

    # Images are resized to 56x56..112x112 px: 4x4..8x8 patches of 14 px, i.e. 4..16 <|image_pad|> after the 2x2 merge.
    size = {"shortest_edge": 56 * 56, "longest_edge": 56 * 56 * 4}
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(size=size),
                                 video_processor=Qwen2VLVideoProcessor(size=size),
                                 tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    import tempfile
    import time

    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    def caption(processor, model, conversations):
        inputs = processor.apply_chat_template(conversations, add_generation_prompt=True, tokenize=True,
                                               return_dict=True, return_tensors="pt",
                                               processor_kwargs={"padding": True})
        start = time.perf_counter()
        out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
        took = time.perf_counter() - start
        texts = processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        print(f"{took * 1000:.0f} ms, input_ids {tuple(inputs['input_ids'].shape)}: {texts}")
        return texts

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = save_tiny_qwen2_vl(Path(tmp))
        print(f"built in {time.perf_counter() - start:.1f} s")
        for f in sorted(folder.iterdir()):
            print(f"  {f.name}: {f.stat().st_size} bytes")
        print(f"folder size: {sum(f.stat().st_size for f in folder.iterdir()) / 1e6:.2f} MB")
        processor = AutoProcessor.from_pretrained(folder)
        model = AutoModelForImageTextToText.from_pretrained(folder)
        pil1, pil2 = Image.new("RGB", (160, 90), (200, 30, 30)), Image.new("RGB", (64, 64), (20, 90, 200))

        def msgs(*images, text="Describe."):
            return [{"role": "user", "content": [*({"type": "image", "image": im} for im in images),
                                                 {"type": "text", "text": text}]}]

        texts = caption(processor, model, msgs(pil1)) + caption(processor, model, msgs(pil1, pil2))
        texts += caption(processor, model, [msgs(pil1, pil2), msgs(pil2, text="Describe this image in detail.")])
        assert all(texts), "empty caption: pick another seed in save_tiny_qwen2_vl"
