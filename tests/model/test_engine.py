"""The decode loop on a real exported model (server/inference/engine.py): cache reuse, stop rules,
cancellation, deadlines and token healing."""

from __future__ import annotations

import numpy as np
import pytest

from gpt_lsp.inference.engine import REPETITION_PENALTY, DecodeLimits, Engine, _common_prefix, _penalize

PROMPT = "def read_config(path):\n    with open(path) as f:\n        return "


@pytest.fixture(scope="module")
def engine(tiny_model_dir) -> Engine:
    return Engine(tiny_model_dir, "fp32", threads=1)


def greedy_uncached(engine: Engine, ids: list[int], steps: int) -> list[int]:
    out: list[int] = []
    for _ in range(steps):
        logits, _ = engine.forward(ids + out, engine.empty_cache())
        out.append(int(logits[-1].argmax()))
    return out


def test_cached_decode_equals_recomputing_the_whole_sequence(engine):
    engine.repetition_penalty = 1.0  # the reference below is plain greedy
    ids = engine.encode(PROMPT)
    generation = engine.generate(ids, DecodeLimits(max_tokens=8, timeout_ms=10_000))
    assert generation.tokens > 0
    assert list(generation.ids) == greedy_uncached(engine, ids, generation.tokens)
    engine.repetition_penalty = REPETITION_PENALTY


def test_repetition_penalty_only_lowers_tokens_already_generated():
    scores = np.array([2.0, -1.0, 3.0, 0.5])
    penalized = _penalize(scores, [0, 1, 1], 1.5)
    assert penalized.tolist() == [2.0 / 1.5, -1.5, 3.0, 0.5]


def test_max_tokens_and_stop_rules_end_the_decode(engine):
    ids = engine.encode(PROMPT)
    capped = engine.generate(ids, DecodeLimits(max_tokens=3, timeout_ms=10_000))
    assert capped.tokens <= 3
    stopped = engine.generate(
        ids, DecodeLimits(max_tokens=20, timeout_ms=10_000), stop=lambda text: 0 if text else None
    )
    assert stopped.text == "" and stopped.stop_reason in ("stop_rule", "eos", "repetition")


def test_cancellation_stops_at_the_next_token(engine):
    ids = engine.encode(PROMPT)
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    generation = engine.generate(ids, DecodeLimits(max_tokens=40, timeout_ms=10_000), cancelled=cancelled)
    assert generation.stop_reason in ("cancelled", "eos", "repetition")
    assert generation.tokens <= 2
    assert engine.generate(ids, DecodeLimits(10, 10_000), cancelled=lambda: True).stop_reason == "cancelled"


def test_deadline_returns_what_is_ready(engine):
    generation = engine.generate(engine.encode(PROMPT), DecodeLimits(max_tokens=40, timeout_ms=0.001))
    assert generation.stop_reason in ("timeout", "eos", "repetition")
    assert generation.tokens <= 1


def test_token_healing_forces_the_completion_to_extend_the_typed_characters(engine):
    ids = engine.encode("x = ")
    generation = engine.generate(ids, DecodeLimits(max_tokens=6, timeout_ms=10_000), healed="pri")
    assert generation.text.startswith("pri") or generation.stop_reason == "eos"


def test_sampling_with_a_seed_is_reproducible(engine):
    ids = engine.encode(PROMPT)
    limits = DecodeLimits(max_tokens=8, timeout_ms=10_000, temperature=0.8)
    a = engine.generate(ids, limits, rng=np.random.default_rng(7))
    b = engine.generate(ids, limits, rng=np.random.default_rng(7))
    assert a.text == b.text


def test_prefix_reuse_prefills_only_the_new_tokens_and_decodes_the_same(engine):
    """A keystroke-like sequence of prompts: each reuses the kept cache of the one it extends,
    another document's prompt in between does not evict it, and every result equals a cold decode."""
    limits = DecodeLimits(max_tokens=8, timeout_ms=10_000)
    first = engine.encode(PROMPT)
    other = engine.encode("class Stack:\n    def push(self, item):\n        ")
    typed = engine.encode(PROMPT + "json.load(f)\n\ndef main():\n    ")
    shared = _common_prefix(first, typed)
    assert 0 < shared < len(typed)
    warm = []
    engine._kept.clear()
    for prompt in (first, other, typed):
        warm.append(engine.generate(prompt, limits).ids)
    assert engine.last_prefill_tokens == len(typed) - shared
    engine.reuse_prefix = False
    try:
        cold = [engine.generate(prompt, limits).ids for prompt in (first, other, typed)]
        assert engine.last_prefill_tokens == len(typed)
    finally:
        engine.reuse_prefix = True
    assert warm == cold


def test_a_keystroke_stops_a_long_prefill_between_chunks_and_the_work_is_kept(engine, monkeypatch):
    """A prompt is prefilled a chunk at a time; cancelled after the first chunk, the decode ends at
    once, and the next prompt sharing that start prefills only the rest, decoding as a cold run does."""
    from gpt_lsp.inference import engine as engine_module

    monkeypatch.setattr(engine_module, "PREFILL_CHUNK", 8)
    limits = DecodeLimits(max_tokens=4, timeout_ms=10_000)
    ids = engine.encode(PROMPT)
    assert len(ids) > 16
    engine._kept.clear()
    checks = []
    stopped = engine.generate(ids, limits, cancelled=lambda: checks.append(1) or len(checks) > 1)
    assert stopped.stop_reason == "cancelled" and stopped.tokens == 0
    assert engine.last_prefill_tokens == 8
    resumed = engine.generate(ids, limits)
    assert engine.last_prefill_tokens == len(ids) - 8
    engine._kept.clear()
    assert resumed.ids == engine.generate(ids, limits).ids


def test_common_prefix_counts_shared_leading_tokens():
    assert _common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert _common_prefix([1, 2], [1, 2, 3]) == 2
    assert _common_prefix([], [1]) == 0 and _common_prefix([7], [8]) == 0


def test_a_repeated_prompt_still_runs_its_last_token(engine):
    ids = engine.encode(PROMPT)
    engine._kept.clear()
    first = engine.generate(ids, DecodeLimits(max_tokens=4, timeout_ms=10_000))
    again = engine.generate(ids, DecodeLimits(max_tokens=4, timeout_ms=10_000))
    assert engine.last_prefill_tokens == 1
    assert again.ids == first.ids


@pytest.mark.parametrize("pending", ["s", "se", "self", "re", "_", "x_y", "return"])
def test_healing_mask_equals_scanning_the_vocabulary(engine, pending):
    vocab = engine.vocab_text()
    expected = {i for i, t in enumerate(vocab) if t and (t.startswith(pending) or pending.startswith(t))}
    masked = engine._constrain(np.zeros(len(vocab)), pending)
    assert set(np.flatnonzero(np.isfinite(masked)).tolist()) == expected
