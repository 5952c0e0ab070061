"""`gpt-lsp eval`: measure a model directory through the serving pipeline, not `generate()`.

Two parts, both on held-out files: language-model figures from the ONNX graph (loss in
nats/token, bits per character, perplexity, next-token accuracy) and CodeXGLUE-style line
completion through `Pipeline.complete` — the code an editor's keystroke runs — with EM/ES,
bootstrap intervals, BLEU, ROUGE-L, repetition and latency. Cuts at token boundaries and cuts in
the middle of an identifier are reported separately.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt_lsp.completion.pipeline import Pipeline
from gpt_lsp.inference.engine import Engine, repetition_start
from gpt_lsp.inference.model_dir import ModelDirError, load_model_dir
from gpt_lsp.inference.model_select import resolve_model
from gpt_lsp.model import metrics
from gpt_lsp.settings import GenerationSettings
from gpt_lsp.text.documents import DocumentStore

_WORD = re.compile(r"\w")
_SKIP_LINE = re.compile(r"^\s*(#|$|\"\"\"|'''|@)")


@dataclass(frozen=True)
class LineSample:
    text: str  # the whole file
    cut: int  # offset of the cursor
    line_end: int  # offset of the end of the cut line
    mid_identifier: bool

    @property
    def target(self) -> str:
        return self.text[self.cut : self.line_end]


def _inside_word(text: str, offset: int) -> bool:
    return bool(_WORD.match(text[offset - 1]) and _WORD.match(text[offset]))


def sample_lines(files: list[str], n: int, seed: int, mid_identifier: bool) -> list[LineSample]:
    """Pick `n` cuts inside code lines, fixed seed; mid_identifier picks cuts with word chars on both sides."""
    rng = random.Random(seed)
    candidates: list[LineSample] = []
    for text in files:
        start = 0
        for line in text.split("\n"):
            end = start + len(line)
            body = len(line) - len(line.lstrip())
            if not _SKIP_LINE.match(line) and len(line.strip()) >= 8:
                cuts = [
                    c for c in range(start + body + 1, end - 1) if _inside_word(text, c) == mid_identifier
                ]
                if cuts:
                    candidates.append(LineSample(text, rng.choice(cuts), end, mid_identifier))
            start = end + 1
    rng.shuffle(candidates)
    return candidates[:n]


def complete_samples(pipeline: Pipeline, samples: list[LineSample]) -> list[dict[str, Any]]:
    """Run each cut through the pipeline as an editor would: the rest of the line removed."""
    results = []
    for i, s in enumerate(samples):
        store = DocumentStore()
        doc = store.open(f"file:///eval/{i}.py", "python", 1, s.text[: s.cut] + s.text[s.line_end :])
        start = time.perf_counter()
        outcome = pipeline.complete(doc, doc.position_at(s.cut))
        ms = (time.perf_counter() - start) * 1000
        prediction = outcome.suggestions[0].text.split("\n", 1)[0] if outcome.suggestions else ""
        results.append(
            {
                "target": s.target,
                "prediction": prediction,
                "ms": ms,
                "stop": outcome.stop_reason,
                "reason": outcome.reason,
            }
        )
        pipeline.typing.forget(doc.uri)
    return results


def summarize_lines(results: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    em = [100.0 * metrics.exact_match(r["prediction"], r["target"]) for r in results]
    es = [metrics.edit_similarity(r["prediction"], r["target"]) for r in results]
    ms = [r["ms"] for r in results]
    repeated = sum(1 for r in results if r["stop"] == "repetition" or _has_loop(r["prediction"]))
    return {
        "n": len(results),
        "em": sum(em) / max(len(em), 1),
        "em_ci": metrics.bootstrap_ci(em, seed),
        "es": sum(es) / max(len(es), 1),
        "es_ci": metrics.bootstrap_ci(es, seed),
        "bleu": metrics.bleu([r["prediction"] for r in results], [r["target"] for r in results])
        if results
        else math.nan,
        "rouge_l": metrics.rouge_l([r["prediction"] for r in results], [r["target"] for r in results]),
        "empty": sum(1 for r in results if not r["prediction"]),
        "repetition": repeated,
        "latency_p50_ms": metrics.percentile(ms, 0.5),
        "latency_p95_ms": metrics.percentile(ms, 0.95),
    }


def _has_loop(text: str) -> bool:
    return repetition_start([ord(c) for c in text], min_repeats=4, max_period=6, min_span=12) is not None


def language_model_figures(engine: Engine, files: list[str], max_tokens: int) -> dict[str, float]:
    """Loss (nats/token), bits per character, perplexity and next-token accuracy, left to right."""
    import numpy as np

    nll, correct, tokens, chars = 0.0, 0, 0, 0
    window = engine.context_length
    for text in files:
        first = engine.eos_id if engine.bos_id is None else engine.bos_id  # the document start
        ids = [first, *engine.encode(text)]
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start : start + window + 1]
            if len(chunk) < 2:
                break
            logits, _ = engine.forward(chunk[:-1], engine.empty_cache())
            logits = logits.astype(np.float64)
            log_probs = logits - logits.max(-1, keepdims=True)
            log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
            targets = np.asarray(chunk[1:])
            nll -= float(log_probs[np.arange(len(targets)), targets].sum())
            correct += int((logits.argmax(-1) == targets).sum())
            tokens += len(targets)
            chars += len(engine.decode(chunk[1:]))
            if tokens >= max_tokens:
                break
        if tokens >= max_tokens:
            break
    loss = nll / max(tokens, 1)
    return {
        "loss_nats_per_token": loss,
        "bits_per_char": nll / math.log(2) / max(chars, 1),
        "perplexity": math.exp(loss),
        "next_token_accuracy": 100.0 * correct / max(tokens, 1),
        "tokens": tokens,
    }


def evaluate_model(model: str | Path, files: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Figures for one model, named as `--model` names it (folder, GGUF file or model name)."""
    model_dir, engine = open_engine(model, args.variant, args.threads)
    engine.repetition_guard = not args.no_repetition_guard
    if args.repetition_penalty is not None:
        engine.repetition_penalty = args.repetition_penalty
    if args.prompt == "fim" and engine.fim is None:  # the pipeline would quietly prompt the prefix
        raise ModelDirError(
            f"{model_dir}: has no fill-in-the-middle sentinels, so --prompt fim cannot be measured; "
            "it is prompted with the code before the cursor"
        )
    generation = GenerationSettings(max_tokens_line=args.max_tokens, timeout_ms=args.timeout_ms)
    pipeline = Pipeline(engine, generation, token_healing=not args.no_healing, prompt=args.prompt)
    ablated = [
        name
        for name, off in (("no healing", args.no_healing), ("no repetition guard", args.no_repetition_guard))
        if off
    ]
    if args.repetition_penalty is not None:
        ablated.append(f"repetition penalty {args.repetition_penalty}")
    if args.prompt is not None:
        ablated.append(f"{args.prompt} prompts")
    report: dict[str, Any] = {
        "model": str(model_dir),
        "variant": engine.onnx_path.name + "".join(f", {a}" for a in ablated),
    }
    report["lm"] = language_model_figures(engine, files, args.lm_tokens)
    for name, mid in (("boundary", False), ("mid_identifier", True)):
        samples = sample_lines(files, args.n, args.seed, mid)
        say(f"{model_dir.name}: {len(samples)} {name} cuts")
        results = complete_samples(pipeline, samples)
        report[name] = summarize_lines(results, args.seed)
        report[name + "_examples"] = results[:20]
    return report


