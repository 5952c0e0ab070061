"""`gpt-lsp complete FILE:LINE:COL`: the completion an editor would get, from the terminal.

It runs `Pipeline.complete`, the code behind every inline-completion request, on the file as it
is on disk, so what it prints is what the editor would show (minus the editor's debounce and the
LSP round trip). `--explain` opens the box: the exact prompt with its sentinels, what the token
budget cut and what redaction replaced, then every decoded token with its probability and the
alternatives the model weighed, in the spirit of the logprobs views of OpenAI's playground and
Hugging Face's generation `output_scores`.

Server-only: numpy, onnxruntime, tokenizers and tree-sitter; no torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..completion.context import analyze
from ..completion.pipeline import Pipeline
from ..completion.related import RelatedFiles
from ..inference.engine import Engine
from ..inference.model_dir import load_model_dir
from ..inference.model_select import default_choice, resolve_model
from ..privacy.model_input import model_view
from ..settings import GenerationSettings
from ..text.documents import DocumentStore, Position, PositionEncoding
from ..workspace.index import WorkspaceIndex, project_root

TOP_ALTERNATIVES = 3


@dataclass
class TokenChoice:
    """One decoding step: the chosen token, its probability and the runners-up."""

    token: int
    text: str
    prob: float
    alternatives: list[tuple[int, str, float]]


@dataclass
class DecodeRecorder:
    """A decode observer that keeps each step's choice as probabilities (softmax of the final scores)."""

    engine: Any
    steps: list[TokenChoice] = field(default_factory=list)

    def __call__(self, token: int, scores: np.ndarray) -> None:
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        ranked = [int(i) for i in np.argsort(-probs)[: TOP_ALTERNATIVES + 1] if int(i) != token]
        self.steps.append(
            TokenChoice(
                token,
                self.engine.decode([token]),
                float(probs[token]),
                [(i, self.engine.decode([i]), float(probs[i])) for i in ranked[:TOP_ALTERNATIVES]],
            )
        )


def parse_target(spec: str) -> tuple[Path, int, int | None]:
    """`FILE:LINE:COL` or `FILE:LINE` (end of line); both numbers 1-based, COL in characters."""
    parts = spec.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        path, line, col = parts[0], int(parts[1]), int(parts[2])
    elif len(parts) >= 2 and parts[-1].isdigit():
        path, line, col = spec.rsplit(":", 1)[0], int(parts[-1]), None
    else:
        raise ValueError(f"{spec!r}: expected FILE:LINE:COL (1-based), e.g. app.py:12:8")
    if line < 1 or (col is not None and col < 1):
        raise ValueError(f"{spec!r}: LINE and COL start at 1")
    return Path(path), line, col


def _sentinels(engine: Any) -> dict[int, str]:
    names = {engine.eos_id: engine.config.eos_token}
    fim = engine.model_dir.config.fim
    if engine.fim and fim:
        names.update(
            {engine.fim.prefix: fim.prefix, engine.fim.suffix: fim.suffix, engine.fim.middle: fim.middle}
        )
    return names


def _kept_steps(steps: list[TokenChoice], healed: str, completion: str) -> int:
    """How many decoded tokens the shown completion covers; the rest were cut after decoding."""
    decoded = "".join(s.text for s in steps)
    at = decoded.find(healed + completion.strip()) if completion.strip() else -1
    if at < 0:
        return 0
    end, covered = at + len(healed + completion.strip()), 0
    for n, step in enumerate(steps):
        if covered >= end:
            return n
        covered += len(step.text)
    return len(steps)


def explain(
    engine: Any, doc: Any, ctx: Any, outcome: Any, recorder: DecodeRecorder, budget: int, max_tokens: int
) -> dict:
    """What the model was shown and how it chose, as plain data (`--json` prints it as is)."""
    prompt = outcome.prompt
    sentinels = _sentinels(engine)
    # The same redacted view the pipeline cut its prompt from.
    view = model_view(doc)
    window_start, window_end = ctx.offset - len(ctx.prefix), ctx.offset + len(ctx.suffix)
    redacted: dict[str, int] = {}
    for secret in view.overlapping(window_start, window_end):
        redacted[secret.kind] = redacted.get(secret.kind, 0) + 1
    prefix_sent = len(view.slice(window_start, ctx.offset))
    completion = outcome.suggestions[0].text if outcome.suggestions else ""
    kept = _kept_steps(recorder.steps, prompt.healed, completion)
    return {
        "budget_tokens": budget,
        "context_length": engine.context_length,
        "max_new_tokens": max_tokens,
        "prompt_format": "fim"
        if any(i in sentinels and i != engine.eos_id for i in prompt.ids)
        else "prefix",
        "prompt_tokens": [
            {"id": i, "text": engine.decode([i]), "sentinel": i in sentinels} for i in prompt.ids
        ],
        "cut": {
            "document_chars_before_cursor": ctx.offset,
            "prefix_chars_in_window": len(ctx.prefix),
            "prefix_chars_after_redaction": prefix_sent,
            "prefix_chars_in_prompt": prompt.prefix_chars,
            "prefix_chars_cut_for_budget": max(0, prefix_sent - prompt.prefix_chars - len(prompt.healed)),
            "suffix_chars_in_window": len(ctx.suffix),
            "suffix_chars_in_prompt": prompt.suffix_chars,
            "extra_context_chars": len(ctx.extra),
            "healed": prompt.healed,
        },
        "redacted": redacted,
        "decoded": [
            {
                "id": s.token,
                "text": s.text,
                "prob": round(s.prob, 4),
                "sentinel": s.token in sentinels,
                "in_completion": n < kept,
                "alternatives": [
                    {"id": i, "text": t, "prob": round(p, 4), "sentinel": i in sentinels}
                    for i, t, p in s.alternatives
                ],
            }
            for n, s in enumerate(recorder.steps)
        ],
    }


