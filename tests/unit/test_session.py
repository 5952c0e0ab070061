"""Session on the shipped model: documents, the reasons not to complete, and superseded requests."""

from __future__ import annotations

import asyncio

import pytest

from gpt_lsp.inference.model_dir import default_model_path
from gpt_lsp.session import Session, Status
from gpt_lsp.settings import ContextSettings, Settings
from gpt_lsp.text.documents import Position, TextChange

SOURCE = "def total(items):\n    result = 0\n    for item in items:\n        result += item\n    return re"


async def loaded_session() -> tuple[Session, list[Status]]:
    statuses: list[Status] = []
    session = Session(default_model_path(), statuses.append)
    session.apply_settings(Settings())
    for _ in range(600):
        if session.pipeline is not None:
            return session, statuses
        await asyncio.sleep(0.05)
    raise AssertionError(f"the shipped model did not load: {session.model_error}")


def test_edits_return_both_versions_and_unknown_documents_raise() -> None:
    session = Session(None, lambda status: None)
    session.open("file:///a.py", "python", 1, "x = 1\n")
    old, new = session.change("file:///a.py", 2, [TextChange("y = 2\n")])
    assert (old.version, old.text, new.version, new.text) == (1, "x = 1\n", 2, "y = 2\n")
    with pytest.raises(KeyError):
        session.change("file:///never-opened.py", 1, [TextChange("z")])
    assert session.close("file:///a.py") is new
    assert session.close("file:///a.py") is None
    session.shutdown()


def test_reasons_not_to_complete_come_before_the_model() -> None:
    session = Session(None, lambda status: None)
    session.pipeline = object()  # type: ignore[assignment]  # a model is there; only the rules speak
    assert "secret" in session.why_not("file:///p/.env", True)
    assert session.why_not("file:///p/app.py", False) == "this feature is disabled in settings"
    session.enabled = False
    assert session.why_not("file:///p/app.py", True) == "disabled by the user"
    session.enabled = True
    assert session.why_not("file:///p/app.py", True) is None
    session.shutdown()


async def test_a_completion_for_a_secret_file_never_runs_and_says_why() -> None:
    statuses: list[Status] = []
    session = Session(None, statuses.append)
    session.open("file:///p/id_rsa", "plaintext", 1, "-----BEGIN")
    assert await session.complete("file:///p/id_rsa", Position(0, 3), True) is None
    assert statuses[-1].state == "disabled" and "secret" in statuses[-1].reason
    session.shutdown()


async def test_a_newer_request_for_the_same_document_supersedes_the_older() -> None:
    session, statuses = await loaded_session()
    uri = "file:///p/total.py"
    session.open(uri, "python", 1, SOURCE)
    at = Position(4, len("    return re"))
    older, newer = await asyncio.gather(session.complete(uri, at, True), session.complete(uri, at, True))
    assert older is None  # cancelled before or while it decoded: nothing stale is sent
    assert newer is not None
    doc, outcome = newer
    assert doc.version == 1 and outcome.suggestions, outcome.reason
    assert statuses[-1].state == "ready"
    session.shutdown()


async def test_an_edit_cancels_the_running_completion() -> None:
    session, _ = await loaded_session()
    uri = "file:///p/total.py"
    session.open(uri, "python", 1, SOURCE)
    pending = asyncio.ensure_future(session.complete(uri, Position(4, 13), True))
    await asyncio.sleep(0)  # the request is on the worker (or waiting for it)
    session.change(uri, 2, [TextChange(SOURCE + "s")])
    assert await pending is None
    session.shutdown()


async def test_once_turned_on_the_workspace_is_indexed_and_other_files_reach_the_prompt(tmp_path) -> None:
    (tmp_path / "shapes.py").write_text("def polygon_area(points: list) -> float:\n    return 0.0\n")
    statuses: list[Status] = []
    session = Session(default_model_path(), statuses.append)
    session.set_workspace([tmp_path.as_uri()])
    session.apply_settings(Settings(context=ContextSettings(other_files=True)))
    for _ in range(600):
        if session.pipeline is not None:
            break
        await asyncio.sleep(0.05)
    assert session.related.index is not None and session.related.index.ready.wait(10)
    uri = (tmp_path / "main.py").as_uri()
    session.open(uri, "python", 1, "from shapes import polygon_area\n\nprint(polygon_")
    _, outcome = await session.complete(uri, Position(2, 14), True)
    assert [(p.source, p.path) for p in outcome.related] == [("definition", "shapes.py")]
    session.apply_settings(Settings(context=ContextSettings(other_files=False)))
    session.change(uri, 2, [TextChange("from shapes import polygon_area\n\nprint(polygon_a")])
    _, outcome = await session.complete(uri, Position(2, 15), True)
    assert outcome.related == []
    session.shutdown()


async def test_while_typing_a_block_suggestion_stops_at_a_line_end_once_the_budget_is_spent() -> None:
    """The shipped model writes a multi-line block here; asked for, the whole block comes back,
    sent while typing (with a 1 ms budget, spent before the first line ends) only its first line."""
    from dataclasses import replace

    from gpt_lsp.settings import GenerationSettings

    session, _ = await loaded_session()
    session.apply_settings(replace(Settings(), generation=GenerationSettings(typing_budget_ms=1)))
    uri = "file:///p/loop.py"
    session.open(uri, "python", 1, "def total(items):\n    result = 0\n    for item in items:\n        ")
    asked = await session.complete(uri, Position(3, 8), True)
    typed = await session.complete(uri, Position(3, 8), True, typing=True)
    assert asked is not None and typed is not None
    [whole], [first] = asked[1].suggestions, typed[1].suggestions
    assert whole.text.count("\n") >= 1 and "\n" not in first.text
    assert whole.text.startswith(first.text) and typed[1].reason == "ok (budget)"
    session.shutdown()
