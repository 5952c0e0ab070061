"""Parity tests for `gpt-lsp export` minGPT style, on tiny random models.

torch ↔ ONNX fp32 logits (allclose), cached ↔ uncached ONNX decode (identical greedy tokens),
ONNX fp32 ↔ int8 (top-1 agreement), for every supported model type; plus the CLI and its errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gpt_lsp.inference.model_dir import ModelDir, ModelDirError, load_model_dir
from gpt_lsp.model.export import (
    EXPORT_REVISION,
    GROUPED_ATTENTION_TYPES,
    SUPPORTED_MODEL_TYPES,
    ExportError,
    example_inputs,
    export_checkpoint,
    register,
)

PROMPT = 'def greet(name):\n    """Say hello."""\n    return "hello, " + '
# Code the tokenizer was not trained on, each window under the 128-token context.
CODE_WINDOWS = (
    """class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return self.items.pop()
""",
    """def read_config(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))
""",
    """async def fetch_all(urls, limit=8):
    semaphore = asyncio.Semaphore(limit)
    async def fetch(url):
        async with semaphore:
            return await client.get(url, timeout=10)
    return await asyncio.gather(*(fetch(u) for u in urls))
""",
)
STEPS = 10


@dataclass
class Exported:
    model_type: str
    checkpoint: Path
    model_dir: ModelDir


@pytest.fixture(scope="module", params=SUPPORTED_MODEL_TYPES)
def exported(request, tmp_path_factory, make_tiny_checkpoint) -> Exported:
    """A tiny checkpoint of each supported type, exported with both variants (once per module)."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp(request.param)
    checkpoint = make_tiny_checkpoint(request.param, root)
    return Exported(request.param, checkpoint, export_checkpoint(checkpoint, root / "model", int8=True))


def session(model_dir: ModelDir, variant: str = "fp32"):
    import onnxruntime as ort

    return ort.InferenceSession(str(model_dir.onnx_path(variant)), providers=["CPUExecutionProvider"])


def empty_past(sess) -> dict[str, np.ndarray]:
    """Zero-length cache tensors, shaped from the graph's own input metadata (as the engine does)."""
    return {
        i.name: np.zeros((1, i.shape[1], 0, i.shape[3]), np.float32)
        for i in sess.get_inputs()
        if i.name.startswith("past_key_values.")
    }


