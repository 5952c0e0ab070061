"""Load-time checks of a model's settings against its graph, on copies of the shipped model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpt_lsp.inference.context_check import check_context_length
from gpt_lsp.inference.engine import DecodeError, Engine
from gpt_lsp.inference.model_dir import (
    CONFIG_NAME,
    ModelDirError,
    default_model_path,
    load_model_dir,
    model_fingerprint,
)

SHIPPED_POSITIONS = 256  # the shipped GPT-2's learned position table


def model_copy(tmp_path: Path, **changes) -> Path:
    target = tmp_path / "model"
    target.mkdir()
    for name in (CONFIG_NAME, "tokenizer.json", "model.int8.onnx"):
        shutil.copy(default_model_path() / name, target / name)
    raw = json.loads((target / CONFIG_NAME).read_text())
    (target / CONFIG_NAME).write_text(json.dumps(raw | changes))
    return target


@pytest.mark.parametrize("length", [-1, 0, "256", True, 12.5, None])
def test_context_length_must_be_a_positive_integer(tmp_path, length):
    with pytest.raises(ModelDirError, match="context_length must be a positive number of tokens"):
        load_model_dir(model_copy(tmp_path, context_length=length))


@pytest.mark.parametrize("length", [1, 17, SHIPPED_POSITIONS])
def test_a_context_the_graph_runs_passes(tmp_path, length):
    engine = Engine(load_model_dir(model_copy(tmp_path, context_length=length)))
    check_context_length(engine)
    assert engine.consecutive_failures == 0


@pytest.mark.parametrize("length", [SHIPPED_POSITIONS + 1, 300, 4096])
def test_a_context_beyond_the_graph_is_refused_with_the_largest_that_runs(tmp_path, length):
    engine = Engine(load_model_dir(model_copy(tmp_path, context_length=length)))
    with pytest.raises(ModelDirError) as caught:
        check_context_length(engine)
    message = str(caught.value)
    assert f"context_length {length} is more than the model runs ({SHIPPED_POSITIONS} positions" in message
    assert f"set context_length to {SHIPPED_POSITIONS} or less" in message
    assert "[ONNXRuntimeError]" not in message and "indices element out of data bounds" in message


def test_a_failing_forward_pass_is_a_decode_error_and_is_counted(tmp_path):
    engine = Engine(load_model_dir(model_copy(tmp_path)))
    too_long = list(range(10)) * 30  # 300 positions, more than the table holds
    for expected in (1, 2):
        with pytest.raises(DecodeError, match=r"^Gather node \S+wpe\S+: indices element out of data bounds"):
            engine.forward(too_long, engine.empty_cache())
        assert engine.consecutive_failures == expected
    engine.forward([1, 2, 3], engine.empty_cache())
    assert engine.consecutive_failures == 0


def test_the_fingerprint_changes_when_a_file_is_rewritten(tmp_path):
    model = model_copy(tmp_path)
    before = model_fingerprint(model)
    assert before == model_fingerprint(model)
    (model / CONFIG_NAME).write_text((model / CONFIG_NAME).read_text() + " ")
    assert model_fingerprint(model) != before
    assert model_fingerprint(tmp_path / "absent") == ()


def test_models_with_a_large_cache_are_probed_by_position_alone(tmp_path, monkeypatch):
    """Above FULL_CONTEXT_PROBE_BYTES the zero cache is skipped; the position table still shows."""
    monkeypatch.setattr("gpt_lsp.inference.context_check.FULL_CONTEXT_PROBE_BYTES", 0)
    engine = Engine(load_model_dir(model_copy(tmp_path, context_length=1000)))
    with pytest.raises(ModelDirError, match=f"more than the model runs \\({SHIPPED_POSITIONS} positions"):
        check_context_length(engine)
    engine.context_length = SHIPPED_POSITIONS
    check_context_length(engine)
