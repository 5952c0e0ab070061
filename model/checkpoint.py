"""Training checkpoints: written atomically, read back for exact resumption.

Layout of OUT/checkpoint (written to a temporary directory and renamed, so a crash or a full disk
never leaves a half-written checkpoint behind):

    config.json, model.safetensors   transformers save_pretrained (no pickle)
    tokenizer.json                   the tokenizer the model was trained with
    optimizer.safetensors            AdamW moments, flattened to `state.{param}.{name}`
    trainer.json                     step, tokens seen, best val loss, preset, tokenizer sha256
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHECKPOINT = "checkpoint"
TRAINER_STATE = "trainer.json"
OPTIMIZER_STATE = "optimizer.safetensors"
TOKENIZER = "tokenizer.json"


class TrainError(Exception):
    """Training cannot start or continue; the message says what to do."""


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def find_checkpoint(out: Path) -> Path | None:
    """OUT/checkpoint, or the previous one when a crash fell between the two renames of a save."""
    for name in (CHECKPOINT, f".{CHECKPOINT}.old"):
        if (out / name / TRAINER_STATE).is_file():
            return out / name
    return None


def read_trainer_state(checkpoint: Path) -> dict[str, Any]:
    try:
        return json.loads((checkpoint / TRAINER_STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TrainError(
            f"{checkpoint}: unreadable {TRAINER_STATE} ({err}); start again in a new --out"
        ) from err


def _optimizer_tensors(optimizer: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    import torch

    state = optimizer.state_dict()
    flat = {
        f"state.{index}.{name}": (value if torch.is_tensor(value) else torch.tensor(value)).contiguous().cpu()
        for index, entries in state["state"].items()
        for name, value in entries.items()
    }
    return flat, state["param_groups"]


def load_optimizer(optimizer: Any, checkpoint: Path, state: dict[str, Any]) -> None:
    from safetensors.torch import load_file

    entries: dict[int, dict[str, Any]] = {}
    for key, tensor in load_file(str(checkpoint / OPTIMIZER_STATE)).items():
        _, index, name = key.split(".", 2)
        entries.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": entries, "param_groups": state["param_groups"]})


def save_checkpoint(
    out: Path,
    model: Any,
    tokenizer: Any,
    optimizer: Any,
    state: dict[str, Any],
    save_model: Callable[[Any, Path], None] | None = None,
) -> Path:
    """Write OUT/checkpoint atomically: into a temporary directory first, then two renames.

    `save_model` writes config.json + model.safetensors (default: transformers `save_pretrained`).
    """
    from safetensors.torch import save_file

    final, tmp, old = out / CHECKPOINT, out / f".{CHECKPOINT}.tmp", out / f".{CHECKPOINT}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        (save_model or (lambda m, d: m.save_pretrained(d)))(model, tmp)
        tokenizer.save(str(tmp / TOKENIZER))
        flat, param_groups = _optimizer_tensors(optimizer)
        save_file(flat, str(tmp / OPTIMIZER_STATE))
        full_state = {**state, "param_groups": param_groups}
        (tmp / TRAINER_STATE).write_text(json.dumps(full_state, indent=2) + "\n", encoding="utf-8")
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = f"the previous checkpoint in {final} is intact" if final.exists() else "no checkpoint was kept"
        if err.errno == errno.ENOSPC:
            raise TrainError(
                f"disk full while writing a checkpoint in {out}; {kept}. Free space, then rerun the same command to resume."
            ) from err
        raise TrainError(f"could not write a checkpoint in {out}: {err}; {kept}") from err
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def weights_sha256(model: Any) -> str:
    """A hash of every parameter and buffer: equal hashes mean bitwise equal weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
