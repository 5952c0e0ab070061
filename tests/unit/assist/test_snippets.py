"""Snippet planning, stop rules, re-indentation and the parse check (server/assist/snippets.py), with a
scripted engine whose answer is fixed, so every rule is pinned down without a model."""

from __future__ import annotations

from gpt_lsp.assist.snippets import (
    SnippetKind,
    available_snippets,
    generate_snippet,
    plan_repair,
    plan_snippet,
)
from gpt_lsp.completion.pipeline import Pipeline
from gpt_lsp.completion.prompt import FimIds
from gpt_lsp.inference.engine import DecodeLimits, Generation
from gpt_lsp.settings import GenerationSettings
from gpt_lsp.text.documents import DocumentStore, Position

K = SnippetKind
SOURCE = '''import os

# read every line of the file at path


def load(path):
    pass


def total(items):
    """Sum the items."""
    result = 0
    for item in items:
        result += item
    return result


def todo(x):
    """Not yet."""
    raise NotImplementedError


class Box:
    def size(self): ...
'''


class ScriptedEngine:
    """One token per character; each generate() returns the next scripted answer through the stop rule."""

    fim = FimIds(-1, -2, -3)
    completion_prompt = "fim"
    context_length = 512
    bos_id = None  # a model trained without <bos>
    eos_id = 0

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.prompts: list[str] = []

    def encode(self, text):
        return [ord(c) for c in text]

    def decode(self, ids):
        return "".join(chr(i) for i in ids if i >= 0)

    def generate(
        self, prompt_ids, limits: DecodeLimits, stop=None, cancelled=lambda: False, healed="", rng=None
    ):
        self.prompts.append(self.decode(prompt_ids))
        text = self.answers.pop(0) if self.answers else ""
        cut = stop(text + "\n\n") if stop else None
        return Generation(text[:cut] if cut is not None else text, len(text), "stop_rule", 1.0)


def pipeline_of(engine: ScriptedEngine) -> Pipeline:
    return Pipeline(engine, GenerationSettings())  # snippets use the completion pipeline's prompt


def doc_of(text: str, language_id: str = "python", uri: str = "file:///t.py"):
    return DocumentStore().open(uri, language_id, 1, text)


def run(doc, kind, position, *answers, n=1):
    plan = plan_snippet(doc, kind, position)
    assert plan is not None
    engine = ScriptedEngine(*answers)
    outcome = generate_snippet(pipeline_of(engine), doc, plan, DecodeLimits(64, 1000), n)
    return outcome, engine


def apply(doc, edit) -> str:
    return doc.text[: edit.start] + edit.text + doc.text[edit.end :]


def test_actions_are_offered_only_where_they_apply():
    doc = doc_of(SOURCE)
    assert available_snippets(doc, Position(5, 4)) == [K.IMPLEMENT_FUNCTION, K.GENERATE_DOCSTRING]
    assert available_snippets(doc, Position(6, 4)) == [K.IMPLEMENT_FUNCTION]  # inside `pass`
    assert available_snippets(doc, Position(2, 3)) == [K.CODE_FROM_COMMENT]
    assert available_snippets(doc, Position(14, 8)) == [K.COMPLETE_BLOCK]
    assert available_snippets(doc, Position(18, 4)) == [K.IMPLEMENT_FUNCTION]  # docstring + raise
    assert available_snippets(doc, Position(22, 2)) == [K.GENERATE_DOCSTRING]  # class Box
    for line in (0, 9, 11, 7):  # import, documented+implemented def, middle of a body, blank line
        assert available_snippets(doc, Position(line, 2)) == []


def test_bad_positions_unsupported_languages_and_broken_files_get_nothing():
    assert available_snippets(doc_of(SOURCE), Position(999, 0)) == []
    assert available_snippets(doc_of("# read the file\n", "plaintext", "file:///t.txt"), Position(0, 3)) == []
    assert plan_snippet(doc_of(SOURCE), K.REPAIR, Position(5, 4)) is None


def test_implement_replaces_the_placeholder_and_stops_at_the_dedent():
    doc = doc_of(SOURCE)
    outcome, engine = run(
        doc,
        K.IMPLEMENT_FUNCTION,
        Position(5, 4),
        "with open(path) as f:\n        return f.readlines()\ndef other():",
    )
    [edit] = outcome.edits
    assert edit.text == "    with open(path) as f:\n        return f.readlines()"
    assert doc.text[edit.start : edit.end] == "    pass"
    assert "def load(path):\n    " in engine.prompts[0]


