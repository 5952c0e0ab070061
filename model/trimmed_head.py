"""Training through a trimmed output layer: logits over the tokens code uses, not the whole vocabulary.

Gemma 3 270M ties a 262,144 x 640 embedding to its output layer: 168M of its 268M parameters, and
on CPU the biggest single cost of a training step (the 262k-way logits, their softmax and the
gradient back through them). Code uses a small part of that vocabulary: on the Python corpus the
32,768 most frequent ids cover 99.9% of training tokens and 99.5% of held-out ones. During training
the loss is computed over those ids only; targets outside them are left out of the loss (measured:
2.6x faster steps). This is a training-time trick: the model keeps its full output layer, and the
adapter it produces knows nothing of the trimming.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

IGNORE_INDEX = -100


def frequent_ids(stream: Any, size: int, always: tuple[int, ...] = ()) -> Any:
    """The `size` most frequent ids in the token `stream` (plus `always`), sorted ascending."""
    import torch

    counts = torch.bincount(stream.to(torch.long))
    size = min(size, int((counts > 0).sum()))
    keep = set(torch.topk(counts, size).indices.tolist()) | set(always)
    return torch.tensor(sorted(keep), dtype=torch.long)


def coverage(stream: Any, keep: Any) -> float:
    """The share of tokens in `stream` whose id is among `keep`."""
    import torch

    return float(torch.isin(stream.to(torch.long), keep).float().mean())


def make_trimmed(model: Any, keep: Any, bos_id: int | None = None) -> Any:
    """`model` behind a forward that returns `.loss` over the kept ids only (same call as a HF model).

    `bos_id`, when given, is put in front of every sequence: Gemma is trained with a BOS first and
    serving always sends one, so packed training sequences should start the same way.
    """
    import torch
    from torch import nn
    from torch.nn import functional

    class TrimmedLoss(nn.Module):
        keep: torch.Tensor  # buffers, registered below
        remap: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            vocab = model.get_output_embeddings().weight.shape[0]
            remap = torch.full((vocab,), IGNORE_INDEX, dtype=torch.long)
            remap[keep] = torch.arange(len(keep))
            self.register_buffer("keep", keep.clone(), persistent=False)
            self.register_buffer("remap", remap, persistent=False)
            self._head: Any = None  # the kept rows, cached while the output layer is frozen

        def head(self) -> Any:
            weight = self.model.get_output_embeddings().weight
            if weight.requires_grad:
                return weight[self.keep]
            if self._head is None:
                self._head = weight.detach()[self.keep].clone()
            return self._head

        def forward(self, input_ids: Any, labels: Any, **_: Any) -> Any:
            if bos_id is not None:
                first = torch.full_like(input_ids[:, :1], bos_id)
                input_ids = torch.cat([first, input_ids], dim=1)
                labels = torch.cat([torch.full_like(first, IGNORE_INDEX), labels], dim=1)
            hidden = self.model.model(input_ids=input_ids, use_cache=False).last_hidden_state
            logits = hidden[:, :-1] @ self.head().T
            targets = labels[:, 1:]
            targets = torch.where(targets == IGNORE_INDEX, IGNORE_INDEX, self.remap[targets.clamp(min=0)])
            loss = functional.cross_entropy(
                logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX
            )
            return SimpleNamespace(loss=loss)

    return TrimmedLoss()
