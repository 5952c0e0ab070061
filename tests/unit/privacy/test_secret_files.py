"""Secret-bearing and gitignored files are never sent to the model; one list serves server and corpus."""

import os
from pathlib import Path

import pytest

from gpt_lsp.completion.pipeline import Pipeline
from gpt_lsp.privacy.secret_files import WorkspaceIgnores, is_secret_file
from gpt_lsp.settings import GenerationSettings
from gpt_lsp.text.documents import DocumentStore, Position

from ..completion.test_pipeline import ScriptedEngine

SECRET_NAMES = [
    ".env",
    ".env.local",
    ".ENV",
    "prod.env",
    ".envrc",
    ".netrc",
    "_netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".git-credentials",
    "credentials",
    "credentials.json",
    "id_rsa",
    "id_rsa.bak",
    "id_ed25519.pub",
    "server.pem",
    "server.PEM",
    "tls.key",
    "store.p12",
    "terraform.tfstate",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_files_are_recognised(name):
    assert is_secret_file(f"file:///home/u/project/{name}")
    assert is_secret_file(f"/home/u/project/{name}")


@pytest.mark.parametrize(
    "name",
    ["env.py", "keys.py", "README.md", "pem_utils.go", "environment.ts", "secrets.py", "credentials.py"],
)
def test_ordinary_files_are_not(name):
    assert not is_secret_file(f"file:///home/u/project/{name}")


def test_percent_encoded_uris_are_decoded():
    assert is_secret_file("file:///home/u/p/%2Eenv")


def test_a_secret_in_the_code_never_reaches_the_model():
    key = "AKIA" + "IOSFODNN7EXAMPLE"
    doc = DocumentStore().open("file:///p/cfg.py", "python", 1, f'AWS_KEY = "{key}"\nclient = make(\n')
    engine = ScriptedEngine("AWS_KEY)")
    Pipeline(engine, GenerationSettings()).complete(doc, Position(1, 14))
    prompt_text = engine.decode(engine.calls[0][0])
    assert key not in prompt_text and "redacted" in prompt_text


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for relative, text in {
        ".gitignore": "build/\n*.local.py\n/config/\n",
        "src/app.py": "",
        "src/debug.local.py": "",
        "src/nested/.gitignore": "gen_*.py\n!gen_keep.py\n",
        "src/nested/gen_x.py": "",
        "src/nested/gen_keep.py": "",
        "build/out.py": "",
        "config/settings.py": "",
        "src/config/settings.py": "",  # /config/ is anchored at the root
    }.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def test_gitignored_files_follow_git_rules(workspace: Path):
    ignores = WorkspaceIgnores.for_uris([workspace.as_uri()])

    def ignored(relative: str) -> bool:
        return ignores.ignores((workspace / relative).as_uri())

    assert not ignored("src/app.py")
    assert ignored("src/debug.local.py")
    assert ignored("src/nested/gen_x.py")
    assert not ignored("src/nested/gen_keep.py")  # negated in the deeper .gitignore
    assert ignored("build/out.py")
    assert ignored("build/new_file_not_on_disk.py")
    assert ignored("config/settings.py")
    assert not ignored("src/config/settings.py")
    assert ignored(".git/config")


def test_files_outside_the_workspace_and_other_schemes_are_not_ignored(workspace: Path, tmp_path: Path):
    ignores = WorkspaceIgnores.for_uris([workspace.as_uri(), "untitled:ws"])
    assert not ignores.ignores((tmp_path / "elsewhere" / "build" / "out.py").as_uri())
    assert not ignores.ignores("untitled:Untitled-1")
    assert not WorkspaceIgnores().ignores((workspace / "build/out.py").as_uri())


def test_an_edited_gitignore_takes_effect_at_once(workspace: Path):
    ignores = WorkspaceIgnores.for_uris([workspace.as_uri()])
    uri = (workspace / "src/app.py").as_uri()
    assert not ignores.ignores(uri)
    gitignore = workspace / ".gitignore"
    gitignore.write_text(gitignore.read_text() + "src/app.py\n")
    stat = gitignore.stat()
    os.utime(gitignore, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert ignores.ignores(uri)
