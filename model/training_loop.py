"""The training loop shared by `gpt-lsp train` and `finetune`: AdamW, warm-up and cosine decay,
gradient clipping, validation, checkpoints, and stopping on time, a signal or a step count.

It knows nothing of where the model or the data came from (train.py and finetune.py prepare
those) and nothing of output formats (training_report.py).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt_lsp.model.checkpoint import load_optimizer, read_trainer_state, save_checkpoint
from gpt_lsp.model.data import FimConfig, PackedSequences
from gpt_lsp.model.distributed import Distributed, StopSignal
from gpt_lsp.model.presets import TrainPreset
from gpt_lsp.model.training_report import (
    eval_line,
    progress_bar,
    read_evals,
    say,
    write_metrics,
)

# Below this size a CPU step is dominated by per-op overhead, and on a busy machine a second
# thread makes the tiny preset ~10x slower (measured: 14 ms vs 190 ms per step).
SMALL_MODEL_PARAMS = 500_000


@dataclass
class TrainJob:
    """Everything `fit` needs besides the model."""

    out: Path
    preset: TrainPreset
    tokenizer: Any  # tokenizers.Tokenizer
    fim: FimConfig | None
    train: PackedSequences
    valid: PackedSequences | None
    dist: Distributed = field(default_factory=Distributed)
    max_minutes: float | None = None
    stop_after_steps: int | None = None  # tests: behave as if interrupted after this many steps
    meta: dict[str, Any] = field(default_factory=dict)  # extra trainer.json keys (kind, base model)
    save_model: Callable[[Any, Path], None] | None = None  # writes config.json + model.safetensors


def lr_at(step: int, preset: TrainPreset, max_steps: int) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at `max_steps`."""
    if step < preset.warmup_steps:
        return preset.lr * (step + 1) / preset.warmup_steps
    progress = min(1.0, (step - preset.warmup_steps) / max(1, max_steps - preset.warmup_steps))
    return preset.lr * (
        preset.min_lr_ratio + (1 - preset.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    )


def make_optimizer(model: Any, preset: TrainPreset) -> Any:
    """AdamW with weight decay on matrices only (biases and norm gains are not decayed)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": preset.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=preset.lr, betas=(0.9, preset.beta2), fused=False)


def validation_loss(model: Any, batches: list[Any], dist: Distributed, autocast: Any) -> float | None:
    """Mean validation loss in nats/token over the fixed batches, averaged across ranks."""
    import torch

    model.eval()
    total, count = 0.0, 0.0
    with torch.no_grad():
        for input_ids, labels in batches:
            with autocast():
                loss = model(
                    input_ids=input_ids.to(dist.device), labels=labels.to(dist.device), use_cache=False
                ).loss
            n = float((labels[:, 1:] != -100).sum())
            total, count = total + float(loss) * n, count + n
    model.train()
    total, count = dist.all_sum(total, count)
    return total / count if count else None


class _Loop:
    """The state of one training run: model, optimiser, counters, metrics; `fit` drives it."""

    def __init__(self, model: Any, job: TrainJob, resume: Path | None) -> None:
        import torch

        self.job, self.model, self.dist = job, model, job.dist
        self.optimizer = make_optimizer(model, job.preset)
        self.state: dict[str, Any] = {"step": 0, "tokens": 0, "best_val_loss": None}
        self.evals: list[dict[str, Any]] = []
        if resume is not None:
            previous = read_trainer_state(resume)
            load_optimizer(self.optimizer, resume, previous)
            self.state.update({k: previous[k] for k in ("step", "tokens", "best_val_loss")})
            self.evals = read_evals(job.out, self.state["step"])
        self.forward = model
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = None if self.dist.device == "cpu" else [self.dist.device]
            self.forward = DistributedDataParallel(model, device_ids=device_ids)
        cuda = self.dist.device.startswith("cuda")
        # bfloat16 autocast: always on CUDA; on CPUs with bf16 matmul units (AVX512-BF16, AMX) when
        # the preset asks, where it makes a 270M model's steps about 2-3x faster.
        device = "cuda" if cuda else "cpu" if job.preset.cpu_bf16 else None
        self.autocast = (
            (lambda: torch.autocast(device, dtype=torch.bfloat16)) if device else contextlib.nullcontext
        )
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.tokens_per_step = job.preset.tokens_per_step * self.dist.world_size
        self.losses: list[float] = []

    def train_step(self, step: int) -> float:
        """One optimiser step on this rank's share of global batch `step`; returns the loss."""
        import torch

        job, preset = self.job, self.job.preset
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(step, preset, preset.max_steps)
        input_ids, labels = job.train.batch(
            step, preset.batch_size, self.dist.rank, self.dist.world_size, job.tokenizer, job.fim
        )
        with self.autocast():
            output = self.forward(
                input_ids=input_ids.to(self.dist.device), labels=labels.to(self.dist.device), use_cache=False
            )
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, preset.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.losses.append(float(output.loss.detach()))
        self.state["step"], self.state["tokens"] = step + 1, self.state["tokens"] + self.tokens_per_step
        return self.losses[-1]

    def record_eval(self, tokens_per_s: float, elapsed: float) -> str:
        job = self.job
        valid = (
            job.valid.fixed_batches(
                job.preset.eval_batches, job.preset.batch_size, self.dist.rank, self.dist.world_size
            )
            if job.valid
            else []
        )
        val_loss = validation_loss(self.forward, valid, self.dist, self.autocast) if valid else None
        best = self.state["best_val_loss"]
        if val_loss is not None and (best is None or val_loss < best):
            self.state["best_val_loss"] = val_loss
        train_loss = sum(self.losses) / max(1, len(self.losses))
        self.evals.append(
            {
                "step": self.state["step"],
                "tokens": self.state["tokens"],
                "train_loss": train_loss,
                "val_loss": val_loss,
                "lr": self.optimizer.param_groups[0]["lr"],
                "tokens_per_s": round(tokens_per_s, 1),
                "elapsed_s": round(elapsed, 1),
            }
        )
        self.losses = []
        return eval_line(self.state["step"], train_loss, val_loss)

    def checkpoint(self) -> None:
        if self.dist.is_main:
            preset = self.job.preset
            trainer = {
                **self.state,
                "max_steps": preset.max_steps,
                "world_size": self.dist.world_size,
                "preset": preset.to_dict(),
                **self.job.meta,
            }
            save_checkpoint(
                self.job.out, self.model, self.job.tokenizer, self.optimizer, trainer, self.job.save_model
            )
            try:
                write_metrics(self.job.out, self.evals, preset)
            except OSError as err:  # the checkpoint is what matters; metrics are rewritten next time
                say(f"warning: could not write metrics: {err}")
        self.dist.barrier()


def fit(model: Any, job: TrainJob, resume: Path | None = None) -> dict[str, Any]:
    """Train `model` for the job's preset; resume optimiser and counters from `resume` when given.

    Returns the final trainer state plus `stopped` ("done", "time" or "signal") and throughput:
    `tokens_per_s` counts time in training steps only (not validation or checkpoint writes).
    """
    import torch

    preset, dist = job.preset, job.dist
    model.to(dist.device).train()
    if dist.device == "cpu" and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS:
        torch.set_num_threads(1)  # per-op overhead dominates; a second thread only adds synchronisation
    loop = _Loop(model, job, resume)
    start_step, started, step_time = loop.state["step"], time.perf_counter(), 0.0
    stopped = "done"
    bar = progress_bar(preset.max_steps, start_step, dist.is_main)
    with StopSignal() as signals:
        for step in range(start_step, preset.max_steps):
            tick = time.perf_counter()
            loss = loop.train_step(step)
            step_time += time.perf_counter() - tick
            done, elapsed = step + 1, time.perf_counter() - started
            tokens_per_s = (done - start_step) * loop.tokens_per_step / step_time
            bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tokens_per_s:,.0f}", refresh=False)
            bar.update()
            # Every rank must agree to stop at the same step, or DDP would wait forever.
            interrupted = signals.received is not None or done == job.stop_after_steps
            over_time = job.max_minutes is not None and elapsed > job.max_minutes * 60
            signal_stop, time_stop = (v > 0 for v in dist.all_sum(float(interrupted), float(over_time)))
            last = done == preset.max_steps or signal_stop or time_stop
            if done % preset.eval_every == 0 or last:
                line = loop.record_eval(tokens_per_s, elapsed)
                if dist.is_main:
                    bar.write(line, file=sys.stderr)
            if done % preset.checkpoint_every == 0 or last:
                loop.checkpoint()
            if signal_stop or time_stop:
                stopped = "signal" if signal_stop else "time"
                break
    bar.close()
    trained = (loop.state["step"] - start_step) * loop.tokens_per_step
    return {
        **loop.state,
        "stopped": stopped,
        "elapsed_s": time.perf_counter() - started,
        "tokens_per_s": trained / step_time if step_time else 0.0,
        "trained_tokens": trained,
    }
