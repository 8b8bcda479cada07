"""The real Qwen tokenizer behind Qwen-Image, Qwen-Image-Edit, Z-Image and JoyAI-Edit with random weights: the
pipelines' own constants agree with it, its special tokens are the encoders' ids, and the full-size DiTs see the
real prompt's length (on a byte-level stand-in Qwen-Image's text sequence was several times longer)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from diffexp.errors import DiffexpError
from diffexp.models.arch import build_components, load_arch
from diffexp.models.qwen_vocab import VOCAB_SIZE, qwen_tokenizer, qwen_vl_processor
from tests.floor.floor_helpers import captured

QWEN_ARCHS = ("qwen_image", "qwen_image_edit", "zimage_turbo", "joyai_edit", "tiny_qwen_image_edit")
SPECIAL_IDS = {"image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
               "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer():
    return qwen_tokenizer(1024)


def test_the_vocabulary_is_qwens(tokenizer):
    assert len(tokenizer) == VOCAB_SIZE + 26  # the BPE tokens, then Qwen3's 26 specials
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [151643, 151644, 151645]
    assert tokenizer.pad_token_id == 151643 and tokenizer.eos_token_id == 151645
    assert tokenizer("Hello world")["input_ids"] == [9707, 1879]  # Qwen2's ids, as its model card's examples give


@pytest.fixture(scope="module")
def tiny_edit_components():
    return build_components(load_arch("tiny_qwen_image_edit"), seed=0)


@pytest.mark.parametrize("pipeline", ["QwenImagePipeline", "QwenImageEditPlusPipeline"])
def test_the_pipelines_drop_exactly_their_system_prompt(pipeline, tokenizer, tiny_edit_components):
    """Each pipeline drops a fixed number of leading hidden states, its system prompt's length in the real
    tokenizer: 34 (QwenImagePipeline) and 64 (QwenImageEditPlusPipeline, up to the user turn)."""
    import diffusers

    components = dict(tiny_edit_components)
    if pipeline == "QwenImagePipeline":
        components.pop("processor")
    pipe = getattr(diffusers, pipeline)(**components)
    system = pipe.prompt_template_encode.split("{}")[0]
    assert len(tokenizer(system)["input_ids"]) == pipe.prompt_template_encode_start_idx


@pytest.mark.parametrize("arch", QWEN_ARCHS)
def test_the_special_tokens_are_the_encoders_ids(arch, tokenizer):
    spec = load_arch(arch)["components"]
    assert spec["tokenizer"]["tokenizer"] == "qwen_bpe"
    config = spec["text_encoder"]["config"]
    vocab = config.get("vocab_size") or config["text_config"]["vocab_size"]
    assert len(tokenizer) <= vocab  # every id the tokenizer emits has an embedding
    for key, token in SPECIAL_IDS.items():
        if key in config:
            assert tokenizer.convert_tokens_to_ids(token) == config[key], key


def test_the_edit_processor_expands_the_image_into_the_encoders_image_tokens(tokenizer):
    spec = load_arch("qwen_image_edit")["components"]["processor"]
    processor = qwen_vl_processor(spec, tokenizer)
    text = "Picture 1: <|vision_start|><|image_pad|><|vision_end|>Transform into anime style"
    out = processor(text=[text], images=[Image.new("RGB", (392, 392))], padding=True, return_tensors="pt")
    # 392² in 14-pixel patches, 2x2 of them merged into one token: 28² / 4 = 196 image tokens.
    assert out["image_grid_thw"].tolist() == [[1, 28, 28]]
    assert int((out["input_ids"] == 151655).sum()) == 196
    assert out["pixel_values"].shape == (28 * 28, 3 * 2 * 14 * 14)


def test_a_processor_over_a_byte_level_tokenizer_is_refused():
    from diffexp.models.tokenizer import byte_level_tokenizer

    spec = load_arch("qwen_image_edit")["components"]["processor"]
    with pytest.raises(
        DiffexpError, match=r"needs the arch's tokenizer to be the real Qwen one \(tokenizer: qwen_bpe\)"
    ):
        qwen_vl_processor(spec, byte_level_tokenizer(1024, "qwen_chat"))


@pytest.mark.parametrize(
    "model, template_tokens",
    [
        # QwenImagePipeline: the prompt, then <|im_end|> \n <|im_start|> assistant \n (the system prompt dropped).
        ("tiny_qwen_image", 5),
        # ZImagePipeline: Qwen3's chat template, <|im_start|> user \n {prompt} <|im_end|> \n <|im_start|> assistant \n.
        ("tiny_zimage", 8),
    ],
)
def test_the_dit_sees_the_real_prompt_length(model, template_tokens, tokenizer):
    """Through the real pipeline code on the tiny sibling (the full-size arch has the same tokenizer and pipeline;
    its text encoder's masked output cannot be captured on the meta device)."""
    cfg, step = captured(f"model={model}", "engine=diffusers")
    prompt_tokens = len(tokenizer(cfg.model.sampling.prompt)["input_ids"])
    assert prompt_tokens < len(cfg.model.sampling.prompt) // 3  # BPE pieces, not bytes
    call = step.calls[0]
    # QwenImage passes encoder_hidden_states (batch, text, dim); ZImage a list of (text, dim), third positionally.
    text = call.kwargs["encoder_hidden_states"] if "encoder_hidden_states" in call.kwargs else call.args[2]
    length = text.shape[1] if torch.is_tensor(text) else text[0].shape[0]
    assert length == prompt_tokens + template_tokens


def test_a_data_dependent_encoder_on_the_meta_device_is_a_clear_error():
    with pytest.raises(DiffexpError, match=r"QwenImagePipeline cannot be counted on the meta device"):
        captured("model=qwen_image", "model.weights=random", "engine=diffusers")


@pytest.mark.parametrize(
    "arch, processor", [("qwen_image_edit", "Qwen2VLProcessorImageOnly"), ("joyai_edit", "Qwen3VLProcessorImageOnly")]
)
def test_the_edit_pipelines_build_at_full_size(arch, processor):
    """Shapes only (the meta device): the pipeline class over its real processor, the vision tower in the encoder."""
    from diffexp.models.arch import build_pipeline

    pipe = build_pipeline(arch, 0, torch.device("meta"), torch.bfloat16)
    assert type(pipe).__name__ == load_arch(arch)["pipeline"] and type(pipe.processor).__name__ == processor
    assert pipe.processor.tokenizer is pipe.tokenizer
    assert pipe.processor.image_token_id == pipe.text_encoder.config.image_token_id == 151655
