"""context.py: the EMPTY / LINE / BLOCK gate and the extra context, per language.

Each case is source text with `|` marking the cursor.
"""

from __future__ import annotations

import statistics
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpt_lsp.completion.context import CompletionContext, CompletionKind, analyze
from gpt_lsp.text.documents import Document, DocumentStore, Position, PositionEncoding

EMPTY, LINE, BLOCK = CompletionKind.EMPTY, CompletionKind.LINE, CompletionKind.BLOCK
EXTENSIONS = {"python": "py", "javascript": "js", "go": "go", "rust": "rs", "java": "java", "c": "c"}


def at_cursor(
    language: str, marked: str, window: int = 4000, store: DocumentStore | None = None
) -> tuple[Document, CompletionContext]:
    offset = marked.index("|")
    store = store or DocumentStore()
    doc = store.open(
        f"file:///w/t.{EXTENSIONS.get(language, 'txt')}", language, 1, marked.replace("|", "", 1)
    )
    return doc, analyze(doc, doc.position_at(offset), window)


GATE_TABLE = [
    # python
    ("python", "x = 1  # a comment|", EMPTY),
    ("python", "x = 1  # a com|ment", EMPTY),
    ("python", 'x = "ab|c"', EMPTY),
    ("python", 'x = "abc|"', LINE),
    ("python", 'x = "abc"|', LINE),
    ("python", 'x = f"{va|}"', LINE),  # code inside an f-string
    ("python", "value = comp|ute()", EMPTY),
    ("python", "print(x|)", LINE),
    ("python", "print(|x)", EMPTY),
    ("python", "def f():|", BLOCK),
    ("python", "class A(B):|", BLOCK),
    ("python", "if x:\n    pass\nelse:|", BLOCK),
    ("python", "def f():\n    |", BLOCK),
    ("python", "def f():\n\n    |\n\nx = 2", BLOCK),
    ("python", "def f(\n    a,\n) -> int:\n    |", BLOCK),
    ("python", "def f():\n    |\n    return 1", LINE),  # the body is not empty
    ("python", "def f():|\n    return 1", LINE),
    ("python", 'd = {"a":|', LINE),  # a dict colon opens no block
    ("python", "f = lambda x:|", LINE),
    ("python", "# Steps:\n|", LINE),  # a comment that ends with ':' opens no block
    ("python", "x = 1\ny = x + |", LINE),
    ("python", "# note\n|", LINE),
    ("python", 'def f():\n    """Compute the|\n    """', LINE),  # docstring sentence
    # javascript
    ("javascript", "let x = 1; // note|", EMPTY),
    ("javascript", "/* a |block */", EMPTY),
    ("javascript", "/* done */|", LINE),
    ("javascript", 'let s = "ab|c";', EMPTY),
    ("javascript", "const total = comp|ute();", EMPTY),
    ("javascript", "foo(bar|);", LINE),
    ("javascript", "foo(|bar);", EMPTY),
    ("javascript", "function f(a) {|", BLOCK),
    ("javascript", "function f(a) {|}", BLOCK),
    ("javascript", "items.map((x) => {|});", BLOCK),
    ("javascript", "function f(a) {\n  |\n}", BLOCK),
    ("javascript", "if (x) {\n  |\n  y();\n}", LINE),
    ("javascript", "let x = 1|", LINE),
    ("javascript", "const s = `a ${na|}`;", LINE),
    # go
    ("go", "package main\n// hello|", EMPTY),
    ("go", 'package main\nvar s = "ab|c"', EMPTY),
    ("go", "package main\nfunc f() {\n\tfo|o := 1\n}", EMPTY),
    ("go", "package main\nfunc f() {\n\tfmt.Println(|)\n}", LINE),
    ("go", "package main\nfunc f() {|", BLOCK),
    ("go", "package main\nfunc f() {\n\t|\n}", BLOCK),
    ("go", "package main\nfunc f() {\n\tx := 1|\n}", LINE),
    # rust
    ("rust", "// hi|", EMPTY),
    ("rust", "/// doc comment|", EMPTY),
    ("rust", 'fn f() { let s = "ab|c"; }', EMPTY),
    ("rust", "fn f() { let x = y|z; }", EMPTY),
    ("rust", "fn f() { foo(|); }", LINE),
    ("rust", "// hi\n|", LINE),  # the line after a line comment
    ("rust", "fn f() {|", BLOCK),
    ("rust", "impl A {\n    fn f(&self) {\n        |\n    }\n}", BLOCK),
    ("rust", "fn f() {\n    let x = 1;|\n}", LINE),
    # no grammar: text rules
    ("plaintext", "if x:\n  |", BLOCK),
    ("plaintext", "foo|bar", EMPTY),
    ("plaintext", "// note|", EMPTY),
    ("plaintext", "call(|)", LINE),
]


