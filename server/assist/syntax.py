"""Syntax diagnostics from the tree-sitter tree: where the code does not parse, said the way a person would.

tree-sitter marks what it could not parse with ERROR nodes (skipped tokens) and MISSING nodes
(zero-width tokens it had to invent). "ERROR node" helps nobody, so each one is classified from
its tokens: a compound statement without its `:`, a bracket never closed, an unterminated string,
an operator with nothing after it, else the first unexpected token. tree-sitter-python accepts
bad indentation silently, so Python indentation is checked separately from statement columns.

Every problem carries a stable code and, where the fix is mechanical (insert the MISSING token,
the `:`, the closing bracket), an `Edit` that is offered only when re-parsing shows it helps.
Work is bounded: only subtrees that contain an error are visited, and at most MAX_PROBLEMS kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

import tree_sitter

from ..completion.postprocess import Edit, count_errors
from ..text.documents import Document
from ..text.syntax_tree import indent_width

MAX_PROBLEMS = 50  # an unparseable file would otherwise produce thousands of diagnostics
MAX_VISITED = 200_000  # nodes inspected per document version (indentation walk included)
FIX_CHECK_MAX_CHARS = 200_000  # verifying a fix re-parses the document; skip above this size

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}
_QUOTES = ("'", '"', "`", "string_start", '"""', "'''")
_OPERATORS = frozenset(
    "+ - * / // % ** @ << >> & | ^ == != < > <= >= = += -= *= /= and or not in is && || ! ?".split()
)
_PY_HEADER = re.compile(
    r"^\s*(async\s+)?(if|elif|else|while|for|def|class|with|try|except|finally|match|case)\b"
)
_HEADER_WHAT = {
    "if": "`if` condition",
    "elif": "`elif` condition",
    "while": "`while` condition",
    "for": "`for` clause",
    "def": "function signature",
    "class": "class name",
    "with": "`with` items",
    "except": "`except` clause",
    "match": "`match` subject",
    "case": "`case` pattern",
}
_PY_COMPOUND = frozenset(
    "if_statement elif_clause else_clause while_statement for_statement function_definition "
    "class_definition with_statement try_statement except_clause finally_clause match_statement "
    "case_clause decorated_definition".split()
)


@dataclass(frozen=True)
class SyntaxProblem:
    """One syntax error as str offsets into the document version it was computed for."""

    start: int
    end: int
    message: str
    code: str  # stable: missing-token, expected-colon, unclosed-bracket, ...
    fix: Edit | None = None  # a mechanical fix, already checked to reduce the parse errors
    fix_title: str = ""


class FixOrigin(Enum):
    """Where a quick fix comes from; the LSP layer titles and ranks fixes by it."""

    RULE = "rule"  # a mechanical fix of a syntax problem, checked to reduce the parse errors
    HINT = "hint"  # the word the model prefers at a model hint
    REPAIR = "repair"  # a model rewrite of the lines of a syntax error that makes them parse


@dataclass(frozen=True)
class QuickFix:
    """An edit that resolves one published problem (syntax problem or model hint)."""

    origin: FixOrigin
    edit: Edit
    start: int  # the problem it resolves (to link the action to its diagnostic)
    end: int
    code: str
    message: str
    rule_title: str = ""  # what a RULE fix does, in words ("Insert `:`")


def syntax_problems(doc: Document, parser: tree_sitter.Parser | None = None) -> list[SyntaxProblem]:
    """The syntax problems of `doc`, in document order; [] without a tree."""
    if doc.tree is None or doc.spec is None:
        return []
    budget = [MAX_VISITED]
    found: list[SyntaxProblem] = []
    for node in _error_nodes(doc.tree.root_node, budget):
        found.append(_missing(doc, node) if node.is_missing else _classify_error(doc, node))
        if len(found) >= MAX_PROBLEMS:
            break
    if doc.spec.indent_based and len(found) < MAX_PROBLEMS:
        found += _python_indentation(doc, budget)[: MAX_PROBLEMS - len(found)]
    found.sort(key=lambda p: (p.start, p.end))
    if parser is not None:
        found = [checked(doc, parser, p) for p in found]
    return found


def _error_nodes(root: tree_sitter.Node, budget: list[int]) -> Iterator[tree_sitter.Node]:
    """Outermost ERROR nodes and every MISSING node, only descending where `has_error` says so."""
    stack = [root]
    while stack and budget[0] > 0:
        node = stack.pop()
        budget[0] -= 1
        if node.is_missing:
            yield node
        elif node.is_error:
            yield node  # its own tokens explain it; errors nested inside would repeat the message
        elif node.has_error:
            stack.extend(c for c in reversed(node.children) if c.has_error)


