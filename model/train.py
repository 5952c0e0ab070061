"""`gpt-lsp train`: pretrain a small code GPT from source directories, resumably, on CPU, GPU or DDP.

corpus -> tokenizer (trained once per output directory) -> packed sequences with FIM (`data.py`)
-> transformers GPT-2 or Llama from a preset (`presets.py`) -> AdamW, linear warm-up, cosine decay,
gradient clipping -> OUT/checkpoint every `checkpoint_every` steps -> export to OUT/model.

Checkpoints (`checkpoint.py`) are written atomically and resume exactly.
Data order and FIM choices are functions of (seed, step), so a resumed run continues exactly
where the interrupted one stopped. Under `torchrun` every rank trains on its own slice of each
global batch; rank 0 alone writes files. `fit` is also the loop `finetune.py` uses.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpt_lsp.model.checkpoint import (
    CHECKPOINT,
    TOKENIZER,
    TrainError,
    file_sha256,
    find_checkpoint,
    load_optimizer,
    read_trainer_state,
    save_checkpoint,
    weights_sha256,
)
from gpt_lsp.model.data import FimConfig, PackedSequences
from gpt_lsp.model.presets import ARCHITECTURE_FIELDS, PRESETS, TrainPreset, get_preset, parse_overrides

# Below this size a CPU step is dominated by per-op overhead, and on a busy machine a second
# thread makes the tiny preset ~10x slower (measured: 14 ms vs 190 ms per step).
SMALL_MODEL_PARAMS = 500_000
INTERRUPTED = 130  # exit status after a checkpointed Ctrl-C / SIGTERM (shell convention for SIGINT)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Distributed:
    """Where this process runs: its rank among `world_size` processes and its torch device."""

    rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed

            torch.distributed.barrier()

    def all_sum(self, *values: float) -> list[float]:
        if self.world_size == 1:
            return list(values)
        import torch
        import torch.distributed

        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def close(self) -> None:
        """Leave the torchrun process group at the end of a job (nothing to do for one process)."""
        if self.world_size > 1:
            import torch.distributed

            torch.distributed.destroy_process_group()


def setup_distributed() -> Distributed:
    """Join the torchrun process group when launched by it (gloo on CPU, NCCL on GPU)."""
    import torch
    from transformers.utils import logging as hf_logging

    # Our progress bar and messages are the user-facing output; transformers' own shard-writing
    # bars and config notes would interleave with them.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    if world_size > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    if not cuda and "OMP_NUM_THREADS" not in os.environ:  # processes on one machine share its cores
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", world_size))))
    rank = torch.distributed.get_rank() if world_size > 1 else 0
    return Distributed(rank, world_size, f"cuda:{local_rank}" if cuda else "cpu")


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


def evaluate(model: Any, batches: list[Any], dist: Distributed, autocast: Any) -> float | None:
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


class StopSignal:
    """SIGINT/SIGTERM set a flag; the loop checkpoints at the end of the step and stops."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.received is not None:  # second Ctrl-C: give up on the graceful stop
            raise KeyboardInterrupt
        self.received = signum
        say("\nstopping after this step; writing a checkpoint (Ctrl-C again to abort)")

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def write_metrics(out: Path, evals: list[dict[str, Any]], preset: TrainPreset) -> None:
    """OUT/metrics.json and OUT/loss.png (train and validation loss against tokens seen)."""
    (out / "metrics.json").write_text(json.dumps({"preset": preset.name, "evals": evals}, indent=2) + "\n")
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
    fig.savefig(out / "loss.png", dpi=100)
    plt.close(fig)


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
            if (job.out / "metrics.json").is_file():
                evals = json.loads((job.out / "metrics.json").read_text())["evals"]
                self.evals = [e for e in evals if e["step"] <= self.state["step"]]
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
        val_loss = evaluate(self.forward, valid, self.dist, self.autocast) if valid else None
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
        return f"step {self.state['step']}: train loss {train_loss:.4f}" + (
            f", val loss {val_loss:.4f}" if val_loss is not None else ""
        )

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
    from tqdm import tqdm

    preset, dist = job.preset, job.dist
    model.to(dist.device).train()
    if dist.device == "cpu" and sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS:
        torch.set_num_threads(1)  # per-op overhead dominates; a second thread only adds synchronisation
    loop = _Loop(model, job, resume)
    start_step, started, step_time = loop.state["step"], time.perf_counter(), 0.0
    stopped = "done"
    bar = tqdm(
        total=preset.max_steps,
        initial=start_step,
        unit="step",
        file=sys.stderr,
        disable=not dist.is_main,
        dynamic_ncols=True,
    )
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


