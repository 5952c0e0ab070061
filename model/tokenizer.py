"""Tokenizer training: a byte-level BPE with the end-of-text and fill-in-the-middle specials.

Byte-level BPE (GPT-2, StarCoder) maps every UTF-8 byte to a printable symbol before merging, so
any text -- unicode, tabs, runs of spaces, newlines -- encodes without an unknown token and
decodes back to exactly the same string. Code needs that: indentation is syntax.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gpt_lsp.completion.prompt import FimIds
from gpt_lsp.inference.model_dir import FimTokens

if TYPE_CHECKING:
    from tokenizers import Tokenizer

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<pad>"
_FIM = FimTokens()
FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE = _FIM.prefix, _FIM.suffix, _FIM.middle
# Order fixes the ids: EOS is 0 (as in GPT-2 and StarCoder), then the FIM sentinels, then padding.
SPECIAL_TOKENS = (EOS_TOKEN, FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE, PAD_TOKEN)
# 256 byte symbols plus the specials: the smallest vocabulary that can still encode every string.
MIN_VOCAB_SIZE = 256 + len(SPECIAL_TOKENS)


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_path: Path | None = None) -> Tokenizer:
    """Train a byte-level BPE on `texts`; save it as a `tokenizer.json` at `out_path` when given.

    The vocabulary holds all 256 bytes whatever the corpus, so unseen characters still encode;
    merges fill the rest up to `vocab_size` (fewer if the corpus runs out of pairs).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(
            f"vocab_size {vocab_size} is too small; byte-level BPE needs at least {MIN_VOCAB_SIZE}"
        )
    tokenizer = Tokenizer(models.BPE())
    # add_prefix_space=False: a leading space would change the text and break exact round trips.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    if out_path is not None:
        out_path = Path(out_path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tokenizer.save(str(out_path))
    return tokenizer


def check_fim_tokens(
    tokenizer: Tokenizer, where: str | Path = "<in memory>", fim: FimTokens = _FIM
) -> FimIds:
    """The ids of the three FIM sentinels, each of which must be a single token of `tokenizer`.

    `where` names the tokenizer (its file) in the error message.
    """
    ids = []
    for token in (fim.prefix, fim.suffix, fim.middle):
        token_id = tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(
                f"tokenizer at {where} has no {token} token; retrain it with `gpt-lsp train` "
                f"(which adds {fim.prefix}, {fim.suffix}, {fim.middle}), or use the model without "
                'fill-in-the-middle ("fim": null in gpt-lsp.json)'
            )
        ids.append(token_id)
    return FimIds(*ids)


def has_fim_tokens(tokenizer: Tokenizer, fim: FimTokens = _FIM) -> bool:
    """Whether `tokenizer` knows all three FIM sentinels."""
    return all(tokenizer.token_to_id(t) is not None for t in (fim.prefix, fim.suffix, fim.middle))


# Fill-in-the-middle sentinel spellings in the wild, (prefix, suffix, middle): StarCoder/SantaCoder,
# Qwen2.5-Coder and CodeGemma, CodeLlama (its SentencePiece pieces carry a leading "▁"),
# DeepSeek-Coder (full-width bars), Codestral.
FIM_SPELLINGS = (
    FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    FimTokens("<PRE>", "<SUF>", "<MID>"),
    FimTokens("▁<PRE>", "▁<SUF>", "▁<MID>"),
    FimTokens("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"),
    FimTokens("[PREFIX]", "[SUFFIX]", "[MIDDLE]"),
)


def find_fim_tokens(tokenizer: Tokenizer) -> FimTokens | None:
    """The FIM sentinels `tokenizer` knows, under whichever common spelling it uses; None without FIM."""
    return next((fim for fim in FIM_SPELLINGS if has_fim_tokens(tokenizer, fim)), None)
