"""What the user sees of the assist features in an editor's menus: command IDs, titles, the
options a command takes, and how quick fixes are titled and ranked.

The assist stages return typed results (`SnippetKind`, `FixOrigin`); only this module turns them
into words and identifiers.
"""

from __future__ import annotations

from typing import Any

from ..assist.snippets import ACTION_KINDS, SnippetKind
from ..assist.syntax import FixOrigin, QuickFix
from ..completion.postprocess import Edit

CMD_STATUS = "gpt-lsp.status"
CMD_TOGGLE = "gpt-lsp.toggle"
# Run by the client when the user accepts an inline item (the item's `command`), or by an editor
# extension with `"partial": true` when the user accepts part of it (a word, a line).
CMD_ACCEPTED = "gpt-lsp.accepted"
ACCEPTED_TITLE = "gpt-lsp: suggestion accepted"
MAX_CANDIDATES = 5

TITLES = {
    SnippetKind.IMPLEMENT_FUNCTION: "Implement function (gpt-lsp)",
    SnippetKind.GENERATE_DOCSTRING: "Generate docstring (gpt-lsp)",
    SnippetKind.CODE_FROM_COMMENT: "Write code from comment (gpt-lsp)",
    SnippetKind.COMPLETE_BLOCK: "Complete block (gpt-lsp)",
    SnippetKind.REPAIR: "Repair with gpt-lsp",
}


def command_id(kind: SnippetKind) -> str:
    """The workspace/executeCommand name of a snippet action (`gpt-lsp.implementFunction`, ...)."""
    return f"gpt-lsp.{kind.value}"


SNIPPET_COMMANDS = {command_id(kind): kind for kind in ACTION_KINDS}


def parse_options(options: tuple) -> tuple[int, float]:
    """Optional command arguments after the version: `{"candidates": n, "temperature": t}` or `n, t`.

    Several candidates are asked for explicitly; greedy decoding of one is the default.
    """
    raw: dict[str, Any] = {}
    if options and isinstance(options[0], dict):
        raw = options[0]
    elif options:
        raw = dict(zip(("candidates", "temperature"), options, strict=False))
    try:
        n = min(max(int(raw.get("candidates", 1)), 1), MAX_CANDIDATES)
        temperature = max(float(raw.get("temperature", 0.0)), 0.0)
    except (TypeError, ValueError):
        return 1, 0.0
    return n, temperature


def accepted_arguments(suggestion_id: str, language: str) -> list[dict[str, Any]]:
    """The arguments of an inline item's accept command: which answer it was, and its language."""
    return [{"id": suggestion_id, "language": language}]


def parse_accepted(arguments: tuple) -> tuple[str, bool] | None:
    """(suggestion id, partial) from `gpt-lsp.accepted`'s arguments; None when they name no suggestion."""
    raw = arguments[0] if arguments and isinstance(arguments[0], dict) else {}
    suggestion_id = raw.get("id")
    if not isinstance(suggestion_id, str) or not suggestion_id:
        return None
    return suggestion_id, raw.get("partial") is True


def _first_line(text: str) -> str:
    """The first non-blank line, stripped and cut to fit a menu."""
    return next((line.strip() for line in text.split("\n") if line.strip()), "")[:60]


def candidate_label(number: int, edit: Edit) -> str:
    """A menu entry for one candidate: its number and first non-blank line."""
    return f"{number}: {_first_line(edit.text)}"


def fix_title(fix: QuickFix) -> str:
    if fix.origin is FixOrigin.HINT:
        return f"Replace with `{fix.edit.text}`"
    if fix.origin is FixOrigin.REPAIR:
        return f"{TITLES[SnippetKind.REPAIR]}: {_first_line(fix.edit.text)}"
    return fix.rule_title


def is_preferred(fix: QuickFix) -> bool:
    """Editors apply the preferred fix on one key; a model's rewrite never is."""
    return fix.origin is not FixOrigin.REPAIR
