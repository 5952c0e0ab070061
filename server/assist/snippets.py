"""Generated snippets on request: implement a function, write a docstring, code from a comment,
complete a block, repair a syntax error.

Each action is `plan_snippet` (tree-sitter finds the target node and decides what text is
replaced, what the model sees and where decoding stops) followed by `generate_snippet` (the
completion pipeline's prompt, decoded with the plan's stop rules, re-indented, parse-checked in
context). Nothing here knows LSP: menu titles, command IDs and options live in lsp/commands.py.
The plan's offsets are str offsets into the document version it was computed for.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np
import tree_sitter

from ..completion.pipeline import SAMPLING_TEMPERATURE, Pipeline
from ..completion.postprocess import MAX_BLOCK_LINES, Edit, adds_parse_errors, block_stop, count_errors
from ..inference.engine import DecodeLimits, StopRule
from ..text.documents import Document, Position
from ..text.syntax_tree import indent_of, parser_for
from .syntax import region_parses

MAX_SNIPPET_CHARS = 1_000_000  # documents larger than this get no snippet actions

_FUNCTION_WORDS = ("function", "method", "constructor", "func_literal", "arrow")
_DOC_COMMENT = {  # language -> (opening line marker, closer); closer "" = line comments
    "javascript": ("/**", "*/"),
    "typescript": ("/**", "*/"),
    "tsx": ("/**", "*/"),
    "java": ("/**", "*/"),
    "c": ("/**", "*/"),
    "cpp": ("/**", "*/"),
    "rust": ("///", ""),
    "go": ("//", ""),
}
_PLACEHOLDER = re.compile(r"^(pass|\.\.\.|raise\s+NotImplementedError\b.*)$", re.S)
_NOT_DESCRIPTIVE = re.compile(r"^(#!|#\s*-\*-|#\s*(type|noqa|pragma|pylint|fmt)\b)")


class SnippetKind(Enum):
    IMPLEMENT_FUNCTION = "implementFunction"
    GENERATE_DOCSTRING = "generateDocstring"
    CODE_FROM_COMMENT = "codeFromComment"
    COMPLETE_BLOCK = "completeBlock"
    REPAIR = "repair"  # a quick fix for a syntax error, not an action of its own


# The kinds a user asks for at a position (code actions), in menu order.
ACTION_KINDS = [k for k in SnippetKind if k is not SnippetKind.REPAIR]


@dataclass(frozen=True)
class SnippetPlan:
    """Replace text[start:end] with lead + generated text + tail; the model sees lead as prefix."""

    kind: SnippetKind
    start: int
    end: int
    lead: str  # the edit starts with this; it ends the model's prefix (indentation, `\"\"\"`, `/**`)
    tail: str  # appended after the generated text (a line break before a closing brace)
    min_indent: int  # generated lines indented less than this end the snippet
    closer: str = ""  # text that ends the snippet (docstring quotes, `*/`); "" = indentation rules
    line_marker: str = ""  # every generated line must start with this (`///` doc comments)
    stop_at_blank_line: bool = False  # code from a comment ends at its first blank line


@dataclass
class SnippetOutcome:
    """Candidate edits that parse in context (possibly none) and why."""

    edits: list[Edit]
    message: str
    version: int


# --- planning ---------------------------------------------------------------------------------


def available_snippets(doc: Document, position: Position) -> list[SnippetKind]:
    """The snippet actions that make sense at `position`, in menu order."""
    if doc.tree is None or doc.spec is None or len(doc.text) > MAX_SNIPPET_CHARS:
        return []
    return [k for k in ACTION_KINDS if plan_snippet(doc, k, position) is not None]


def plan_snippet(doc: Document, kind: SnippetKind, position: Position) -> SnippetPlan | None:
    """What `kind` would replace at `position`, or None when it does not apply there."""
    if doc.tree is None or doc.spec is None or position.line >= doc.line_count:
        return None
    offset = doc.offset_at(position)
    planners: dict[SnippetKind, Callable[[Document, int], SnippetPlan | None]] = {
        SnippetKind.IMPLEMENT_FUNCTION: _plan_implement,
        SnippetKind.GENERATE_DOCSTRING: _plan_docstring,
        SnippetKind.CODE_FROM_COMMENT: _plan_from_comment,
        SnippetKind.COMPLETE_BLOCK: _plan_complete_block,
    }
    planner = planners.get(kind)
    return planner(doc, offset) if planner else None


def plan_repair(doc: Document, start: int, end: int) -> SnippetPlan:
    """Rewrite the whole lines spanning text[start:end] (a syntax error) from their indentation."""
    first, last = doc.index.line_of(start), doc.index.line_of(max(start, end - 1) if end > start else end)
    line_start, line_end = int(doc.index.starts[first]), doc.index.line_span(last)[1]
    indent = indent_of(doc.line_text(first))
    return SnippetPlan(SnippetKind.REPAIR, line_start, line_end, indent, "", len(indent))


def _node_at(doc: Document, offset: int) -> tree_sitter.Node | None:
    assert doc.tree is not None
    byte = doc.byte_offset(offset)
    return doc.tree.root_node.descendant_for_byte_range(byte, byte)


def _indent_unit(doc: Document) -> str:
    """The file's indentation step, guessed from the first indented line (4 spaces by default)."""
    for line in doc.text[:20000].split("\n"):
        if line.startswith("\t"):
            return "\t"
        if line.startswith(" ") and line.strip():
            width = len(indent_of(line))
            return " " * (width if width in (2, 4, 8) else 4)
    return "    "


