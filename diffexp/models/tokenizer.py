"""A byte-level tokenizer built locally, so no tokenizer is ever downloaded.

Every UTF-8 byte is a token (ids 4..259 after four specials), which any text encoder with a
vocabulary of at least 260 entries accepts; templates add the specials the way CLIP and T5 do.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = {"<pad>": 0, "</s>": 1, "<unk>": 2, "<s>": 3}
PAD_ID, EOS_ID, UNK_ID, BOS_ID = 0, 1, 2, 3


def byte_level_tokenizer(model_max_length: int, template: str = "t5") -> PreTrainedTokenizerFast:
    vocab = dict(SPECIALS)
    for symbol in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[symbol] = len(vocab)
    core = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    if template == "clip":
        core.post_processor = processors.TemplateProcessing(
            single="<s> $A </s>", special_tokens=[("<s>", BOS_ID), ("</s>", EOS_ID)]
        )
    elif template == "t5":
        core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", EOS_ID)])
    else:
        raise ValueError(f"tokenizer template {template!r}: allowed values are clip, t5")
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        bos_token="<s>",
        model_max_length=model_max_length,
    )
