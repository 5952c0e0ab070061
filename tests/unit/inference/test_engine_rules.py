"""Decode-loop rules that need no model (server/inference/engine.py)."""

from gpt_lsp.inference.engine import repetition_start


def test_repetition_guard_finds_a_loop_and_keeps_the_first_copy():
    ids = [5, 6, 7] + [1, 2] * 6
    start = repetition_start(ids)
    assert start is not None
    assert ids[:start][-2:] == [1, 2]
    assert repetition_start([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) is None


def test_short_repeats_are_not_loops():
    assert repetition_start([1, 1]) is None
    assert repetition_start([3, 4, 9, 9, 9]) is None  # three spaces of indentation are fine