def position_in(doc: Any, line: int, col: int | None) -> Position:
    """1-based LINE and COL (characters; None = end of line) as a Position, or a ValueError saying
    why it lies outside the document."""
    if not 1 <= line <= doc.line_count:
        raise ValueError(f"line {line} is outside the file (it has {doc.line_count} lines)")
    length = len(doc.line_text(line - 1))
    if col is None:
        return Position(line - 1, length)
    if not 1 <= col <= length + 1:
        raise ValueError(f"column {col} is outside line {line} (it has {length} characters)")
    return Position(line - 1, col - 1)


def load_engine(model: str | Path | None, variant: str = "auto") -> tuple[Engine, Path, float]:
    """Load and warm up a model (a directory, GGUF file or name; None = the server's default); also
    return its directory and the ms it took."""
    model_path = resolve_model(model) if model else default_choice()
    start = time.perf_counter()
    engine = Engine(load_model_dir(model_path), variant)
    engine.warm_up()  # the server warms up at load too; latency below is a warm request's
    return engine, model_path, (time.perf_counter() - start) * 1000


def complete_document(doc: Any, position: Position, pipeline: Pipeline, want_explain: bool) -> dict:
    """Complete at `position` with `pipeline` and report it as plain data: what the editor would get
    and, with `want_explain`, how (the prompt, the cuts, every token's odds). Local models only: the
    report names the ONNX file and reads the decoder's odds."""
    engine = cast(Engine, pipeline.engine)
    recorder = DecodeRecorder(engine)
    start = time.perf_counter()
    outcome = pipeline.complete(doc, position, observe=recorder if want_explain else None)
    latency_ms = (time.perf_counter() - start) * 1000
    ctx = analyze(doc, position)  # the pipeline's own gate, re-run (cheap, deterministic) to report it
    report: dict[str, Any] = {
        "line": position.line + 1,
        "col": position.character + 1,
        "language": doc.spec.name if doc.spec else None,
        "onnx": engine.onnx_path.name,
        "context_kind": ctx.kind.value,
        "context_reason": ctx.reason,
        "reason": outcome.reason,
        "stop_reason": outcome.stop_reason,
        "latency_ms": round(latency_ms, 1),
        "timings_ms": outcome.timings,
        "related": [{"source": p.source, "path": p.path, "text": p.text} for p in outcome.related],
        "completions": [
            {
                "text": s.text,
                "start": _line_col(doc, s.start),
                "end": _line_col(doc, s.end),
            }
            for s in outcome.suggestions
        ],
    }
    if want_explain and outcome.prompt is not None:
        limits = pipeline._limits(ctx)  # the same caps the pipeline decoded with (one source of truth)
        budget = pipeline.prompt_budget(limits)
        report["explain"] = explain(engine, doc, ctx, outcome, recorder, budget, limits.max_tokens)
    return report


def complete_file(
    path: Path, line: int, col: int | None, model: str | None, want_explain: bool, other_files: bool = False
) -> dict:
    """Load the model, complete at (line, col) of `path` and return the report as plain data.

    With `other_files`, the file's project (the nearest folder above it with a .git, pyproject.toml,
    setup.py or package.json) is indexed first, as an editor's workspace would be.
    """
    text = _read(path)
    doc = DocumentStore(PositionEncoding.UTF32).open(path.resolve().as_uri(), "", 1, text)
    try:
        position = position_in(doc, line, col)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    engine, model_path, load_ms = load_engine(model)
    related = None
    if other_files:
        index = WorkspaceIndex([project_root(path.resolve())])
        index.build()
        related = RelatedFiles(index)
    report = complete_document(
        doc, position, Pipeline(engine, GenerationSettings(), related=related), want_explain
    )
    return {"file": str(path), "model": str(model_path), "model_load_ms": round(load_ms, 1), **report}


def _read(path: Path) -> str:
    """The file's text with its line endings as they are (an editor sends them unchanged)."""
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        return f.read()


def _line_col(doc: Any, offset: int) -> dict[str, int]:
    pos = doc.position_at(offset)
    return {"line": pos.line + 1, "col": pos.character + 1}