def _enclosing_definition(doc: Document, offset: int, functions_only: bool) -> tree_sitter.Node | None:
    """The innermost function (or class) whose header — or placeholder body — holds `offset`."""
    assert doc.spec is not None
    node = _node_at(doc, offset)
    byte = doc.byte_offset(offset)
    while node is not None:
        if node.type == "decorated_definition":
            node = node.child_by_field_name("definition") or node
        is_function = any(word in node.type for word in _FUNCTION_WORDS)
        if node.type in doc.spec.scope_types and (is_function or not functions_only):
            body = node.child_by_field_name("body")
            if body is not None and node.start_byte <= byte <= _header_end(body):
                return node
            if (
                body is not None
                and functions_only
                and byte <= body.end_byte
                and _placeholder(doc, body) is not None
            ):
                return node
            return None  # inside a real body: the action belongs to the code there, not this scope
        node = node.parent
    return None


def _header_end(body: tree_sitter.Node) -> int:
    """Byte where a definition's header ends: after its `:` (Python) or its `{`."""
    before = body.prev_sibling
    if before is not None and before.type == ":":
        return before.end_byte
    opens_with_brace = (body.text or b"")[:1] == b"{"
    return body.start_byte + 1 if body.type != "block" or opens_with_brace else body.start_byte


def _statements(body: tree_sitter.Node) -> list[tree_sitter.Node]:
    return [c for c in body.named_children if "comment" not in c.type]


def _is_docstring(node: tree_sitter.Node) -> bool:
    return (
        node.type == "expression_statement"
        and node.named_child_count == 1
        and node.named_children[0].type == "string"
    )


def _placeholder(doc: Document, body: tree_sitter.Node) -> list[tree_sitter.Node] | None:
    """The placeholder statements of an unimplemented body ([] when empty); None if implemented."""
    if body.has_error or not body.children and doc.spec and doc.spec.indent_based:
        return None
    statements = _statements(body)
    if statements and _is_docstring(statements[0]):
        statements = statements[1:]
    if all(_PLACEHOLDER.match(doc.text_of(s).strip()) for s in statements):
        return statements
    return None


def _plan_implement(doc: Document, offset: int) -> SnippetPlan | None:
    node = _enclosing_definition(doc, offset, functions_only=True)
    body = node.child_by_field_name("body") if node is not None else None
    if node is None or body is None or (placeholder := _placeholder(doc, body)) is None:
        return None
    header_indent = indent_of(doc.line_text(node.start_point.row))
    inner = header_indent + _indent_unit(doc)
    if doc.spec and doc.spec.indent_based:
        if placeholder and placeholder[0].start_point.row > node.start_point.row:
            start = int(doc.index.starts[placeholder[0].start_point.row])
            inner = indent_of(doc.line_text(placeholder[0].start_point.row))
            return SnippetPlan(
                SnippetKind.IMPLEMENT_FUNCTION,
                start,
                doc.str_offset(placeholder[-1].end_byte),
                inner,
                "",
                len(inner),
            )
        statements = _statements(body)
        if not placeholder and statements:  # a docstring only: continue after it
            at = doc.str_offset(statements[-1].end_byte)
            inner = indent_of(doc.line_text(statements[-1].start_point.row))
            return SnippetPlan(SnippetKind.IMPLEMENT_FUNCTION, at, at, "\n" + inner, "", len(inner))
        colon = body.prev_sibling  # `def f(): pass` on one line: move the body to its own line
        start = (
            doc.str_offset(colon.end_byte)
            if colon is not None and colon.type == ":"
            else doc.str_offset(body.start_byte)
        )
        return SnippetPlan(
            SnippetKind.IMPLEMENT_FUNCTION, start, doc.str_offset(body.end_byte), "\n" + inner, "", len(inner)
        )
    if (
        body.child_count < 2
        or body.children[0].type != "{"
        or body.children[-1].type != "}"
        or _statements(body)
    ):
        return None
    start, end = doc.str_offset(body.start_byte) + 1, doc.str_offset(body.end_byte) - 1
    return SnippetPlan(
        SnippetKind.IMPLEMENT_FUNCTION, start, end, "\n" + inner, "\n" + header_indent, len(inner)
    )


