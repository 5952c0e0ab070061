"""What the serving pipeline needs from whatever generates text: the local ONNX engine or a remote server.

Everything upstream (context, prompt budget, redaction) and downstream (postprocess, parse check,
cache, typing-through) is shared, so a backend only has to tokenize for the prompt budget, name
its FIM sentinels and generate under the same stop rules and cancellation as the local engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from ..completion.prompt import FimIds, TextTokenizer
from .engine import DecodeLimits, DecodeObserver, Generation, StopRule

# Ids at and above this are sentinels of a BudgetTokenizer, never a code point or a vocabulary id.
SPECIAL_BASE = 0x110000


class Backend(Protocol):
    """The engine interface `Pipeline` depends on; `gpt_lsp.inference.engine.Engine` is the local one."""

    context_length: int  # the prompt budget plus the completion, in this backend's tokens
    fim: FimIds | None  # sentinel ids when the backend can fill in the middle
    completion_prompt: str  # "fim" or "prefix"
    eos_id: int  # the prompt for an empty prefix-only document
    bos_id: int | None  # put before every prompt by models trained with it at position 0

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def generate(
        self,
        prompt_ids: Sequence[int],
        limits: DecodeLimits,
        stop: StopRule | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        healed: str = "",
        rng: np.random.Generator | None = None,
        observe: DecodeObserver | None = None,
    ) -> Generation: ...


def outage(backend: object) -> str | None:
    """Why `backend` cannot serve right now (a remote server backing off); a local model always can."""
    check = getattr(backend, "outage", None)
    return check() if callable(check) else None


class BudgetTokenizer:
    """Counts a remote model's prompt in its own tokens (a tokenizer.json) or, without one, in characters.

    The pipeline builds prompts as ids; a remote server takes text. Sentinels (FIM markers, end
    of text) get private ids above every real one, so `decode` turns them back into the exact
    strings the server's model expects, and a `suffix`-field request can find where the parts end.
    """

    def __init__(self, tokenizer: TextTokenizer | None, specials: Sequence[str]) -> None:
        self._tokenizer = tokenizer
        self.specials = list(specials)

    def special_id(self, text: str) -> int:
        return SPECIAL_BASE + self.specials.index(text)

    def encode(self, text: str) -> list[int]:
        if self._tokenizer is None:
            return [ord(ch) for ch in text]
        return self._tokenizer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        out: list[str] = []
        run: list[int] = []
        for token in [*ids, SPECIAL_BASE + len(self.specials)]:  # a sentinel past the end flushes the run
            if token < SPECIAL_BASE:
                run.append(token)
                continue
            if run:
                out.append("".join(map(chr, run)) if self._tokenizer is None else self._tokenizer.decode(run))
                run = []
            if token - SPECIAL_BASE < len(self.specials):
                out.append(self.specials[token - SPECIAL_BASE])
        return "".join(out)