def build_model(preset: TrainPreset, vocab_size: int, eos_id: int, pad_id: int | None) -> Any:
    """A randomly initialised GPT-2 or Llama causal LM of the preset's size (seeded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(preset.seed)
    if preset.model_type == "gpt2":
        dropout = {"resid_pdrop": preset.dropout, "embd_pdrop": preset.dropout, "attn_pdrop": preset.dropout}
        config = GPT2Config(
            vocab_size=vocab_size,
            n_positions=preset.context_length,
            n_embd=preset.n_embd,
            n_layer=preset.n_layer,
            n_head=preset.n_head,
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
            **dropout,
        )
        return GPT2LMHeadModel(config)
    if preset.model_type == "llama":
        config = LlamaConfig(
            vocab_size=vocab_size,
            hidden_size=preset.n_embd,
            intermediate_size=64 * math.ceil(preset.n_embd * 8 / 3 / 64),  # SwiGLU: 2/3 of 4x, rounded
            num_hidden_layers=preset.n_layer,
            num_attention_heads=preset.n_head,
            num_key_value_heads=preset.n_head,
            max_position_embeddings=preset.context_length,
            attention_dropout=preset.dropout,
            tie_word_embeddings=True,
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )
        return LlamaForCausalLM(config)
    raise TrainError(f"preset {preset.name!r}: unknown model_type {preset.model_type!r}; use gpt2 or llama")


def prepare_data(
    tokenizer: Any,
    train_texts: list[str],
    valid_texts: list[str],
    preset: TrainPreset,
    dist: Distributed,
    eos_id: int,
) -> tuple[PackedSequences, PackedSequences | None]:
    """Tokenise and pack both splits; refuse a corpus smaller than one global batch."""
    from gpt_lsp.model.data import encode_documents

    train_tokens = encode_documents(tokenizer, train_texts, eos_id)
    train = PackedSequences(train_tokens, preset.context_length, preset.seed)
    needed = preset.batch_size * dist.world_size
    if train.n < needed:
        raise TrainError(
            f"the corpus has {len(train_tokens):,} training tokens, but one batch of preset {preset.name!r} needs "
            f"{needed * preset.context_length:,} ({preset.batch_size} sequences x {preset.context_length} tokens"
            f" x {dist.world_size} process(es)); add more source files or pass a smaller --batch-size"
        )
    valid = PackedSequences(
        encode_documents(tokenizer, valid_texts, eos_id), preset.context_length, preset.seed
    )
    if valid.n == 0:
        if dist.is_main:
            say(
                f"note: the validation split is shorter than one sequence ({len(valid_texts)} files); no validation loss"
            )
        return train, None
    return train, valid


def fim_config(
    tokenizer: Any, preset: TrainPreset, eos_id: int, pad_id: int | None, where: Path
) -> FimConfig:
    from gpt_lsp.model.tokenizer import check_fim_tokens

    try:
        ids = check_fim_tokens(tokenizer, where)
    except ValueError as err:
        raise TrainError(str(err)) from err
    return FimConfig(ids, eos_id, eos_id if pad_id is None else pad_id, preset.fim_rate, preset.spm_rate)


def load_or_train_tokenizer(out: Path, train_texts: list[str], preset: TrainPreset, dist: Distributed) -> Any:
    """OUT/tokenizer.json, trained on the training split by rank 0 the first time."""
    from tokenizers import Tokenizer

    from gpt_lsp.model.tokenizer import train_tokenizer

    path = out / TOKENIZER
    if not path.is_file() and dist.is_main:
        say(f"training a {preset.vocab_size}-token BPE tokenizer on {len(train_texts)} files")
        train_tokenizer(train_texts, preset.vocab_size, path)
    dist.barrier()
    return Tokenizer.from_file(str(path))


def finish(
    job: TrainJob, model: Any, result: dict[str, Any], export: bool, weights_hash_file: Path | None
) -> int:
    """Report throughput, export OUT/model, and choose the exit status."""
    dist = job.dist
    if weights_hash_file is not None:
        Path(f"{weights_hash_file}.rank{dist.rank}").write_text(weights_sha256(model) + "\n")
    if not dist.is_main:
        return 0
    say(
        f"throughput: {result['tokens_per_s']:,.0f} tokens/s in training steps ({result['trained_tokens']:,} "
        f"tokens, {result['elapsed_s']:.1f}s wall incl. validation and checkpoints; "
        f"{dist.world_size} process(es), {dist.device})"
    )
    checkpoint = job.out / CHECKPOINT
    if result["stopped"] == "signal":
        say(
            f"interrupted at step {result['step']}; checkpoint in {checkpoint}. Rerun the same command to resume."
        )
        return INTERRUPTED
    if result["stopped"] == "time":
        say(f"time limit reached at step {result['step']}; rerun the same command to continue")
    if not export:
        return 0
    try:
        from gpt_lsp.model.export import ExportError, export_checkpoint
    except ImportError as err:
        say(f"cannot export ({err}); the checkpoint is in {checkpoint}")
        return 1
    try:
        model_dir = export_checkpoint(checkpoint, job.out / "model", int8=True, on_stage=say)
    except (ExportError, ImportError, OSError) as err:
        say(
            f"export failed: {err}\nthe checkpoint is intact; retry with `gpt-lsp export {checkpoint} {job.out / 'model'} --int8`"
        )
        return 1
    say(f"model ready: gpt-lsp --stdio --model {model_dir.path}")
    return 0


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `train` and `finetune`."""
    parser.add_argument(
        "--out", type=Path, required=True, help="output directory (checkpoint, metrics, exported model)"
    )
    parser.add_argument(
        "--max-steps", type=int, help="optimiser steps (overrides the preset; also sets the cosine length)"
    )
    parser.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this many minutes")
    parser.add_argument(
        "--batch-size", type=int, help="sequences per step per process (overrides the preset)"
    )
    parser.add_argument("--lr", type=float, help="peak learning rate (overrides the preset)")
    parser.add_argument(
        "--languages", default="all", help="languages to read from raw source directories (default: all)"
    )
    parser.add_argument("--no-export", action="store_true", help="do not export OUT/model at the end")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="require OUT/checkpoint and continue from it (automatic when it exists)",
    )
    parser.add_argument(
        "--stop-at-step",
        "--stop-after-steps",
        dest="stop_after_steps",
        type=int,
        metavar="STEP",
        help="stop (with a checkpoint) at this step, keeping the --max-steps schedule: short ablations "
        "then compare like with like, and the run can be resumed to the end",
    )
    parser.add_argument("--weights-hash-file", type=Path, help=argparse.SUPPRESS)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train",
        help="pretrain a code model from source directories",
        description=(
            "Train a tokenizer (once) and a GPT-2/Llama model from scratch on source directories or "
            "`gpt-lsp corpus` outputs, then export OUT/model. Resumes from OUT/checkpoint automatically. "
            "Runs unchanged under `torchrun --nproc_per_node N`."
        ),
        epilog="presets: "
        + "; ".join(
            f"{p.name} ({p.model_type}, {p.n_layer}x{p.n_embd}, ctx {p.context_length})"
            for p in PRESETS.values()
        ),
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="model size and schedule (default: default, or the checkpoint's when resuming)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        metavar="DIR",
        help="source directories or corpus outputs",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override one preset field (repeatable), e.g. --set n_embd=256 --set fim_rate=0.9; "
        "see model/presets.py for the fields",
    )
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_reporting_errors("train", lambda: train(args))