def test_implement_keeps_the_docstring_and_replaces_raise_not_implemented():
    doc = doc_of(SOURCE)
    outcome, _ = run(doc, K.IMPLEMENT_FUNCTION, Position(17, 4), "return x * 2")
    [edit] = outcome.edits
    assert doc.text[edit.start : edit.end] == "    raise NotImplementedError"
    assert '"""Not yet."""\n    return x * 2\n' in apply(doc, edit)


def test_generated_code_that_does_not_parse_is_refused_with_a_reason():
    doc = doc_of(SOURCE)
    outcome, _ = run(doc, K.IMPLEMENT_FUNCTION, Position(5, 4), "return (((")
    assert outcome.edits == [] and "does not parse" in outcome.message


def test_docstring_stops_at_the_closing_quotes_and_follows_the_file_quote_style():
    doc = doc_of(SOURCE)
    outcome, _ = run(doc, K.GENERATE_DOCSTRING, Position(5, 4), 'Read the lines of `path`."""\n    more junk')
    [edit] = outcome.edits
    assert edit.text == '    """Read the lines of `path`."""\n'
    assert '    """Read the lines of `path`."""\n    pass' in apply(doc, edit)
    unfinished, _ = run(doc, K.GENERATE_DOCSTRING, Position(5, 4), "Read the lines and never close")
    assert unfinished.edits == []


def test_docstring_for_a_javascript_function_is_a_block_comment_above_it():
    doc = doc_of("function add(a, b) {\n  return a + b;\n}\n", "javascript", "file:///t.js")
    outcome, _ = run(doc, K.GENERATE_DOCSTRING, Position(0, 3), " Add two numbers. */\nfunction")
    [edit] = outcome.edits
    assert apply(doc, edit).startswith("/** Add two numbers. */\nfunction add")


def test_implement_fills_an_empty_brace_body_with_its_own_indentation():
    doc = doc_of("function add(a, b) {\n}\n", "javascript", "file:///t.js")
    outcome, _ = run(doc, K.IMPLEMENT_FUNCTION, Position(0, 3), "return a + b;\n}")
    [edit] = outcome.edits
    assert apply(doc, edit) == "function add(a, b) {\n    return a + b;\n}\n"


def test_code_from_comment_stops_at_the_first_blank_line():
    doc = doc_of(SOURCE)
    outcome, _ = run(doc, K.CODE_FROM_COMMENT, Position(2, 3), "lines = open(path).readlines()\n\nprint(1)")
    [edit] = outcome.edits
    assert edit.text == "\nlines = open(path).readlines()"
    assert edit.start == doc.text.index("at path") + len("at path")


def test_complete_block_continues_after_the_last_statement_at_its_indentation():
    doc = doc_of(SOURCE)
    outcome, _ = run(doc, K.COMPLETE_BLOCK, Position(14, 4), "print(result)\n  bad dedent\n")
    [edit] = outcome.edits
    assert edit.text == "\n    print(result)"
    assert apply(doc, edit).count("    return result\n    print(result)\n") == 1


def test_several_candidates_are_deduplicated():
    doc = doc_of(SOURCE)
    outcome, _ = run(doc, K.COMPLETE_BLOCK, Position(14, 4), "print(1)", "print(1)", "print(2)", n=3)
    assert [e.text for e in outcome.edits] == ["\n    print(1)", "\n    print(2)"]


def test_a_repair_is_kept_only_when_it_makes_the_region_parse():
    doc = doc_of("x = 1 +\ny = 2\n")
    plan = plan_repair(doc, 6, 7)
    good = generate_snippet(pipeline_of(ScriptedEngine("x = 1 + 1\n")), doc, plan, DecodeLimits(64, 1000))
    assert [apply(doc, e) for e in good.edits] == ["x = 1 + 1\ny = 2\n"]
    bad = generate_snippet(pipeline_of(ScriptedEngine("x = 1 *\n")), doc, plan, DecodeLimits(64, 1000))
    assert bad.edits == []