def onnx_forward(
    sess, ids: list[int], past: dict[str, np.ndarray], keep: int | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run `ids` after the cached `past`; return logits (T, V) (the last `keep` rows) and the next past."""
    start = next(iter(past.values())).shape[2]
    feed = {
        "input_ids": np.array([ids], np.int64),
        "attention_mask": np.ones((1, start + len(ids)), np.int64),
        "position_ids": np.arange(start, start + len(ids), dtype=np.int64)[None],
        "logits_to_keep": np.array(keep or len(ids), np.int64),
        **past,
    }
    names = [o.name for o in sess.get_outputs()]
    logits, *presents = sess.run(names, feed)
    return logits[0], {
        n.replace("present.", "past_key_values."): p for n, p in zip(names[1:], presents, strict=True)
    }


def greedy_cached(sess, prompt: list[int], steps: int) -> list[int]:
    logits, past = onnx_forward(sess, prompt, empty_past(sess))
    tokens = [int(logits[-1].argmax())]
    for _ in range(steps - 1):
        logits, past = onnx_forward(sess, tokens[-1:], past)
        tokens.append(int(logits[-1].argmax()))
    return tokens


def greedy_uncached(sess, prompt: list[int], steps: int) -> list[int]:
    tokens: list[int] = []
    for _ in range(steps):
        logits, _ = onnx_forward(sess, prompt + tokens, empty_past(sess))
        tokens.append(int(logits[-1].argmax()))
    return tokens


def torch_model(checkpoint: Path):
    """The checkpoint as training uses it (default attention implementation), for reference logits."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(checkpoint).eval()


def test_io_follows_optimum_decoder_with_past_naming(exported):
    sess = session(exported.model_dir)
    inputs = {i.name: i for i in sess.get_inputs()}
    outputs = {o.name: o for o in sess.get_outputs()}
    layers = (len(inputs) - 4) // 2
    assert layers == 2
    assert list(inputs)[:4] == ["input_ids", "attention_mask", "position_ids", "logits_to_keep"]
    assert inputs["logits_to_keep"].shape == []
    assert inputs["input_ids"].shape == ["batch", "sequence"]
    assert inputs["attention_mask"].shape == ["batch", "past_sequence + sequence"]
    assert inputs["position_ids"].shape == ["batch", "sequence"]
    assert list(outputs)[0] == "logits"
    assert outputs["logits"].shape[:2] == ["batch", "logits_to_keep"]
    kv_heads = {"gpt_bigcode": 1, "gemma3_text": 1, "gpt2": 4, "gpt_neox": 4}.get(exported.model_type, 2)
    for i in range(layers):
        for kind in ("key", "value"):
            assert inputs[f"past_key_values.{i}.{kind}"].shape == ["batch", kv_heads, "past_sequence", 8]
            assert outputs[f"present.{i}.{kind}"].shape == ["batch", kv_heads, "past_sequence + sequence", 8]


def test_onnx_logits_match_torch(exported, tiny_tokenizer):
    import torch

    ids = tiny_tokenizer.encode(PROMPT).ids
    with torch.no_grad():
        expected = torch_model(exported.checkpoint)(torch.tensor([ids])).logits[0].numpy()
    got, _ = onnx_forward(session(exported.model_dir), ids, empty_past(session(exported.model_dir)))
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("softcap", [None, 5.0])
def test_grouped_attention_is_eager_attention_without_repeated_heads(softcap):
    """Same outputs and weights as transformers' eager attention (which repeats each key/value head
    for its query heads), for a prefill with a mask that hides some positions."""
    import torch
    from transformers.models.gemma3.modeling_gemma3 import eager_attention_forward

    from gpt_lsp.model.attention import grouped_attention

    torch.manual_seed(0)
    module = torch.nn.Module().eval()
    module.num_key_value_groups, module.head_dim = 3, 8
    query = torch.randn(2, 6, 5, 8)
    key, value = torch.randn(2, 2, 7, 8), torch.randn(2, 2, 7, 8)
    mask = torch.zeros(2, 1, 5, 7)
    mask[0, :, :, :2] = torch.finfo(torch.float32).min
    expected = eager_attention_forward(module, query, key, value, mask, scaling=0.3, softcap=softcap)
    got = grouped_attention(module, query, key, value, mask, scaling=0.3, softcap=softcap)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_grouped_families_export_without_copying_the_cache(exported):
    """The cache reaches the attention products without an Expand (repeat_kv's copy per head)."""
    import onnx

    if exported.model_type not in GROUPED_ATTENTION_TYPES:
        pytest.skip(f"{exported.model_type} does not group its key/value heads")
    graph = onnx.load(str(exported.model_dir.path / "model.onnx"), load_external_data=False).graph
    assert not [n.name for n in graph.node if n.op_type == "Expand" and "self_attn" in n.name]


def test_last_position_logits_equal_the_full_run(exported, tiny_tokenizer):
    """logits_to_keep=1 (what the engine asks during prefill) is the last row of the full logits."""
    sess = session(exported.model_dir)
    ids = tiny_tokenizer.encode(PROMPT).ids
    full, full_past = onnx_forward(sess, ids, empty_past(sess))
    last, last_past = onnx_forward(sess, ids, empty_past(sess), keep=1)
    assert last.shape == (1, full.shape[1])
    np.testing.assert_allclose(last[0], full[-1], atol=1e-5, rtol=1e-5)
    for name in full_past:
        np.testing.assert_array_equal(last_past[name], full_past[name])


def test_onnx_matches_torch_with_past_batch_and_padding(exported):
    """Every output, presents included, for a batch with a non-empty cache and a left-padded row."""
    import torch

    from gpt_lsp.model.export import _decoder_with_past, _load_model

    model = _load_model(exported.checkpoint)
    wrapper, _ = _decoder_with_past(model)
    inputs = example_inputs(model, batch=3, sequence=4, past=9, seed=7)
    inputs["attention_mask"][0, :3] = 0
    with torch.no_grad():
        expected = [t.numpy() for t in wrapper(*inputs.values())]
    got = session(exported.model_dir).run(None, {k: v.numpy() for k, v in inputs.items()})
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-4, rtol=1e-4)


