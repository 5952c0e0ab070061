"""LoRA adapters as shipped files, the trimmed training head, and adapter-only fine-tuning, on a tiny
random Gemma 3 made here (the real base is 268M parameters; the code paths are the same)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from gpt_lsp.model import adapter, lora, trimmed_head  # noqa: E402

VOCAB = 300


def tiny_gemma(seed: int = 0):  # noqa: ANN201
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        sliding_window=16,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=0,
        eos_token_id=1,
        bos_token_id=2,
    )
    return Gemma3ForCausalLM(config).eval()


def adapted(seed: int = 0, rank: int = 4):  # noqa: ANN201
    """A tiny Gemma with LoRA on every projection and non-zero (trained-looking) factors."""
    model = tiny_gemma(seed)
    count = lora.apply_lora(model, rank, 2.0 * rank, train_embeddings=False)
    assert count == 2 * 7  # q, k, v, o, gate, up, down in each block
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "lora_b"):
                module.lora_b.copy_(torch.randn(module.lora_b.shape, generator=generator) * 0.05)
    return model


def test_merged_weights_equal_base_plus_delta(tmp_path: Path) -> None:
    model = adapted()
    path = adapter.save_adapter(model, tmp_path / "a.safetensors", base_sha256="ab" * 32, meta={"step": 3})
    tensors, header = adapter.read_adapter(path)
    assert all(k.endswith((".lora_a", ".lora_b")) for k in tensors)  # deltas only, no base weights
    assert header["base_sha256"] == "ab" * 32 and json.loads(header["meta"]) == {"step": 3}
    factor_bytes = sum(t.numel() for t in tensors.values()) * 2  # stored as float16
    assert path.stat().st_size < factor_bytes + 16_384  # the factors plus a header, nothing more

    base = tiny_gemma()
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    assert adapter.merge_adapter(base, path) == 14
    scale = float(header["scale"])
    for name, param in base.named_parameters():
        layer = name.removesuffix(".weight")
        if f"{layer}.lora_a" in tensors:
            delta = tensors[f"{layer}.lora_b"] @ tensors[f"{layer}.lora_a"] * scale
            assert delta.abs().max() > 0
            torch.testing.assert_close(param, before[name] + delta, rtol=0, atol=1e-7)
        else:
            assert torch.equal(param, before[name]), name  # embeddings and norms are untouched


def test_merged_model_computes_what_the_adapter_did(tmp_path: Path) -> None:
    model = adapted()
    path = adapter.save_adapter(model, tmp_path / "a.safetensors", base_sha256="")
    base = tiny_gemma()
    adapter.merge_adapter(base, path)
    ids = torch.randint(3, VOCAB, (2, 24), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        merged = base(input_ids=ids).logits
        untuned = tiny_gemma()(input_ids=ids).logits
    assert (expected - untuned).abs().max() > 1e-3  # the adapter changes the output...
    torch.testing.assert_close(merged, expected, rtol=0, atol=2e-3)  # ...and merging keeps that (fp16)


def test_factors_load_back_and_mismatches_are_refused(tmp_path: Path) -> None:
    path = adapter.save_adapter(adapted(), tmp_path / "a.safetensors", base_sha256="", dtype="float32")
    other = tiny_gemma(seed=5)
    lora.apply_lora(other, 4, 8.0, train_embeddings=False)
    adapter.load_factors(other, path)
    loaded, saved = adapter.lora_factors(other), adapter.lora_factors(adapted())
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)
    attention_only = tiny_gemma()
    lora.apply_lora(attention_only, 4, 8.0, train_embeddings=False, only=("q_proj", "v_proj"))
    with pytest.raises(adapter.AdapterError, match="layers differ"):
        adapter.load_factors(attention_only, path)
    (tmp_path / "plain.safetensors").write_bytes(b"")
    with pytest.raises(Exception):  # noqa: B017,PT011 - safetensors' own error for a non-file
        adapter.read_adapter(tmp_path / "plain.safetensors")
    wrong = tiny_gemma()
    wrong.model.layers = wrong.model.layers[:1]
    with pytest.raises(adapter.AdapterError, match="not in this model"):
        adapter.merge_adapter(wrong, path)


def test_lora_targets_and_first_layer() -> None:
    model = tiny_gemma()
    count = lora.apply_lora(model, 2, 4.0, train_embeddings=False, only=("q_proj", "o_proj"), first_layer=1)
    wrapped = [n for n, m in model.named_modules() if hasattr(m, "lora_a")]
    assert count == 2 and wrapped == ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.o_proj"]
    assert lora.block_index("model.layers.17.mlp.up_proj") == 17 and lora.block_index("lm_head") == -1


def test_trimmed_loss_equals_the_full_loss_when_nothing_is_trimmed() -> None:
    model = tiny_gemma()
    ids = torch.randint(3, VOCAB, (2, 20), generator=torch.Generator().manual_seed(3))
    full = trimmed_head.make_trimmed(model, torch.arange(VOCAB))
    with torch.no_grad():
        torch.testing.assert_close(full(ids, ids).loss, model(input_ids=ids, labels=ids).loss)


def test_trimmed_loss_leaves_out_rare_targets_and_prepends_bos() -> None:
    model = tiny_gemma()
    stream = torch.tensor([5, 5, 5, 6, 6, 7, 9])
    keep = trimmed_head.frequent_ids(stream, 2, always=(1,))
    assert keep.tolist() == [1, 5, 6]
    assert trimmed_head.coverage(stream, keep) == pytest.approx(5 / 7)
    ids = torch.tensor([[5, 6, 7, 5, 6, 9]])
    wrapped = trimmed_head.make_trimmed(model, keep, bos_id=2)
    with torch.no_grad():
        loss = wrapped(ids, ids.clone()).loss
        # By hand: BOS first, then logits over the kept rows only; targets 7 and 9 do not count.
        inputs = torch.cat([torch.tensor([[2]]), ids], dim=1)
        hidden = model.model(input_ids=inputs).last_hidden_state[0, :-1]
        logits = hidden @ model.lm_head.weight[keep].T
        targets = torch.tensor([5, 6, -100, 5, 6, -100])
        remapped = torch.tensor([1, 2, -100, 1, 2, -100])
        assert targets.shape == remapped.shape
        expected = torch.nn.functional.cross_entropy(logits, remapped, ignore_index=-100)
    torch.testing.assert_close(loss, expected)


@pytest.mark.slow
def test_finetune_trains_only_an_adapter_and_resumes(tmp_path: Path, capsys) -> None:
    """`gpt-lsp finetune BASE DATA` with an adapter preset: checkpoints hold the adapter (no weights),
    OUT/adapter.safetensors is the float16 result, and a rerun with more steps resumes."""
    import argparse
    import shutil
    import sysconfig

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from gpt_lsp.model import finetune

    source = tmp_path / "src"
    shutil.copytree(Path(sysconfig.get_paths()["stdlib"]) / "json", source)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<pad>", "<eos>", "<bos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([p.read_text() for p in source.rglob("*.py")], trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    base = tmp_path / "base"
    tiny_gemma().save_pretrained(base)
    tokenizer.save(str(base / "tokenizer.json"))
    (base / "provenance.json").write_text(json.dumps({"sha256": "cd" * 32}))

    def cli(*argv: str | Path) -> int:
        parser = argparse.ArgumentParser(prog="gpt-lsp")
        finetune.register(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args([str(a) for a in argv])
        return args.func(args)

    out = tmp_path / "ft"
    common = ("finetune", base, source, "--out", out, "--preset", "tiny-adapter", "--no-export")
    assert cli(*common, "--stop-at-step", "3") == 130  # interrupted, with a checkpoint
    err = capsys.readouterr().err
    assert "LoRA rank 4 on 14 projection layers" in err and "training logits over" in err
    checkpoint = out / "checkpoint"
    assert (checkpoint / "adapter.safetensors").is_file() and not (checkpoint / "model.safetensors").exists()
    assert cli(*common) == 0
    err = capsys.readouterr().err
    assert "resuming from" in err and "at step 3" in err
    shipped = out / "adapter.safetensors"
    tensors, header = adapter.read_adapter(shipped)
    assert header["base_sha256"] == "cd" * 32 and json.loads(header["meta"])["step"] == 6
    assert all(t.abs().max() > 0 for k, t in tensors.items() if k.endswith("lora_b"))  # it trained
    merged = tiny_gemma()
    adapter.merge_adapter(merged, shipped)
    assert not torch.equal(
        merged.model.layers[0].mlp.up_proj.weight, tiny_gemma().model.layers[0].mlp.up_proj.weight
    )


def test_build_merges_into_a_checkpoint_cached_by_base_and_adapter(tmp_path: Path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM

    from gpt_lsp.model import gemma_code

    monkeypatch.setenv("GPT_LSP_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base"
    tiny_gemma().save_pretrained(base)
    (base / "tokenizer.json").write_text("{}")
    (base / "provenance.json").write_text(json.dumps({"sha256": "ef" * 32, "format": "gguf"}))
    first = adapter.save_adapter(adapted(), tmp_path / "one.safetensors", base_sha256="ef" * 32)
    second = adapter.save_adapter(adapted(rank=2), tmp_path / "two.safetensors", base_sha256="ef" * 32)
    out = gemma_code.build_dir("ef" * 32, first) / "checkpoint"
    assert out.parent != gemma_code.build_dir("ef" * 32, second)  # a new adapter never reuses a build
    assert out.parent != gemma_code.build_dir("00" * 32, first)  # nor does another base
    assert out.is_relative_to(tmp_path / "cache")

    gemma_code.merge_into(base, first, out, "ef" * 32, on_stage=lambda _: None)
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["sha256"] == "ef" * 32 and provenance["adapter_version"] == gemma_code.adapter_version(
        first
    )
    assert (out / "tokenizer.json").is_file() and not out.with_name("checkpoint.tmp").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    expected = tiny_gemma()
    adapter.merge_adapter(expected, first)
    for (name, got), (_, want) in zip(
        merged.state_dict().items(), expected.state_dict().items(), strict=True
    ):
        assert torch.equal(got, want), name


def test_shipped_adapter_is_small_and_carries_the_terms() -> None:
    from gpt_lsp.model import gemma_code

    folder = gemma_code.ADAPTER.parent
    assert "https://ai.google.dev/gemma/terms" in (folder / "NOTICE").read_text()
    assert gemma_code.ADAPTER.stat().st_size < 10_000_000
    tensors, header = adapter.read_adapter(gemma_code.ADAPTER)
    assert len(header["base_sha256"]) == 64 and all(k.endswith((".lora_a", ".lora_b")) for k in tensors)


def test_a_build_from_an_older_exporter_is_exported_again(tmp_path: Path) -> None:
    from gpt_lsp.model import gemma_code
    from gpt_lsp.model.export import EXPORT_REVISION

    model_dir = tmp_path / "model"
    assert not gemma_code.is_current(model_dir)  # never built
    model_dir.mkdir()
    for provenance, current in (
        ({}, False),
        ({"export_revision": "2"}, False),
        ({"export_revision": EXPORT_REVISION}, True),
    ):
        (model_dir / "gpt-lsp.json").write_text(json.dumps({"provenance": provenance}))
        assert gemma_code.is_current(model_dir) is current
