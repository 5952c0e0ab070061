"""Packing and fill-in-the-middle: lengths are exact and every FIM example rearranges to its source."""

from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")

from gpt_lsp.model.data import (  # noqa: E402
    IGNORE_INDEX,
    FimConfig,
    PackedSequences,
    apply_fim,
    encode_documents,
    permute_document,
)
from gpt_lsp.model.tokenizer import EOS_TOKEN, PAD_TOKEN, check_fim_tokens  # noqa: E402

DOCS = [
    "def greet(name):\n    return f'hello {name}'\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)\n",
    "import os\n\nprint(os.getcwd())  # naïve ünïcode\n",
]


@pytest.fixture
def fim(tiny_tokenizer):
    eot, pad = tiny_tokenizer.token_to_id(EOS_TOKEN), tiny_tokenizer.token_to_id(PAD_TOKEN)
    return FimConfig(check_fim_tokens(tiny_tokenizer), eot, pad, rate=1.0, spm_rate=0.5)


def rearrange(ids: list[int], tokenizer, cfg: FimConfig) -> str:
    """Undo PSM/SPM: the text the example was made from (its suffix possibly trimmed)."""
    f = cfg.ids
    decode = lambda part: tokenizer.decode(part, skip_special_tokens=False)  # noqa: E731
    if not ids or ids[0] != f.prefix:
        return decode(ids)
    middle_at = ids.index(f.middle)
    if ids[1] == f.suffix:  # SPM: <pre> <suf> s <mid> p m
        return decode(ids[middle_at + 1 :]) + decode(ids[2:middle_at])
    suffix_at = ids.index(f.suffix)  # PSM: <pre> p <suf> s <mid> m
    return decode(ids[1:suffix_at]) + decode(ids[middle_at + 1 :]) + decode(ids[suffix_at + 1 : middle_at])


@pytest.mark.parametrize("spm", [False, True])
def test_fim_example_rearranges_to_the_document(tiny_tokenizer, fim, spm: bool) -> None:
    for seed in range(30):
        for doc in DOCS:
            ids = tiny_tokenizer.encode(doc).ids
            example, _ = permute_document(ids, tiny_tokenizer, fim.ids, random.Random(seed), spm)
            assert example.count(fim.ids.middle) == 1
            assert rearrange(example, tiny_tokenizer, fim) == doc


def test_fim_after_packing_keeps_length_and_documents(tiny_tokenizer, fim) -> None:
    stream = encode_documents(tiny_tokenizer, DOCS * 4, fim.eot)
    assert (stream == fim.eot).sum() == len(DOCS) * 4
    packed = PackedSequences(stream, 48, seed=0)
    permuted = 0
    for index in range(packed.n):
        sequence = packed.blocks[index].tolist()
        out = apply_fim(sequence, tiny_tokenizer, fim, random.Random(index))
        assert len(out) == len(sequence) == 48
        original_pieces = tiny_tokenizer.decode(sequence, skip_special_tokens=False).split(EOS_TOKEN)
        pieces, current = [], []
        for token in out:
            if token == fim.eot:
                pieces.append(current)
                current = []
            elif token != fim.pad:
                current.append(token)
        pieces.append(current)
        assert len(pieces) == len(original_pieces)
        for piece, original in zip(pieces, original_pieces, strict=True):
            permuted += fim.ids.middle in piece
            text = rearrange(piece, tiny_tokenizer, fim)
            # Trimming the suffix keeps the block length: the text is the start of the original piece.
            assert original.startswith(text) or original.startswith(text.replace("\ufffd", "")), (
                text,
                original,
            )
    assert permuted > packed.n  # rate 1.0: most pieces became FIM examples


def test_rate_zero_is_identity(tiny_tokenizer, fim) -> None:
    sequence = encode_documents(tiny_tokenizer, DOCS, fim.eot).tolist()
    no_fim = FimConfig(fim.ids, fim.eot, fim.pad, rate=0.0)
    assert apply_fim(sequence, tiny_tokenizer, no_fim, random.Random(0)) == sequence


def test_batches_are_seeded_sharded_and_exact(tiny_tokenizer, fim) -> None:
    stream = encode_documents(tiny_tokenizer, DOCS * 20, fim.eot)
    packed = PackedSequences(stream, 32, seed=7)
    assert packed.blocks.shape == (len(stream) // 32, 32)
    x, y = packed.batch(3, 4, tokenizer=tiny_tokenizer, fim=fim)
    x2, y2 = PackedSequences(stream, 32, seed=7).batch(3, 4, tokenizer=tiny_tokenizer, fim=fim)
    assert x.shape == y.shape == (4, 32) and x.dtype == torch.long
    assert torch.equal(x, x2) and torch.equal(y, y2)  # a resumed run sees the same batch
    # Labels equal inputs except the padding FIM leaves at the end, which is not trained on.
    trained = y != IGNORE_INDEX
    assert torch.equal(x[trained], y[trained])
    for row in range(4):
        padding = (~trained[row]).nonzero().flatten().tolist()
        assert padding == list(range(32 - len(padding), 32))
    # Two ranks split the global batch of step 3 into disjoint halves of the same sequences.
    plain = PackedSequences(stream, 32, seed=7)
    rank0, _ = plain.batch(3, 2, rank=0, world_size=2)
    rank1, _ = plain.batch(3, 2, rank=1, world_size=2)
    single, _ = plain.batch(3, 4)
    assert torch.equal(torch.cat([rank0, rank1]), single)
    # Without FIM labels are the inputs.
    xs, ys = plain.batch(0, 4)
    assert torch.equal(xs, ys)


def test_every_sequence_is_seen_once_per_epoch(tiny_tokenizer, fim) -> None:
    packed = PackedSequences(encode_documents(tiny_tokenizer, DOCS * 8, fim.eot), 16, seed=1)
    seen = [packed._index(position) for position in range(packed.n)]
    assert sorted(seen) == list(range(packed.n))