def test_cached_decode_matches_uncached_and_torch(exported, tiny_tokenizer):
    import torch

    prompt = tiny_tokenizer.encode(PROMPT).ids
    sess = session(exported.model_dir)
    cached = greedy_cached(sess, prompt, STEPS)
    assert cached == greedy_uncached(sess, prompt, STEPS)
    model = torch_model(exported.checkpoint)
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(STEPS):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert cached == ids[len(prompt) :]


def test_int8_agrees_with_fp32(exported, tiny_tokenizer):
    """Top-1 agreement of next-token predictions on real code, teacher-forced.

    Teacher forcing scores every position on the same prefix; free-running greedy would turn one
    early near-tie into a whole different continuation. A random model has no preferred tokens,
    so the two best logits are often close and int8 noise flips a few of those near-ties:
    measured pooled agreement is 0.96-1.0 (0.94-1.0 per window) over the five types, and every
    flip had an fp32 top-2 gap under 0.05 of the logits' std (the median gap is 0.24-0.83). A broken quantization (wrong scale, wrong layout)
    agrees on ~1/vocab of positions and flips decisive ones. Thresholds sit below the
    measurements and far above breakage.
    """
    fp32_sess, int8_sess = session(exported.model_dir, "fp32"), session(exported.model_dir, "int8")
    agree, gaps = [], []
    for window in CODE_WINDOWS:
        ids = tiny_tokenizer.encode(window).ids[:128]
        fp32, _ = onnx_forward(fp32_sess, ids, empty_past(fp32_sess))
        int8, _ = onnx_forward(int8_sess, ids, empty_past(int8_sess))
        top2 = np.sort(fp32, axis=-1)[:, -2:]
        agree.append(fp32.argmax(-1) == int8.argmax(-1))
        gaps.append((top2[:, 1] - top2[:, 0]) / fp32.std())
    agree_all, gaps_all = np.concatenate(agree), np.concatenate(gaps)
    assert agree_all.mean() >= 0.85, (
        f"int8 top-1 agreement {agree_all.mean():.2f} over {agree_all.size} positions"
    )
    assert gaps_all[~agree_all].max(initial=0.0) < 0.25, "int8 flipped a decisive prediction"
    assert (
        exported.model_dir.onnx_path("int8").stat().st_size
        < exported.model_dir.onnx_path("fp32").stat().st_size
    )


def test_model_dir_records_prompt_format(tiny_model_dir):
    config = load_model_dir(tiny_model_dir.path).config
    assert config.model_type == "gpt2"
    assert config.context_length == 128
    assert config.eos_token == "<|endoftext|>"
    assert config.fim is not None and config.fim.prefix == "<fim_prefix>"
    assert config.variants == {"fp32": "model.onnx", "int8": "model.int8.onnx"}
    assert config.completion_prompt == "fim"
    assert tiny_model_dir.onnx_path() == tiny_model_dir.path / "model.int8.onnx"
    assert tiny_model_dir.tokenizer_path.is_file()


def test_bad_completion_prompt_is_a_clear_error(tiny_model_dir, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir.path, copy)
    config = json.loads((copy / "gpt-lsp.json").read_text())
    (copy / "gpt-lsp.json").write_text(json.dumps({**config, "completion_prompt": "suffix"}))
    with pytest.raises(ModelDirError, match="completion_prompt must be one of fim, prefix, not 'suffix'"):
        load_model_dir(copy)
    (copy / "gpt-lsp.json").write_text(json.dumps({**config, "completion_prompt": "prefix"}))
    assert load_model_dir(copy).config.completion_prompt == "prefix"


def test_unsupported_model_type_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(
        ExportError,
        match="'bert' is not supported.*gpt2, llama, qwen2, gemma3_text, starcoder2, phi3, gpt_bigcode, gpt_neox",
    ):
        export_checkpoint(tmp_path, tmp_path / "out")


def test_missing_config_is_a_clear_error(tmp_path):
    with pytest.raises(ExportError, match="no config.json"):
        export_checkpoint(tmp_path, tmp_path / "out")


