"""`gpt-lsp train` and `gpt-lsp finetune` end to end on the tiny preset, resume, and bad input."""

from __future__ import annotations

import argparse
import errno
import json
import shutil
import sysconfig
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from safetensors.torch import load_file  # noqa: E402

from gpt_lsp.model import corpus, finetune, train  # noqa: E402
from gpt_lsp.model.train import INTERRUPTED  # noqa: E402

pytestmark = pytest.mark.slow
STDLIB = Path(sysconfig.get_paths()["stdlib"])
# ~150 KB of ordinary Python: enough sequences for the tiny preset and a validation split.
MODULES = [
    "json",
    "email/mime",
    "logging",
    "textwrap.py",
    "string.py",
    "shlex.py",
    "fnmatch.py",
    "calendar.py",
]


def cli(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="gpt-lsp")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module in (corpus, train, finetune):
        module.register(subparsers)
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("src")
    for name in MODULES:
        path = STDLIB / name
        if path.is_dir():
            shutil.copytree(path, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, root / name)
    return root


@pytest.fixture(scope="module")
def trained(source_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full tiny run with export, shared by the tests that only read its output."""
    out = tmp_path_factory.mktemp("run") / "out"
    assert cli("train", "--preset", "tiny", "--data", source_dir, "--out", out) == 0
    return out


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_file(str(checkpoint / "model.safetensors"))


def test_train_tiny_end_to_end(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gpt_lsp.inference.model_dir import load_model_dir

    checkpoint = trained / "checkpoint"
    state = json.loads((checkpoint / "trainer.json").read_text())
    assert state["step"] == 20 and state["tokens"] == 20 * 4 * 64
    assert state["preset"]["name"] == "tiny" and state["best_val_loss"] is not None
    assert len(state["tokenizer_sha256"]) == 64
    for name in ("config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors"):
        assert (checkpoint / name).is_file(), name
    assert not list(checkpoint.glob("*.pt")) and not list(checkpoint.glob("*.bin"))  # no pickles
    metrics = json.loads((trained / "metrics.json").read_text())["evals"]
    assert [e["step"] for e in metrics] == [10, 20]
    assert metrics[-1]["train_loss"] < 6.0 and metrics[-1]["tokens_per_s"] > 0
    assert (trained / "loss.png").stat().st_size > 1000
    model_dir = load_model_dir(trained / "model")
    assert set(model_dir.config.variants) == {"fp32", "int8"} and model_dir.config.fim is not None


def test_resume_continues_with_identical_data(
    source_dir: Path, trained: Path, tmp_path: Path, capsys
) -> None:
    """Interrupted after 10 of 20 steps and rerun: the same weights as one uninterrupted run."""
    out = tmp_path / "resumed"
    out.mkdir()
    shutil.copy(trained / "tokenizer.json", out / "tokenizer.json")  # skip retraining; same bytes
    common = ["train", "--preset", "tiny", "--data", source_dir, "--out", out, "--no-export"]
    assert cli(*common, "--stop-at-step", "10") == INTERRUPTED
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["step"] == 10
    assert "Rerun the same command to resume" in capsys.readouterr().err
    assert cli(*common, "--set", "n_embd=64") == 2  # a checkpoint cannot change shape
    assert "the checkpoint has another shape" in capsys.readouterr().err
    assert (
        cli("train", "--data", source_dir, "--out", out, "--no-export", "--resume") == 0
    )  # preset from checkpoint
    assert "resuming from" in capsys.readouterr().err
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["step"] == 20
    resumed, straight = weights(out / "checkpoint"), weights(trained / "checkpoint")
    assert resumed.keys() == straight.keys()
    for name in straight:
        assert torch.equal(resumed[name], straight[name]), name
    metrics = json.loads((out / "metrics.json").read_text())["evals"]
    assert [e["step"] for e in metrics] == [10, 20]


def test_set_overrides_preset_fields(source_dir: Path, trained: Path, tmp_path: Path, capsys) -> None:
    """`--set` reaches the model and trainer.json (how the model card's ablations were run)."""
    out = tmp_path / "wide"
    out.mkdir()
    shutil.copy(trained / "tokenizer.json", out / "tokenizer.json")
    args = ["train", "--preset", "tiny", "--data", source_dir, "--out", out, "--no-export"]
    assert cli(*args, "--set", "n_embd=48", "--set", "fim_rate=0", "--stop-at-step", "2") == INTERRUPTED
    assert json.loads((out / "checkpoint" / "config.json").read_text())["n_embd"] == 48
    preset = json.loads((out / "checkpoint" / "trainer.json").read_text())["preset"]
    assert preset["n_embd"] == 48 and preset["fim_rate"] == 0.0 and preset["max_steps"] == 20
    capsys.readouterr()
    assert cli(*args, "--set", "n_embd=wide") == 2
    assert "n_embd takes an int" in capsys.readouterr().err
    assert cli(*args, "--set", "colour=blue") == 2
    assert "expected FIELD=VALUE" in capsys.readouterr().err


def test_bad_input_gets_clear_errors(source_dir: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("train", "--preset", "tiny", "--data", empty, "--out", tmp_path / "a", "--no-export") == 2
    assert "no usable" in capsys.readouterr().err
    few = tmp_path / "few"
    few.mkdir()
    (few / "a.py").write_text("x = 1\n")
    (few / "b.py").write_text("y = 2\n")
    assert cli("train", "--preset", "tiny", "--data", few, "--out", tmp_path / "b", "--no-export") == 2
    err = capsys.readouterr().err
    assert "training tokens, but one batch" in err and "256" in err
    assert cli("train", "--preset", "tiny", "--data", few, "--out", tmp_path / "c", "--resume") == 2
    assert "has no checkpoint" in capsys.readouterr().err


def test_tokenizer_without_fim_tokens_is_refused(source_dir: Path, tmp_path: Path, capsys) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(
        ["x = 1"], trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"])
    )
    out = tmp_path / "nofim"
    out.mkdir()
    tokenizer.save(str(out / "tokenizer.json"))
    assert cli("train", "--preset", "tiny", "--data", source_dir, "--out", out, "--no-export") == 2
    assert "no <fim_prefix> token" in capsys.readouterr().err


def test_disk_full_keeps_the_last_checkpoint(source_dir, trained, tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "full"
    out.mkdir()
    shutil.copy(trained / "tokenizer.json", out / "tokenizer.json")
    common = ["train", "--preset", "tiny", "--data", source_dir, "--out", out, "--no-export"]
    assert cli(*common, "--max-steps", "10") == 0

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", no_space)
    assert cli(*common, "--max-steps", "20") == 2
    err = capsys.readouterr().err
    assert "disk full" in err and "is intact" in err
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["step"] == 10
    assert not (out / ".checkpoint.tmp").exists()


def test_finetune_adds_fim_tokens_and_exports(source_dir: Path, tmp_path: Path, capsys) -> None:
    """A base whose tokenizer has no FIM sentinels: they are added, training runs, a model is exported."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    from gpt_lsp.inference.model_dir import load_model_dir

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    texts = [p.read_text() for p in sorted(source_dir.rglob("*.py"))]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(texts, trainer)
    base = tmp_path / "base"
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        eos_token_id=0,
        bos_token_id=0,
    )
    GPT2LMHeadModel(config).save_pretrained(base)
    tokenizer.save(str(base / "tokenizer.json"))
    out = tmp_path / "ft"
    assert cli("finetune", base, source_dir, "--out", out, "--preset", "tiny") == 0
    err = capsys.readouterr().err
    assert "had no <fim_prefix>, <fim_suffix>, <fim_middle>" in err and "throughput" in err
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoint")
    assert model.get_input_embeddings().num_embeddings == tokenizer.get_vocab_size() + 3
    assert json.loads((out / "checkpoint" / "trainer.json").read_text())["kind"] == "finetune"
    assert load_model_dir(out / "model").config.fim is not None


def test_finetune_lora_merges_back(trained: Path, source_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "lora"
    assert (
        cli("finetune", trained, source_dir, "--out", out, "--preset", "tiny", "--lora", "--no-export") == 0
    )
    assert "LoRA rank 8" in capsys.readouterr().err
    tuned, base = weights(out / "checkpoint"), weights(trained / "checkpoint")
    assert tuned.keys() == base.keys()  # a plain checkpoint: adapters merged, no lora_ keys
    changed = [n for n in base if not torch.equal(tuned[n], base[n])]
    assert changed and all(("attn" in n or "mlp" in n) for n in changed)
    assert (out / "checkpoint" / "adapter.safetensors").is_file()


def test_finetune_rejects_unsupported_base(tmp_path: Path, source_dir: Path, capsys) -> None:
    base = tmp_path / "t5"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "t5"}')
    assert cli("finetune", base, source_dir, "--out", tmp_path / "o") == 2
    assert "model type 't5' is not supported" in capsys.readouterr().err
