"""Raw decode speed of one model through gpt-lsp's engine and through its peers, on the same tokens.

`gpt-lsp bench MODEL --peers` calls `compare()`: every runtime gets the same prompt ids (a piece of
the standard library, `context - steps` tokens long, starting with the model's <bos> when it has
one), prefills them, then decodes `steps` tokens greedily, so the last step attends to `context`
tokens. Figures are medians over `repeats`; all runtimes use the same number of threads. Peers:

- HF `generate` in torch (fp32) on the model's Hugging Face checkpoint;
- optimum's `ORTModelForCausalLM`, where it imports (it does not with transformers 5: see export.py);
- llama.cpp through llama-cpp-python on the GGUF file the model came from, when it is installed.

A peer that cannot run is reported with the reason, never left out silently.
"""

from __future__ import annotations

import inspect
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from gpt_lsp.inference.model_dir import ModelDir


@dataclass(frozen=True)
class Figures:
    """One runtime's medians, or why it did not run."""

    runtime: str
    prefill_ms: float | None = None
    decode_ms_per_token: float | None = None
    skipped: str = ""


def prompt_ids(model_dir: ModelDir, length: int) -> list[int]:
    """`length` token ids of ordinary Python (the standard library's `textwrap` and `shlex`)."""
    import shlex
    import textwrap

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir.tokenizer_path))
    text = inspect.getsource(textwrap) + inspect.getsource(shlex)
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    bos = model_dir.config.bos_token
    bos_id = tokenizer.token_to_id(bos) if bos else None
    first = [bos_id] if bos_id is not None else []
    return (first + ids)[:length]


def _medians(runs: list[tuple[float, list[float]]]) -> tuple[float, float]:
    """(median prefill ms, median per-token decode ms) over repeats of (prefill, [step ms])."""
    return statistics.median(r[0] for r in runs), statistics.median(t for r in runs for t in r[1])


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return (time.perf_counter() - start) * 1000, out


def bench_engine(
    model_dir: ModelDir, variant: str, threads: int, ids: list[int], steps: int, repeats: int
) -> Figures:
    import numpy as np

    from gpt_lsp.inference.engine import Engine

    engine = Engine(model_dir, variant, threads=threads)
    engine.warm_up()
    runs = []
    for _ in range(repeats):
        prefill_ms, (logits, past) = _timed(lambda: engine.forward(ids, engine.empty_cache(), last_only=True))
        step_ms = []
        for _ in range(steps):
            token = int(np.argmax(logits[-1]))
            ms, (logits, past) = _timed(partial(engine.forward, [token], past, last_only=True))
            step_ms.append(ms)
        runs.append((prefill_ms, step_ms))
    prefill, decode = _medians(runs)
    return Figures(f"gpt-lsp engine ({variant}, onnxruntime)", prefill, decode)


def bench_hf_generate(checkpoint: Path, threads: int, ids: list[int], steps: int, repeats: int) -> Figures:
    """HF `generate`: prefill = a 1-token generate; per token = the extra time of `steps` more."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    inputs = torch.tensor([ids])

    def generate(new: int) -> Any:
        with torch.no_grad():
            return model.generate(
                inputs, max_new_tokens=new, min_new_tokens=new, do_sample=False, pad_token_id=0
            )

    generate(2)  # warm-up
    runs = []
    for _ in range(repeats):
        one, _ = _timed(lambda: generate(1))
        many, _ = _timed(lambda: generate(steps + 1))
        runs.append((one, [(many - one) / steps]))
    prefill, decode = _medians(runs)
    return Figures("HF generate (torch fp32)", prefill, decode)


def bench_optimum() -> Figures:
    try:
        from optimum.onnxruntime import ORTModelForCausalLM  # noqa: F401
    except Exception as err:  # ImportError, or its own import failing inside
        return Figures(
            "optimum ORTModelForCausalLM",
            skipped=f"does not import ({err}); its newest exporter, optimum-onnx 0.1.0, requires "
            "transformers < 4.58 and fails to import with transformers 5",
        )
    return Figures(
        "optimum ORTModelForCausalLM",
        skipped="imports, but needs its own export (optimum-onnx), which pins transformers < 4.58",
    )


def bench_llama_cpp(gguf: Path | None, threads: int, ids: list[int], steps: int, repeats: int) -> Figures:
    name = "llama.cpp (llama-cpp-python, GGUF)"
    if gguf is None or not gguf.is_file():
        return Figures(name, skipped="the model did not come from a GGUF file")
    try:
        from llama_cpp import Llama
    except ImportError as err:
        return Figures(
            name, skipped=f"llama-cpp-python is not installed ({err}); pip install llama-cpp-python"
        )
    import numpy as np

    llm = Llama(
        model_path=str(gguf), n_ctx=len(ids) + steps + 8, n_threads=threads, n_batch=512, verbose=False
    )
    runs = []
    for _ in range(repeats + 1):  # the first run warms up
        llm.reset()
        prefill_ms, _ = _timed(lambda: llm.eval(ids))
        step_ms = []
        for _ in range(steps):
            token = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            ms, _ = _timed(partial(llm.eval, [token]))
            step_ms.append(ms)
        runs.append((prefill_ms, step_ms))
    prefill, decode = _medians(runs[1:])
    return Figures(f"{name}, {gguf.name}", prefill, decode)


def compare(
    model_dir: ModelDir, threads: int, context: int = 512, steps: int = 32, repeats: int = 3
) -> list[Figures]:
    """Figures for gpt-lsp's engine (each variant) and every peer, on the same prompt ids."""
    from gpt_lsp.model.pretrained import PretrainedError, is_gguf, resolve_source

    ids = prompt_ids(model_dir, context - steps)
    results = [bench_engine(model_dir, v, threads, ids, steps, repeats) for v in model_dir.config.variants]
    source = model_dir.config.provenance.get("source")
    gguf = Path(source) if source and is_gguf(Path(source)) else None
    try:
        checkpoint = resolve_source(Path(source)) if source else None
    except PretrainedError:
        checkpoint = None
    if checkpoint is not None and (checkpoint / "config.json").is_file():
        results.append(bench_hf_generate(checkpoint, threads, ids, steps, max(1, repeats - 1)))
    else:
        results.append(Figures("HF generate (torch fp32)", skipped=f"no Hugging Face checkpoint at {source}"))
    results.append(bench_optimum())
    results.append(bench_llama_cpp(gguf, threads, ids, steps, repeats))
    return results
