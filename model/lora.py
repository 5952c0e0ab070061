"""Low-rank adapters (Hu et al. 2021, arXiv 2106.09685) for transformers models, in plain torch.

Why not peft: the adapter has to become a small file gpt-lsp ships and later merges into a base it
never saw in training (`adapter.py`), the training loop passes the wrapped model through a trimmed
output layer (`trimmed_head.py`), and GPT-2's Conv1D layers store weights transposed. A 40-line
wrapper covers all three; peft would add a dependency and its own file format for the same sums.
"""

from __future__ import annotations

import copy
import math
from typing import Any


class LoRALinear:
    """Namespace for the LoRA wrapper; built lazily so this module imports without torch."""

    @staticmethod
    def make(base: Any, rank: int, alpha: float) -> Any:
        import torch
        from torch import nn
        from transformers.pytorch_utils import Conv1D

        class LoRA(nn.Module):
            """y = base(x) + (alpha / r) * x A^T B^T, with B = 0 at the start (the base model unchanged)."""

            def __init__(self) -> None:
                super().__init__()
                self.base = base
                self.transposed = isinstance(base, Conv1D)  # GPT-2's Conv1D stores W as (in, out)
                in_features, out_features = base.weight.shape if self.transposed else base.weight.shape[::-1]
                self.lora_a = nn.Parameter(torch.empty(rank, in_features))
                self.lora_b = nn.Parameter(torch.zeros(out_features, rank))
                nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
                self.scale = alpha / rank

            def forward(self, x: Any) -> Any:
                return self.base(x) + (x @ self.lora_a.T @ self.lora_b.T) * self.scale

            def merged(self) -> Any:
                delta = (self.lora_b @ self.lora_a * self.scale).to(self.base.weight.dtype)
                merged = copy.deepcopy(self.base)
                with torch.no_grad():
                    merged.weight += delta.T if self.transposed else delta
                return merged

        return LoRA()


def apply_lora(
    model: Any,
    rank: int,
    alpha: float,
    train_embeddings: bool,
    only: tuple[str, ...] = (),
    first_layer: int = 0,
) -> int:
    """Freeze the model and wrap every Linear/Conv1D inside the transformer blocks; return the count.

    `only` keeps the layers whose name ends with one of these (e.g. `("q_proj", "v_proj")`);
    `first_layer` leaves blocks below that index untouched, so backward stops there.
    """
    from torch import nn
    from transformers.pytorch_utils import Conv1D

    for param in model.parameters():
        param.requires_grad_(False)
    if train_embeddings:  # new FIM rows must be learned; LoRA cannot reach an embedding table
        model.get_input_embeddings().weight.requires_grad_(True)
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, Conv1D))
        and module is not model.get_output_embeddings()
        and (not only or name.endswith(only))
        and block_index(name) >= first_layer
    ]
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, LoRALinear.make(module, rank, alpha))
    return len(targets)


def block_index(name: str) -> int:
    """The transformer block a module name belongs to (`model.layers.7.mlp.up_proj` -> 7; -1 if none)."""
    parts = name.split(".")
    return next((int(p) for p in parts if p.isdigit()), -1)


def merged_copy(model: Any) -> Any:
    """A copy of `model` with every LoRA module folded back into a plain layer."""
    merged = copy.deepcopy(model)
    for name, module in list(merged.named_modules()):
        if hasattr(module, "lora_a"):
            parent_name, _, child = name.rpartition(".")
            setattr(merged.get_submodule(parent_name), child, module.merged())
    return merged
