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

from . import hints as hint_rules
from .assist import Assist
from .documents import Document, DocumentStore, Position, PositionEncoding, TextChange
from .engine import Engine
from .model_dir import ModelDirError, default_model_path, load_model_dir
from .pipeline import Outcome, Pipeline
from .settings import RemoteSettings, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
_LOG_LEVELS = {"error": logging.ERROR, "info": logging.INFO, "verbose": logging.DEBUG}
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
        # One popup for a fault the user should know about (window/showMessage); lsp.py wires it.
        self.alert: Callable[[str], None] = lambda message: log.warning("%s", message)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpt-lsp-inference")
        self._latest: dict[str, threading.Event] = {}
        self._loaded_key: tuple | None = None
        self.assist = Assist(self)

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
        if self.settings.backend == "openai":
            if (*key, self.settings.remote) != self._loaded_key or self.pipeline is None:
                self._loaded_key = (*key, self.settings.remote)
                self.set_status("disabled", f"connecting to {self.settings.remote.base_url}")
                self._worker.submit(self._load_remote, self.settings.remote, *key)
            elif self.pipeline is not None:
                self.pipeline.generation = self.settings.generation
            return
        if key == self._loaded_key and self.pipeline is not None:
            self.pipeline.generation = self.settings.generation
            return
        self._loaded_key = key
        self.model_error = f"loading {key[0]}"
        self.set_status("disabled", f"loading model {key[0]}")
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
        self.assist.hint_threshold = calibration.threshold if calibration and calibration.usable else None
        if self.assist.hint_threshold is None:
            log.info("model hints off: %s has no hint-bench calibration reaching 80%% precision", path)
        log.info("model %s (%s) ready; warm-up %.0f ms", engine.onnx_path, variant, warm_ms)
        self.set_status("ready", f"model {path.name} ready")

    def _load_remote(self, remote: RemoteSettings, path: Path, variant: str, threads: int) -> None:
        """Serve from an OpenAI-compatible server; the local model is loaded only as its fallback."""
        from .remote import RemoteEngine  # httpx is imported only for this backend

        old = self.pipeline.engine if self.pipeline else None
        try:
            engine = RemoteEngine(remote, alert=lambda message: self.alert(message))
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
        self.model_error = None
        self.assist.hint_threshold = None  # hints read the model's logits, which a server does not send
        if old is not None and hasattr(old, "close"):
            old.close()
        self.set_status("ready", f"{engine.describe()} ready")

    def apply_settings(self, settings: Settings) -> None:
        self.settings = settings
        logging.getLogger("gpt_lsp").setLevel(_LOG_LEVELS[settings.log_level])
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
        self.assist.on_change(uri, old, self.documents.change(uri, version, changes))

    def close(self, uri: str) -> None:
        self._cancel(uri)
        self.assist.on_close(uri, self.documents.get(uri))
        self.documents.close(uri)
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
        self.set_status("error" if outcome.stop_reason == "unavailable" else "ready", outcome.reason, uri)
        return doc, outcome

    async def _run(self, job: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, job)

    def is_current(self, uri: str, version: int) -> bool:
        doc = self.documents.get(uri)
        return doc is not None and doc.version == version

    def shutdown(self) -> None:
        self.assist.shutdown()
        for event in self._latest.values():
            event.set()
        self._worker.shutdown(wait=False, cancel_futures=True)
