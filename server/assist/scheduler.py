"""Editor assistance beyond completion: syntax diagnostics, model hints, quick fixes and snippet
actions, scheduled next to the session.

Syntax diagnostics are debounced and computed in a thread; hints and snippets decode on the
session's single inference worker and are cancelled by newer edits. The rules themselves live in
syntax.py, hints.py and snippets.py; this module only schedules. Assist is the session's peer: it
reads the session's documents, settings and model, the LSP layer tells it about edits and hands it
the function that publishes diagnostics.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..completion.postprocess import Edit
from ..inference.engine import DecodeLimits
from ..session import Session
from ..text.documents import Document, DocumentStore, Position
from ..text.syntax_tree import parser_for
from . import hints as hint_rules
from .hints import Hint
from .snippets import (
    SnippetKind,
    SnippetOutcome,
    SnippetPlan,
    available_snippets,
    generate_snippet,
    plan_repair,
    plan_snippet,
)
from .syntax import FixOrigin, QuickFix, SyntaxProblem, checked, syntax_problems

log = logging.getLogger(__name__)
SYNTAX_DEBOUNCE_S = 0.2  # syntax diagnostics wait for a pause in typing
HINT_DEBOUNCE_S = 0.6  # model hints wait longer: they cost a forward pass
HINT_MAX_CHARS = 200_000  # no model hints for files larger than this
REPAIRABLE = frozenset(
    {
        "unexpected-token",
        "invalid-syntax",
        "incomplete-expression",
        "unterminated-string",
        "unclosed-bracket",
        "expected-colon",
    }
)


@dataclass(frozen=True)
class SnippetRequest:
    """A snippet action asked for at a position of one document version."""

    kind: SnippetKind
    uri: str
    position: Position
    version: int
    candidates: int = 1  # greedy first, then sampled
    temperature: float = 0.0


Publisher = Callable[[Document, list[SyntaxProblem], list[Hint]], None]


class Assist:
    def __init__(self, session: Session, publish: Publisher) -> None:
        self.session = session
        self.publish = publish
        self._diagnosis: dict[str, asyncio.Task] = {}
        self._problems: dict[str, tuple[int, list[SyntaxProblem]]] = {}
        self._hints: dict[str, list[Hint]] = {}
        self._hint_region: dict[str, tuple[int, int]] = {}

    @property
    def documents(self) -> DocumentStore:
        return self.session.documents

    def on_change(self, uri: str, old: Document | None, new: Document) -> None:
        """Move existing hints with the edit and remember the changed region for the next hint pass."""
        if old is not None and len(new.text) <= HINT_MAX_CHARS:
            span = hint_rules.changed_span(old.text, new.text)
            self._hints[uri] = hint_rules.shift_hints(self._hints.get(uri, []), *span)
            self._hint_region[uri] = hint_rules.merge_region(self._hint_region.get(uri), *span)
        else:
            self._hints.pop(uri, None)

    def on_close(self, uri: str, doc: Document | None) -> None:
        for table in (self._problems, self._hints, self._hint_region):
            table.pop(uri, None)
        task = self._diagnosis.pop(uri, None)
        if task is not None:
            task.cancel()
        if doc is not None:
            self.publish(doc, [], [])  # clear what the editor shows for a closed file

    def shutdown(self) -> None:
        for task in self._diagnosis.values():
            task.cancel()

    # -- diagnostics: syntax (debounced, off the event loop) and model hints (worker thread) ------
    def schedule_diagnostics(self, uri: str) -> None:
        """(Re)start the debounce for `uri`; a newer edit cancels the pending pass."""
        task = self._diagnosis.pop(uri, None)
        if task is not None:
            task.cancel()
        self._diagnosis[uri] = asyncio.get_running_loop().create_task(self._diagnose(uri))

    async def _diagnose(self, uri: str) -> None:
        await asyncio.sleep(SYNTAX_DEBOUNCE_S)
        doc = self.documents.get(uri)
        if doc is None:
            return
        problems = await self.problems(doc) if self.session.settings.diagnostics.syntax else []
        if self.documents.get(uri) is not doc:
            return
        self.publish(doc, problems, self._hints.get(uri, []))
        region = self._hint_region.get(uri)
        if (
            region is None
            or self.session.why_not(uri, self.session.settings.diagnostics.model_hints)
            or self.session.hint_threshold is None
        ):
            return
        await asyncio.sleep(HINT_DEBOUNCE_S - SYNTAX_DEBOUNCE_S)
        if self.documents.get(uri) is not doc or doc.tree is None:
            return
        del self._hint_region[uri]
        pipeline, threshold = self.session.pipeline, self.session.hint_threshold
        assert pipeline is not None

        def cancelled() -> bool:
            return self.documents.get(uri) is not doc

        found: list[Hint] = await self.session.decode(
            lambda: hint_rules.find_hints(pipeline.engine, doc, *region, threshold, cancelled), []
        )
        if cancelled():
            self._hint_region[uri] = hint_rules.merge_region(self._hint_region.get(uri), *region, region[1])
            return
        kept = hint_rules.shift_hints(self._hints.get(uri, []), region[0], region[1], region[1])
        self._hints[uri] = sorted(kept + found, key=lambda h: h.start)
        self.publish(doc, problems, self._hints[uri])

    async def problems(self, doc: Document) -> list[SyntaxProblem]:
        """Syntax problems of this document version (computed once, in a thread: large files take a while)."""
        cached = self._problems.get(doc.uri)
        if cached is not None and cached[0] == doc.version:
            return cached[1]
        found = await asyncio.to_thread(syntax_problems, doc)
        self._problems[doc.uri] = (doc.version, found)
        return found

    # -- code actions and snippet commands ----------------------------------------------------
    async def code_actions(
        self, uri: str, start: Position, end: Position
    ) -> tuple[Document, list[QuickFix], list[SnippetKind]] | None:
        """Quick fixes for problems touching the range, and the snippet actions at its start."""
        doc = self.documents.get(uri)
        if doc is None or doc.tree is None:
            return None
        a, b = sorted((doc.offset_at(start), doc.offset_at(end)))
        fixes: list[QuickFix] = []
        repaired = False
        touching = [p for p in await self.problems(doc) if p.start <= b and p.end >= a]
        for problem in touching:
            assert doc.spec is not None
            fix = checked(doc, parser_for(doc.spec.language), problem).fix
            if fix is not None:
                fixes.append(
                    QuickFix(
                        FixOrigin.RULE,
                        fix,
                        problem.start,
                        problem.end,
                        problem.code,
                        problem.message,
                        problem.fix_title,
                    )
                )
            elif problem.code in REPAIRABLE and not repaired:  # one model repair per request
                repaired = True
                fixes += await self._repair(doc, problem)
        for h in self._hints.get(uri, []):
            if h.start <= b and h.end >= a:
                edit = Edit(h.replacement, h.start, h.end)
                fixes.append(QuickFix(FixOrigin.HINT, edit, h.start, h.end, h.code, h.message))
        snippets = (
            []
            if self.session.why_not(uri, True)
            else available_snippets(doc, start if start.line < doc.line_count else end)
        )
        return doc, fixes, snippets

    async def _repair(self, doc: Document, problem: SyntaxProblem) -> list[QuickFix]:
        """A model rewrite of the lines of a syntax error, offered only if it makes them parse."""
        if self.session.why_not(doc.uri, True) is not None:
            return []
        outcome = await self._snippet_job(
            doc, plan_repair(doc, problem.start, problem.end), 2, 0.0, lambda: False
        )
        if not outcome.edits:
            return []
        edit = outcome.edits[0]
        return [QuickFix(FixOrigin.REPAIR, edit, problem.start, problem.end, problem.code, problem.message)]

    async def run_snippet(
        self, request: SnippetRequest, cancelled: Callable[[], bool]
    ) -> tuple[Document | None, SnippetOutcome | None, str]:
        """Generate on the worker; (doc, outcome, message) — outcome None when refused."""
        kind, uri, position, version = request.kind, request.uri, request.position, request.version
        doc = self.documents.get(uri)
        if doc is None:
            return None, None, "the document is not open"
        if doc.version != version:
            return doc, None, "the document changed since the action was offered; nothing was applied"
        reason = self.session.why_not(uri, True)
        if reason is not None:
            return doc, None, reason
        plan = plan_snippet(doc, kind, position) if doc.tree is not None else None
        if plan is None:
            why = doc.fallback_reason or "no syntax tree"
            return (
                doc,
                None,
                f"{kind.value} does not apply here" if doc.tree is not None else f"no syntax tree ({why})",
            )
        self.session.set_status("generating", kind.value, uri)
        outcome = await self._snippet_job(doc, plan, request.candidates, request.temperature, cancelled)
        self.session.set_status("ready", outcome.message, uri)
        return doc, outcome, outcome.message

    async def _snippet_job(
        self, doc: Document, plan: SnippetPlan, n: int, temperature: float, cancelled: Callable[[], bool]
    ) -> SnippetOutcome:
        pipeline, uri, version = self.session.pipeline, doc.uri, doc.version
        assert pipeline is not None
        event = threading.Event()
        g = self.session.settings.generation
        limits = DecodeLimits(
            min(g.max_tokens_block, pipeline.engine.context_length // 2), g.timeout_ms, temperature
        )

        def stop() -> bool:
            current = self.documents.get(uri)
            return event.is_set() or cancelled() or current is None or current.version != version

        try:
            failed = SnippetOutcome([], "the model failed to decode; nothing was generated", version)
            return await self.session.decode(
                lambda: generate_snippet(pipeline, doc, plan, limits, n, stop), failed
            )
        except asyncio.CancelledError:
            event.set()
            raise