def _leaves(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    out: list[tree_sitter.Node] = []
    stack = [node]
    while stack and len(out) < 2000:
        n = stack.pop()
        if n.child_count == 0 or n.type in ("string", "comment"):
            out.append(n)
        else:
            stack.extend(reversed(n.children))
    return out


def _missing(doc: Document, node: tree_sitter.Node) -> SyntaxProblem:
    at = doc.str_offset(node.start_byte)
    if node.is_named:  # a whole construct is missing: no token to insert
        return SyntaxProblem(at, at, f"missing {node.type.replace('_', ' ')}", "missing-token")
    token = node.type
    return SyntaxProblem(
        at, at, f"missing `{token}`", "missing-token", Edit(token, at, at), f"Insert `{token}`"
    )


def _classify_error(doc: Document, node: tree_sitter.Node) -> SyntaxProblem:
    leaves = _leaves(node)
    start, end = doc.str_offset(node.start_byte), doc.str_offset(node.end_byte)
    colon = _missing_colon(doc, node) if doc.spec and doc.spec.indent_based else None
    if colon is not None:
        return colon
    unclosed = _unclosed_bracket(doc, leaves)
    if unclosed is not None:
        return unclosed
    for leaf in leaves:
        if leaf.type in _QUOTES and leaf.parent is not None and leaf.parent.is_error:
            a = doc.str_offset(leaf.start_byte)
            return SyntaxProblem(
                a, doc.index.line_span(doc.index.line_of(a))[1], "unterminated string", "unterminated-string"
            )
    for i, leaf in enumerate(leaves):
        following = leaves[i + 1] if i + 1 < len(leaves) else None
        at_line_end = following is None or following.start_point.row > leaf.end_point.row
        before_closer = following is not None and following.type in _CLOSERS
        if leaf.type in _OPERATORS and leaf.type != "=" and (at_line_end or before_closer):
            a, b = doc.str_offset(leaf.start_byte), doc.str_offset(leaf.end_byte)
            return SyntaxProblem(a, b, f"expected an expression after `{leaf.type}`", "incomplete-expression")
    if len(leaves) == 1 or not leaves:
        token = doc.text_of(node).strip() or node.type
        return SyntaxProblem(start, end, f"unexpected `{token[:40]}`", "unexpected-token")
    line_end = doc.index.line_span(doc.index.line_of(start))[1]
    first = doc.text_of(leaves[0])[:40]
    return SyntaxProblem(
        start, max(start, min(end, line_end)), f"invalid syntax starting at `{first}`", "invalid-syntax"
    )


def _missing_colon(doc: Document, node: tree_sitter.Node) -> SyntaxProblem | None:
    """A Python compound statement whose header line lacks its `:` ("if x\\n    y")."""
    header = node
    if node.parent is not None and node.parent.type in _PY_COMPOUND:
        header = node.parent
    for candidate in (header.start_point.row, node.start_point.row):
        line = doc.line_text(candidate)
        match = _PY_HEADER.match(line)
        if not match:
            continue
        end = _logical_line_end(doc, candidate)
        code = doc.text[doc.index.starts[candidate] : end]
        if code.rstrip().endswith(":"):
            return None
        keyword = match.group(2)
        what = _HEADER_WHAT.get(keyword, f"`{keyword}`")
        return SyntaxProblem(
            end, end, f"expected `:` after {what}", "expected-colon", Edit(":", end, end), "Insert `:`"
        )
    return None


def _logical_line_end(doc: Document, line: int) -> int:
    """End of the code (before any comment) of the logical line starting at `line`: brackets balanced."""
    depth = 0
    for row in range(line, min(line + 50, doc.line_count)):
        text = doc.line_text(row)
        code = text.split("#", 1)[0] if "#" in text and "'" not in text and '"' not in text else text
        depth += sum(code.count(o) for o in _OPENERS) - sum(code.count(c) for c in _CLOSERS)
        if depth <= 0 or row == line + 49:
            start = int(doc.index.starts[row])
            return start + len(code.rstrip())
    return doc.index.line_span(line)[1]


def _unclosed_bracket(doc: Document, leaves: list[tree_sitter.Node]) -> SyntaxProblem | None:
    stack: list[int] = []
    for i, leaf in enumerate(leaves):
        if leaf.type in _OPENERS:
            stack.append(i)
        elif leaf.type in _CLOSERS and stack and leaves[stack[-1]].type == _CLOSERS[leaf.type]:
            stack.pop()
    if not stack:
        return None
    i = stack[-1]
    opener = leaves[i]
    indent = len(doc.line_text(opener.start_point.row)) - len(doc.line_text(opener.start_point.row).lstrip())
    last = opener
    for leaf in leaves[i + 1 :]:  # continuation lines are indented deeper than the opener's line
        if leaf.start_point.row > last.end_point.row and leaf.start_point.column <= indent:
            break
        last = leaf
    a, b = doc.str_offset(opener.start_byte), doc.str_offset(opener.end_byte)
    at = doc.str_offset(last.end_byte)
    closer = _OPENERS[opener.type]
    return SyntaxProblem(
        a,
        b,
        f"`{opener.type}` is never closed",
        "unclosed-bracket",
        Edit(closer, at, at),
        f"Insert `{closer}`",
    )


def _python_indentation(doc: Document, budget: list[int]) -> list[SyntaxProblem]:
    """Statements indented deeper than their siblings, and bodies not indented past their header."""
    assert doc.tree is not None
    found: list[SyntaxProblem] = []
    stack = [doc.tree.root_node]
    while stack and budget[0] > 0 and len(found) < MAX_PROBLEMS:
        node = stack.pop()
        budget[0] -= 1
        if node.type in ("module", "block"):
            found += _misindented(doc, node)
        stack.extend(c for c in node.named_children if c.type in _PY_COMPOUND or c.type == "block")
    return found


def _misindented(doc: Document, block: tree_sitter.Node) -> list[SyntaxProblem]:
    statements = [c for c in block.named_children if c.type != "comment" and not c.is_error]
    if not statements:
        if block.type == "block" and block.start_byte == block.end_byte and not block.children:
            a = doc.str_offset(block.start_byte)
            return [SyntaxProblem(a, a, "expected an indented block", "expected-indent")]
        return []
    found: list[SyntaxProblem] = []
    column = 0 if block.type == "module" else statements[0].start_point.column
    if block.type == "block" and block.parent is not None:
        first = statements[0]
        header_row, header_indent = block.parent.start_point.row, _line_indent(doc, block.parent)
        if first.start_point.row > header_row and first.start_point.column <= header_indent:
            a = doc.str_offset(first.start_byte)
            found.append(SyntaxProblem(a, a, "expected an indented block", "expected-indent"))
    row = -1
    for child in statements:
        if child.start_point.row > row and child.start_point.column > column:
            a = doc.str_offset(child.start_byte)
            b = doc.index.line_span(doc.index.line_of(a))[1]
            found.append(SyntaxProblem(a, b, "unexpected indentation", "unexpected-indent"))
        row = child.end_point.row
    return found


def _line_indent(doc: Document, node: tree_sitter.Node) -> int:
    return indent_width(doc.line_text(node.start_point.row))


def checked(doc: Document, parser: tree_sitter.Parser, problem: SyntaxProblem) -> SyntaxProblem:
    """Keep a problem's fix only when applying it leaves fewer parse errors."""
    if problem.fix is None or doc.tree is None:
        return problem
    if len(doc.text) <= FIX_CHECK_MAX_CHARS and fix_reduces_errors(doc, parser, problem.fix):
        return problem
    return SyntaxProblem(problem.start, problem.end, problem.message, problem.code)


def fix_reduces_errors(doc: Document, parser: tree_sitter.Parser, edit: Edit) -> bool:
    """Does applying `edit` leave fewer ERROR/MISSING nodes (or unexpected indents) than now?"""
    assert doc.tree is not None
    new_text = doc.text[: edit.start] + edit.text + doc.text[edit.end :]
    new_tree = parser.parse(new_text.encode("utf-8", "surrogatepass"))
    return count_errors(new_tree.root_node) < count_errors(doc.tree.root_node)


def region_parses(parser: tree_sitter.Parser, text: str, start: int, end: int) -> bool:
    """Does `text` parse without any error touching text[start:end] (str offsets)?"""
    source = text.encode("utf-8", "surrogatepass")
    tree = parser.parse(source)
    if not tree.root_node.has_error:
        return True
    a, b = (
        len(text[:start].encode("utf-8", "surrogatepass")),
        len(text[:end].encode("utf-8", "surrogatepass")),
    )
    for node in _error_nodes(tree.root_node, [MAX_VISITED]):
        if node.start_byte <= b and node.end_byte >= a:
            return False
    return True
