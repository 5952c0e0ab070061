"""`gpt-lsp finetune BASE DATA`: teach an existing causal LM a user's repository, keeping its FIM skill.

BASE is a `gpt-lsp train` output (or its `checkpoint/`) or any local Hugging Face causal-LM checkpoint
of a type the exporter supports. DATA goes through the same corpus rules as pretraining. FIM stays
in the mix at the preset's rate (0.5): fine-tuning on left-to-right text alone would train away the
infilling the editor relies on. A base whose tokenizer lacks the FIM sentinels gets them added
(embeddings resized) -- it then has to learn them, which the message says.

`--lora` trains low-rank adapters (Hu et al. 2021, arXiv 2106.09685) on the attention and MLP
projections instead of all weights; checkpoints always hold the merged model, so export and serving
never see adapters. The training loop is `training_loop.fit`; this module only prepares the model.

BASE may also name a pretrained base (`gemma3-270m`, from its registry package) or the code-tuned
model built from it (`gemma-code`). Their presets set a LoRA rank: then checkpoints hold only the
adapter (a 1 GB merged model every few minutes would cost more than the steps), OUT/adapter.safetensors
is the result, and the merged model is written once at the end for export. Such bases have no FIM
sentinels; their presets train prefix-only (fim_rate 0), matching how they are served.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from gpt_lsp.inference.model_dir import CONFIG_NAME, read_config, write_config
from gpt_lsp.model.adapter_training import (
    ADAPTER,
    finish_adapter,
    sample_texts,
    save_adapter_checkpoint,
    trimmed,
)
from gpt_lsp.model.checkpoint import TOKENIZER, TrainError, find_checkpoint, read_trainer_state
from gpt_lsp.model.distributed import setup_distributed
from gpt_lsp.model.export import SUPPORTED_MODEL_TYPES
from gpt_lsp.model.lora import apply_lora, merged_copy
from gpt_lsp.model.presets import FINETUNE_PRESETS, TrainPreset, get_preset
from gpt_lsp.model.train import add_common_options, fim_config, finish, prepare_data, run_reporting_errors
from gpt_lsp.model.training_loop import TrainJob, fit
from gpt_lsp.model.training_report import say

# Named bases and the preset each starts with: the shipped recipe on the pretrained base, and a short
# schedule for adapting the code-tuned model to one repository.
NAMED_PRESETS = {"gemma3-270m": "gemma-code", "gemma-code": "gemma-repo"}


def resolve_base(base: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint directory inside BASE and its config.json, checked before torch loads anything.

    BASE takes the names `--model` takes: "default"/"tiny" is the model shipped with gpt-lsp (its
    weights travel in model/default/checkpoint), a named base or gemma-code its checkpoint, and a
    GGUF file its dequantized checkpoint (cached).
    """
    from gpt_lsp.inference.model_select import DEFAULT_NAMES, is_gguf

    if str(base) in DEFAULT_NAMES and not base.exists():
        from gpt_lsp.inference.model_dir import default_model_path

        base = default_model_path()
    elif str(base) in NAMED_PRESETS and not base.exists():
        from gpt_lsp.model.gemma_code import named_checkpoint

        base = named_checkpoint(str(base))
    elif is_gguf(base.expanduser()):
        from gpt_lsp.model.pretrained import resolve_source

        base = resolve_source(base, on_stage=say)
    base = base.expanduser()
    for candidate in (base / "checkpoint", base):
        if (candidate / "config.json").is_file():
            config = json.loads((candidate / "config.json").read_text(encoding="utf-8"))
            if config.get("model_type") not in SUPPORTED_MODEL_TYPES:
                raise TrainError(
                    f"{candidate}: model type {config.get('model_type')!r} is not supported; "
                    f"use one of {', '.join(SUPPORTED_MODEL_TYPES)}"
                )
            return candidate, config
    if (base / CONFIG_NAME).is_file():
        raise TrainError(
            f"{base} is an exported (ONNX) model; fine-tune its training checkpoint (`train --out` dir)"
        )
    raise TrainError(
        f"{base}: no config.json; pass a gpt-lsp training output or a local Hugging Face checkpoint"
    )


