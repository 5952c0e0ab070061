"""Model hints without a model (server/assist/hints.py): candidate sites from tree-sitter, the decision
rule on scored sites, keeping hints in place while the user types, and the calibration file."""

from __future__ import annotations

import json

from gpt_lsp.assist.hints import (
    Calibration,
    Hint,
    Scored,
    Site,
    candidate_sites,
    changed_span,
    edit_distance,
    load_calibration,
    merge_region,
    select_hints,
    shift_hints,
)
from gpt_lsp.text.documents import DocumentStore

SOURCE = """def mean(values, length):
    total = sum(values)
    if length <= 0:
        return 0
    return total / lenght
"""


def doc_of(text: str):
    return DocumentStore().open("file:///t.py", "python", 1, text)


def test_edit_distance_counts_a_transposition_once():
    assert edit_distance("lenght", "length") == 1
    assert edit_distance("total", "totl") == 1
    assert edit_distance("abc", "abc") == 0
    assert edit_distance("a", "abcdefgh") == 4  # capped at limit + 1


def test_a_misspelled_use_gets_the_near_name_as_candidate():
    doc = doc_of(SOURCE)
    sites = candidate_sites(doc, 0, len(doc.text))
    site = next(s for s in sites if s.text == "lenght")
    assert site.kind == "name" and site.candidates[0] == "length"
    assert doc.text[site.start : site.end] == "lenght"


def test_definitions_are_not_sites_and_operators_come_with_their_swaps():
    doc = doc_of(SOURCE)
    sites = candidate_sites(doc, 0, len(doc.text))
    names = [s.text for s in sites if s.kind == "name"]
    assert "mean" not in names and names.count("values") == 1  # the parameter is a definition
    ops = {s.text: s.candidates for s in sites if s.kind == "operator"}
    assert ops["<="] == ("<", ">=") and ops["/"] == ("*",)


def test_sites_are_limited_to_the_changed_lines():
    doc = doc_of(SOURCE)
    line4 = doc.text.index("    return total")
    assert {s.text for s in candidate_sites(doc, line4, line4)} == {"total", "/", "lenght"}


def test_hints_need_the_threshold_and_are_classified():
    typo = Site(10, 16, "lenght", "name", ("length",))
    wrong = Site(20, 25, "total", "name", ())
    op = Site(30, 32, "<=", "operator", ("<", ">="))
    scored = [Scored(typo, "length", 9.0), Scored(wrong, "values", 7.0, ["values"]), Scored(op, "<", 2.0)]
    hints = select_hints(scored, 5.0)
    assert [(h.word, h.replacement, h.kind) for h in hints] == [
        ("lenght", "length", "typo"),
        ("total", "values", "name"),
    ]
    assert hints[0].message == "`lenght` — did you mean `length`?" and hints[0].code == "hint-typo"
    assert select_hints(scored, 1.0)[-1].code == "hint-operator"
    assert select_hints([Scored(typo)], -100.0) == []  # a site the model was not asked about


def test_hints_move_with_edits_and_vanish_when_edited():
    old = "a = lenght\nb = 1\n"
    new = "# note\na = lenght\nb = 1\n"
    hint = Hint(4, 10, "lenght", "length", "typo", 8.0)
    span = changed_span(old, new)
    assert span == (0, 0, 7)
    [moved] = shift_hints([hint], *span)
    assert new[moved.start : moved.end] == "lenght"
    edited = "a = lengh\nb = 1\n"
    assert shift_hints([hint], *changed_span(old, edited)) == []


def test_pending_region_grows_to_cover_every_change():
    region = merge_region(None, 10, 12, 15)
    assert region == (10, 15)
    assert merge_region(region, 0, 0, 5) == (0, 20)  # an insertion before shifts it, then unites
    assert merge_region((10, 15), 30, 30, 31) == (10, 31)


def test_calibration_turns_hints_on_only_at_the_required_precision(tmp_path):
    assert load_calibration(tmp_path) is None
    (tmp_path / "hints.json").write_text(json.dumps({"threshold": 6, "precision": 0.85, "recall": 0.4}))
    assert load_calibration(tmp_path) == Calibration(6.0, 0.85, 0.4) and load_calibration(tmp_path).usable
    (tmp_path / "hints.json").write_text(json.dumps({"threshold": 1, "precision": 0.5, "recall": 0.9}))
    assert not load_calibration(tmp_path).usable
    (tmp_path / "hints.json").write_text("{not json")
    assert load_calibration(tmp_path) is None
