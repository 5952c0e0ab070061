"""Small helpers every stage that reads code shares: one parser cache, indentation of a line.

Parsers are not thread-safe and each thread that parses (the event loop, the inference worker,
diagnostics threads) needs its own, so the cache is per thread: one parser per grammar per thread,
made on first use.
"""

from __future__ import annotations

import threading

import tree_sitter

_local = threading.local()


def parser_for(language: tree_sitter.Language) -> tree_sitter.Parser:
    """This thread's parser for `language`."""
    cache: dict[int, tree_sitter.Parser] | None = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    parser = cache.get(id(language))
    if parser is None:
        parser = cache[id(language)] = tree_sitter.Parser(language)
    return parser


def indent_of(line: str) -> str:
    """The leading spaces and tabs of `line`."""
    return line[: len(line) - len(line.lstrip(" \t"))]


def indent_width(line: str) -> int:
    """How many leading spaces and tabs `line` has (a tab counts as one, as the stop rules compare)."""
    return len(line) - len(line.lstrip(" \t"))
