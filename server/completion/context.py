"""What to complete at the cursor: nothing (EMPTY), the rest of a line (LINE), or a block (BLOCK).

`analyze` is the gate that runs before the model on every keystroke ("tree-sitter decides before
the model runs"), in the spirit of llm-ls's Empty/SingleLine/MultiLine:

- EMPTY inside a comment; when the rest of the line holds word characters (mid-word, or code to
  the right: the `^\\W*$` rule of llm-ls); inside a string unless only closing characters follow.
- BLOCK at the end of a line that opens an empty block (`def f():`, `if (x) {`, also `{|}`), and
  on a blank line right after such a line while the block is still empty.
- LINE otherwise, including inside a string or docstring before its closing quote: completing a
  message, path or docstring sentence is useful, and nothing to the right has to be kept intact.

It also gathers `extra` context the prompt would otherwise miss: top-level imports and the
signatures of enclosing scopes that lie before the prefix window. Without a tree (unknown
language, or parsing skipped) the same rules run on the text alone. Work per call is bounded by
the window, a few parent hops and the top-level nodes before the window: no full-tree walk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

import tree_sitter

from ..text.documents import Document, Position
from ..text.languages import LanguageSpec
from ..text.syntax_tree import header_of, indent_width

_ONLY_CLOSERS = re.compile(r"^\W*$")  # llm-ls: nothing but punctuation/space right of the cursor
_WORD_CHAR = re.compile(r"\w")
_PY_BLOCK_KEYWORDS = re.compile(
    r"^\s*(?:(?:async\s+)?(?:def|for|with)|class|if|elif|else|while|try|except|finally|match|case)\b"
)
_SCAN_LINES = 50  # how far to look for the neighbouring non-blank line
_MAX_HEADER_CHARS = 400  # a signature longer than this is cut to its first line
_MAX_TOP_LEVEL_NODES = 5000  # top-level nodes inspected for imports
_MAX_PARENT_HOPS = 500  # enclosing scopes deeper than this (pathological nesting) are ignored


class CompletionKind(Enum):
    EMPTY = "empty"  # do not call the model
    LINE = "line"  # complete the current line
    BLOCK = "block"  # complete several lines (a block body)


@dataclass(frozen=True)
class CompletionContext:
    kind: CompletionKind
    reason: str  # why this kind, for logs and debugging
    prefix: str  # text before the cursor, the last prefix_window_chars (from a line start when possible)
    suffix: str  # text after the cursor, at most prefix_window_chars
    extra: str  # imports and enclosing signatures outside the prefix window, one per line; "" if none
    line_prefix: str  # current line up to the cursor
    line_suffix: str  # rest of the current line, without its line break
    offset: int  # cursor as an index into Document.text


def analyze(doc: Document, position: Position, prefix_window_chars: int = 4000) -> CompletionContext:
    """Decide what to complete at `position` (clamped) and collect the text around it."""
    text, index = doc.text, doc.index
    offset = doc.offset_at(position)
    line = index.line_of(offset)
    line_start, line_end = index.line_span(line)
    line_prefix, line_suffix = text[line_start:offset], text[offset:line_end]
    window_start = _window_start(doc, offset, prefix_window_chars)
    kind, reason = _gate(doc, offset, line, line_prefix, line_suffix)
    extra = _extra_context(doc, offset, window_start) if kind is not CompletionKind.EMPTY else ""
    return CompletionContext(
        kind=kind,
        reason=reason,
        prefix=text[window_start:offset],
        suffix=text[offset : offset + prefix_window_chars],
        extra=extra,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        offset=offset,
    )


def _window_start(doc: Document, offset: int, chars: int) -> int:
    """Start of the prefix window, moved forward to the next line start when that is before the cursor."""
    start = max(0, offset - chars)
    if start == 0:
        return 0
    line = doc.index.line_of(start)
    if doc.index.starts[line] == start or line + 1 >= doc.index.line_count:
        return start
    next_start = int(doc.index.starts[line + 1])
    return next_start if next_start <= offset else start


# --- the gate ----------------------------------------------------------------------------------


def _gate(
    doc: Document, offset: int, line: int, line_prefix: str, line_suffix: str
) -> tuple[CompletionKind, str]:
    has_tree = doc.tree is not None and doc.spec is not None
    where = _syntax_at(doc, offset) if has_tree else _text_comment(doc.spec, line_prefix)
    note = "" if has_tree else f" (text only: {doc.fallback_reason or 'no syntax tree'})"
    if where == "comment":
        return CompletionKind.EMPTY, "inside a comment" + note
    if not _ONLY_CLOSERS.match(line_suffix):
        if _WORD_CHAR.match(line_prefix[-1:]) and _WORD_CHAR.match(line_suffix[:1]):
            return CompletionKind.EMPTY, "mid-word with text to the right" + note
        inside = "inside a string with " if where == "string" else ""
        return CompletionKind.EMPTY, f"{inside}text to the right of the cursor" + note
    if where == "string":
        return CompletionKind.LINE, "inside a string, only closing characters after the cursor" + note
    block = _block_reason(doc, line, line_prefix, line_suffix, has_tree)
    if block:
        return CompletionKind.BLOCK, block + note
    if line_suffix.strip():
        return CompletionKind.LINE, "only closing characters to the right" + note
    return CompletionKind.LINE, "end of line" + note


def _syntax_at(doc: Document, offset: int) -> str | None:
    """'comment' or 'string' when the cursor is inside one, else None."""
    assert doc.tree is not None and doc.spec is not None
    spec, byte = doc.spec, doc.byte_offset(offset)
    node: tree_sitter.Node | None = doc.tree.root_node.descendant_for_byte_range(max(byte - 1, 0), byte)
    for _ in range(4):  # strings/comments are within a few levels of the leaf
        if node is None or node.type in spec.code_in_string_types:
            return None
        kind = _literal_kind(spec, node.type)
        if kind is not None:
            # string_content and friends are nested in the literal; use the outermost literal.
            while node.parent is not None and node.parent.type in spec.string_types:
                node = node.parent
            if node.start_byte < byte < node.end_byte:
                return kind
            return kind if byte == node.end_byte and _open_ended(doc, node, kind) else None
        node = node.parent
    return None


def _literal_kind(spec: LanguageSpec, node_type: str) -> str | None:
    if node_type in spec.comment_types:
        return "comment"
    return "string" if node_type in spec.string_types else None


def _open_ended(doc: Document, node: tree_sitter.Node, kind: str) -> bool:
    """Does the literal/comment continue at its end byte (line comment, unterminated string)?"""
    if kind == "comment":
        return not doc.source[node.start_byte : node.end_byte].endswith((b"*/", b"\n"))
    last = node.child(node.child_count - 1) if node.child_count else None
    return last is not None and last.is_missing


def _text_comment(spec: LanguageSpec | None, line_prefix: str) -> str | None:
    markers = (spec.line_comment,) if spec else ("#", "//")
    return "comment" if line_prefix.lstrip().startswith(markers) else None


def _block_reason(doc: Document, line: int, line_prefix: str, line_suffix: str, has_tree: bool) -> str | None:
    """Why the cursor asks for a block, or None."""
    openers = doc.spec.block_opener if doc.spec else ":{"
    stripped, rest = line_prefix.rstrip(), line_suffix.strip()
    if stripped and stripped[-1] in openers:
        inline_closer = stripped[-1] == "{" and rest.startswith("}")
        if (rest and not inline_closer) or not _is_opener(doc, line, len(stripped) - 1, has_tree):
            return None
        if inline_closer or _body_is_empty(doc, line, indent_width(line_prefix)):
            return "end of a line that opens a block"
        return None
    if stripped or rest:
        return None
    opener_line = _neighbour_nonblank(doc, line, -1)
    if opener_line is None:
        return None
    opener_text = doc.line_text(opener_line).rstrip()
    if not opener_text or opener_text[-1] not in openers:
        return None
    if not _is_opener(doc, opener_line, len(opener_text) - 1, has_tree):
        return None
    if _body_is_empty(doc, line, indent_width(opener_text)):
        return "blank line in an empty block"
    return None


def _is_opener(doc: Document, line: int, column: int, has_tree: bool) -> bool:
    """Is the ':' or '{' at `column` (str index) of `line` code that opens a block?"""
    text = doc.line_text(line)
    if not has_tree:
        return _text_comment(doc.spec, text) is None
    assert doc.tree is not None and doc.spec is not None
    byte = doc.byte_offset(int(doc.index.starts[line]) + column)
    leaf = doc.tree.root_node.descendant_for_byte_range(byte, byte + 1)
    if leaf is None or leaf.type != text[column]:
        return False  # the character belongs to a comment, a string, ...
    if leaf.type != ":":
        return True
    parent = leaf.parent
    if parent is None:
        return False
    if parent.type == "ERROR":  # incomplete code: judge by the statement's keyword
        return bool(_PY_BLOCK_KEYWORDS.match(text)) or text.lstrip().startswith((")", "]"))
    # def/class/if/for/... followed by its block (next_sibling skips an empty, zero-width block)
    return any(c.type in doc.spec.block_types and c.start_byte >= leaf.end_byte for c in parent.children)


def _body_is_empty(doc: Document, line: int, opener_indent: int) -> bool:
    """Is the first non-blank line after `line` outside the block (dedented or a closing brace)?"""
    after = _neighbour_nonblank(doc, line, +1)
    if after is None:
        return True
    text = doc.line_text(after)
    return text.lstrip().startswith(("}", ")", "]")) or indent_width(text) <= opener_indent


def _neighbour_nonblank(doc: Document, line: int, step: int) -> int | None:
    for other in range(line + step, line + step * (_SCAN_LINES + 1), step):
        if other < 0 or other >= doc.line_count:
            return None
        if doc.line_text(other).strip():
            return other
    return None


# --- extra context -----------------------------------------------------------------------------


def _extra_context(doc: Document, offset: int, window_start: int) -> str:
    """Imports and enclosing-scope signatures that start before the prefix window, in document order."""
    if doc.tree is None or doc.spec is None or window_start == 0:
        return ""
    window_byte = doc.byte_offset(window_start)
    pieces = _imports_before(doc, window_byte) + _enclosing_signatures(doc, offset, window_byte)
    pieces.sort()
    return "".join(text + "\n" for _, text in pieces)


def _imports_before(doc: Document, window_byte: int) -> list[tuple[int, str]]:
    assert doc.tree is not None and doc.spec is not None
    found: list[tuple[int, str]] = []
    cursor = doc.tree.root_node.walk()
    if not cursor.goto_first_child():
        return found
    for _ in range(_MAX_TOP_LEVEL_NODES):
        node = cursor.node
        if node is None or node.start_byte >= window_byte:
            break
        if node.type in doc.spec.import_types:
            found.append((node.start_byte, _decode(doc, node.start_byte, node.end_byte).rstrip()))
        if not cursor.goto_next_sibling():
            break
    return found


def _enclosing_signatures(doc: Document, offset: int, window_byte: int) -> list[tuple[int, str]]:
    assert doc.tree is not None and doc.spec is not None
    spec, byte = doc.spec, doc.byte_offset(offset)
    column = None
    if spec.indent_based:
        # A blank line at the end of a Python body lies outside the block node: anchor on the last
        # code before the cursor and keep only scopes indented less than the cursor's line.
        line_start = int(doc.index.starts[doc.index.line_of(offset)])
        column = indent_width(doc.text[line_start:offset] + "x")
        recent = doc.text[max(0, offset - 4000) : offset]
        anchor = offset - (len(recent) - len(recent.rstrip()))
        byte = max(doc.byte_offset(anchor) - 1, 0)
    node: tree_sitter.Node | None = doc.tree.root_node.descendant_for_byte_range(byte, byte)
    found: list[tuple[int, str]] = []
    for _ in range(_MAX_PARENT_HOPS):
        if node is None:
            break
        if node.type in spec.scope_types and node.start_byte < window_byte:
            if column is None or node.start_point.column < column:
                found.append((node.start_byte, header_of(doc.source, node, _MAX_HEADER_CHARS)))
        node = node.parent
    return found


def _decode(doc: Document, start: int, end: int) -> str:
    return doc.source[start:end].decode("utf-8", "replace")
