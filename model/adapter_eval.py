"""Held-out quality of a Hugging Face checkpoint with or without a LoRA adapter, in torch.

    python -m gpt_lsp.model.adapter_eval CHECKPOINT CORPUS [--adapter FILE] [--n 200] [--json OUT]

`gpt-lsp eval` measures an exported model through the serving pipeline; this measures the
checkpoint itself, before export, so a fine-tune can be judged while the exporter cannot take its
architecture yet. Two figures on the corpus's held-out files, both with the BOS the tokenizer adds:

- loss over the full vocabulary (nats/token) and perplexity, on fixed 256-token windows;
- line completion at token-boundary cuts (the same cuts `gpt-lsp eval` samples): the prefix only,
  greedy decoding until the end of the line (256 tokens of prefix at most), exact match and edit similarity against the rest of
  the line. No token healing, no context building: a floor under what the server does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

from gpt_lsp.model import metrics


def load(checkpoint: Path, adapter: Path | None) -> tuple[Any, Any]:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM

    from gpt_lsp.model.adapter import merge_adapter

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    if adapter is not None:
        merge_adapter(model, adapter)
    return model, Tokenizer.from_file(str(checkpoint / "tokenizer.json"))


def held_out_loss(model: Any, tokenizer: Any, files: list[str], windows: int, length: int = 256) -> dict:
    """Mean loss over `windows` windows: BOS + `length` tokens, from seeded positions in the files."""
    import torch

    rng = random.Random(0)
    bos = model.config.bos_token_id
    streams = [ids for ids in (e.ids[1:] for e in tokenizer.encode_batch(files)) if len(ids) > length]
    total, count = 0.0, 0
    with torch.no_grad():
        for _ in range(windows):
            ids = rng.choice(streams)
            start = rng.randrange(0, len(ids) - length)
            window = torch.tensor([[bos, *ids[start : start + length]]])
            labels = window.clone()
            labels[0, 0] = -100
            total += float(model(input_ids=window, labels=labels).loss) * length
            count += length
    loss = total / count
    return {"loss_nats_per_token": loss, "perplexity": math.exp(loss), "tokens": count}


def complete_line(model: Any, tokenizer: Any, prefix: str, max_context: int, max_new: int) -> str:
    """Greedy continuation of `prefix` up to the end of its line (prompt: BOS + the last tokens)."""
    import torch

    ids = tokenizer.encode(prefix).ids  # BOS first
    ids = ids[:1] + ids[1:][-max_context:]
    out: list[int] = []
    past = None
    step_input = torch.tensor([ids])
    with torch.no_grad():
        for _ in range(max_new):
            result = model(input_ids=step_input, past_key_values=past, use_cache=True, logits_to_keep=1)
            past = result.past_key_values
            token = int(result.logits[0, -1].argmax())
            if token == model.config.eos_token_id:
                break
            out.append(token)
            if "\n" in tokenizer.decode(out):
                break
            step_input = torch.tensor([[token]])
    return tokenizer.decode(out).split("\n", 1)[0]


def line_completion(model: Any, tokenizer: Any, files: list[str], n: int, seed: int) -> dict[str, Any]:
    from gpt_lsp.model.evaluate import sample_lines

    samples = sample_lines(files, n, seed, mid_identifier=False)
    results = []
    started = time.perf_counter()
    for i, sample in enumerate(samples):
        prediction = complete_line(model, tokenizer, sample.text[: sample.cut], 256, 32)
        results.append({"target": sample.target, "prediction": prediction})
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(samples)} cuts, {time.perf_counter() - started:.0f}s", file=sys.stderr)
    em = [100.0 * metrics.exact_match(r["prediction"], r["target"]) for r in results]
    es = [metrics.edit_similarity(r["prediction"], r["target"]) for r in results]
    return {
        "n": len(results),
        "em": sum(em) / len(em),
        "em_ci": metrics.bootstrap_ci(em, seed),
        "es": sum(es) / len(es),
        "es_ci": metrics.bootstrap_ci(es, seed),
        "examples": results[:20],
    }


def main() -> None:
    import torch

    from gpt_lsp.model.corpus import load_corpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--adapter", type=Path, help="LoRA adapter file to merge first")
    parser.add_argument("--n", type=int, default=200, help="line-completion cuts")
    parser.add_argument("--windows", type=int, default=32, help="256-token windows for the loss")
    parser.add_argument("--fp32", action="store_true", help="no bfloat16 autocast (slower on bf16 CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    _, valid = load_corpus([args.corpus], "python", 0)
    model, tokenizer = load(args.checkpoint, args.adapter)
    report: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "adapter": str(args.adapter) if args.adapter else None,
    }
    report["precision"] = "fp32" if args.fp32 else "bf16 autocast"
    autocast = contextlib.nullcontext() if args.fp32 else torch.autocast("cpu", dtype=torch.bfloat16)
    with autocast:
        report["lm"] = held_out_loss(model, tokenizer, valid, args.windows)
        print(f"held-out loss {report['lm']['loss_nats_per_token']:.4f}", file=sys.stderr)
        report["boundary"] = line_completion(model, tokenizer, valid, args.n, args.seed)
    b = report["boundary"]
    print(
        f"loss {report['lm']['loss_nats_per_token']:.4f} nats/token (ppl {report['lm']['perplexity']:.2f}, "
        f"{report['lm']['tokens']} tokens); boundary cuts n={b['n']}: EM {b['em']:.1f}% "
        f"[{b['em_ci'][0]:.1f}-{b['em_ci'][1]:.1f}], ES {b['es']:.1f} [{b['es_ci'][0]:.1f}-{b['es_ci'][1]:.1f}]"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