def cli() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpt-lsp")
    register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli().parse_args(["export", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    for word in ("SOURCE", "GGUF", "OUT_DIR", "--int8", "--opset", "--context-length", "gpt_bigcode"):
        assert word in help_text


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "t5"}))
    args = cli().parse_args(["export", str(tmp_path), str(tmp_path / "out"), "--int8"])
    assert args.int8 and args.opset == 17
    assert args.func(args) == 1
    assert "'t5' is not supported" in capsys.readouterr().err


def test_export_module_does_not_import_torch():
    """`gpt-lsp --help` must work for users without the train extra."""
    code = "import sys, gpt_lsp.model.export, gpt_lsp.model.quantize; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_export_records_where_the_weights_came_from(exported):
    provenance = exported.model_dir.config.provenance
    assert provenance["source"] == str(exported.checkpoint.resolve())
    assert provenance["format"] == "huggingface"
    assert len(provenance["sha256"]) == 64
    assert provenance["export_revision"] == EXPORT_REVISION


def test_model_card_license_is_recorded(tmp_path):
    from gpt_lsp.model.pretrained import checkpoint_provenance

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "README.md").write_text("---\nlanguage: en\nlicense: apache-2.0\n---\n# A model\n")
    assert checkpoint_provenance(tmp_path)["license"] == "apache-2.0"
    (tmp_path / "README.md").write_text("# No front matter\nlicense: mit\n")
    assert "license" not in checkpoint_provenance(tmp_path)


def _word_level_checkpoint(path: Path, vocab: dict[str, int], bos: str | None = None) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="x"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", special_tokens=[(bos, vocab[bos])]
        )
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path / "tokenizer.json"))
    return path


def test_a_model_without_fim_is_prompted_with_the_prefix_and_gets_its_bos(tmp_path):
    """Gemma's case: no FIM sentinels, and a tokenizer that puts <bos> before every text."""
    from gpt_lsp.model.export import _model_config

    checkpoint = _word_level_checkpoint(tmp_path, {"x": 0, "<bos>": 1, "<eos>": 2}, bos="<bos>")
    hf_config = {"model_type": "gemma3_text", "max_position_embeddings": 32768, "sliding_window": 512}
    config = _model_config(checkpoint, {**hf_config, "eos_token_id": 2}, None, int8=False)
    assert config.fim is None and config.completion_prompt == "prefix"
    assert config.bos_token == "<bos>"
    assert config.context_length == 512  # the sliding window, see the export module's docstring
    assert (
        _model_config(checkpoint, {**hf_config, "eos_token_id": 2}, 2048, int8=False).context_length == 2048
    )


def test_fim_spelling_of_the_tokenizer_is_recorded(tmp_path):
    from gpt_lsp.model.export import _model_config

    vocab = {"x": 0, "<|endoftext|>": 1, "<|fim_prefix|>": 2, "<|fim_suffix|>": 3, "<|fim_middle|>": 4}
    checkpoint = _word_level_checkpoint(tmp_path, vocab)
    config = _model_config(
        checkpoint, {"model_type": "qwen2", "n_positions": 64, "eos_token_id": 1}, None, False
    )
    assert config.fim is not None and config.fim.middle == "<|fim_middle|>"
    assert config.completion_prompt == "fim" and config.bos_token is None


def test_gguf_is_recognised_by_its_magic_bytes_not_its_name(tmp_path, monkeypatch):
    """An Ollama blob has no extension; a file called .gguf that is not one is an error."""
    from gpt_lsp.inference.model_select import GGUF_MAGIC
    from gpt_lsp.model import pretrained

    blob = tmp_path / "sha256-0123abcd"
    blob.write_bytes(GGUF_MAGIC + b"\x03\x00\x00\x00rest")
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a gguf")
    seen = []
    monkeypatch.setattr(pretrained, "gguf_checkpoint", lambda path, on_stage: seen.append(path) or tmp_path)
    assert pretrained.resolve_source(blob) == tmp_path and seen == [blob]
    with pytest.raises(ExportError, match="not a GGUF file"):
        export_checkpoint(fake, tmp_path / "out")


