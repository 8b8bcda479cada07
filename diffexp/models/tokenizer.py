"""A byte-level tokenizer built locally, so no tokenizer is ever downloaded.

Every UTF-8 byte is a token (ids 4..259 after four specials), which any text encoder with a
vocabulary of at least 260 entries accepts; templates add the specials the way CLIP, T5 and Gemma do,
and the chat templates give the pipelines that call apply_chat_template (Z-Image, FLUX.2) a
template of the real family's shape. Text is bytes, not the family's BPE pieces, so a prompt
becomes more tokens than with the real tokenizer (see docs/models.md).
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = {"<pad>": 0, "</s>": 1, "<unk>": 2, "<s>": 3}
PAD_ID, EOS_ID, UNK_ID, BOS_ID = 0, 1, 2, 3

# Jinja chat templates in the families' layouts; message content may be a string or a list of
# {"type": "text", "text": ...} parts, as FLUX.2 passes it.
_TEXT = (
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
)
CHAT_TEMPLATES = {
    "qwen_chat": (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n" + _TEXT + "<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    ),
    "mistral_chat": (
        "<s>{% for message in messages %}{% if message['role'] == 'system' %}[SYSTEM_PROMPT]"
        + _TEXT
        + "[/SYSTEM_PROMPT]{% elif message['role'] == 'user' %}[INST]"
        + _TEXT
        + "[/INST]{% else %}"
        + _TEXT
        + "</s>{% endif %}{% endfor %}"
    ),
}
# Which specials the tokenizer itself adds around a text: (prefix, suffix).
_SPECIALS_ADDED = {"clip": ("<s>", "</s>"), "t5": (None, "</s>"), "gemma": ("<s>", None)}
TEMPLATES = sorted({*_SPECIALS_ADDED, *CHAT_TEMPLATES})


def byte_level_tokenizer(model_max_length: int, template: str = "t5") -> PreTrainedTokenizerFast:
    vocab = dict(SPECIALS)
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    if template not in TEMPLATES:
        raise ValueError(f"tokenizer template {template!r}: allowed values are {', '.join(TEMPLATES)}")
    prefix, suffix = _SPECIALS_ADDED.get(template, (None, None))
    if prefix or suffix:
        single = " ".join(t for t in (prefix, "$A", suffix) if t)
        ids = {"<s>": BOS_ID, "</s>": EOS_ID}
        core.post_processor = processors.TemplateProcessing(
            single=single, special_tokens=[(t, ids[t]) for t in (prefix, suffix) if t]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=model_max_length,
        chat_template=CHAT_TEMPLATES.get(template),
    )