@pytest.mark.parametrize("language,marked,kind", GATE_TABLE)
def test_gate(language: str, marked: str, kind: CompletionKind) -> None:
    _, ctx = at_cursor(language, marked)
    assert ctx.kind is kind, ctx.reason
    assert ctx.reason


def test_fields_of_the_context() -> None:
    _, ctx = at_cursor("python", "def f():\n    x = fo|(1)\n")
    assert ctx.prefix == "def f():\n    x = fo"
    assert ctx.suffix == "(1)\n"
    assert (ctx.line_prefix, ctx.line_suffix) == ("    x = fo", "(1)")
    assert ctx.offset == len("def f():\n    x = fo")


def test_text_rules_when_parsing_was_skipped() -> None:
    store = DocumentStore(max_parse_bytes=10)
    _, ctx = at_cursor("python", "def f():\n    |", store=store)
    assert ctx.kind is BLOCK and "larger than" in ctx.reason
    _, ctx = at_cursor("python", "x = 1  # hi|", store=store)
    assert ctx.kind is LINE  # a trailing comment is invisible without a tree: the cost of the fallback
    _, ctx = at_cursor("python", "# hi|", store=store)
    assert ctx.kind is EMPTY


def test_crlf_and_astral_characters() -> None:
    for encoding in PositionEncoding:
        store = DocumentStore(encoding=encoding)
        _, ctx = at_cursor("python", 's = "😋"\r\ndef f():|\r\n', store=store)
        assert ctx.kind is BLOCK and ctx.line_suffix == ""


# --- extra context --------------------------------------------------------------------------------

PY_FILE = (
    "import os\n"
    "from typing import Any\n"
    "\n"
    "X = 1\n"
    "\n"
    "class Greeter:\n"
    '    """Says hello."""\n'
    "\n"
    "    def greet(\n"
    "        self, name: str\n"
    "    ) -> str:\n" + "        x = 1\n" * 60 + "        |\n"
)


def test_extra_has_imports_and_signatures_outside_the_window() -> None:
    _, ctx = at_cursor("python", PY_FILE, window=200)
    assert ctx.kind is LINE
    assert ctx.extra == (
        "import os\nfrom typing import Any\nclass Greeter:\n    def greet(\n        self, name: str\n    ) -> str:\n"
    )
    assert ctx.prefix.startswith("        x = 1\n")  # the window starts at a line start


def test_extra_is_empty_when_the_window_covers_everything() -> None:
    _, ctx = at_cursor("python", PY_FILE, window=10_000)
    assert ctx.extra == ""


def test_extra_keeps_only_scopes_that_enclose_the_cursor() -> None:
    marked = "import os\n\ndef before():\n    pass\n\n" + "# filler\n" * 40 + "def after():\n    |"
    _, ctx = at_cursor("python", marked, window=100)
    assert ctx.extra == "import os\n"  # `after` starts inside the window; `before` is closed
    dedented = "import os\n\ndef f():\n" + "    x = 1\n" * 40 + "|"
    _, ctx = at_cursor("python", dedented, window=100)
    assert ctx.extra == "import os\n"  # at column 0 the cursor has left f


