"""What a training run tells its user: messages, the progress bar, metrics.json and loss.png.

Kept apart from the loop so that output formats change without touching the optimisation, and so
that matplotlib and tqdm are imported only where a run reports.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gpt_lsp.model.presets import TrainPreset

METRICS = "metrics.json"
LOSS_PLOT = "loss.png"


def say(message: str) -> None:
    """One line for the user on stderr (stdout stays free for a command's own output)."""
    print(message, file=sys.stderr, flush=True)


def progress_bar(total: int, initial: int, enabled: bool) -> Any:
    """A tqdm bar of optimiser steps on stderr; off on every rank but the main one."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
    )


def read_evals(out: Path, up_to_step: int) -> list[dict[str, Any]]:
    """The evaluations an earlier run recorded in OUT/metrics.json, up to the resumed step."""
    path = out / METRICS
    if not path.is_file():
        return []
    evals = json.loads(path.read_text())["evals"]
    return [e for e in evals if e["step"] <= up_to_step]


def write_metrics(out: Path, evals: list[dict[str, Any]], preset: TrainPreset) -> None:
    """OUT/metrics.json and OUT/loss.png (train and validation loss against tokens seen)."""
    (out / METRICS).write_text(json.dumps({"preset": preset.name, "evals": evals}, indent=2) + "\n")
    if not evals:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    tokens = [e["tokens"] / 1e6 for e in evals]
    ax.plot(tokens, [e["train_loss"] for e in evals], label="train")
    valid = [(t, e["val_loss"]) for t, e in zip(tokens, evals, strict=True) if e.get("val_loss") is not None]
    if valid:
        ax.plot(*zip(*valid, strict=True), marker="o", label="validation")
    ax.set(
        xlabel="tokens seen (millions)",
        ylabel="loss (nats/token)",
        title=f"gpt-lsp train --preset {preset.name}",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / LOSS_PLOT, dpi=100)
    plt.close(fig)


def eval_line(step: int, train_loss: float, val_loss: float | None) -> str:
    """The line written under the progress bar at each evaluation."""
    return f"step {step}: train loss {train_loss:.4f}" + (
        f", val loss {val_loss:.4f}" if val_loss is not None else ""
    )


def throughput_line(result: dict[str, Any], world_size: int, device: str) -> str:
    """Training throughput: tokens/s counts time in steps only, not validation or checkpoints."""
    return (
        f"throughput: {result['tokens_per_s']:,.0f} tokens/s in training steps ({result['trained_tokens']:,} "
        f"tokens, {result['elapsed_s']:.1f}s wall incl. validation and checkpoints; "
        f"{world_size} process(es), {device})"
    )
