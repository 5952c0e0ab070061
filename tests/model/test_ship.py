"""`gpt-lsp ship` installs an int8-only copy that loads and serves on its own (model/ship.py)."""

import pytest

from gpt_lsp.inference.engine import DecodeLimits, Engine
from gpt_lsp.inference.model_dir import load_model_dir
from gpt_lsp.model.ship import ship


def test_shipped_copy_is_int8_only_and_loads(tiny_model_dir, tmp_path):
    target = tmp_path / "default"
    size = ship(tiny_model_dir.path, target, "test copy")
    shipped = load_model_dir(target)
    assert shipped.config.variants == {"int8": "model.int8.onnx"}
    assert not (target / "model.onnx").exists()
    assert size == sum(f.stat().st_size for f in target.iterdir())
    engine = Engine(shipped)
    assert engine.onnx_path.name == "model.int8.onnx"
    assert engine.generate(engine.encode("x = "), DecodeLimits(3, 5000)).tokens <= 3


def test_weights_kept_beside_the_graph_are_shipped_with_it(tiny_model_dir, tmp_path):
    import shutil

    from gpt_lsp.model.quantize import store_weights_beside

    source = tmp_path / "big"
    shutil.copytree(tiny_model_dir.path, source)
    store_weights_beside(source / "model.int8.onnx", min_bytes=0)
    target = tmp_path / "default"
    ship(source, target, "test copy")
    assert (target / "model.int8.onnx.data").is_file()
    engine = Engine(load_model_dir(target))
    assert engine.generate(engine.encode("x = "), DecodeLimits(3, 5000)).tokens <= 3


def test_shipping_a_model_without_int8_is_refused(tiny_model_dir, tmp_path):
    fp32_only = tmp_path / "fp32"
    fp32_only.mkdir()
    for name in ("model.onnx", "tokenizer.json"):
        (fp32_only / name).write_bytes((tiny_model_dir.path / name).read_bytes())
    config = (
        tiny_model_dir.config.to_json()
        .replace('"int8": "model.int8.onnx"', "")
        .replace('"model.onnx",', '"model.onnx"')
    )
    (fp32_only / "gpt-lsp.json").write_text(config)
    with pytest.raises(SystemExit, match="no int8 variant"):
        ship(fp32_only, tmp_path / "out")
