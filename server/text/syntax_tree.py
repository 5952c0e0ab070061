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


def header_of(source: bytes, node: tree_sitter.Node, max_chars: int = 400) -> str:
    """The header of a definition: from its line start to the start of its body ('{' included).

    A header longer than `max_chars` (a very long line, or \r-only line breaks) is cut to its
    first line.
    """
    line_start = source.rfind(b"\n", 0, node.start_byte) + 1
    if node.start_byte - line_start > max_chars:
        line_start = node.start_byte
    body = node.child_by_field_name("body")
    first_line_end = source.find(b"\n", node.start_byte)
    if first_line_end < 0:
        first_line_end = node.end_byte
    end = min(first_line_end, node.end_byte)
    if body is not None and body.start_byte > node.start_byte:
        end = body.start_byte + (1 if source[body.start_byte : body.start_byte + 1] == b"{" else 0)
    header = source[line_start:end].decode("utf-8", "replace").rstrip()
    if len(header) > max_chars:
        cut = min(first_line_end, line_start + max_chars)
        header = source[line_start:cut].decode("utf-8", "replace").rstrip()
    return header
