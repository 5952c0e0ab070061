"""Fine-tuning a large pretrained base by its adapter alone: what `finetune` adds for such bases.

A 268M-parameter base on two CPU cores changes what is affordable: a seeded sample of the corpus
instead of all of it (tokenizing 200 M characters would take longer than the run), logits over the
frequent ids only (`trimmed_head.py`), checkpoints that hold the 15 MB of LoRA factors instead of a
1 GB merged model, and at the end the float16 adapter that ships plus, once, the merged model to
export.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from gpt_lsp.model.checkpoint import TOKENIZER
from gpt_lsp.model.lora import merged_copy
from gpt_lsp.model.presets import TrainPreset
from gpt_lsp.model.train import finish
from gpt_lsp.model.training_loop import TrainJob
from gpt_lsp.model.training_report import say

ADAPTER = "adapter.safetensors"  # in OUT/ (float16, to ship) and in OUT/checkpoint/ (float32, to resume)


def sample_texts(texts: list[str], max_chars: int, seed: int) -> list[str]:
    """A seeded sample of whole files up to `max_chars` characters (all of them when 0 or fewer)."""
    if not max_chars or sum(map(len, texts)) <= max_chars:
        return texts
    shuffled = list(texts)
    random.Random(seed).shuffle(shuffled)
    kept, total = [], 0
    for text in shuffled:
        if total >= max_chars:
            break
        kept.append(text)
        total += len(text)
    say(f"training on a sample of {len(kept):,} of {len(texts):,} files ({total:,} characters)")
    return kept


def trimmed(model: Any, tokenizer: Any, train_data: Any, preset: TrainPreset, eos_id: int) -> Any:
    """`model` behind a loss over the preset's `output_vocab` most frequent training ids."""
    from gpt_lsp.model.trimmed_head import coverage, frequent_ids, make_trimmed

    stream = train_data.blocks.flatten()
    bos_id = model.config.bos_token_id
    sample = tokenizer.encode("x").ids  # does serving put a BOS first? then training does too
    prepend = bos_id if bos_id is not None and bos_id != eos_id and sample[:1] == [bos_id] else None
    keep = frequent_ids(
        stream, preset.output_vocab, always=tuple(i for i in (eos_id, prepend) if i is not None)
    )
    say(f"training logits over {len(keep):,} token ids ({coverage(stream, keep):.2%} of training tokens)")
    return make_trimmed(model, keep, prepend)


def save_adapter_checkpoint(model: Any, base: Path, directory: Path) -> None:
    """A checkpoint's model part when only the adapter trains: config.json + LoRA factors in fp32."""
    from gpt_lsp.model.adapter import save_adapter

    model.config.save_pretrained(directory)
    save_adapter(model, directory / ADAPTER, base_sha256(base), dtype="float32")


def base_sha256(base: Path) -> str:
    """The SHA-256 recorded for a base built from a GGUF (empty for other checkpoints)."""
    provenance = base / "provenance.json"
    if provenance.is_file():
        return json.loads(provenance.read_text(encoding="utf-8")).get("sha256", "")
    return ""


def finish_adapter(
    job: TrainJob, model: Any, base: Path, result: dict[str, Any], export: bool, hash_file: Path | None
) -> int:
    """OUT/adapter.safetensors (float16, what ships); at the end, OUT/merged and its export OUT/model."""
    from gpt_lsp.model.adapter import save_adapter

    if job.dist.is_main:
        meta = {"preset": job.preset.name, "step": result["step"], "tokens": result["tokens"]}
        provenance = base / "provenance.json"
        if provenance.is_file():  # on top of gemma-code: say which adapter the base already had
            meta.update(
                {k: v for k, v in json.loads(provenance.read_text()).items() if k.startswith("adapter")}
            )
        path = save_adapter(model, job.out / ADAPTER, base_sha256(base), meta=meta)
        say(f"adapter: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    merged = merged_copy(model) if export or hash_file else None
    status = finish(job, merged if hash_file else model, result, False, hash_file)
    if status != 0 or not export or result["stopped"] != "done" or not job.dist.is_main:
        return status
    assert merged is not None  # made above whenever export is on
    merged.save_pretrained(job.out / "merged")
    job.tokenizer.save(str(job.out / "merged" / TOKENIZER))
    from gpt_lsp.model.export import ExportError, export_checkpoint

    try:
        model_dir = export_checkpoint(job.out / "merged", job.out / "model", int8=True, on_stage=say)
    except (ExportError, ImportError, OSError) as err:
        say(
            f"export failed: {err}\nretry with `gpt-lsp export {job.out / 'merged'} {job.out / 'model'} --int8`"
        )
        return 1
    say(f"model ready: gpt-lsp --stdio --model {model_dir.path}")
    return 0
