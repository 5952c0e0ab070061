"""Decode cache and typing-through (server/completion/cache.py)."""

from gpt_lsp.completion.cache import GenerationCache, TypingThrough
from gpt_lsp.inference.engine import Generation


def test_lru_evicts_the_least_recently_used_and_skips_partial_decodes():
    cache = GenerationCache(capacity=2)
    cache.put(("a",), Generation("1", 1, "eos", 1.0))
    cache.put(("b",), Generation("2", 1, "eos", 1.0))
    assert cache.get(("a",)).text == "1"
    cache.put(("c",), Generation("3", 1, "eos", 1.0))
    assert cache.get(("b",)) is None and cache.get(("a",)) is not None
    cache.put(("d",), Generation("4", 1, "timeout", 1.0))
    assert cache.get(("d",)) is None


def test_typing_the_start_of_a_suggestion_returns_the_rest():
    typing = TypingThrough()
    start = len("x = compute(")
    typing.remember("file:///a.py", start, "x = compute(", ")\n", "alpha, beta")
    assert typing.rest("file:///a.py", start + 2, "x = compute(al", ")\n") == "pha, beta"
    assert typing.rest("file:///a.py", start + 2, "compute(al", ")\n") == "pha, beta"  # a shorter window
    assert typing.rest("file:///a.py", start + 2, "x = compute(ax", ")\n") is None  # diverged
    assert typing.rest("file:///a.py", start + 2, "x = compute(al", "other") is None  # suffix changed
    assert typing.rest("file:///a.py", start, "x = compute(", ")\n") is None  # nothing typed yet
    assert typing.rest("file:///a.py", start + 11, "x = compute(alpha, beta", ")\n") is None  # all typed
    assert typing.rest("file:///b.py", start + 2, "x = compute(al", ")\n") is None  # another document