def _docstring_quote(doc: Document) -> str:
    return "'''" if doc.text.count("'''") > doc.text.count('"""') else '"""'


def _plan_docstring(doc: Document, offset: int) -> SnippetPlan | None:
    assert doc.spec is not None
    node = _enclosing_definition(doc, offset, functions_only=False)
    body = node.child_by_field_name("body") if node is not None else None
    if node is None or body is None or node.has_error:
        return None
    if doc.spec.indent_based:
        statements = _statements(body)
        if (
            not statements
            or _is_docstring(statements[0])
            or statements[0].start_point.row == node.start_point.row
        ):
            return None
        row = statements[0].start_point.row
        start, indent, quote = (
            int(doc.index.starts[row]),
            indent_of(doc.line_text(row)),
            _docstring_quote(doc),
        )
        return SnippetPlan(
            SnippetKind.GENERATE_DOCSTRING, start, start, indent + quote, "\n", len(indent), closer=quote
        )
    marker, closer = _DOC_COMMENT.get(doc.spec.name, ("", ""))
    owner = node.parent if node.parent is not None and node.parent.type in ("export_statement",) else node
    above = owner.prev_sibling
    if not marker or (
        above is not None and "comment" in above.type and above.end_point.row >= owner.start_point.row - 1
    ):
        return None
    start, indent = (
        int(doc.index.starts[owner.start_point.row]),
        indent_of(doc.line_text(owner.start_point.row)),
    )
    if closer:
        return SnippetPlan(
            SnippetKind.GENERATE_DOCSTRING, start, start, indent + marker, "\n", 0, closer=closer
        )
    return SnippetPlan(
        SnippetKind.GENERATE_DOCSTRING, start, start, indent + marker + " ", "\n", 0, line_marker=marker
    )


def _plan_from_comment(doc: Document, offset: int) -> SnippetPlan | None:
    assert doc.spec is not None
    row = doc.index.line_of(offset)
    line = doc.line_text(row)
    node = _node_at(doc, int(doc.index.starts[row]) + len(indent_of(line)))
    if node is None or node.type not in doc.spec.comment_types or node.start_point.row != row:
        return None
    if _NOT_DESCRIPTIVE.match(line.strip()) or len(re.findall(r"[A-Za-z]{2,}", line)) < 2:
        return None
    last = row
    while _is_comment_line(doc, last + 1, indent_of(line)):
        last += 1
    following = doc.line_text(last + 1)
    if last + 1 < doc.line_count and following.strip() and len(indent_of(following)) >= len(indent_of(line)):
        if not following.strip().startswith(("}", ")", "]")):
            return None  # code already follows the comment
    indent = indent_of(line)
    at = doc.index.line_span(last)[1]
    return SnippetPlan(
        SnippetKind.CODE_FROM_COMMENT, at, at, "\n" + indent, "", len(indent), stop_at_blank_line=True
    )


def _is_comment_line(doc: Document, row: int, indent: str) -> bool:
    assert doc.spec is not None
    text = doc.line_text(row)
    if row >= doc.line_count or indent_of(text) != indent or not text.strip():
        return False
    node = _node_at(doc, int(doc.index.starts[row]) + len(indent))
    return node is not None and node.type in doc.spec.comment_types


def _plan_complete_block(doc: Document, offset: int) -> SnippetPlan | None:
    assert doc.spec is not None
    row = doc.index.line_of(offset)
    while row > 0 and not doc.line_text(row).strip():
        row -= 1
    line = doc.line_text(row)
    node = _node_at(doc, int(doc.index.starts[row]) + len(indent_of(line)))
    while node is not None and node.type not in doc.spec.block_types:
        node = node.parent
    statements = _statements(node) if node is not None else []
    if (
        node is None
        or not statements
        or node.has_error
        or doc.spec.name != "python"
        and node.type == "object"
    ):
        return None
    last = statements[-1]
    if row != last.end_point.row or all(_PLACEHOLDER.match(doc.text_of(s).strip()) for s in statements):
        return None  # not at the end of the block, or a placeholder body (implement it instead)
    if not doc.spec.indent_based and node.end_point.row == last.end_point.row:
        return None  # `{ return 1; }` on one line: no room for another line before the brace
    cursor_row = doc.index.line_of(offset)
    if (
        cursor_row > row
        and doc.spec.indent_based
        and len(indent_of(doc.line_text(cursor_row))) < len(indent_of(line))
    ):
        return None  # a blank line the user has already dedented: outside the block
    indent = indent_of(doc.line_text(last.start_point.row))
    at = doc.index.line_span(last.end_point.row)[1]
    return SnippetPlan(SnippetKind.COMPLETE_BLOCK, at, at, "\n" + indent, "", len(indent))


