"""Tokenizer training: exact round trips, single-id specials, vocabulary size, FIM sentinel checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_lsp.completion.prompt import FimIds
from gpt_lsp.model.tokenizer import (
    EOS_TOKEN,
    FIM_SPELLINGS,
    MIN_VOCAB_SIZE,
    SPECIAL_TOKENS,
    check_fim_tokens,
    find_fim_tokens,
    has_fim_tokens,
    train_tokenizer,
)

CORPUS = ["def add(a, b):\n    return a + b\n", "for i in range(10):\n\tprint(i)\n"] * 20


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_round_trip_any_text(tiny_tokenizer, text):
    ids = tiny_tokenizer.encode(text).ids
    assert tiny_tokenizer.decode(ids, skip_special_tokens=False) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n\n",
        "  \t \r\n",
        "    def f(x):\n        return x\n",
        "naïve — ünïcödé 🙂 中文",
        "a\u0301",
        "\x00\x7f",
    ],
)
def test_round_trip_whitespace_and_unicode(tiny_tokenizer, text):
    ids = tiny_tokenizer.encode(text).ids
    assert tiny_tokenizer.decode(ids) == text


def test_specials_are_single_ids(tiny_tokenizer):
    assert tiny_tokenizer.token_to_id(EOS_TOKEN) == 0
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        assert tiny_tokenizer.encode(token).ids == [expected_id]
        assert expected_id in tiny_tokenizer.encode(f"x = 1{token}y = 2").ids


def test_vocab_size_respected(tmp_path):
    tokenizer = train_tokenizer(CORPUS * 5, vocab_size=280, out_path=tmp_path / "tokenizer.json")
    assert tokenizer.get_vocab_size() == 280
    from tokenizers import Tokenizer

    reloaded = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert reloaded.encode(CORPUS[0]).ids == tokenizer.encode(CORPUS[0]).ids
    with pytest.raises(ValueError, match="at least"):
        train_tokenizer(CORPUS, vocab_size=MIN_VOCAB_SIZE - 1)


def test_fim_ids(tiny_tokenizer):
    assert check_fim_tokens(tiny_tokenizer) == FimIds(prefix=1, suffix=2, middle=3)
    assert has_fim_tokens(tiny_tokenizer)


def test_missing_fim_tokens_is_a_clear_error():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    plain = Tokenizer(models.BPE())
    plain.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    plain.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=300, special_tokens=[EOS_TOKEN]))
    assert not has_fim_tokens(plain)
    with pytest.raises(
        ValueError, match=r"tokenizer at old/tokenizer.json has no <fim_prefix> token; retrain"
    ):
        check_fim_tokens(plain, "old/tokenizer.json")


@pytest.mark.parametrize("spelling", FIM_SPELLINGS, ids=lambda f: f.prefix)
def test_fim_sentinels_are_found_under_every_common_spelling(spelling):
    from tokenizers import Tokenizer, models

    vocab = {"a": 0, spelling.prefix: 1, spelling.suffix: 2, spelling.middle: 3}
    assert find_fim_tokens(Tokenizer(models.WordLevel(vocab, unk_token="a"))) == spelling


def test_a_tokenizer_without_fim_has_no_sentinels():
    from tokenizers import Tokenizer, models

    vocab = {"a": 0, "<fim_prefix>": 1, "<|fim_suffix|>": 2, "<MID>": 3}  # no complete set
    assert find_fim_tokens(Tokenizer(models.WordLevel(vocab, unk_token="a"))) is None
