"""Does the graph run as many positions as gpt-lsp.json promises? Asked once, when a model loads.

A decode reaches position context_length - 1 only on a long prompt, so a context_length beyond
what the graph runs would fail mid-keystroke. How a graph bounds positions depends on its family
(a learned table, a rotary cache, a causal-mask buffer) and on the exporter, so rather than read
one family's initializer, the check runs the graph: one token at that position. On failure a
bisection finds how many positions the graph does run, so the message can say what to write.
"""

from __future__ import annotations

import numpy as np

from .engine import DecodeError, Engine
from .model_dir import CONFIG_NAME, ModelDirError

# The probe follows a zero cache of the full context when that cache is at most this large.
# ONNX Runtime's arena keeps what a run allocated, so for a 32k-token context it would otherwise
# hold gigabytes from startup on.
FULL_CONTEXT_PROBE_BYTES = 64 * 1024 * 1024


def check_context_length(engine: Engine) -> None:
    """Raise ModelDirError, naming the largest context that runs, if context_length does not."""
    wanted = engine.context_length
    failure = fails_at(engine, wanted)
    if failure is None:
        return
    runs, fails = 0, wanted  # the graph runs `runs` positions (0: trivially) and not `fails`
    while fails - runs > 1:
        middle = (runs + fails) // 2
        runs, fails = (middle, fails) if fails_at(engine, middle) is None else (runs, middle)
    if runs == 0:
        raise ModelDirError(f"{engine.onnx_path}: the graph cannot decode a single token: {failure}")
    raise ModelDirError(
        f"{engine.model_dir.path / CONFIG_NAME}: context_length {wanted} is more than the model runs "
        f"({runs} positions; {failure}); set context_length to {runs} or less"
    )


def fails_at(engine: Engine, positions: int) -> DecodeError | None:
    """Decode one token at position `positions - 1`; the error, or None when it runs.

    The token follows a zero cache of `positions - 1` entries, exactly the last step of a real
    decode, when that cache is small. For larger ones it follows an empty cache and only its
    position_ids say where it is: that still reaches every position-indexed table (learned
    embeddings, rotary caches) without allocating the whole cache; a bound on the total length
    (a static mask buffer) then shows at decode time, where repeated failures turn AI features
    off with a message.
    """
    _, heads, _, head_dim = engine.cache_shape
    past_len = positions - 1
    if len(engine.past_names) * heads * past_len * head_dim * 4 > FULL_CONTEXT_PROBE_BYTES:
        past_len = 0
    zeros = np.zeros((1, heads, past_len, head_dim), dtype=np.float32)
    feeds = engine.feeds([engine.eos_id], [zeros] * len(engine.past_names), True, positions - 1)
    try:
        engine.run_graph(feeds, quiet=True)
    except DecodeError as err:
        return err
    return None
