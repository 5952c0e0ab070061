"""Server state and scheduling: documents, settings, the model, and the one inference worker.

Inference runs on a single worker thread, never on the event loop (DESIGN.md). Every decode
carries a cancel check that trips on `$/cancelRequest`, on a newer edit to its document, or on a
newer completion request for the same document, so at most one useful decode per document runs
and a result computed on an old version is never sent (RELIABILITY.md #13, #14).
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import tree_sitter

from . import hints as hint_rules
from .diagnostics import QuickFix, SyntaxProblem, checked, syntax_problems
from .documents import Document, DocumentStore, Position, PositionEncoding, TextChange
from .engine import DecodeLimits, Engine
from .hints import Hint
from .model_dir import ModelDirError, default_model_path, load_model_dir
from .pipeline import Outcome, Pipeline
from .postprocess import Edit
from .settings import Settings
from .snippets import (
    SnippetKind,
    SnippetOutcome,
    available_snippets,
    generate_snippet,
    plan_repair,
    plan_snippet,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
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
Publisher = Callable[[Document, list[SyntaxProblem], list[Hint]], None]
# Files whose contents are secrets by convention (RELIABILITY.md #21): never completed in.
_SECRET_FILES = re.compile(
    r"(^\.env(\..*)?$|\.pem$|\.key$|^id_(rsa|dsa|ecdsa|ed25519)(\.pub)?$|\.p12$|\.pfx$)"
)


def is_secret_file(uri: str) -> bool:
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    return bool(_SECRET_FILES.search(name))


@dataclass(frozen=True)
class Status:
    """What the user sees in the status bar: ready / generating / disabled / error, and why."""

    state: str
    reason: str
    uri: str | None = None


class Session:
    def __init__(self, model_path: Path | None, notify: Callable[[Status], None]) -> None:
        self.cli_model_path = model_path
        self.settings = Settings()
        self.documents = DocumentStore()
        self.pipeline: Pipeline | None = None
        self.model_error: str | None = "model not loaded yet"
        self.enabled = True
        self.status = Status("disabled", "starting")
        self._notify = notify
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpt-lsp-inference")
        self._latest: dict[str, threading.Event] = {}
        self._loaded_key: tuple | None = None
        self.publish: Publisher = lambda doc, problems, hints: None
        self.hint_threshold: float | None = None  # from the model's hints.json; None = hints off
        self._diagnosis: dict[str, asyncio.Task] = {}
        self._problems: dict[str, tuple[int, list[SyntaxProblem]]] = {}
        self._hints: dict[str, list[Hint]] = {}
        self._hint_region: dict[str, tuple[int, int]] = {}
        self._parsers: dict[int, tree_sitter.Parser] = {}

    # -- status ------------------------------------------------------------------------------
    def set_status(self, state: str, reason: str, uri: str | None = None) -> None:
        self.status = Status(state, reason, uri)
        if self.settings.log_level == "verbose" or state == "error":
            log.info("status %s: %s (%s)", state, reason, uri or "-")
        self._notify(self.status)

    # -- model -------------------------------------------------------------------------------
    def model_path(self) -> Path:
        configured = self.settings.model.path
        return Path(configured).expanduser() if configured else (self.cli_model_path or default_model_path())

    def load_model(self) -> None:
        """Load (or reload) the model on the worker thread; a failure leaves the server up without AI."""
        key = (self.model_path(), self.settings.model.variant, self.settings.model.threads)
        if key == self._loaded_key and self.pipeline is not None:
            self.pipeline.generation = self.settings.generation
            return
        self._loaded_key = key
        self._worker.submit(self._load, *key)

    def _load(self, path: Path, variant: str, threads: int) -> None:
        try:
            engine = Engine(load_model_dir(path), variant, threads)
            warm_ms = engine.warm_up()
        except ModelDirError as err:
            self.pipeline, self.model_error = None, str(err)
            self.set_status("error", f"model unavailable: {err}")
            return
        except Exception as err:  # a model we cannot run must not take the server down
            log.exception("loading the model failed")
            self.pipeline, self.model_error = None, f"{path}: {err}"
            self.set_status("error", f"model unavailable: {err}")
            return
        self.pipeline, self.model_error = Pipeline(engine, self.settings.generation), None
        calibration = hint_rules.load_calibration(path)
        self.hint_threshold = calibration.threshold if calibration and calibration.usable else None
        if self.hint_threshold is None:
            log.info("model hints off: %s has no hint-bench calibration reaching 80%% precision", path)
        log.info("model %s (%s) ready; warm-up %.0f ms", engine.onnx_path, variant, warm_ms)
        self.set_status("ready", f"model {path.name} ready")

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.enable
        self.load_model()

    # -- documents ---------------------------------------------------------------------------
    def set_encoding(self, encoding: PositionEncoding) -> None:
        self.documents = DocumentStore(encoding=encoding)

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        self._cancel(uri)
        return self.documents.open(uri, language_id, version, text)

    def change(self, uri: str, version: int, changes: list[TextChange]) -> None:
        self._cancel(uri)
        old = self.documents.get(uri)
        new = self.documents.change(uri, version, changes)
        if old is not None and len(new.text) <= HINT_MAX_CHARS:
            span = hint_rules.changed_span(old.text, new.text)
            self._hints[uri] = hint_rules.shift_hints(self._hints.get(uri, []), *span)
            self._hint_region[uri] = hint_rules.merge_region(self._hint_region.get(uri), *span)
        else:
            self._hints.pop(uri, None)

    def close(self, uri: str) -> None:
        self._cancel(uri)
        doc = self.documents.get(uri)
        self.documents.close(uri)
        for table in (self._problems, self._hints, self._hint_region):
            table.pop(uri, None)
        task = self._diagnosis.pop(uri, None)
        if task is not None:
            task.cancel()
        if doc is not None:
            self.publish(doc, [], [])  # clear what the editor shows for a closed file
        if self.pipeline:
            self.pipeline.typing.forget(uri)

    def _cancel(self, uri: str) -> None:
        event = self._latest.pop(uri, None)
        if event is not None:
            event.set()

    # -- completion ----------------------------------------------------------------------------
    def why_not(self, uri: str, feature_enabled: bool) -> str | None:
        if is_secret_file(uri):
            return "secret-bearing file: never completed in"
        if not self.enabled:
            return "disabled by the user"
        if not feature_enabled:
            return "this feature is disabled in settings"
        if self.pipeline is None:
            return f"model unavailable: {self.model_error}"
        return None

    async def complete(
        self, uri: str, position: Position, feature_enabled: bool
    ) -> tuple[Document, Outcome] | None:
        """Run the pipeline off the event loop; None when there is nothing to send."""
        doc = self.documents.get(uri)
        if doc is None:
            log.info("completion for unknown document %s", uri)
            return None
        reason = self.why_not(uri, feature_enabled)
        if reason is not None:
            self.set_status("disabled", reason, uri)
            return None
        self._cancel(uri)  # a newer request for the same document supersedes the running one
        event = self._latest[uri] = threading.Event()
        version = doc.version

        def cancelled() -> bool:
            current = self.documents.get(uri)
            return event.is_set() or current is None or current.version != version

        pipeline = self.pipeline
        assert pipeline is not None
        if self.settings.generation.debounce_ms:
            await asyncio.sleep(self.settings.generation.debounce_ms / 1000)
            if cancelled():
                return None
        self.set_status("generating", "decoding", uri)
        try:
            outcome = await self._run(lambda: pipeline.complete(doc, position, cancelled))
        except asyncio.CancelledError:  # $/cancelRequest: stop the decode at its next token
            event.set()
            self.set_status("ready", "cancelled", uri)
            raise
        finally:
            if self._latest.get(uri) is event:
                del self._latest[uri]
        if cancelled():
            self.set_status("ready", "cancelled: the document changed", uri)
            return None
        log.debug("completion %s %s %s", uri, outcome.reason, outcome.timings)
        self.set_status("ready", outcome.reason, uri)
        return doc, outcome

    async def _run(self, job: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, job)

    # -- diagnostics: syntax (debounced, off the event loop) and model hints (worker thread) ------
    def schedule_diagnostics(self, uri: str) -> None:
        """(Re)start the debounce for `uri`; a newer edit cancels the pending pass (RELIABILITY.md #14)."""
        task = self._diagnosis.pop(uri, None)
        if task is not None:
            task.cancel()
        self._diagnosis[uri] = asyncio.get_running_loop().create_task(self._diagnose(uri))

    async def _diagnose(self, uri: str) -> None:
        await asyncio.sleep(SYNTAX_DEBOUNCE_S)
        doc = self.documents.get(uri)
        if doc is None:
            return
        problems = await self.problems(doc) if self.settings.diagnostics.syntax else []
        if self.documents.get(uri) is not doc:
            return
        self.publish(doc, problems, self._hints.get(uri, []))
        region = self._hint_region.get(uri)
        if (
            region is None
            or self.why_not(uri, self.settings.diagnostics.model_hints)
            or self.hint_threshold is None
        ):
            return
        await asyncio.sleep(HINT_DEBOUNCE_S - SYNTAX_DEBOUNCE_S)
        if self.documents.get(uri) is not doc or doc.tree is None:
            return
        del self._hint_region[uri]
        pipeline, threshold = self.pipeline, self.hint_threshold
        assert pipeline is not None

        def cancelled() -> bool:
            return self.documents.get(uri) is not doc

        found = await self._run(
            lambda: hint_rules.find_hints(pipeline.engine, doc, *region, threshold, cancelled)
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

    def parser(self, doc: Document) -> tree_sitter.Parser:
        assert doc.spec is not None
        parser = self._parsers.get(id(doc.spec.language))
        if parser is None:
            parser = self._parsers[id(doc.spec.language)] = tree_sitter.Parser(doc.spec.language)
        return parser

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
            fix = checked(doc, self.parser(doc), problem).fix
            if fix is not None:
                fixes.append(
                    QuickFix(
                        problem.fix_title, fix, problem.start, problem.end, problem.code, problem.message
                    )
                )
            elif problem.code in REPAIRABLE and not repaired:  # one model repair per request
                repaired = True
                fixes += await self._repair(doc, problem)
        for h in self._hints.get(uri, []):
            if h.start <= b and h.end >= a:
                fixes.append(
                    QuickFix(
                        f"Replace with `{h.replacement}`",
                        Edit(h.replacement, h.start, h.end),
                        h.start,
                        h.end,
                        h.code,
                        h.message,
                    )
                )
        snippets = (
            []
            if self.why_not(uri, True)
            else available_snippets(doc, start if start.line < doc.line_count else end)
        )
        return doc, fixes, snippets

    async def _repair(self, doc: Document, problem: SyntaxProblem) -> list[QuickFix]:
        """A model rewrite of the lines of a syntax error, offered only if it makes them parse."""
        if self.why_not(doc.uri, True) is not None:
            return []
        outcome = await self._snippet_job(
            doc, plan_repair(doc, problem.start, problem.end), 2, 0.0, lambda: False
        )
        if not outcome.edits:
            return []
        edit = outcome.edits[0]
        title = f"Repair with gpt-lsp: {edit.text.strip().splitlines()[0][:60]}"
        return [QuickFix(title, edit, problem.start, problem.end, problem.code, problem.message)]

    async def run_snippet(
        self,
        kind: SnippetKind,
        uri: str,
        position: Position,
        version: int,
        n: int,
        temperature: float,
        cancelled: Callable[[], bool],
    ) -> tuple[Document | None, SnippetOutcome | None, str]:
        """Generate `kind` at `position` on the worker; (doc, outcome, message) — outcome None when refused."""
        doc = self.documents.get(uri)
        if doc is None:
            return None, None, "the document is not open"
        if doc.version != version:
            return doc, None, "the document changed since the action was offered; nothing was applied"
        reason = self.why_not(uri, True)
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
        self.set_status("generating", kind.value, uri)
        outcome = await self._snippet_job(doc, plan, n, temperature, cancelled)
        self.set_status("ready", outcome.message, uri)
        return doc, outcome, outcome.message

    async def _snippet_job(
        self, doc: Document, plan, n: int, temperature: float, cancelled
    ) -> SnippetOutcome:
        pipeline, uri, version = self.pipeline, doc.uri, doc.version
        assert pipeline is not None
        event = threading.Event()
        g = self.settings.generation
        limits = DecodeLimits(
            min(g.max_tokens_block, pipeline.engine.context_length // 2), g.timeout_ms, temperature
        )

        def stop() -> bool:
            current = self.documents.get(uri)
            return event.is_set() or cancelled() or current is None or current.version != version

        parser = tree_sitter.Parser(doc.spec.language) if doc.spec else None
        assert parser is not None
        try:
            return await self._run(
                lambda: generate_snippet(pipeline.engine, doc, plan, limits, parser, n, stop)
            )
        except asyncio.CancelledError:
            event.set()
            raise

    def is_current(self, uri: str, version: int) -> bool:
        doc = self.documents.get(uri)
        return doc is not None and doc.version == version

    def shutdown(self) -> None:
        for task in self._diagnosis.values():
            task.cancel()
        for event in self._latest.values():
            event.set()
        self._worker.shutdown(wait=False, cancel_futures=True)
