"""documents.py: LSP position arithmetic, clamping, incremental sync and parse fallbacks.

Covers every position encoding, offset ⇄ position properties, clamping, stateful sync (text and
incrementally edited tree equal a reference), binary text, and huge and pathological files.
"""

from __future__ import annotations

import logging
import re
import time

import pytest
import tree_sitter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gpt_lsp.text.documents import Document, DocumentStore, Position, PositionEncoding, TextChange, TextIndex

ENCODINGS = list(PositionEncoding)

# Pieces that break naive position code: astral chars, CJK, combining marks, every line break.
PIECES = ["a", "Z", " ", "\t", "é", "e\u0301", "中文", "😋", "𐐀", "\n", "\r\n", "\r", "(", '"', "_"]
texts = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


# --- a deliberately naive reference -------------------------------------------------------------


def ref_lines(text: str) -> list[tuple[int, int]]:
    """(start, end-before-line-break) of every line, splitting on \\r\\n, \\r and \\n."""
    spans, start = [], 0
    for match in re.finditer(r"\r\n|\r|\n", text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return spans


def units(char: str, encoding: PositionEncoding) -> int:
    if encoding is PositionEncoding.UTF8:
        return len(char.encode("utf-8", "surrogatepass"))
    if encoding is PositionEncoding.UTF16:
        return 2 if ord(char) > 0xFFFF else 1
    return 1


def ref_offset_at(text: str, line: int, character: int, encoding: PositionEncoding) -> int:
    spans = ref_lines(text)
    if line >= len(spans):
        return len(text)
    start, end = spans[max(line, 0)]
    used, index = 0, start
    while index < end and used + units(text[index], encoding) <= character:
        used += units(text[index], encoding)
        index += 1
    return index


def open_doc(
    text: str, encoding: PositionEncoding = PositionEncoding.UTF16, language: str = "python"
) -> Document:
    return DocumentStore(encoding=encoding).open("file:///t.py", language, 1, text)


# --- positions ------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=texts, encoding=st.sampled_from(ENCODINGS))
def test_offset_position_round_trip(text: str, encoding: PositionEncoding) -> None:
    doc = open_doc(text, encoding)
    for offset in range(len(text) + 1):
        if 0 < offset < len(text) and text[offset - 1 : offset + 1] == "\r\n":
            continue  # between \r and \n: not a position; clamps to the line end
        position = doc.position_at(offset)
        assert doc.offset_at(position) == offset
        assert position.line == len(ref_lines(text[:offset])) - 1


@settings(max_examples=200, deadline=None)
@given(
    text=texts,
    encoding=st.sampled_from(ENCODINGS),
    line=st.integers(-2, 12),
    character=st.integers(-2, 60),
)
def test_offset_at_matches_reference_and_clamps(
    text: str, encoding: PositionEncoding, line: int, character: int
) -> None:
    doc = open_doc(text, encoding)
    offset = doc.offset_at(Position(line, character))
    assert offset == ref_offset_at(text, line, character, encoding)
    # A clamped position names a real one: converting back and forth is stable.
    assert doc.offset_at(doc.position_at(offset)) == offset


@settings(max_examples=100, deadline=None)
@given(text=texts)
def test_byte_offset_and_lines(text: str) -> None:
    doc = open_doc(text)
    for offset in range(len(text) + 1):
        assert doc.byte_offset(offset) == len(text[:offset].encode("utf-8"))
    spans = ref_lines(text)
    assert doc.line_count == len(spans)
    assert [doc.line_text(i) for i in range(len(spans))] == [text[s:e] for s, e in spans]


@pytest.mark.parametrize(
    "encoding,character,expected",
    [
        (PositionEncoding.UTF16, 1, 1),  # before 😋
        (PositionEncoding.UTF16, 2, 1),  # inside 😋's surrogate pair → start of 😋
        (PositionEncoding.UTF16, 3, 2),
        (PositionEncoding.UTF8, 4, 1),  # inside 😋's 4 bytes → start of 😋
        (PositionEncoding.UTF8, 5, 2),
        (PositionEncoding.UTF8, 6, 2),  # inside é's 2 bytes → start of é
        (PositionEncoding.UTF8, 7, 3),
        (PositionEncoding.UTF32, 2, 2),
    ],
)
def test_mid_character_clamps_to_character_start(
    encoding: PositionEncoding, character: int, expected: int
) -> None:
    doc = open_doc("a😋é!", encoding)
    assert doc.offset_at(Position(0, character)) == expected


def test_out_of_range_positions_clamp() -> None:
    doc = open_doc("ab\r\ncd\n")
    assert doc.offset_at(Position(0, 99)) == 2  # end of line, before \r\n
    assert doc.offset_at(Position(99, 0)) == len(doc.text)
    assert doc.offset_at(Position(-1, -1)) == 0
    assert doc.position_at(10**9) == Position(2, 0)
    assert doc.position_at(-5) == Position(0, 0)
    assert doc.position_at(3) == Position(0, 2)  # between \r and \n → end of line 0
    assert doc.line_text(99) == "" and doc.line_text(-1) == ""


def test_lone_surrogates_do_not_crash() -> None:
    doc = open_doc("x = '\ud800'\ny")
    assert doc.tree is None and doc.fallback_reason is not None
    assert doc.offset_at(doc.position_at(len(doc.text))) == len(doc.text)


# --- sync -----------------------------------------------------------------------------------------


def test_change_returns_a_new_snapshot() -> None:
    store = DocumentStore()
    first = store.open("file:///a.py", "python", 1, "def f():\n    return 1\n")
    first_sexp = str(first.tree.root_node) if first.tree else ""
    second = store.change("file:///a.py", 2, [TextChange("x = 2\n", Position(2, 0), Position(2, 0))])
    assert first.text == "def f():\n    return 1\n" and str(first.tree.root_node) == first_sexp  # type: ignore[union-attr]
    assert second.text.endswith("x = 2\n") and second.version == 2
    assert store.get("file:///a.py") is second
    full = store.change("file:///a.py", 3, [TextChange("y = 1")])
    assert full.text == "y = 1" and full.tree is not None
    store.close("file:///a.py")
    assert store.get("file:///a.py") is None
    with pytest.raises(KeyError):
        store.change("file:///a.py", 4, [TextChange("z")])


def assert_same_tree(left: tree_sitter.Tree, right: tree_sitter.Tree) -> None:
    """Same shape, node types, byte ranges and points (a sexp alone ignores positions)."""
    assert str(left.root_node) == str(right.root_node)
    a, b = left.walk(), right.walk()
    while True:
        na, nb = a.node, b.node
        assert na is not None and nb is not None
        assert (na.type, na.byte_range, na.start_point, na.end_point, na.is_missing) == (
            nb.type,
            nb.byte_range,
            nb.start_point,
            nb.end_point,
            nb.is_missing,
        )
        if a.goto_first_child():
            assert b.goto_first_child()
            continue
        assert not b.goto_first_child()
        while not a.goto_next_sibling():
            assert not b.goto_next_sibling()
            if not a.goto_parent():
                assert not b.goto_parent()
                return
            assert b.goto_parent()
        assert b.goto_next_sibling()


SNIPPETS = {
    "python": [
        "def f(x):",
        "\n",
        "    ",
        "return x",
        "(",
        ")",
        ":",
        '"',
        '"""',
        "#c",
        "if x:",
        "else:",
        "😋",
    ],
    "javascript": ["function f(x) {", "}", "{", "(", ")", ";", "\n", '"', "`", "${", "//c", "/*", "*/", "=>"],
}
COMMON = [" ", "x = 1", "\r\n", "\r", "\t", "é", "中", ","]


def edit_text(language: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(SNIPPETS[language] + COMMON), max_size=6).map("".join)


class SyncMachine(RuleBasedStateMachine):
    """didOpen / batched incremental didChange / didClose against a reference string."""

    def __init__(self) -> None:
        super().__init__()
        self.store = DocumentStore()
        self.reference: dict[str, tuple[str, str]] = {}  # uri -> (language, text)
        self.parsers: dict[str, tree_sitter.Parser] = {}

    @initialize(encoding=st.sampled_from(ENCODINGS))
    def set_encoding(self, encoding: PositionEncoding) -> None:
        self.store = DocumentStore(encoding=encoding)

    @rule(
        data=st.data(),
        uri=st.sampled_from(["file:///a", "file:///b"]),
        language=st.sampled_from(list(SNIPPETS)),
    )
    def open(self, data: st.DataObject, uri: str, language: str) -> None:
        text = data.draw(edit_text(language))
        self.store.open(uri, language, 1, text)
        self.reference[uri] = (language, text)

    @precondition(lambda self: bool(self.reference))
    @rule(data=st.data())
    def change(self, data: st.DataObject) -> None:
        uri = data.draw(st.sampled_from(sorted(self.reference)))
        language, text = self.reference[uri]
        changes = []
        for _ in range(data.draw(st.integers(1, 4))):
            new = data.draw(edit_text(language))
            if data.draw(st.integers(0, 19)) == 0:
                changes.append(TextChange(new))  # full replacement inside a batch
                text = new
                continue
            ends = [Position(data.draw(st.integers(0, 8)), data.draw(st.integers(0, 25))) for _ in range(2)]
            start, end = sorted(ends, key=lambda p: (p.line, p.character))
            enc = self.store.encoding
            lo, hi = sorted(
                (
                    ref_offset_at(text, start.line, start.character, enc),
                    ref_offset_at(text, end.line, end.character, enc),
                )
            )
            changes.append(TextChange(new, start, end))
            text = text[:lo] + new + text[hi:]
        doc = self.store.change(uri, self.store.get(uri).version + 1, changes)  # type: ignore[union-attr]
        assert doc.text == text
        self.reference[uri] = (language, text)

    @precondition(lambda self: bool(self.reference))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        uri = data.draw(st.sampled_from(sorted(self.reference)))
        self.store.close(uri)
        del self.reference[uri]

    @invariant()
    def text_and_tree_match_reference(self) -> None:
        for uri, (language, text) in self.reference.items():
            doc = self.store.get(uri)
            assert doc is not None and doc.text == text
            assert doc.tree is not None and doc.spec is not None, doc.fallback_reason
            parser = self.parsers.setdefault(language, tree_sitter.Parser(doc.spec.language))
            assert_same_tree(doc.tree, parser.parse(text.encode("utf-8")))
            assert [doc.line_text(i) for i in range(doc.line_count)] == [
                text[s:e] for s, e in ref_lines(text)
            ]


TestSync = SyncMachine.TestCase
TestSync.settings = settings(
    max_examples=50, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# --- content extremes -----------------------------------------------------------------------------


def timed_open(store: DocumentStore, text: str, language: str = "python") -> tuple[Document, float]:
    started = time.perf_counter()
    doc = store.open("file:///big.py", language, 1, text)
    return doc, time.perf_counter() - started


def test_binary_text_is_not_parsed() -> None:
    doc, seconds = timed_open(DocumentStore(), "x = 1\n\x00\x01\x02\xff binary" * 1000)
    assert doc.tree is None and "NUL" in (doc.fallback_reason or "")
    assert seconds < 0.5
    assert doc.offset_at(Position(3, 2)) > 0


def test_five_megabyte_file_skips_parsing() -> None:
    store = DocumentStore()
    doc, seconds = timed_open(store, "value = compute(1, 2)\n" * 240_000)  # ~5.3 MB
    assert doc.tree is None and "larger than" in (doc.fallback_reason or "")
    assert seconds < 1.5
    started = time.perf_counter()
    doc = store.change("file:///big.py", 2, [TextChange("y", Position(100_000, 0), Position(100_000, 5))])
    assert time.perf_counter() - started < 1.5
    assert doc.line_text(100_000) == "y = compute(1, 2)"


@pytest.mark.parametrize("text", ["x = " + "(" * 100_000, "(" * 100_000 + "\n" + "y = 1\n" * 1000])
def test_unclosed_parens_open_quickly(text: str) -> None:
    store = DocumentStore(parse_timeout_ms=100)
    doc, seconds = timed_open(store, text)
    assert seconds < 1.0
    assert doc.tree is not None or "longer than" in (doc.fallback_reason or "")
    doc = store.change("file:///big.py", 2, [TextChange(")", Position(0, 50), Position(0, 50))])
    assert doc.text[50] == ")"


def test_slow_parse_hits_the_time_budget_once(caplog: pytest.LogCaptureFixture) -> None:
    """100k unclosed `x = (` take seconds to parse; the budget stops it and it is not retried per edit."""
    store = DocumentStore(parse_timeout_ms=100)
    with caplog.at_level(logging.INFO, logger="gpt_lsp.text.documents"):
        doc, seconds = timed_open(store, "x = (" * 100_000)
        assert doc.tree is None and "longer than" in (doc.fallback_reason or "")
        assert seconds < 1.0
        started = time.perf_counter()
        for version in range(2, 6):  # no re-parse per keystroke after a timeout
            doc = store.change("file:///big.py", version, [TextChange("(", Position(0, 4), Position(0, 4))])
        assert time.perf_counter() - started < 1.0
        assert doc.tree is None
    assert len([r for r in caplog.records if "longer than" in r.getMessage()]) == 1
    shrunk = store.change("file:///big.py", 9, [TextChange("x = (1)\n")])
    assert shrunk.tree is not None and shrunk.fallback_reason is None


def test_one_megabyte_single_line() -> None:
    store = DocumentStore(parse_timeout_ms=300)
    text = "x = [" + "1, " * 333_000 + "]"
    doc, seconds = timed_open(store, text)
    assert seconds < 2.0
    started = time.perf_counter()
    end = doc.position_at(len(text))
    assert end == Position(0, len(text))
    assert doc.offset_at(Position(0, 500_000)) == 500_000
    assert time.perf_counter() - started < 0.5


def test_unicode_single_line_positions_are_fast() -> None:
    text = "😋é" * 300_000
    doc = open_doc(text, PositionEncoding.UTF16)
    started = time.perf_counter()
    assert doc.offset_at(Position(0, 3 * 150_000)) == 300_000
    assert doc.position_at(300_000) == Position(0, 450_000)
    assert time.perf_counter() - started < 0.5


def test_deep_nesting_parses() -> None:
    doc = open_doc("x = " + "[" * 5000 + "]" * 5000 + "\n", language="python")
    assert doc.tree is not None or doc.fallback_reason is not None


def test_unknown_language_has_no_tree() -> None:
    doc = DocumentStore().open("file:///notes.txt", "plaintext", 1, "hello")
    assert doc.spec is None and doc.tree is None and "no tree-sitter grammar" in (doc.fallback_reason or "")


def test_keystrokes_edit_the_tree_and_the_parse_waits_for_a_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    store = DocumentStore()
    parses: list[bool] = []  # whether each parse was incremental
    real = store._run_parser
    monkeypatch.setattr(
        store,
        "_run_parser",
        lambda uri, spec, source, old: parses.append(old is not None) or real(uri, spec, source, old),
    )
    doc = store.open("file:///a.py", "python", 1, "def f():\n    return 1\n")
    assert doc.tree is not None and parses == [False]
    for version in range(2, 12):
        doc = store.change("file:///a.py", version, [TextChange("x", Position(1, 11), Position(1, 11))])
    assert parses == [False]  # typing did not parse
    fresh = DocumentStore().open("file:///b.py", "python", 1, doc.text)
    assert_same_tree(doc.tree, fresh.tree)  # type: ignore[arg-type]
    assert parses == [False, True]  # one incremental parse, from the tree edited ten times


def test_only_the_most_recently_parsed_trees_are_kept() -> None:
    store = DocumentStore(max_trees=3)
    docs = [store.open(f"file:///{n}.py", "python", 1, f"def f{n}():\n    return {n}\n") for n in range(6)]
    reference = [str(d.tree.root_node) for d in docs]  # type: ignore[union-attr]
    assert store.tree_count == 3
    assert [str(d.tree.root_node) for d in docs] == reference  # dropped trees come back on demand
    assert store.tree_count == 3
    for n in range(6):
        store.close(f"file:///{n}.py")
    assert store.tree_count == 0


line_break_text = st.lists(st.sampled_from(["a", "é", "😋", "\r", "\n", "\r\n"]), max_size=30).map("".join)


@given(text=line_break_text, new=line_break_text, cut=st.tuples(st.integers(0, 40), st.integers(0, 40)))
def test_an_edited_index_equals_a_fresh_one(text: str, new: str, cut: tuple[int, int]) -> None:
    start, end = sorted(min(c, len(text)) for c in cut)
    edited = TextIndex(text, PositionEncoding.UTF16).edited(start, end, new)
    fresh = TextIndex(text[:start] + new + text[end:], PositionEncoding.UTF16)
    assert edited.text == fresh.text
    assert edited.starts.tolist() == fresh.starts.tolist()
    assert edited._newlines.tolist() == fresh._newlines.tolist()
