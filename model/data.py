"""Training data: documents -> one token stream -> fixed-length sequences -> (optionally) FIM.

Documents are joined with `<|endoftext|>` and cut into `context_length` blocks (packing, no padding
waste). Fill-in-the-middle is applied after packing, per document piece inside each block, as in
Bavarian et al. 2022 (arXiv 2207.14255, section 3 and appendix C): with probability `fim_rate` a
piece is split at two character positions chosen uniformly, re-tokenised as prefix / middle /
suffix, and laid out by `gpt_lsp.completion.prompt.fim_training_ids` -- the function serving uses -- in PSM
or SPM order. The three sentinels make a piece longer, so its suffix is trimmed to keep the block's
length, as StarCoder's Megatron-LM does; a block that ends shorter is padded, and padding is not
trained on.

Which sequences form step s's batch, and every FIM choice inside it, are pure functions of
(seed, s, position): a resumed run sees exactly the data an uninterrupted one would have.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpt_lsp.completion.prompt import FimIds, fim_training_ids

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

IGNORE_INDEX = -100  # label value that transformers' cross-entropy skips


@dataclass(frozen=True)
class FimConfig:
    """How to turn a packed sequence into fill-in-the-middle examples."""

    ids: FimIds
    eot: int  # end-of-text id that separates documents
    pad: int  # filler after the last piece when FIM made the block shorter
    rate: float = 0.5
    spm_rate: float = 0.5


def encode_documents(tokenizer: Tokenizer, texts: Sequence[str], eot: int) -> torch.Tensor:
    """One int32 stream: each document's tokens followed by `eot`."""
    import torch

    stream: list[int] = []
    for start in range(0, len(texts), 256):  # bounded batches keep peak memory flat on big corpora
        for encoding in tokenizer.encode_batch(list(texts[start : start + 256]), add_special_tokens=False):
            stream.extend(encoding.ids)
            stream.append(eot)
    return torch.tensor(stream, dtype=torch.int32)


def permute_document(
    ids: Sequence[int], tokenizer: Tokenizer, fim: FimIds, rng: random.Random, spm: bool
) -> tuple[list[int], int]:
    """Turn one document piece into a FIM example; also return how many tokens its suffix has.

    The split points are characters, not tokens, so the model learns to complete mid-token cuts
    like the ones a cursor makes (Bavarian et al., section 3).
    """
    text = tokenizer.decode(list(ids), skip_special_tokens=False)
    lo, hi = sorted((rng.randint(0, len(text)), rng.randint(0, len(text))))

    def encode(part: str) -> list[int]:
        return tokenizer.encode(part, add_special_tokens=False).ids if part else []

    prefix, middle, suffix = encode(text[:lo]), encode(text[lo:hi]), encode(text[hi:])
    return fim_training_ids(prefix, middle, suffix, fim, spm), len(suffix)


def _trim_suffix(
    example: list[int], suffix_len: int, excess: int, fim: FimIds, spm: bool
) -> list[int] | None:
    """Drop `excess` tokens from the end of the suffix; None when the suffix is too short."""
    if suffix_len < excess:
        return None
    # PSM: <pre> p <suf> s <mid> m   SPM: <pre> <suf> s <mid> p m -- the suffix ends before <mid>.
    end = example.index(fim.middle)
    del example[end - excess : end]
    return example


def apply_fim(sequence: Sequence[int], tokenizer: Tokenizer, cfg: FimConfig, rng: random.Random) -> list[int]:
    """FIM-transform each document piece of a packed `sequence`; the result has the same length.

    Trailing `cfg.pad` tokens fill what FIM saved.
    """
    out = _fim_pieces(sequence, tokenizer, cfg, rng)
    return out + [cfg.pad] * (len(sequence) - len(out))


def _fim_pieces(
    sequence: Sequence[int], tokenizer: Tokenizer, cfg: FimConfig, rng: random.Random
) -> list[int]:
    pieces: list[list[int]] = [[]]
    for token in sequence:
        if token == cfg.eot:
            pieces.append([])
        else:
            pieces[-1].append(token)
    out: list[int] = []
    for n, piece in enumerate(pieces):
        if n:
            out.append(cfg.eot)
        if piece and rng.random() < cfg.rate:
            spm = rng.random() < cfg.spm_rate
            example, suffix_len = permute_document(piece, tokenizer, cfg.ids, rng, spm)
            excess = len(example) - len(piece)
            if excess > 0:
                example = _trim_suffix(example, suffix_len, excess, cfg.ids, spm) or piece
            piece = example
        out.extend(piece)
    # Every piece is now at most as long as it was (trimmed, or shorter after re-tokenising).
    return out[: len(sequence)]


class PackedSequences:
    """A token stream viewed as `n` sequences of `length` tokens, served in seeded batches."""

    def __init__(self, tokens: torch.Tensor, length: int, seed: int = 0) -> None:
        self.length = length
        self.n = len(tokens) // length  # the tail shorter than one sequence is dropped
        self.blocks = tokens[: self.n * length].view(self.n, length)
        self.seed = seed
        self._epoch = -1
        self._order: list[int] = []

    def _index(self, position: int) -> int:
        """The sequence at global `position`: a fresh permutation of all sequences per epoch."""
        import torch

        epoch, offset = divmod(position, self.n)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            self._order = torch.randperm(self.n, generator=generator).tolist()
            self._epoch = epoch
        return self._order[offset]

    def batch(
        self,
        step: int,
        batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        tokenizer: Tokenizer | None = None,
        fim: FimConfig | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, labels) for this rank's share of global step `step`; each (batch_size, length).

        Ranks take disjoint slices of the same global batch (DistributedSampler-style sharding).
        """
        import torch

        first = (step * world_size + rank) * batch_size
        input_ids = torch.empty(batch_size, self.length, dtype=torch.long)
        labels = torch.empty_like(input_ids)
        for row, position in enumerate(range(first, first + batch_size)):
            sequence = self.blocks[self._index(position)]
            input_ids[row] = labels[row] = sequence
            if fim is not None and tokenizer is not None and fim.rate > 0:
                rng = random.Random(f"fim:{self.seed}:{position}")
                ids = _fim_pieces(sequence.tolist(), tokenizer, fim, rng)
                input_ids[row] = labels[row] = torch.tensor(ids + [fim.pad] * (self.length - len(ids)))
                labels[row, len(ids) :] = IGNORE_INDEX  # padding is not trained on
        return input_ids, labels

    def fixed_batches(self, count: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[Any]:
        """The first `count` batches in stored order (validation: the same every time), sharded by rank."""
        import torch

        batches = []
        for b in range(count):
            first = (b * world_size + rank) * batch_size
            rows = self.blocks[first : min(first + batch_size, self.n)]
            if len(rows) == 0:
                break
            input_ids = rows.to(torch.long)
            batches.append((input_ids, input_ids.clone()))
        return batches