ROWS = [
    ("loss (nats/token)", ("lm", "loss_nats_per_token"), "{:.3f}"),
    ("bits per char", ("lm", "bits_per_char"), "{:.3f}"),
    ("perplexity", ("lm", "perplexity"), "{:.2f}"),
    ("next-token acc %", ("lm", "next_token_accuracy"), "{:.1f}"),
]
for _cut in ("boundary", "mid_identifier"):
    ROWS += [
        (f"{_cut}: n", (_cut, "n"), "{}"),
        (f"{_cut}: EM %", (_cut, "em"), "{:.1f}"),
        (f"{_cut}: EM 95% CI", (_cut, "em_ci"), "{0[0]:.1f}-{0[1]:.1f}"),
        (f"{_cut}: ES %", (_cut, "es"), "{:.1f}"),
        (f"{_cut}: ES 95% CI", (_cut, "es_ci"), "{0[0]:.1f}-{0[1]:.1f}"),
        (f"{_cut}: BLEU", (_cut, "bleu"), "{:.1f}"),
        (f"{_cut}: ROUGE-L", (_cut, "rouge_l"), "{:.1f}"),
        (f"{_cut}: empty", (_cut, "empty"), "{}"),
        (f"{_cut}: repetitive", (_cut, "repetition"), "{}"),
        (f"{_cut}: latency p50 ms", (_cut, "latency_p50_ms"), "{:.1f}"),
        (f"{_cut}: latency p95 ms", (_cut, "latency_p95_ms"), "{:.1f}"),
    ]


