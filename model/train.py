"""`gpt-lsp train`: pretrain a small code GPT from source directories, resumably, on CPU, GPU or DDP.

corpus -> tokenizer (trained once per output directory) -> packed sequences with FIM (`data.py`)
-> transformers GPT-2 or Llama from a preset (`presets.py`) -> AdamW, linear warm-up, cosine decay,
gradient clipping -> OUT/checkpoint every `checkpoint_every` steps -> export to OUT/model.

Checkpoints (`checkpoint.py`) are written atomically and resume exactly.
Data order and FIM choices are functions of (seed, step), so a resumed run continues exactly
where the interrupted one stopped. Under `torchrun` every rank trains on its own slice of each
global batch; rank 0 alone writes files.

This module is the command and its orchestration; the loop itself (`training_loop.fit`, which
`finetune.py` uses too), the process group and signals (`distributed.py`) and what a run reports
(`training_report.py`) live beside it.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpt_lsp.model.checkpoint import (
    CHECKPOINT,
    TOKENIZER,
    TrainError,
    file_sha256,
    find_checkpoint,
    read_trainer_state,
    weights_sha256,
)
from gpt_lsp.model.data import FimConfig, PackedSequences
from gpt_lsp.model.distributed import Distributed, setup_distributed
from gpt_lsp.model.presets import ARCHITECTURE_FIELDS, PRESETS, TrainPreset, get_preset, parse_overrides
from gpt_lsp.model.training_loop import TrainJob, fit
from gpt_lsp.model.training_report import say, throughput_line

INTERRUPTED = 130  # exit status after a checkpointed Ctrl-C / SIGTERM (shell convention for SIGINT)


def build_model(preset: TrainPreset, vocab_size: int, eos_id: int, pad_id: int | None) -> Any:
    """A randomly initialised GPT-2 or Llama causal LM of the preset's size (seeded)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(preset.seed)
    if preset.model_type == "gpt2":
        gpt2 = GPT2Config(
            vocab_size=vocab_size,
            n_positions=preset.context_length,
            n_embd=preset.n_embd,
            n_layer=preset.n_layer,
            n_head=preset.n_head,
            bos_token_id=eos_id,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
            resid_pdrop=preset.dropout,
            embd_pdrop=preset.dropout,
            attn_pdrop=preset.dropout,
        )
        return GPT2LMHeadModel(gpt2)
    if preset.model_type == "llama":
        llama = LlamaConfig(
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
        return LlamaForCausalLM(llama)
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
    say(throughput_line(result, dist.world_size, dist.device))
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
