"""What the playground page can ask for: a completion explained, or a small evaluation on a folder.

Requests are plain JSON; every field is checked here, so a bad path or a position outside the
text comes back as a `PlaygroundError` whose message the page shows, never as a traceback. The
completion report is `complete_document`'s, the same one `gpt-lsp complete --explain --json`
prints: the playground is a view of it, not a second explanation.

Models are loaded once per (directory, variant) and kept; one lock serialises loading and
inference, so two quick clicks never share an engine mid-decode (its repetition penalty is set
per request) and never load the same model twice.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePath
from typing import Any

from ..completion.pipeline import Pipeline
from ..inference.engine import REPETITION_PENALTY, Engine
from ..inference.model_dir import ModelDirError
from ..inference.model_select import default_choice, resolve_model
from ..settings import GenerationSettings
from ..text.documents import DocumentStore, PositionEncoding
from .complete import complete_document, load_engine, position_in

MAX_TEXT_CHARS = 2_000_000  # a pasted file; larger is a mistake, not a prompt experiment
MAX_EVAL_CUTS = 500  # a "small" evaluation: seconds to a minute on a laptop CPU
VARIANTS = ("auto", "int8", "fp32")
PROMPTS = ("auto", "fim", "prefix")


class PlaygroundError(ValueError):
    """A request the playground cannot serve; the message tells the user what to change."""


@dataclass(frozen=True)
class RunSettings:
    """The knobs the page exposes; the defaults are what an editor gets."""

    model: str = ""  # model directory; empty = the shipped model
    variant: str = "auto"
    prompt: str = "auto"  # auto = the model directory's completion_prompt
    budget: int = 0  # prompt tokens; 0 = all the context window leaves after max_tokens
    max_tokens: int = 0  # 0 = the editor defaults (48 for a line, 128 for a block)
    temperature: float = 0.0
    top_p: float = 0.95
    repetition_penalty: float = REPETITION_PENALTY
    healing: bool = True
    timeout_ms: int = GenerationSettings.timeout_ms


def _number(name: str, value: Any, kind: type, low: float, high: float) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlaygroundError(f"{name} must be a number, not {value!r}")
    if kind is int and value != int(value):
        raise PlaygroundError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        lo, hi = (f"{v:g}" if kind is float else str(int(v)) for v in (low, high))
        raise PlaygroundError(f"{name} must be between {lo} and {hi}, not {value!r}")
    return kind(value)


_LIMITS: dict[str, tuple[type, float, float]] = {
    "budget": (int, 0, 1_000_000),
    "max_tokens": (int, 0, 4096),
    "temperature": (float, 0, 5),
    "top_p": (float, 0.01, 1),
    "repetition_penalty": (float, 1, 10),
    "timeout_ms": (int, 1, 600_000),
}


def parse_settings(raw: Any) -> RunSettings:
    """RunSettings from the page's JSON; unknown keys and out-of-range values are errors."""
    if raw is None:
        return RunSettings()
    if not isinstance(raw, dict):
        raise PlaygroundError("settings must be an object")
    known = {f.name for f in fields(RunSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PlaygroundError(f"unknown setting(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in _LIMITS:
            values[name] = _number(name, value, *_LIMITS[name])
        elif name == "healing":
            if not isinstance(value, bool):
                raise PlaygroundError(f"healing must be true or false, not {value!r}")
            values[name] = value
        elif not isinstance(value, str):
            raise PlaygroundError(f"{name} must be a string, not {value!r}")
        else:
            values[name] = value.strip()
    settings = RunSettings(**values)
    if settings.variant not in VARIANTS:
        raise PlaygroundError(f"variant must be one of {', '.join(VARIANTS)}")
    if settings.prompt not in PROMPTS:
        raise PlaygroundError(f"prompt must be one of {', '.join(PROMPTS)}")
    return settings


def _field(body: dict, name: str, kind: type) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise PlaygroundError(f"{name} is required ({kind.__name__})")
    return value


class Playground:
    """The models loaded so far and the lock every inference takes."""

    def __init__(self, default_model: str = "") -> None:
        self.default_model = default_model
        self.lock = threading.Lock()
        self._engines: dict[tuple[str, str], Engine] = {}
        self.load_ms: dict[tuple[str, str], float] = {}

    def _engine(self, settings: RunSettings) -> tuple[Engine, dict]:
        """The cached engine for the settings' model (loading it the first time), and what to say
        about it; call with the lock held."""
        named = settings.model or self.default_model
        try:
            model = resolve_model(named) if named else default_choice()
        except ModelDirError as err:
            raise PlaygroundError(f"model: {err}") from None
        key = (str(model.resolve()), settings.variant)
        engine = self._engines.get(key)
        cached = engine is not None
        if engine is None:
            try:
                engine, _, self.load_ms[key] = load_engine(model, settings.variant)
            except ModelDirError as err:
                raise PlaygroundError(f"model: {err}") from None
            self._engines[key] = engine
        about = {
            "path": str(engine.model_dir.path),
            "onnx": engine.onnx_path.name,
            "description": engine.config.description,
            "load_ms": round(self.load_ms[key], 1),
            "cached": cached,
        }
        return engine, about

    def _pipeline(self, engine: Engine, settings: RunSettings) -> Pipeline:
        engine.repetition_penalty = settings.repetition_penalty
        defaults = GenerationSettings()
        generation = GenerationSettings(
            max_tokens_line=settings.max_tokens or defaults.max_tokens_line,
            max_tokens_block=settings.max_tokens or defaults.max_tokens_block,
            timeout_ms=settings.timeout_ms,
            temperature=settings.temperature,
        )
        return Pipeline(
            engine,
            generation,
            token_healing=settings.healing,
            prompt=None if settings.prompt == "auto" else settings.prompt,
            top_p=settings.top_p,
            prompt_budget=settings.budget or None,
        )

    def complete(self, body: dict) -> dict:
        """`{text, filename, line, col, settings}` -> the explained completion (LINE and COL start at 1)."""
        text = _field(body, "text", str)
        if len(text) > MAX_TEXT_CHARS:
            raise PlaygroundError(f"text is longer than {MAX_TEXT_CHARS} characters")
        name = PurePath(str(body.get("filename") or "untitled.py")).name or "untitled.py"
        line, col = _field(body, "line", int), _field(body, "col", int)
        settings = parse_settings(body.get("settings"))
        # Only the name matters: its extension picks the grammar, as an editor's languageId would.
        uri = Path("/playground", name).as_uri()
        doc = DocumentStore(PositionEncoding.UTF32).open(uri, "", 1, text)
        try:
            position = position_in(doc, line, col)
        except ValueError as err:
            raise PlaygroundError(str(err)) from None
        with self.lock:
            engine, model = self._engine(settings)
            try:
                report = complete_document(doc, position, self._pipeline(engine, settings), want_explain=True)
            except ValueError as err:  # e.g. a budget that leaves no room for the prompt
                raise PlaygroundError(str(err)) from None
        return {"file": name, "model": model, "settings": asdict(settings), **report}

    def evaluate(self, body: dict) -> dict:
        """`{folder, n, seed, settings}` -> EM/ES, BLEU and ROUGE-L of `n` line cuts from the Python
        files under `folder` (a path on this machine), through the same pipeline as `gpt-lsp eval`."""
        missing = [m for m in ("sacrebleu", "rouge_score") if importlib.util.find_spec(m) is None]
        if missing:
            raise PlaygroundError(
                f"the evaluation needs {' and '.join(missing)}: pip install 'gpt-lsp[train]'"
            )
        from gpt_lsp.model import evaluate
        from gpt_lsp.model.corpus import CorpusError, load_corpus

        folder = Path(_field(body, "folder", str).strip()).expanduser()
        if not folder.is_dir():
            raise PlaygroundError(f"{folder}: not a directory")
        n = _number("n", body.get("n", 50), int, 1, MAX_EVAL_CUTS)
        seed = _number("seed", body.get("seed", 0), int, 0, 2**31)
        settings = parse_settings(body.get("settings"))
        try:
            train, valid = load_corpus([folder], languages="python")
        except CorpusError as err:
            raise PlaygroundError(str(err)) from None
        samples = evaluate.sample_lines(train + valid, n, seed, mid_identifier=False)
        if not samples:
            raise PlaygroundError(f"{folder}: no code lines to cut")
        with self.lock:
            engine, model = self._engine(settings)
            results = evaluate.complete_samples(self._pipeline(engine, settings), samples)
        summary = evaluate.summarize_lines(results, seed)
        return {
            "folder": str(folder),
            "files": len(train) + len(valid),
            "model": model,
            "settings": asdict(settings),
            "summary": summary,
            "examples": results[:12],
        }
