"""Command IDs, option parsing and candidate labels of the snippet actions."""

from __future__ import annotations

from pathlib import Path

from gpt_lsp.assist.snippets import ACTION_KINDS, SnippetKind
from gpt_lsp.completion.postprocess import Edit
from gpt_lsp.lsp.commands import (
    CMD_ACCEPTED,
    SNIPPET_COMMANDS,
    TITLES,
    accepted_arguments,
    candidate_label,
    command_id,
    parse_accepted,
    parse_options,
)

REPO = Path(__file__).resolve().parents[3]


def test_every_action_has_a_title_and_a_command_that_maps_back_to_it() -> None:
    assert set(SNIPPET_COMMANDS.values()) == set(ACTION_KINDS)
    assert SnippetKind.REPAIR not in SNIPPET_COMMANDS.values()  # a quick fix, not a command
    for kind in ACTION_KINDS:
        assert SNIPPET_COMMANDS[command_id(kind)] is kind
        assert TITLES[kind].endswith("(gpt-lsp)")
    assert command_id(SnippetKind.IMPLEMENT_FUNCTION) == "gpt-lsp.implementFunction"


def test_the_editor_docs_name_commands_the_server_has() -> None:
    documented = (REPO / "README.md").read_text(encoding="utf-8")
    for command in [*SNIPPET_COMMANDS, CMD_ACCEPTED]:
        assert command in documented, command


def test_options_are_clamped_and_bad_ones_fall_back_to_one_greedy_candidate() -> None:
    assert parse_options(()) == (1, 0.0)
    assert parse_options(({"candidates": 3, "temperature": 0.7},)) == (3, 0.7)
    assert parse_options((2,)) == (2, 0.0)
    assert parse_options(({"candidates": "many"},)) == (1, 0.0)
    assert parse_options(({"candidates": 99},)) == (5, 0.0)
    assert parse_options(({"temperature": -1},)) == (1, 0.0)


def test_candidate_labels_show_the_first_line_that_has_text() -> None:
    edit = Edit("\n\n    return sorted(items, key=len)\n", 0, 0)
    assert candidate_label(2, edit) == "2: return sorted(items, key=len)"


def test_the_accept_command_names_its_suggestion_and_may_say_partial() -> None:
    args = accepted_arguments("ab12cd34", "python")
    assert args == [{"id": "ab12cd34", "language": "python"}]
    assert parse_accepted(tuple(args)) == ("ab12cd34", False)
    assert parse_accepted(({"id": "ab12cd34", "partial": True},)) == ("ab12cd34", True)
    assert parse_accepted(({"id": "ab12cd34", "partial": "yes"},)) == ("ab12cd34", False)
    assert parse_accepted(()) is None
    assert parse_accepted(("ab12cd34",)) is None
    assert parse_accepted(({"id": 3},)) is None
