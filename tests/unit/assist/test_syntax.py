"""Syntax diagnostics from tree-sitter ERROR/MISSING nodes (server/assist/syntax.py): messages a
person understands, precise ranges, stable codes, and fixes kept only when re-parsing confirms them."""

from __future__ import annotations

import pytest
import tree_sitter

from gpt_lsp.assist.syntax import MAX_PROBLEMS, fix_reduces_errors, region_parses, syntax_problems
from gpt_lsp.text.documents import DocumentStore


def problems(text: str, language_id: str = "python", uri: str = "file:///t.py"):
    doc = DocumentStore().open(uri, language_id, 1, text)
    parser = tree_sitter.Parser(doc.spec.language) if doc.spec else None
    return doc, syntax_problems(doc, parser)


@pytest.mark.parametrize(
    "text,message,code,marked",
    [
        ("def f(x)\n    return x\n", "expected `:` after function signature", "expected-colon", ""),
        ("if x\n    y = 1\n", "expected `:` after `if` condition", "expected-colon", ""),
        ("for i in range(3)\n    print(i)\n", "expected `:` after `for` clause", "expected-colon", ""),
        ("class A\n    pass\n", "expected `:` after class name", "expected-colon", ""),
        ("x = foo(1, 2\ny = 3\n", "`(` is never closed", "unclosed-bracket", "("),
        ("x = 1 +\n", "expected an expression after `+`", "incomplete-expression", "+"),
        ("print('abc)\n", "unterminated string", "unterminated-string", "'abc)"),
        ("def f(:\n  pass\n", "missing `)`", "missing-token", ""),
        ("def f(a):\n    x = 1\n        y = 2\n", "unexpected indentation", "unexpected-indent", "y = 2"),
        ("  x = 1\n", "unexpected indentation", "unexpected-indent", "x = 1"),
        ("def f():\nreturn 1\n", "expected an indented block", "expected-indent", ""),
        ("import\n", "unexpected `import`", "unexpected-token", "import"),
    ],
)
def test_python_errors_get_human_messages_codes_and_precise_ranges(text, message, code, marked):
    doc, found = problems(text)
    assert [(p.message, p.code) for p in found] == [(message, code)]
    assert doc.text[found[0].start : found[0].end] == marked


@pytest.mark.parametrize(
    "text,message,fixed",
    [
        ("let x = foo(1, 2;\n", "missing `)`", "let x = foo(1, 2);\n"),
        ("function f() {\n  return 1\n", "missing `}`", "function f() {\n  return 1}\n"),
        ("const a = [1, 2\n", "`[` is never closed", "const a = [1, 2]\n"),
    ],
)
def test_javascript_mechanical_fixes_make_the_file_parse(text, message, fixed):
    doc, [problem] = problems(text, "javascript", "file:///t.js")
    assert problem.message == message and problem.fix is not None
    edit = problem.fix
    assert doc.text[: edit.start] + edit.text + doc.text[edit.end :] == fixed


def test_fixes_are_checked_by_reparsing():
    doc, [problem] = problems("if x\n    y = 1\n")
    assert problem.fix is not None and problem.fix_title == "Insert `:`"
    assert fix_reduces_errors(doc, tree_sitter.Parser(doc.spec.language), problem.fix)


def test_valid_code_unsupported_languages_and_empty_files_have_no_problems():
    assert problems("def f(x):\n    # note\n    return x\n")[1] == []
    assert problems("if (x {", "plaintext", "file:///t.txt")[1] == []
    assert problems("")[1] == []


def test_a_hopeless_file_yields_a_bounded_number_of_problems():
    _, found = problems("".join(f"def f{i}(\n" if i % 2 else "  x = )\n" for i in range(2000)))
    assert 0 < len(found) <= MAX_PROBLEMS


def test_non_ascii_text_keeps_ranges_in_characters():
    doc, [problem] = problems("s = 'żółw 😋'\nx = foo(1, 2\n")
    assert doc.text[problem.start : problem.end] == "("


def test_region_parses_looks_only_at_the_region():
    parser = tree_sitter.Parser(DocumentStore().open("file:///t.py", "python", 1, "").spec.language)
    text = "x = (\ny = 1\n"
    assert not region_parses(parser, text, 0, 5)
    assert region_parses(parser, "x = 1\ny = 2\n", 0, 5)