def run_reporting_errors(command: str, job: Callable[[], int]) -> int:
    """Run a toolchain command; expected failures become one `gpt-lsp CMD: error: ...` line and exit 2."""
    from gpt_lsp.model.corpus import CorpusError

    try:
        return job()
    except (TrainError, CorpusError, ValueError) as err:
        say(f"gpt-lsp {command}: error: {err}")
        return 2


def resolve_preset(preset: TrainPreset, args: argparse.Namespace, resuming: bool = False) -> TrainPreset:
    """The preset with --set and the dedicated flags applied; shape changes cannot resume a checkpoint."""
    overrides = parse_overrides(getattr(args, "set", []))
    changed = sorted(k for k in ARCHITECTURE_FIELDS & overrides.keys() if overrides[k] != getattr(preset, k))
    if resuming and changed:
        raise TrainError(f"--set {', '.join(changed)}: the checkpoint has another shape; use a new --out")
    overrides.update(max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr)
    return preset.with_overrides(**overrides)


def train(args: argparse.Namespace) -> int:
    from gpt_lsp.model.corpus import load_corpus

    out: Path = args.out
    checkpoint = find_checkpoint(out)
    if args.resume and checkpoint is None:
        raise TrainError(f"--resume: {out} has no checkpoint; drop --resume to start a new run")
    preset = resolve_preset(get_preset(args.preset or "default"), args)
    if checkpoint is not None:
        saved = read_trainer_state(checkpoint)
        if args.preset and saved["preset"]["name"] != args.preset:
            raise TrainError(
                f"{checkpoint} was trained with --preset {saved['preset']['name']}; use it, or a new --out"
            )
        preset = resolve_preset(TrainPreset(**saved["preset"]), args, resuming=True)
    dist = setup_distributed()
    out.mkdir(parents=True, exist_ok=True)
    train_texts, valid_texts = load_corpus(
        args.data, args.languages, preset.seed, say if dist.is_main else None
    )
    tokenizer = load_or_train_tokenizer(out, train_texts, preset, dist)
    eos_id = tokenizer.token_to_id("<|endoftext|>")
    if eos_id is None:
        raise TrainError(f"{out / TOKENIZER} has no <|endoftext|> token; delete it so a new one is trained")
    pad_id = tokenizer.token_to_id("<pad>")
    fim = fim_config(tokenizer, preset, eos_id, pad_id, out / TOKENIZER)
    tokenizer_sha = file_sha256(out / TOKENIZER)
    train_data, valid_data = prepare_data(tokenizer, train_texts, valid_texts, preset, dist, eos_id)
    if checkpoint is not None:
        if read_trainer_state(checkpoint).get("tokenizer_sha256") != tokenizer_sha:
            raise TrainError(
                f"{out / TOKENIZER} is not the tokenizer {checkpoint} was trained with; restore it or use a new --out"
            )
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(checkpoint)
        if dist.is_main:
            say(f"resuming from {checkpoint} at step {read_trainer_state(checkpoint)['step']}")
    else:
        model = build_model(preset, tokenizer.get_vocab_size(), eos_id, pad_id)
    if dist.is_main:
        params = sum(p.numel() for p in model.parameters())
        say(
            f"preset {preset.name}: {preset.model_type} {params / 1e6:.2f}M parameters, vocab {tokenizer.get_vocab_size()}, "
            f"{train_data.n:,} train / {valid_data.n if valid_data else 0:,} valid sequences of {preset.context_length} tokens"
        )
    job = TrainJob(
        out,
        preset,
        tokenizer,
        fim,
        train_data,
        valid_data,
        dist,
        args.max_minutes,
        args.stop_after_steps,
        meta={"kind": "train", "tokenizer_sha256": tokenizer_sha},
    )
    result = fit(model, job, resume=checkpoint)
    status = finish(job, model, result, export=not args.no_export, weights_hash_file=args.weights_hash_file)
    dist.close()
    return status
