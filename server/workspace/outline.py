"""A file's outline: the names it defines at top level, each with the header a caller needs.

What another file needs from this one is its interface, not its bodies: `def load(path, *,
strict=False) -> Config:`, a class header with its methods' headers, `DEFAULT_PORT = 8080`. That
is what Copilot-style tools put in the prompt for imported modules, and what costs few tokens.
One walk over the top-level nodes of a tree-sitter tree (and one level into classes); no
semantic analysis, so it works for every grammar we ship.
"""

from __future__ import annotations

from dataclasses import dataclass

import tree_sitter

from ..text.languages import LanguageSpec
from ..text.syntax_tree import header_of, parser_for

MAX_MEMBERS = 12  # method headers kept per class; a huge class shows its first ones
MAX_ASSIGNMENT_CHARS = 120  # `NAME = value` lines are cut here
MAX_TOP_LEVEL_NODES = 2000  # a generated file with more top-level nodes shows its first ones
_ASSIGNMENT_TYPES = frozenset({"assignment", "lexical_declaration", "variable_declaration", "const_item"})
_WRAPPER_TYPES = frozenset({"decorated_definition", "export_statement", "expression_statement"})


@dataclass(frozen=True)
class Definition:
    """One name a file defines at top level (or a method of one of its classes)."""

    name: str
    header: str  # what the prompt shows: a signature, a class header with member headers, or `NAME = ...`
    line: int  # 0-based line of the definition
    owner: str = ""  # the class, for a method


def outline(source: bytes, spec: LanguageSpec, tree: tree_sitter.Tree | None = None) -> list[Definition]:
    """The definitions of a file, in file order; parses `source` unless its tree is given."""
    if tree is None:
        tree = parser_for(spec.language).parse(source)
    found: list[Definition] = []
    for index, node in enumerate(tree.root_node.children):
        if index >= MAX_TOP_LEVEL_NODES:
            break
        found += _definitions(source, spec, _unwrap(node))
    return found


def _unwrap(node: tree_sitter.Node) -> tree_sitter.Node:
    """The definition inside a decorator, an `export`, or an expression statement."""
    while node.type in _WRAPPER_TYPES:
        inner = node.child_by_field_name("definition") or node.child_by_field_name("declaration")
        if inner is None:
            named = [c for c in node.named_children if c.type not in ("decorator", "comment")]
            inner = named[0] if len(named) == 1 else None
        if inner is None:
            break
        node = inner
    return node


def _definitions(source: bytes, spec: LanguageSpec, node: tree_sitter.Node) -> list[Definition]:
    line = node.start_point.row
    if node.type in spec.scope_types:
        name = _name(source, node)
        if not name:
            return []
        members = _members(source, spec, node)
        header = header_of(source, node)
        methods = [Definition(m_name, m_header, m_line, owner=name) for m_name, m_header, m_line in members]
        body = "".join("\n" + m_header for _, m_header, _ in members)
        return [Definition(name, header + body, line), *methods]
    if node.type in _ASSIGNMENT_TYPES:
        target = (
            node.child_by_field_name("left") or node.child_by_field_name("name") or _first_declarator(node)
        )
        if target is None or target.type != "identifier":
            return []
        text = source[node.start_byte : node.end_byte].decode("utf-8", "replace").split("\n", 1)[0]
        if len(text) > MAX_ASSIGNMENT_CHARS:
            text = text[:MAX_ASSIGNMENT_CHARS] + " ..."
        return [Definition(_text(source, target), text, line)]
    return []


def _members(source: bytes, spec: LanguageSpec, node: tree_sitter.Node) -> list[tuple[str, str, int]]:
    """(name, header, line) of the definitions directly inside a class-like body."""
    body = node.child_by_field_name("body")
    if body is None:
        return []
    members = []
    for child in body.named_children:
        child = _unwrap(child)
        if child.type in spec.scope_types and (name := _name(source, child)):
            members.append((name, header_of(source, child), child.start_point.row))
            if len(members) >= MAX_MEMBERS:
                break
    return members


def _name(source: bytes, node: tree_sitter.Node) -> str:
    name = node.child_by_field_name("name")
    if name is None:  # C/C++ functions: the name sits inside the declarator
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in ("identifier", "field_identifier"):
            declarator = declarator.child_by_field_name("declarator")
        name = declarator
    return _text(source, name) if name is not None else ""


def _first_declarator(node: tree_sitter.Node) -> tree_sitter.Node | None:
    for child in node.named_children:
        if child.type == "variable_declarator":
            return child.child_by_field_name("name")
    return node.child_by_field_name("pattern")


def _text(source: bytes, node: tree_sitter.Node) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")
