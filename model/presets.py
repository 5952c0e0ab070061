"""Training presets: model size and optimisation settings, named so scripts and docs can rely on them.

Sizes follow measurements on the 2-core reference CPU (transformers GPT-2, fp32, context 256) a 5M
model trains at about 3,000 tokens/s, so `default` sees ~30M tokens in ~3 hours, which is in the
Chinchilla range (~20 tokens per parameter) for a 1-5M model. `medium` and `large` assume a GPU.
Fine-tuning presets keep the architecture of the base model and only set the optimisation knobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class TrainPreset:
    """Everything `gpt-lsp train` needs besides data; stored in each checkpoint's trainer.json."""

    name: str
    model_type: str = "gpt2"  # "gpt2" (learned positions, GELU MLP) or "llama" (RoPE, SwiGLU, RMSNorm)
    n_layer: int = 4  # transformer blocks
    n_head: int = 4  # attention heads; n_embd must divide by it
    n_embd: int = 256  # residual stream width
    vocab_size: int = 8192  # BPE vocabulary trained when the output has no tokenizer (8k: ~3.65 chars/token)
    context_length: int = 256  # tokens per training sequence and the model's position limit
    batch_size: int = 16  # sequences per optimiser step per process (tokens/step = batch * context * procs)
    lr: float = 1e-3  # peak AdamW learning rate, reached after warm-up
    min_lr_ratio: float = 0.1  # cosine decay ends at lr * this ratio
    warmup_steps: int = 200  # linear warm-up from 0 to lr
    max_steps: int = 8000  # optimiser steps; sets the cosine schedule's length
    weight_decay: float = 0.1  # AdamW decoupled weight decay on matrices (not on biases/norms)
    beta2: float = 0.95  # AdamW second-moment decay; 0.95 is steadier than 0.999 for small batches
    grad_clip: float = 1.0  # clip the global gradient norm to this value
    dropout: float = 0.0  # no dropout: small models on much data underfit, not overfit
    fim_rate: float = 0.5  # fraction of documents turned into fill-in-the-middle (Bavarian et al. 2022)
    spm_rate: float = 0.5  # of those, the fraction in SPM order rather than PSM
    eval_every: int = 250  # steps between validation-loss measurements
    eval_batches: int = 8  # validation batches per measurement (fixed, so figures compare)
    checkpoint_every: int = 500  # steps between checkpoints (one is also written at the end and on Ctrl-C)
    seed: int = 1234  # model init, data order and FIM choices all derive from it
    # Fine-tuning a large pretrained base on CPU (see model/gemma_code/MODEL.md for the measurements):
    lora_rank: int = 0  # LoRA rank when fine-tuning; 0: all weights unless --lora
    lora_targets: str = ""  # comma-separated layer-name suffixes to adapt ("" = every projection)
    output_vocab: int = 0  # train logits over this many most frequent token ids only; 0 = all
    corpus_chars: int = 0  # train on a seeded sample of files up to this many characters; 0 = all
    cpu_bf16: int = 0  # 1: bfloat16 autocast on CPU too (fast where the CPU has AVX512-BF16 or AMX)

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.context_length

    def with_overrides(self, **overrides: Any) -> TrainPreset:
        """A copy with the non-None `overrides` applied (CLI flags such as --max-steps)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f"unknown preset field(s): {', '.join(sorted(unknown))}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, TrainPreset] = {
    # CI: ~60k parameters, trains in seconds on one core.
    "tiny": TrainPreset(
        name="tiny",
        n_layer=2,
        n_head=2,
        n_embd=32,
        vocab_size=384,
        context_length=64,
        batch_size=4,
        lr=3e-3,
        warmup_steps=2,
        max_steps=20,
        eval_every=10,
        eval_batches=2,
        checkpoint_every=10,
    ),
    # ~1.3M parameters: a quick real model (about an hour on 2 cores).
    "small": TrainPreset(
        name="small",
        n_layer=4,
        n_head=4,
        n_embd=128,
        vocab_size=4096,
        context_length=256,
        batch_size=16,
        lr=2e-3,
        warmup_steps=100,
        max_steps=3000,
    ),
    # ~5.3M parameters: what 2 CPU cores train in about 3 hours (Chinchilla: ~20 tokens per parameter).
    "default": TrainPreset(name="default"),
    # GPU presets: Llama-style blocks, longer context, bigger batches.
    "medium": TrainPreset(
        name="medium",
        model_type="llama",
        n_layer=8,
        n_head=8,
        n_embd=512,
        vocab_size=16384,
        context_length=1024,
        batch_size=32,
        lr=6e-4,
        warmup_steps=500,
        max_steps=20000,
        eval_every=500,
        eval_batches=20,
        checkpoint_every=1000,
    ),
    "large": TrainPreset(
        name="large",
        model_type="llama",
        n_layer=12,
        n_head=12,
        n_embd=768,
        vocab_size=32768,
        context_length=2048,
        batch_size=32,
        lr=4e-4,
        warmup_steps=1000,
        max_steps=50000,
        eval_every=1000,
        eval_batches=20,
        checkpoint_every=2000,
    ),
}

# What the shipped model (model/default, see model/MODEL.md) was trained with: `small` with a
# doubled batch, for 6,600 steps (54 M tokens, just under one pass over the corpus): about
# 2.4 hours on 2 free CPU cores. The short ablations in MODEL.md chose this shape over a wider
# model, a longer context and a larger vocabulary for that budget.
PRESETS["shipped"] = replace(PRESETS["small"], name="shipped", batch_size=32, max_steps=6600)

# Fine-tuning: the architecture comes from the base model, so only optimisation knobs matter here.
# Lower peak lr and far fewer steps than pretraining; FIM stays in the mix at the same rate so the
# base model's infilling is not trained away.
FINETUNE_PRESETS: dict[str, TrainPreset] = {
    "tiny": replace(
        PRESETS["tiny"], name="finetune-tiny", lr=1e-3, max_steps=6, eval_every=3, checkpoint_every=3
    ),
    "default": replace(
        PRESETS["default"],
        name="finetune",
        lr=2e-4,
        warmup_steps=30,
        max_steps=600,
        eval_every=50,
        checkpoint_every=100,
        batch_size=8,
    ),
    "gpu": replace(
        PRESETS["medium"],
        name="finetune-gpu",
        lr=1e-4,
        warmup_steps=50,
        max_steps=2000,
        eval_every=100,
        checkpoint_every=250,
        batch_size=16,
    ),
}

# Gemma 3 270M on 2 CPU cores (measured in model/gemma_code/MODEL.md): LoRA, checkpoints that hold only
# the adapter, logits over the 32k most frequent ids, short sequences, prefix-only (the base has no
# FIM sentinels, and teaching new ones is out of reach at a few hundred thousand tokens).
FINETUNE_PRESETS["gemma-code"] = replace(
    FINETUNE_PRESETS["default"],
    name="gemma-code",
    context_length=256,
    batch_size=8,
    lr=4e-4,
    warmup_steps=10,
    max_steps=400,
    eval_every=25,
    eval_batches=4,
    checkpoint_every=10,
    fim_rate=0.0,
    lora_rank=16,
    output_vocab=32768,
    corpus_chars=20_000_000,
    cpu_bf16=1,
)
# Adapting gemma-code to one repository (`gpt-lsp finetune gemma-code DIR`): same recipe, fewer steps.
FINETUNE_PRESETS["gemma-repo"] = replace(
    FINETUNE_PRESETS["gemma-code"], name="gemma-repo", lr=2e-4, max_steps=150, corpus_chars=0
)
# CI: the same adapter-only path on a tiny model, in seconds.
FINETUNE_PRESETS["tiny-adapter"] = replace(
    FINETUNE_PRESETS["tiny"], name="finetune-tiny-adapter", fim_rate=0.0, lora_rank=4, output_vocab=64
)


def get_preset(name: str, finetune: bool = False) -> TrainPreset:
    """The preset called `name`, or a ValueError listing the ones that exist."""
    table = FINETUNE_PRESETS if finetune else PRESETS
    if name not in table:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(table)}")
    return table[name]


# Fields that define the network's shape; a checkpoint cannot continue with different ones.
ARCHITECTURE_FIELDS = frozenset({"model_type", "n_layer", "n_head", "n_embd", "vocab_size", "context_length"})


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """`["n_embd=256", "fim_rate=0"]` → typed preset overrides, for ablations from the command line."""
    types = {f.name: f.type for f in fields(TrainPreset)}
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in types or key == "name":
            choices = ", ".join(k for k in types if k != "name")
            raise ValueError(f"--set {pair!r}: expected FIELD=VALUE with FIELD one of: {choices}")
        kind = types[key]
        try:
            overrides[key] = raw if kind == "str" else int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ValueError(f"--set {pair!r}: {key} takes a{'n' if kind == 'int' else ''} {kind}") from None
    return overrides