# --- generation -------------------------------------------------------------------------------


def _stop_rule(plan: SnippetPlan) -> StopRule:
    indent_stop = block_stop(plan.min_indent)

    def stop(text: str) -> int | None:
        if plan.closer:
            at = text.find(plan.closer)
            return at + len(plan.closer) if at >= 0 else None
        lines = text.split("\n")
        if plan.line_marker:
            for number, line in enumerate(lines[1:-1], start=1):
                if not line.strip().startswith(plan.line_marker) or number >= MAX_BLOCK_LINES:
                    return len("\n".join(lines[:number]))
            return None
        if plan.stop_at_blank_line:
            for number, line in enumerate(lines[1:-1], start=1):
                if not line.strip() and "".join(lines[:number]).strip():
                    return len("\n".join(lines[:number]))
        # The lead's line break means generated line 0 already sits at the body's indentation.
        return indent_stop(text)

    return stop


def shape_snippet(plan: SnippetPlan, generated: str) -> Edit | None:
    """lead + generated + tail as an edit, or None when nothing usable came out."""
    if plan.closer and plan.closer not in generated:
        return None  # an unfinished docstring or comment would swallow the code after it
    body = generated.rstrip()
    if plan.line_marker:
        body = "\n".join(line for line in body.split("\n") if line.strip())
    if not body.strip() or (plan.closer and not body[: -len(plan.closer)].strip()):
        return None
    lines = body.split("\n")
    prefix = plan.lead.split("\n")[-1]  # indentation the first generated line already has
    for number, line in enumerate(lines[1:], start=1):  # re-indent: never shallower than the block
        if line.strip() and len(indent_of(line)) < plan.min_indent:
            lines[number] = prefix + line.lstrip(" \t")
    return Edit(plan.lead + "\n".join(lines) + plan.tail, plan.start, plan.end)


def generate_snippet(
    pipeline: Pipeline,
    doc: Document,
    plan: SnippetPlan,
    limits: DecodeLimits,
    n: int = 1,
    cancelled: Callable[[], bool] = lambda: False,
) -> SnippetOutcome:
    """Decode up to `n` candidates (greedy first, then sampled) and keep those that parse in context."""
    assert doc.spec is not None
    prompt = pipeline.prompt_for(
        doc, (0, plan.start), (plan.end, len(doc.text)), limits, lead=plan.lead, heal=False
    )
    engine, parser = pipeline.engine, parser_for(doc.spec.language)
    stop = _stop_rule(plan)
    rng = np.random.default_rng()
    edits: list[Edit] = []
    rejected = "the model produced nothing"
    for i in range(max(1, n)):
        temperature = limits.temperature if i == 0 else (limits.temperature or SAMPLING_TEMPERATURE)
        step = DecodeLimits(limits.max_tokens, limits.timeout_ms, temperature, limits.top_p)
        generation = engine.generate(prompt.ids, step, stop, cancelled, rng=rng if temperature > 0 else None)
        if generation.stop_reason == "cancelled" or cancelled():
            return SnippetOutcome([], "cancelled", doc.version)
        edit = shape_snippet(plan, generation.text)
        if edit is None:
            rejected = "the model produced nothing usable here"
        elif not parses_in_context(doc, parser, plan, edit):
            rejected = "the generated code does not parse here"
        elif all(e.text != edit.text for e in edits):
            edits.append(edit)
    message = f"{len(edits)} candidate(s)" if edits else f"{rejected}; nothing was applied"
    return SnippetOutcome(edits, message, doc.version)


def parses_in_context(doc: Document, parser: tree_sitter.Parser, plan: SnippetPlan, edit: Edit) -> bool:
    """The edited region parses cleanly and the document as a whole gains no syntax errors
    (a repair must remove at least one)."""
    assert doc.tree is not None
    new_text = doc.text[: edit.start] + edit.text + doc.text[edit.end :]
    if not region_parses(parser, new_text, edit.start, edit.start + len(edit.text)):
        return False
    if plan.kind is SnippetKind.REPAIR:
        new_tree = parser.parse(new_text.encode("utf-8", "surrogatepass"))
        return count_errors(new_tree.root_node) < count_errors(doc.tree.root_node)
    return not adds_parse_errors(parser, doc.tree, doc.source, doc.text, edit)