def test_big_vocabularies_get_4_bit_embedding_and_output_layers(tmp_path, tiny_tokenizer):
    """From VOCAB_4BIT_MIN tokens on, the two vocabulary-sized matrices are 4-bit (see quantize.py);
    the int8 graph still predicts what fp32 predicts on real code, up to near-ties."""
    import onnx
    import torch
    from conftest import _tiny_config
    from transformers import AutoModelForCausalLM

    from gpt_lsp.model.quantize import VOCAB_4BIT_MIN

    torch.manual_seed(0)
    checkpoint = tmp_path / "big-vocab"
    AutoModelForCausalLM.from_config(_tiny_config("llama", VOCAB_4BIT_MIN)).save_pretrained(checkpoint)
    tiny_tokenizer.save(str(checkpoint / "tokenizer.json"))
    model_dir = export_checkpoint(checkpoint, tmp_path / "model", int8=True)
    ops = {n.op_type for n in onnx.load(str(model_dir.onnx_path("int8"))).graph.node}
    assert {"MatMulNBits", "GatherBlockQuantized", "MatMulInteger"} <= ops
    fp32_sess, int8_sess = session(model_dir, "fp32"), session(model_dir, "int8")
    ids = tiny_tokenizer.encode(CODE_WINDOWS[0]).ids
    fp32, _ = onnx_forward(fp32_sess, ids, empty_past(fp32_sess))
    int8, _ = onnx_forward(int8_sess, ids, empty_past(int8_sess))
    # A random 65k-way output is full of near-ties (measured agreement 0.69); a broken 4-bit layout
    # would agree on about 1 position in 65,536.
    assert (fp32.argmax(-1) == int8.argmax(-1)).mean() >= 0.5


def test_mlp_output_projections_are_quantized_in_blocks(exported):
    """Where a few channels carry huge values (the MLP's output projection), weights and activations
    are quantized per block of 32, the other projections per tensor; gpt2's Conv1D exports as Gemm
    and keeps per-tensor int8."""
    import onnx

    graph = onnx.load(str(exported.model_dir.onnx_path("int8"))).graph
    blockwise = {n.name for n in graph.node if n.op_type == "MatMulNBits"}
    per_tensor = {n.name for n in graph.node if n.op_type == "MatMulInteger"}
    if exported.model_type == "gpt2":
        assert not blockwise and per_tensor
        return
    mlp_out = [name for name in blockwise if "/mlp/" in name]
    assert len(mlp_out) == 2  # one per layer
    assert not [
        name
        for name in per_tensor
        if any(f"/mlp/{p}/" in name for p in ("down_proj", "c_proj", "dense_4h_to_h"))
    ]
    assert any("/mlp/" in name for name in per_tensor)  # the input projections stay per tensor


def test_big_int8_weights_lie_beside_the_graph_aligned_for_memory_mapping(exported, tmp_path, tiny_tokenizer):
    """Above a size (a test sets it to 0) the int8 weights move to `model.int8.onnx.data`, each at an
    aligned offset; the directory still validates, ships, and computes the same logits."""
    import onnx

    from gpt_lsp.model.quantize import ALIGNMENT, store_weights_beside

    if exported.model_type != "llama":
        pytest.skip("one family is enough for the file layout")
    model_dir = tmp_path / "model"
    shutil.copytree(exported.model_dir.path, model_dir)
    int8_path = model_dir / "model.int8.onnx"
    store_weights_beside(int8_path, min_bytes=10**12)  # under the threshold: untouched
    assert not (model_dir / "model.int8.onnx.data").exists()
    store_weights_beside(int8_path, min_bytes=0)
    graph = onnx.load(str(int8_path), load_external_data=False).graph
    moved = [t for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    assert moved and all(
        int({e.key: e.value for e in t.external_data}["offset"]) % ALIGNMENT == 0 for t in moved
    )
    reloaded = load_model_dir(model_dir)
    ids = tiny_tokenizer.encode(PROMPT).ids
    before = session(exported.model_dir, "int8")
    after = session(reloaded, "int8")
    np.testing.assert_array_equal(
        onnx_forward(after, ids, empty_past(after))[0], onnx_forward(before, ids, empty_past(before))[0]
    )
