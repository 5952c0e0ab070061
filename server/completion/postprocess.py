"""Turn raw model text into an edit worth showing: stop rules, suffix de-duplication,
indentation, and a tree-sitter check that the insertion adds no parse errors.

Rules follow the best existing tools: Tabby's `^\\W*$` rule (when only closing characters
follow the cursor, replace them instead of duplicating them), llm-ls's cut at the line end for
single-line completions, and a parse check nobody else does.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import tree_sitter

from ..text.syntax_tree import indent_width

_CLOSING_ONLY = re.compile(r"^\W*$")
# A block completion longer than this is almost never what the user wanted from one keystroke.
MAX_BLOCK_LINES = 30


def line_stop(text: str) -> int | None:
    """Single-line completions end at the first newline after some content."""
    stripped = len(text) - len(text.lstrip("\n"))
    newline = text.find("\n", stripped)
    return newline if newline >= 0 else None


def block_stop(min_indent: int):
    """Block completions end when a later line dedents below the block body, or grow too long."""

    def stop(text: str) -> int | None:
        lines = text.split("\n")
        start = 0
        for number, line in enumerate(lines[:-1]):  # the last line may still be growing
            if number > 0 and line.strip() and indent_width(line) < min_indent:
                return max(start - 1, 0)
            if number >= MAX_BLOCK_LINES:
                return max(start - 1, 0)
            start += len(line) + 1
        return None

    return stop


class LineBudget:
    """A stop rule that ends a multi-line suggestion at its last complete line once `ms` have passed.

    While typing, a block that takes two seconds to decode is stale before it appears; a suggestion
    of the lines ready within the budget is shown at once, and accepting it lets the next request
    continue the block from a prompt that is already cached. Continue shows partial output at
    150 ms and stops at 375 ms; JetBrains' local full-line model suggests one line only. The wrapped
    rule still decides first; the budget never cuts inside a line or leaves an empty suggestion.
    """

    def __init__(self, stop: Callable[[str], int | None], ms: float) -> None:
        self.stop = stop
        self.deadline = time.perf_counter() + ms / 1000
        self.spent = False  # the budget, not the wrapped rule, ended the suggestion

    def __call__(self, text: str) -> int | None:
        cut = self.stop(text)
        if cut is not None or time.perf_counter() < self.deadline:
            return cut
        end = text.rfind("\n")
        if end > 0 and text[:end].strip():
            self.spent = True
            return end
        return None


@dataclass(frozen=True)
class Edit:
    """Replace text[start:end] (str offsets in the document) with `text`."""

    text: str
    start: int
    end: int


def _drop_suffix_overlap(completion: str, suffix: str) -> str:
    """Drop trailing completion lines the document already has right after the cursor."""
    suffix_lines = [line.strip() for line in suffix.split("\n")[1:6] if line.strip()]
    lines = completion.split("\n")
    while len(lines) > 1 and suffix_lines and lines[-1].strip() == suffix_lines[0]:
        lines.pop()
    if len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _fix_first_line_indent(completion: str, line_prefix: str) -> str:
    """The cursor already sits at the indentation; a leading indent from the model would double it."""
    if line_prefix and not line_prefix.strip():
        first, sep, rest = completion.partition("\n")
        return first.lstrip(" \t") + sep + rest
    return completion


def shape_edit(completion: str, offset: int, line_prefix: str, line_suffix: str, suffix: str) -> Edit | None:
    """Make the raw completion an edit at `offset`, or None when nothing useful is left."""
    completion = _fix_first_line_indent(completion.rstrip(" \t"), line_prefix)
    completion = _drop_suffix_overlap(completion, suffix)
    if not completion.strip():
        return None
    end = offset
    rest = line_suffix.rstrip("\r\n")
    if rest and _CLOSING_ONLY.match(rest):
        first_line = completion.split("\n", 1)[0]
        closing = rest.strip()
        if first_line.rstrip().endswith(closing):
            end = offset + len(rest)  # the completion brings its own closers: replace, don't duplicate
        elif "\n" not in completion and rest.startswith(completion.strip()):
            return None  # the user already has exactly this
    return Edit(completion, offset, end)


def count_errors(node: tree_sitter.Node) -> int:
    """ERROR and MISSING nodes under `node`, visiting only subtrees that contain one."""
    if not node.has_error:
        return 0
    count = 1 if (node.is_error or node.is_missing) else 0
    inside = sum(count_errors(child) for child in node.children)
    # A MISSING hidden token (e.g. the `_newline` closing a Python statement) is not among
    # `children`; the node still reports the error, so count it here.
    return count + inside if count or inside else 1


def adds_parse_errors(
    parser: tree_sitter.Parser, old_tree: tree_sitter.Tree, source: bytes, text: str, edit: Edit
) -> bool:
    """True when applying `edit` leaves more ERROR/MISSING nodes than `old_tree` has.

    The new tree is parsed incrementally from an edited copy of the old one, so the check costs
    about as much as a keystroke's reparse, not a full parse.
    """
    start_byte = len(text[: edit.start].encode("utf-8", "surrogatepass"))
    old_end_byte = start_byte + len(text[edit.start : edit.end].encode("utf-8", "surrogatepass"))
    inserted = edit.text.encode("utf-8", "surrogatepass")
    new_source = source[:start_byte] + inserted + source[old_end_byte:]
    tree = old_tree.copy()
    tree.edit(
        start_byte=start_byte,
        old_end_byte=old_end_byte,
        new_end_byte=start_byte + len(inserted),
        start_point=_point(source, start_byte),
        old_end_point=_point(source, old_end_byte),
        new_end_point=_point(new_source, start_byte + len(inserted)),
    )
    new_tree = parser.parse(new_source, tree)
    return count_errors(new_tree.root_node) > count_errors(old_tree.root_node)


def _point(source: bytes, byte: int) -> tuple[int, int]:
    """(row, column in bytes) of a byte offset, as tree-sitter counts them."""
    row = source.count(b"\n", 0, byte)
    return row, byte - (source.rfind(b"\n", 0, byte) + 1)