def format_table(reports: list[dict[str, Any]]) -> str:
    headers = ["metric"] + [f"{Path(r['model']).name} ({r['variant']})" for r in reports]
    lines = [headers]
    for label, (section, key), fmt in ROWS:
        lines.append([label] + [fmt.format(r[section][key]) for r in reports])
    return aligned(lines)


def aligned(rows: list[list[str]]) -> str:
    """Rows of cells as text columns, each as wide as its widest cell (the measuring commands' tables)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows)


def open_engine(model: str | Path, variant: str, threads: int) -> tuple[Path, Engine]:
    """A model named as `--model` names it (folder, GGUF file or name), loaded and warmed up."""
    model_dir = resolve_model(model, on_stage=say)
    engine = Engine(load_model_dir(model_dir), variant, threads)
    engine.warm_up()
    return model_dir, engine


def say(message: str) -> None:
    """A progress line for the person running a measurement (stderr: stdout carries the report)."""
    print(message, file=sys.stderr, flush=True)


def add_decode_arguments(
    p: argparse.ArgumentParser,
    max_tokens: int,
    timeout_ms: int,
    max_tokens_help: str = "token cap per completion",
) -> None:
    """The options every measuring command shares: sampling seed, model variant, threads and decode caps."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="auto", choices=["auto", "int8", "fp32"])
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0 = half the cores)")
    p.add_argument("--max-tokens", type=int, default=max_tokens, help=max_tokens_help)
    p.add_argument("--timeout-ms", type=int, default=timeout_ms, help="per-completion time cap")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model directory on held-out files through the serving pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model_dir", metavar="MODEL", help="model directory, GGUF file or model name")
    p.add_argument(
        "data",
        type=Path,
        metavar="DATA",
        help="`gpt-lsp corpus` output (its valid.jsonl) or a source directory (its validation split)",
    )
    p.add_argument(
        "--compare",
        metavar="OTHER_MODEL",
        help="evaluate a second model on the same cuts, side by side",
    )
    p.add_argument(
        "--all-files", action="store_true", help="use every file in DATA, not only its validation split"
    )
    p.add_argument("--n", type=int, default=1000, help="line-completion cuts per kind (default 1000)")
    add_decode_arguments(p, max_tokens=48, timeout_ms=5000)
    p.add_argument("--lm-tokens", type=int, default=200_000, help="tokens scored for loss/accuracy")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the full report here")
    p.add_argument("--no-healing", action="store_true", help="ablation: serve without token healing")
    p.add_argument(
        "--no-repetition-guard", action="store_true", help="ablation: decode without the repetition guard"
    )
    p.add_argument("--repetition-penalty", type=float, help="decode with this repetition penalty (1 = none)")
    p.add_argument(
        "--prompt",
        choices=["fim", "prefix"],
        help="prompt completions with code after the cursor (fim) or without (prefix) instead of the "
        "model directory's completion_prompt; measure both to choose it",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gpt_lsp.model.corpus import CorpusError, load_corpus

    try:
        train, valid = load_corpus([args.data], languages="python")
        files = train + valid if args.all_files else valid
        if not files:
            raise CorpusError(f"{args.data}: no held-out files; pass --all-files to use every file")
        reports = [evaluate_model(args.model_dir, files, args)]
        if args.compare:
            reports.append(evaluate_model(args.compare, files, args))
    except (CorpusError, ModelDirError) as err:
        say(f"gpt-lsp eval: error: {err}")
        return 1
    print(format_table(reports))
    if args.json:
        args.json.write_text(json.dumps(reports if args.compare else reports[0], indent=2) + "\n")
    return 0