def load_tokenizer(checkpoint: Path) -> Any:
    """tokenizer.json, or the fast tokenizer transformers builds from vocab/merges files."""
    from tokenizers import Tokenizer

    if (checkpoint / TOKENIZER).is_file():
        return Tokenizer.from_file(str(checkpoint / TOKENIZER))
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(checkpoint, local_files_only=True).backend_tokenizer
    except (OSError, ValueError, AttributeError) as err:
        raise TrainError(f"{checkpoint}: no usable tokenizer ({err}); put its tokenizer.json there") from err


def add_fim_tokens(tokenizer: Any, model: Any) -> list[str]:
    """Add missing FIM sentinels as special tokens and grow the embeddings to fit; return what was added."""
    from gpt_lsp.inference.model_dir import FimTokens

    fim = FimTokens()
    missing = [t for t in (fim.prefix, fim.suffix, fim.middle) if tokenizer.token_to_id(t) is None]
    if missing:
        tokenizer.add_special_tokens(missing)
        needed = tokenizer.get_vocab_size(with_added_tokens=True)
        if needed > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(needed)
    return missing


def save_lora_model(model: Any, directory: Path) -> None:
    from safetensors.torch import save_file

    merged_copy(model).save_pretrained(directory)
    trainable = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(trainable, str(directory / ADAPTER))


def load_adapter(model: Any, checkpoint: Path) -> None:
    from safetensors.torch import load_file

    missing, _ = model.load_state_dict(load_file(str(checkpoint / ADAPTER)), strict=False)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if trainable & set(missing):
        raise TrainError(
            f"{checkpoint}/{ADAPTER} does not match this --lora-rank; resume with the same options"
        )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on your repository",
        description=(
            "Fine-tune BASE (a `gpt-lsp train` output or a local Hugging Face causal-LM checkpoint: "
            f"{', '.join(SUPPORTED_MODEL_TYPES)}) on the source files in DATA, keeping fill-in-the-middle "
            "in the mix, then export OUT/model (fp32 + int8). Resumes from OUT/checkpoint automatically."
        ),
    )
    parser.add_argument("base", type=Path, metavar="BASE", help="checkpoint directory to start from")
    parser.add_argument(
        "data", type=Path, metavar="DATA", help="repository / source directory or corpus output"
    )
    parser.add_argument(
        "--preset",
        choices=list(FINETUNE_PRESETS),
        help="schedule (default: default; gemma-code for gemma3-270m, gemma-repo for gemma-code)",
    )
    parser.add_argument("--lora", action="store_true", help="train low-rank adapters instead of all weights")
    parser.add_argument("--lora-rank", type=int, help="adapter rank (default: the preset's, else 8)")
    add_common_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_reporting_errors("finetune", lambda: finetune(args))


