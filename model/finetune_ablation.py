"""Measure fine-tuning options for a large base on this machine, in one process so ratios compare.

    python -m gpt_lsp.model.finetune_ablation CHECKPOINT CORPUS [--steps 4] [--loss-steps 0]

For each configuration (LoRA rank and targets, trimmed output layer, sequence length, gradient
checkpointing, full fine-tuning of the last blocks) it trains a few steps from the same base on the
same batches and prints seconds per step and tokens/s (median over the timed steps). With
`--loss-steps N` it also trains N steps and prints the held-out loss over the full vocabulary, so a
cheaper option is only kept when it learns as well per token.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Option:
    name: str
    rank: int = 16
    only: tuple[str, ...] = ()
    first_layer: int = 0
    trimmed: int = 32768  # 0: the full output layer
    length: int = 256
    batch: int = 2
    checkpointing: bool = False
    bf16: bool = True  # bfloat16 autocast on CPU
    full_from: int | None = None  # train all weights of blocks >= this index instead of LoRA


ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
OPTIONS = [
    Option("lora r16 attn+mlp, full head, fp32", trimmed=0, bf16=False),
    Option("lora r16 attn+mlp, trimmed head 32k, fp32", bf16=False),
    Option("lora r16 attn+mlp, trimmed, bf16"),
    Option("lora r16 attn only, trimmed, bf16", only=ATTENTION),
    Option("lora r16 attn+mlp, trimmed, bf16, grad checkpointing", checkpointing=True),
    Option("lora r16 attn+mlp, trimmed, bf16, seq 512 x 1", length=512, batch=1),
    Option("lora r16 attn+mlp last 6 blocks, trimmed, bf16", first_layer=12),
    Option("full fine-tune last 2 blocks, trimmed, bf16", full_from=16),
    Option("lora r8 attn+mlp, trimmed, bf16", rank=8),
]


def build(checkpoint: Path, option: Option, keep: Any, bos_id: int) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    from gpt_lsp.model.lora import apply_lora, block_index
    from gpt_lsp.model.trimmed_head import make_trimmed

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
    if option.full_from is not None:
        for name, param in model.named_parameters():
            param.requires_grad_(block_index(name) >= option.full_from and "layers" in name)
    else:
        apply_lora(model, option.rank, 2.0 * option.rank, False, option.only, option.first_layer)
    if option.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    if option.trimmed:
        return make_trimmed(model, keep, bos_id)
    return make_trimmed(model, torch.arange(model.config.vocab_size), bos_id)


def batches(stream: Any, length: int, batch: int, count: int, seed: int) -> list[Any]:
    import torch

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        starts = [rng.randrange(0, len(stream) - length) for _ in range(batch)]
        ids = torch.stack([stream[s : s + length] for s in starts]).to(torch.long)
        out.append((ids, ids.clone()))
    return out


def train_steps(wrapped: Any, data: list[Any], lr: float, bf16: bool) -> list[float]:
    import contextlib

    import torch

    params = [p for p in wrapped.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    times = []
    for input_ids, labels in data:
        tick = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            loss = wrapped(input_ids, labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - tick)
    return times


def held_out_loss(wrapped: Any, data: list[Any], vocab: int, bos_id: int) -> float:
    """Loss over the full vocabulary (the trimmed head is only a training device)."""
    import torch

    from gpt_lsp.model.trimmed_head import make_trimmed

    full = make_trimmed(wrapped.model, torch.arange(vocab), bos_id)
    full.eval()
    with torch.no_grad():
        losses = [float(full(i, lab).loss) for i, lab in data]
    wrapped.model.train()
    return sum(losses) / len(losses)


def main() -> None:
    import torch
    from tokenizers import Tokenizer

    from gpt_lsp.model.corpus import load_corpus
    from gpt_lsp.model.data import encode_documents
    from gpt_lsp.model.trimmed_head import coverage, frequent_ids

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per option (after one warm-up)")
    parser.add_argument("--loss-steps", type=int, default=0, help="also train this many steps, then eval")
    parser.add_argument("--options", default="", help="comma-separated option indices (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=5e-4)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = Tokenizer.from_file(str(args.checkpoint / "tokenizer.json"))
    train_texts, valid_texts = load_corpus([args.corpus], "python", 0)
    random.Random(0).shuffle(train_texts)
    sample = encode_documents(tokenizer, train_texts[:150], 1)
    valid = encode_documents(tokenizer, valid_texts[:100], 1)
    keep = frequent_ids(sample, 32768, always=(0, 1, 2))
    print(
        f"sample {len(sample):,} tokens; 32k ids cover {coverage(sample, keep):.2%} train, "
        f"{coverage(valid, keep):.2%} held out",
        flush=True,
    )
    chosen = [OPTIONS[int(i)] for i in args.options.split(",")] if args.options else OPTIONS
    valid_batches = batches(valid, 256, 4, 8, seed=1)
    for option in chosen:
        wrapped = build(args.checkpoint, option, keep, bos_id=2)
        trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
        data = batches(sample, option.length, option.batch, args.steps + 1 + args.loss_steps, seed=0)
        times = train_steps(wrapped, data[: args.steps + 1], args.lr, option.bf16)[1:]
        per_step = statistics.median(times)
        line = (
            f"{option.name:50s} trainable {trainable / 1e6:6.2f}M  {per_step:6.2f} s/step  "
            f"{option.length * option.batch / per_step:6.1f} tok/s"
        )
        if args.loss_steps:
            train_steps(wrapped, data[args.steps + 1 :], args.lr, option.bf16)
            loss = held_out_loss(wrapped, valid_batches, wrapped.model.config.vocab_size, 2)
            line += f"  held-out loss after {args.steps + 1 + args.loss_steps} steps {loss:.4f}"
        print(line, flush=True)
        del wrapped


if __name__ == "__main__":
    main()