@pytest.mark.parametrize(
    "language,marked,expected",
    [
        (
            "javascript",
            "import fs from 'fs';\nclass A {\n  run(x) {\n" + "    x += 1;\n" * 40 + "    |\n  }\n}\n",
            "import fs from 'fs';\nclass A {\n  run(x) {\n",
        ),
        (
            "go",
            'package main\n\nimport "fmt"\n\nfunc main() {\n' + "\tfmt.Println(1)\n" * 40 + "\t|\n}\n",
            'package main\nimport "fmt"\nfunc main() {\n',
        ),
        (
            "rust",
            "use std::io;\n\nimpl A {\n    fn f(&self) -> u8 {\n"
            + "        g();\n" * 40
            + "        |\n    }\n}\n",
            "use std::io;\nimpl A {\n    fn f(&self) -> u8 {\n",
        ),
        (
            "java",
            "import java.util.List;\nclass A {\n  void f() {\n" + "    g();\n" * 40 + "    |\n  }\n}\n",
            "import java.util.List;\nclass A {\n  void f() {\n",
        ),
        (
            "c",
            "#include <stdio.h>\nint main(void) {\n" + "  g();\n" * 40 + "  |\n}\n",
            "#include <stdio.h>\nint main(void) {\n",
        ),
    ],
)
def test_extra_in_other_languages(language: str, marked: str, expected: str) -> None:
    _, ctx = at_cursor(language, marked, window=120)
    assert ctx.extra == expected


def test_no_extra_without_a_tree() -> None:
    _, ctx = at_cursor("python", PY_FILE, window=200, store=DocumentStore(max_parse_bytes=100))
    assert ctx.extra == ""


# --- robustness and speed -------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(
            ["def f():", "\n", "    ", "x", "(", ")", '"', "#", ":", "{", "}", "😋", "\r\n", "é"]
        ),
        max_size=30,
    ).map("".join),
    language=st.sampled_from(["python", "javascript", "rust", "plaintext"]),
    line=st.integers(-1, 8),
    character=st.integers(-1, 20),
)
def test_analyze_never_raises(text: str, language: str, line: int, character: int) -> None:
    doc = DocumentStore().open("file:///w/t", language, 1, text)
    ctx = analyze(doc, Position(line, character), prefix_window_chars=8)
    assert text[: ctx.offset].endswith(ctx.prefix) and text[ctx.offset :].startswith(ctx.suffix)
    assert ctx.line_prefix + ctx.line_suffix == doc.line_text(doc.position_at(ctx.offset).line)


def test_fast_on_a_two_thousand_line_file() -> None:
    body = "".join(
        f"def function_{i}(a, b):\n    # add things\n    total = a + b * {i}\n    return total\n\n"
        for i in range(400)
    )
    text = "import os\nimport sys\n\nclass Big:\n" + body.replace("\n", "\n    ").rstrip() + "\n"
    doc = DocumentStore().open("file:///w/big.py", "python", 1, text)
    assert doc.line_count >= 2000 and doc.tree is not None
    timings = []
    for line in range(5, doc.line_count, 37):
        position = Position(line, len(doc.line_text(line)))
        started = time.perf_counter()
        analyze(doc, position)
        timings.append(time.perf_counter() - started)
    assert statistics.median(timings) < 0.005, f"median {statistics.median(timings) * 1000:.2f} ms"


def test_deeply_nested_file() -> None:
    text = "x = " + "[" * 3000 + "1" + "]" * 3000 + "\n"
    doc = DocumentStore().open("file:///w/deep.py", "python", 1, text)
    started = time.perf_counter()
    after_one = analyze(doc, Position(0, 3005))
    before_one = analyze(doc, Position(0, 3004))
    assert time.perf_counter() - started < 0.1
    assert after_one.kind is LINE  # only "]]]..." to the right
    assert before_one.kind is EMPTY  # "1]]]..." to the right
