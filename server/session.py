"""Server state: documents, settings, the model and its status; completion requests scheduled on
the inference worker (worker.py).

Every decode carries a cancel check that trips on `$/cancelRequest`, on a newer edit to its
document, or on a newer completion request for the same document. The assist features
(assist/scheduler.py) use this session as a peer: the LSP layer wires the two together.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .assist import hints as hint_rules
from .completion.pipeline import Outcome, Pipeline
from .completion.related import RelatedFiles
from .inference.context_check import check_context_length
from .inference.engine import DecodeError, Engine
from .inference.model_dir import ModelDirError, default_model_path, load_model_dir, model_fingerprint
from .inference.model_select import GEMMA_CODE, default_choice, model_label, resolve_model
from .privacy.secret_files import WorkspaceIgnores, is_secret_file
from .settings import RemoteSettings, Settings
from .text.documents import Document, DocumentStore, Position, PositionEncoding, TextChange
from .worker import Worker
from .workspace.index import WorkspaceIndex

log = logging.getLogger(__name__)
T = TypeVar("T")
# A model that fails this many decodes in a row is turned off until its files or settings change:
# one bad prompt is an answer without a suggestion, a broken model is not retried per keystroke.
MAX_DECODE_FAILURES = 3
_LOG_LEVELS = {"error": logging.ERROR, "info": logging.INFO, "verbose": logging.DEBUG}


@dataclass(frozen=True)
class Status:
    """What the user sees in the status bar: ready / generating / disabled / error, and why."""

    state: str
    reason: str
    uri: str | None = None


# (message, popup, level): window/logMessage always, window/showMessage too when popup is true.
UserMessenger = Callable[..., None]


class Session:
    def __init__(
        self,
        model_path: Path | None,
        notify: Callable[[Status], None],
        tell_user: UserMessenger = lambda message, popup, level="error": None,
    ) -> None:
        self.cli_model_path = model_path
        self.settings = Settings()
        self.documents = DocumentStore()
        self.pipeline: Pipeline | None = None
        self.model_error: str | None = "model not loaded yet"
        self._model_state = "disabled"  # the state shown while there is no model: disabled (loading) or error
        self.enabled = True
        self.status = Status("disabled", "starting")
        self._notify = notify
        # What every editor must show, plugin or not, once per fault (or notice).
        self.tell_user = tell_user
        self._suggested_better_model = False
        self.worker = Worker()
        # The loaded model's hint threshold (its hints.json, measured by hint-bench); None = hints off.
        self.hint_threshold: float | None = None
        self._loaded_key: tuple | None = None
        self.ignores = WorkspaceIgnores()  # the workspace folders, set by initialize
        self.roots: list[Path] = []
        # Context from other files: recent documents always, the workspace index once there are roots.
        self.related = RelatedFiles()
        self._related_lock = threading.Lock()

    def set_workspace(self, folder_uris: list[str]) -> None:
        """initialize's workspace folders (or rootUri): what .gitignore rules and the index cover."""
        self.ignores = WorkspaceIgnores.for_uris(folder_uris)
        self.roots = self.ignores.roots

    def _use_related(self) -> None:
        """Start indexing the workspace once other-file context is on, and hand it to the pipeline."""
        on = self.settings.context.other_files
        with self._related_lock:  # called from the event loop (settings) and the worker (model loaded)
            if on and self.related.index is None and self.roots:
                self.related.index = WorkspaceIndex(self.roots)
                self.related.index.start()
        if self.pipeline is not None:
            self.pipeline.related = self.related if on else None

    # -- status ------------------------------------------------------------------------------
    def set_status(self, state: str, reason: str, uri: str | None = None) -> None:
        """Report `state`; "ready" and "generating" are never claimed while there is no model."""
        if state in ("ready", "generating") and self.pipeline is None:
            state, reason = self._model_state, self.unavailable
        self.status = Status(state, reason, uri)
        if self.settings.log_level == "verbose" or state == "error":
            log.info("status %s: %s (%s)", state, reason, uri or "-")
        self._notify(self.status)

    # -- model -------------------------------------------------------------------------------
    @property
    def unavailable(self) -> str:
        return f"model unavailable: {self.model_error}"

    def model_path(self) -> Path:
        configured = self.settings.model.path
        return Path(configured).expanduser() if configured else (self.cli_model_path or default_choice())

    def load_model(self) -> None:
        """Load the model on the worker thread unless this model, unchanged, was loaded or tried.

        The key holds the model settings and the directory's file fingerprint, so a model that
        failed is tried again only once its files or its settings change, never per keystroke.
        A failure leaves the server up without AI.
        """
        path = self.model_path()
        key = (path, self.settings.model.variant, self.settings.model.threads, model_fingerprint(path))
        if self.settings.backend == "openai":
            if (*key, self.settings.remote) != self._loaded_key:
                self._loaded_key = (*key, self.settings.remote)
                self.set_status("disabled", f"connecting to {self.settings.remote.base_url}")
                self.worker.submit(lambda: self._load_remote(self.settings.remote, *key[:3]))
            elif self.pipeline is not None:
                self.pipeline.generation = self.settings.generation
            return
        if key == self._loaded_key:
            if self.pipeline is not None:
                self.pipeline.generation = self.settings.generation
            return
        self._loaded_key = key
        self.model_error, self._model_state = f"loading {path}", "disabled"
        self.set_status("disabled", f"loading model {path}")
        self.worker.submit(lambda: self._load(*key[:3]))

    def _load(self, path: Path, variant: str, threads: int) -> None:
        try:
            path = resolve_model(path, on_stage=lambda line: self.set_status("disabled", line))
            engine = Engine(load_model_dir(path), variant, threads)
            warm_ms = engine.warm_up()
            check_context_length(engine)
        except ModelDirError as err:
            self._turn_off(str(err))
            return
        except DecodeError as err:
            self._turn_off(f"{path}: the model fails to decode: {err}")
            return
        except Exception as err:  # a model we cannot run must not take the server down
            log.exception("loading the model failed")
            self._turn_off(f"{path}: {err}")
            return
        self.pipeline, self.model_error = Pipeline(engine, self.settings.generation), None
        self._use_related()
        calibration = hint_rules.load_calibration(path)
        self.hint_threshold = calibration.threshold if calibration and calibration.usable else None
        if self.hint_threshold is None:
            log.info("model hints off: %s has no hint-bench calibration reaching 80%% precision", path)
        log.info("model %s (%s) ready; warm-up %.0f ms", engine.onnx_path, variant, warm_ms)
        if path == default_model_path() and not (self.settings.model.path or self.cli_model_path):
            self._suggest_better_model()
        self.set_status("ready", f"model {model_label(path)} ready")

    def _suggest_better_model(self) -> None:
        """Serving the small model because nothing better is built: say once how to get the better one."""
        if self._suggested_better_model:
            return
        self._suggested_better_model = True
        self.tell_user(
            "gpt-lsp: serving the small built-in model. For much better completions, build the code-tuned "
            f"Gemma once: pip install 'gpt-lsp[gemma]' && gpt-lsp build {GEMMA_CODE}",
            True,
            "info",
        )

    def _turn_off(self, why: str) -> None:
        """No AI features until the model or its settings change; the user hears it once, in any editor."""
        self.pipeline, self.model_error, self._model_state = None, why, "error"
        log.error("AI features off: %s", why)
        self.tell_user(
            f"gpt-lsp: AI features are off: {why}. They come back when the model or its settings change.",
            True,
        )
        self.set_status("error", self.unavailable)

    def _decode_failed(self, pipeline: Pipeline | None, err: DecodeError) -> None:
        if pipeline is None or pipeline is not self.pipeline:
            return  # another model replaced the one that failed
        engine = pipeline.engine
        assert isinstance(engine, Engine), "only the local engine raises DecodeError"
        failures = engine.consecutive_failures
        if failures >= MAX_DECODE_FAILURES:
            self._turn_off(f"{engine.onnx_path} failed {failures} decodes in a row ({err})")
            return
        why = f"the model failed to decode ({failures} of {MAX_DECODE_FAILURES} before AI features turn off): {err}"
        log.warning("%s", why)
        self.tell_user(f"gpt-lsp: {why}", False)
        self.set_status("error", why)

    def _load_remote(self, remote: RemoteSettings, path: Path, variant: str, threads: int) -> None:
        """Serve from an OpenAI-compatible server; the local model is loaded only as its fallback."""
        from .inference.remote import RemoteEngine  # httpx is imported only for this backend

        old = self.pipeline.engine if self.pipeline else None
        try:
            engine = RemoteEngine(remote, alert=lambda message: self.tell_user(message, True))
        except ModelDirError as err:
            self.pipeline, self.model_error = None, str(err)
            self.set_status("error", f"model server unusable: {err}")
            return
        fallback = None
        if remote.fallback_to_local:
            try:
                fallback = Pipeline(Engine(load_model_dir(path), variant, threads), self.settings.generation)
            except Exception as err:  # the remote still serves; only the fallback is missing
                log.warning("local fallback unavailable: %s", err)
        self.pipeline = Pipeline(engine, self.settings.generation, token_healing=False, fallback=fallback)
        self._use_related()
        self.model_error = None
        self.hint_threshold = None  # hints read the model's logits, which a server does not send
        if old is not None and hasattr(old, "close"):
            old.close()
        self.set_status("ready", f"{engine.describe()} ready")

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        logging.getLogger("gpt_lsp").setLevel(_LOG_LEVELS[settings.log_level])
        self.enabled = settings.enable
        self.load_model()
        self._use_related()

    # -- documents ---------------------------------------------------------------------------
    def set_encoding(self, encoding: PositionEncoding) -> None:
        self.documents = DocumentStore(encoding=encoding)

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        self.worker.cancel(uri)
        doc = self.documents.open(uri, language_id, version, text)
        self.related.touch(doc)
        return doc

    def change(self, uri: str, version: int, changes: list[TextChange]) -> tuple[Document | None, Document]:
        """Apply an edit; (previous version, new version). KeyError for a document that is not open."""
        self.worker.cancel(uri)
        old = self.documents.get(uri)
        new = self.documents.change(uri, version, changes)
        self.related.touch(new)
        return old, new

    def close(self, uri: str) -> Document | None:
        """Forget a document; the version that was open, if any."""
        self.worker.cancel(uri)
        doc = self.documents.get(uri)
        self.documents.close(uri)
        self.related.forget(uri)
        if self.pipeline:
            self.pipeline.typing.forget(uri)
        return doc

    # -- completion ----------------------------------------------------------------------------
    def why_not(self, uri: str, feature_enabled: bool) -> str | None:
        if is_secret_file(uri):
            return "secret-bearing file: never completed in"
        if self.ignores.ignores(uri):
            return "ignored by the workspace's .gitignore: never sent to the model"
        if not self.enabled:
            return "disabled by the user"
        if not feature_enabled:
            return "this feature is disabled in settings"
        if self.pipeline is None:
            self.load_model()  # tried again only if the model's files or settings changed
            return self.unavailable
        return None

    def model_name(self) -> str:
        """The model serving now, as the acceptance counts name it (the status bar's label)."""
        if self.settings.backend == "openai":
            remote = self.settings.remote
            return f"openai:{remote.model or remote.base_url}"
        return model_label(self.model_path())

    async def complete(
        self, uri: str, position: Position, feature_enabled: bool, n: int = 1, typing: bool = False
    ) -> tuple[Document, Outcome] | None:
        """Run the pipeline off the event loop for up to `n` candidates; None when there is nothing to send.

        `typing`: the editor asked on its own as the user typed (Pipeline.complete)."""
        doc = self.documents.get(uri)
        if doc is None:
            log.info("completion for unknown document %s", uri)
            return None
        reason = self.why_not(uri, feature_enabled)
        if reason is not None:  # a broken model stays "error"; everything else is "disabled"
            self.set_status(self._model_state if reason == self.unavailable else "disabled", reason, uri)
            return None
        event = self.worker.supersede(uri)  # a newer request for the same document stops the running one
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
            outcome = await self.decode(
                lambda: pipeline.complete(doc, position, cancelled, n, typing=typing), None
            )
        except asyncio.CancelledError:  # $/cancelRequest: stop the decode at its next token
            event.set()
            self.set_status("ready", "cancelled", uri)
            raise
        except Exception as err:  # a bug of ours fails this request only, and says so in the status
            self.set_status("error", f"completion failed: {type(err).__name__}; see the server log", uri)
            raise
        finally:
            self.worker.finished(uri, event)
        if outcome is None:  # the model failed: no suggestion, and the status already says why
            return None
        if cancelled():
            self.set_status("ready", "cancelled: the document changed", uri)
            return None
        log.debug(
            "completion %s %s %s; other files: %s",
            uri,
            outcome.reason,
            outcome.timings,
            ", ".join(f"{p.source} {p.path}" for p in outcome.related) or "-",
        )
        self.set_status("error" if outcome.stop_reason == "unavailable" else "ready", outcome.reason, uri)
        return doc, outcome

    async def decode(self, job: Callable[[], T], fallback: T) -> T:
        """Run a model job on the worker; if the graph fails, answer `fallback` (no suggestion)
        instead of an error per keystroke, and turn AI features off after repeated failures."""
        pipeline = self.pipeline
        try:
            return await self.worker.run(job)
        except DecodeError as err:
            self._decode_failed(pipeline, err)
            return fallback

    def is_current(self, uri: str, version: int) -> bool:
        doc = self.documents.get(uri)
        return doc is not None and doc.version == version

    def shutdown(self) -> None:
        self.worker.shutdown()
