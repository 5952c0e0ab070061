"""The serving pipeline, one call per stage: should_complete -> build_prompt -> decode -> shape.

`complete()` reads like the serving diagram in docs/architecture.md and times every stage; it takes plain
documents and positions and returns plain dataclasses, so it is testable without a server and
is what the evaluator and benchmarks call too ("measure the path you ship").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ..inference.backend import Backend, outage
from ..inference.engine import DecodeLimits, DecodeObserver, Generation
from ..privacy.model_input import model_view
from ..settings import GenerationSettings
from ..text.documents import Document, Position
from ..text.syntax_tree import indent_width, parser_for
from .cache import GenerationCache, TypingThrough
from .context import CompletionContext, CompletionKind, analyze
from .postprocess import Edit, LineBudget, adds_parse_errors, block_stop, line_stop, shape_edit
from .prompt import RELATED_SHARE, Prompt, build_fim_prompt
from .related import RelatedFiles, RelatedPiece, render

log = logging.getLogger(__name__)

# The prompt window's start moves in blocks of this many tokens, so that keystrokes at the end of
# a long file share the prompt's start and the engine prefills only what changed (engine.prefill).
PROMPT_STEP = 64
# Parse-checking a completion re-parses the document (incrementally); above this size it costs more than it saves.
PARSE_CHECK_MAX_CHARS = 1_000_000
# Candidates after the first are sampled at this temperature when the settings ask for greedy
# decoding (generation.temperature 0): the first stays the deterministic answer.
SAMPLING_TEMPERATURE = 0.8


@dataclass(frozen=True)
class Suggestion:
    """One completion, as offsets into the document version it was computed for."""

    text: str
    start: int
    end: int
    kind: CompletionKind


@dataclass
class Outcome:
    """What `complete()` found: suggestions (possibly none) and why, with stage timings in ms."""

    suggestions: list[Suggestion]
    reason: str
    version: int
    timings: dict[str, float] = field(default_factory=dict)
    stop_reason: str = ""
    cached: bool = False
    prompt: Prompt | None = None  # the exact prompt decoded from (None when the model was not called)
    related: list[RelatedPiece] = field(default_factory=list)  # context from other files it was given


def _min_indent(ctx: CompletionContext) -> int:
    """Body lines of the block being completed are indented at least this much.

    The opener is the cursor's line when it has code, else the nearest non-blank line above.
    """
    opener = ctx.line_prefix
    if not opener.strip():
        above = [
            line for line in ctx.prefix[: len(ctx.prefix) - len(ctx.line_prefix)].split("\n") if line.strip()
        ]
        opener = above[-1] if above else ""
    indent = indent_width(opener)
    if opener.rstrip().endswith((":", "{")):
        return indent + 1
    return max(indent, len(ctx.line_prefix))


class Pipeline:
    """Holds what outlives one request: the engine, the decode cache and the shown suggestions."""

    def __init__(
        self,
        engine: Backend,
        generation: GenerationSettings,
        token_healing: bool = True,
        prompt: str | None = None,
        fallback: Pipeline | None = None,
        top_p: float = 0.95,
        prompt_budget: int | None = None,
        related: RelatedFiles | None = None,
    ) -> None:
        self.engine = engine
        self.related = related  # context from other files of the workspace; None = this file only
        self.related_share = RELATED_SHARE  # other files take at most 1/this of a full prompt
        self.fallback = fallback  # serves while a remote backend is unavailable (remote.fallbackToLocal)
        self.generation = generation
        self.token_healing = (
            token_healing  # off only to measure what healing buys (gpt-lsp eval --no-healing)
        )
        # "fim" or "prefix"; the model directory's choice unless an evaluation overrides it.
        prompt = prompt or engine.completion_prompt
        self.fim = engine.fim if prompt == "fim" else None
        # Nucleus mass when sampling, and a cap on prompt tokens: the playground varies both.
        self.top_p = top_p
        self.max_prompt_tokens = prompt_budget
        self.cache = GenerationCache()
        self.typing = TypingThrough()

    def complete(
        self,
        doc: Document,
        position: Position,
        cancelled: Callable[[], bool] = lambda: False,
        n: int = 1,
        observe: DecodeObserver | None = None,
        typing: bool = False,
    ) -> Outcome:
        """Suggestions at `position`. `typing` marks a request the editor sent on its own while the
        user types (not one they asked for): a multi-line suggestion then ends at a line end once
        `generation.typingBudgetMs` is spent."""
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = round((now - clock) * 1000, 2)
            clock = now

        ctx = analyze(doc, position)
        lap("context")
        if ctx.kind is CompletionKind.EMPTY:
            return Outcome([], f"gate: {ctx.reason}", doc.version, timings)

        rest = self.typing.rest(doc.uri, ctx.offset, ctx.prefix, ctx.suffix)
        if rest is not None:
            return self._finish(doc, ctx, [Generation(rest, 0, "typing_through", 0.0)], timings, cached=True)

        if (down := outage(self.engine)) is not None:
            return self._unavailable(doc, position, cancelled, n, down, timings)
        # The model reads the document only through its redacted view, cut at the same offsets.
        view = model_view(doc)
        if view.overlapping(ctx.offset, ctx.offset):
            return Outcome([], "gate: the cursor is inside a secret", doc.version, timings)
        limits = self._limits(ctx)
        lap("redact")
        related = self.related.gather(doc, ctx.offset) if self.related is not None else []
        lap("related")
        prompt = self.prompt_for(
            doc,
            (ctx.offset - len(ctx.prefix), ctx.offset),
            (ctx.offset, ctx.offset + len(ctx.suffix)),
            limits,
            extra=ctx.extra,
            related=render(related, doc.spec.line_comment if doc.spec else "#"),
        )
        lap("prompt")
        stop = line_stop if ctx.kind is CompletionKind.LINE else block_stop(_min_indent(ctx))
        budget_ms = self.generation.typing_budget_ms if typing and ctx.kind is CompletionKind.BLOCK else 0
        budget = LineBudget(stop, budget_ms) if budget_ms else None
        stop = budget or stop
        key = (tuple(prompt.ids), ctx.kind, limits.max_tokens, limits.temperature, prompt.healed, budget_ms)
        generations: list[Generation] = []
        cached = False
        # The first candidate is the one a single-candidate request gets (greedy by default, and
        # cached); the others are sampled, so that a client cycling through them sees alternatives.
        if limits.temperature == 0 and (hit := self.cache.get(key)) is not None:
            generations, cached = [hit], True
        rng = np.random.default_rng()
        while len(generations) < max(n, 1):
            step = limits
            if generations and limits.temperature == 0:
                step = replace(limits, temperature=SAMPLING_TEMPERATURE)
            generation = self.engine.generate(
                prompt.ids,
                step,
                stop,
                cancelled,
                prompt.healed,
                rng if step.temperature > 0 else None,
                observe,
            )
            if budget is not None and budget.spent:
                generation = replace(generation, stop_reason="budget")
            if not generations and limits.temperature == 0 and generation.stop_reason != "cancelled":
                self.cache.put(key, generation)
            generations.append(generation)
            if generation.stop_reason in ("cancelled", "unavailable"):
                break
        lap("decode")
        if generations and generations[0].stop_reason == "unavailable":
            down = outage(self.engine) or "the model server failed"
            return self._unavailable(doc, position, cancelled, n, down, timings)
        # Token healing re-generated the tail of the prefix; the edit starts where healing began.
        healed = len(prompt.healed)
        generations = [
            Generation(g.text[healed:], g.tokens, g.stop_reason, g.ms)
            if g.text.startswith(prompt.healed)
            else g
            for g in generations
        ]
        outcome = self._finish(doc, ctx, generations, timings, cached)
        outcome.prompt, outcome.related = prompt, related
        lap("postprocess")
        return outcome

    def _unavailable(
        self,
        doc: Document,
        position: Position,
        cancelled: Callable[[], bool],
        n: int,
        why: str,
        timings: dict,
    ) -> Outcome:
        """The backend cannot serve: say why, or let the local fallback serve instead."""
        if self.fallback is None:
            return Outcome([], f"model server unavailable: {why}", doc.version, timings, "unavailable")
        outcome = self.fallback.complete(doc, position, cancelled, n)
        return replace(
            outcome, reason=f"{outcome.reason} from the local model; model server unavailable: {why}"
        )

    def _limits(self, ctx: CompletionContext) -> DecodeLimits:
        g = self.generation
        max_tokens = g.max_tokens_line if ctx.kind is CompletionKind.LINE else g.max_tokens_block
        max_tokens = min(max_tokens, self.engine.context_length // 2)
        return DecodeLimits(
            max_tokens=max_tokens, timeout_ms=g.timeout_ms, temperature=g.temperature, top_p=self.top_p
        )

    def prompt_for(
        self,
        doc: Document,
        prefix_span: tuple[int, int],
        suffix_span: tuple[int, int],
        limits: DecodeLimits,
        lead: str = "",
        extra: str = "",
        heal: bool | None = None,
        related: str = "",
    ) -> Prompt:
        """The one prompt builder of every feature (completion, snippets, repairs).

        The model reads the document only through its redacted view, cut at the given str offsets;
        `lead` ends the prefix (a snippet's indentation or opening quotes), `extra` is context from
        outside the prefix window, `related` context from other files (rendered comment lines).
        The budget leaves room for `limits.max_tokens`; the suffix is used
        only when the model fills in the middle; models trained with <bos> at position 0 (Gemma,
        Llama) get it there.
        """
        view = model_view(doc)
        prefix = view.slice(*prefix_span) + lead
        suffix = view.slice(*suffix_span) if self.fim else ""
        prompt = build_fim_prompt(
            self.engine,
            self.fim,
            prefix,
            suffix,
            self.prompt_budget(limits),
            view.redact(extra) if extra else "",
            self.token_healing if heal is None else heal,
            step=PROMPT_STEP,
            related=view.redact(related) if related else "",
            related_share=self.related_share,
        )
        if self.engine.bos_id is not None:
            return replace(prompt, ids=[self.engine.bos_id, *prompt.ids])
        if not prompt.ids:  # a prefix-only prompt at the very start of a file: begin a new document
            return replace(prompt, ids=[self.engine.eos_id])
        return prompt

    def prompt_budget(self, limits: DecodeLimits) -> int:
        """Prompt tokens: what the context window leaves after the completion's cap, or fewer if asked."""
        room = self.engine.context_length - limits.max_tokens - (self.engine.bos_id is not None)
        return min(room, self.max_prompt_tokens) if self.max_prompt_tokens else room

    def _finish(
        self,
        doc: Document,
        ctx: CompletionContext,
        generations: list[Generation],
        timings: dict[str, float],
        cached: bool,
    ) -> Outcome:
        stop_reason = generations[0].stop_reason if generations else ""
        if stop_reason == "cancelled":
            return Outcome([], "cancelled", doc.version, timings, stop_reason)
        suggestions: list[Suggestion] = []
        rejected = ""
        for generation in generations:
            edit = shape_edit(generation.text, ctx.offset, ctx.line_prefix, ctx.line_suffix, ctx.suffix)
            if edit is None:
                rejected = "empty after postprocessing"
                continue
            if self._breaks_parse(doc, edit):
                rejected = "completion would add syntax errors"
                continue
            if all(s.text != edit.text for s in suggestions):
                suggestions.append(Suggestion(edit.text, edit.start, edit.end, ctx.kind))
        if suggestions:
            self.typing.remember(doc.uri, ctx.offset, ctx.prefix, ctx.suffix, suggestions[0].text)
            reason = "typing-through" if stop_reason == "typing_through" else f"ok ({stop_reason})"
        else:
            reason = rejected or f"model produced nothing ({stop_reason})"
        return Outcome(suggestions, reason, doc.version, timings, stop_reason, cached)

    def _breaks_parse(self, doc: Document, edit: Edit) -> bool:
        if doc.tree is None or doc.spec is None or len(doc.text) > PARSE_CHECK_MAX_CHARS:
            return False
        return adds_parse_errors(parser_for(doc.spec.language), doc.tree, doc.source, doc.text, edit)
