"""Stop rules and shaping of raw completions into edits (server/completion/postprocess.py)."""

import tree_sitter
import tree_sitter_python

from gpt_lsp.completion.postprocess import (
    Edit,
    LineBudget,
    adds_parse_errors,
    block_stop,
    count_errors,
    line_stop,
    shape_edit,
)


def test_line_stop_cuts_at_the_first_newline_after_content():
    assert line_stop("foo(bar)\nbaz") == len("foo(bar)")
    assert line_stop("foo(bar") is None
    assert line_stop("\nfoo\nbar") == len("\nfoo")


def test_block_stop_cuts_where_the_code_dedents_below_the_body():
    stop = block_stop(min_indent=5)
    text = "\n        x = 1\n        return x\n    def other():\n"
    cut = stop(text)
    assert text[:cut] == "\n        x = 1\n        return x"
    assert stop("\n        x = 1\n        y") is None


def test_a_spent_line_budget_ends_the_block_at_its_last_complete_line():
    budget = LineBudget(block_stop(min_indent=5), ms=0)
    assert budget("\n        x = 1\n        y = ") == len("\n        x = 1")
    assert budget.spent


def test_a_line_budget_never_leaves_an_empty_suggestion_or_overrides_the_rule():
    budget = LineBudget(block_stop(min_indent=5), ms=0)
    assert budget("\n        x = ") is None  # no complete line yet: decoding goes on
    assert budget("  \n        x") is None
    dedent = "\n        x = 1\n    def other():\n"
    assert budget(dedent) == block_stop(min_indent=5)(dedent) and not budget.spent


def test_a_line_budget_not_yet_spent_lets_the_block_grow():
    budget = LineBudget(block_stop(min_indent=5), ms=60_000)
    assert budget("\n        x = 1\n        y = 2\n        z") is None and not budget.spent


def test_closing_characters_after_the_cursor_are_replaced_not_duplicated():
    # `foo(|)` and the model writes `a, b)`: the edit must swallow the existing `)`.
    edit = shape_edit("a, b)", offset=4, line_prefix="foo(", line_suffix=")", suffix=")\n")
    assert edit == Edit("a, b)", 4, 5)
    keep = shape_edit("a, b", offset=4, line_prefix="foo(", line_suffix=")", suffix=")\n")
    assert keep == Edit("a, b", 4, 4)


def test_completion_that_repeats_the_following_lines_is_trimmed():
    suffix = "\n    return total\n"
    edit = shape_edit("total += x\n    return total", 10, "    ", "", suffix)
    assert edit is not None and edit.text == "total += x"


def test_leading_indent_is_not_doubled_on_an_indented_empty_line():
    edit = shape_edit("    return 1", 20, "    ", "", "")
    assert edit is not None and edit.text == "return 1"


def test_whitespace_only_completion_is_dropped():
    assert shape_edit("   \n  ", 0, "", "", "") is None


def test_parse_check_rejects_an_insertion_that_breaks_the_file():
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    text = "def f(x):\n    return \n"
    tree = parser.parse(text.encode())
    offset = text.index("return ") + len("return ")
    source = text.encode()
    assert not adds_parse_errors(parser, tree, source, text, Edit("x + 1", offset, offset))
    assert adds_parse_errors(parser, tree, source, text, Edit("x + (1", offset, offset))
    # Non-ASCII before the edit: byte and character offsets differ.
    text = "s = 'é😋'\ndef f(x):\n    return \n"
    offset = text.index("return ") + len("return ")
    tree, source = parser.parse(text.encode()), text.encode()
    assert not adds_parse_errors(parser, tree, source, text, Edit("x", offset, offset))
    assert adds_parse_errors(parser, tree, source, text, Edit("x +", offset, offset))


def test_incremental_check_agrees_with_a_fresh_parse():
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    text = "import os\n\n\ndef g(a, b):\n    if a:\n        return b\n    return \n"
    tree, source = parser.parse(text.encode()), text.encode()
    offset = len(text) - 1
    for insertion in ["a", "a +", "(a, b", "[a, b]", "a if b else", "a if b else b", "lambda: 1"]:
        fresh = parser.parse((text[:offset] + insertion + text[offset:]).encode())
        assert adds_parse_errors(parser, tree, source, text, Edit(insertion, offset, offset)) == (
            count_errors(fresh.root_node) > count_errors(tree.root_node)
        ), insertion


def test_an_error_hidden_in_a_missing_newline_is_counted():
    """tree-sitter reports `(MISSING _newline)` for `7 t` but lists no such child: the node's own
    has_error must still count (found when a sampled block completion slipped through)."""
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_python.language()))
    source = "def total(items):\n    return items\n\n\nclass Box:\n    pass\n"
    at = source.index("return items") + len("return items")
    broken = source[:at] + "\n                7 t" + source[at:]
    assert count_errors(parser.parse(broken.encode()).root_node) >= 1
    tree = parser.parse(source.encode())
    assert adds_parse_errors(parser, tree, source.encode(), source, Edit("\n                7 t", at, at))
    assert not adds_parse_errors(parser, tree, source.encode(), source, Edit("\n    # done", at, at))