def prepare_model(
    base: Path, checkpoint: Path | None, preset: TrainPreset, lora_rank: int
) -> tuple[Any, Any]:
    """(model, tokenizer): from OUT/checkpoint when resuming a full fine-tune, else from BASE."""
    import torch
    from transformers import AutoModelForCausalLM

    if checkpoint is not None and not lora_rank:
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
        return model, load_tokenizer(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tokenizer = load_tokenizer(base)
    added = add_fim_tokens(tokenizer, model) if preset.fim_rate > 0 else []
    if added and checkpoint is None:
        say(
            f"note: {base} had no {', '.join(added)}; added them (embeddings now {model.get_input_embeddings().num_embeddings} rows). The model learns them during fine-tuning; give it enough steps."
        )
    if lora_rank:
        only = tuple(t for t in preset.lora_targets.split(",") if t)
        count = apply_lora(model, lora_rank, 2.0 * lora_rank, train_embeddings=bool(added), only=only)
        if checkpoint is not None and preset.lora_rank:
            from gpt_lsp.model.adapter import load_factors

            load_factors(model, checkpoint / ADAPTER)
        elif checkpoint is not None:
            load_adapter(model, checkpoint)
        say(f"LoRA rank {lora_rank} on {count} projection layers")
    return model, tokenizer


def finetune(args: argparse.Namespace) -> int:
    from gpt_lsp.model.corpus import load_corpus

    out: Path = args.out
    checkpoint = find_checkpoint(out)
    if args.resume and checkpoint is None:
        raise TrainError(f"--resume: {out} has no checkpoint; drop --resume to start a new run")
    base, config = resolve_base(args.base)
    preset = get_preset(args.preset or NAMED_PRESETS.get(str(args.base), "default"), finetune=True)
    lora_rank = args.lora_rank or preset.lora_rank or (8 if args.lora else 0)
    if checkpoint is not None:
        saved = read_trainer_state(checkpoint)
        if saved.get("base") != str(base.resolve()) or bool(saved.get("lora")) != bool(lora_rank):
            raise TrainError(
                f"{checkpoint} continues a different fine-tune (base {saved.get('base')}); use a new --out"
            )
        say(f"resuming from {checkpoint} at step {saved['step']}")
    positions = config.get("n_positions") or config.get("max_position_embeddings") or preset.context_length
    preset = preset.with_overrides(
        context_length=min(preset.context_length, positions),
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    dist = setup_distributed()
    train_texts, valid_texts = load_corpus(
        [args.data], args.languages, preset.seed, say if dist.is_main else None
    )
    train_texts = sample_texts(train_texts, preset.corpus_chars, preset.seed)
    model, tokenizer = prepare_model(base, checkpoint, preset, lora_rank)
    eos_id = model.config.eos_token_id
    eos_id = eos_id[0] if isinstance(eos_id, list) else eos_id
    if eos_id is None:
        raise TrainError(f"{base}/config.json has no eos_token_id; the model needs a document separator")
    pad_id = model.config.pad_token_id
    fim = fim_config(tokenizer, preset, eos_id, pad_id, base) if preset.fim_rate > 0 else None
    train_data, valid_data = prepare_data(tokenizer, train_texts, valid_texts, preset, dist, eos_id)
    trained = trimmed(model, tokenizer, train_data, preset, eos_id) if preset.output_vocab else model
    if dist.is_main:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        say(
            f"fine-tuning {config['model_type']} from {base}: {trainable / 1e6:.2f}M trainable parameters, {train_data.n:,} sequences of {preset.context_length}"
        )
    meta = {
        "kind": "finetune",
        "base": str(base.resolve()),
        "lora": lora_rank or None,
        "tokenizer_sha256": hashlib.sha256(tokenizer.to_str().encode()).hexdigest(),
    }
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
        meta,
        save_model=(
            (lambda _trained, directory: save_adapter_checkpoint(model, base, directory))
            if preset.lora_rank
            else save_lora_model
            if lora_rank
            else None
        ),
    )
    out.mkdir(parents=True, exist_ok=True)
    result = fit(trained, job, resume=checkpoint)
    if preset.lora_rank:
        status = finish_adapter(job, model, base, result, not args.no_export, args.weights_hash_file)
    else:
        status = finish(
            job,
            merged_copy(model) if lora_rank else model,
            result,
            not args.no_export,
            args.weights_hash_file,
        )
    if status == 0 and dist.is_main and not args.no_export:
        inherit_completion_prompt(base, out / "model")
    dist.close()
    return status


def inherit_completion_prompt(base_checkpoint: Path, model_dir: Path) -> None:
    """Prompt the fine-tuned model the way its base was measured to work best (`completion_prompt`
    in the base's gpt-lsp.json: the shipped model's, or a `train --out` directory's model/)."""
    for folder in (base_checkpoint.parent, base_checkpoint.parent / "model"):
        if (folder / CONFIG_NAME).is_file():
            prompt = read_config(folder).completion_prompt
            if prompt != "fim" and (model_dir / CONFIG_NAME).is_file():
                write_config(model_dir, replace(read_config(model_dir), completion_prompt=prompt))
                say(f"completion_prompt {prompt!r}, as the base model's {folder / CONFIG_NAME}")
            return
