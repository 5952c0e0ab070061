"""editors/helix/languages.toml is valid TOML and its settings are accepted by the server.

Helix itself cannot be installed here, so this checks the file, not Helix (the README says so)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

if sys.version_info < (3, 11):
    pytest.skip("tomllib needs Python 3.11", allow_module_level=True)
import tomllib

settings_mod = pytest.importorskip("gpt_lsp.settings")
CONFIG = Path(__file__).resolve().parents[2] / "editors" / "helix" / "languages.toml"


def test_helix_languages_toml() -> None:
    data = tomllib.loads(CONFIG.read_text())
    server = data["language-server"]["gpt-lsp"]
    assert server["command"] == "gpt-lsp"
    assert server["args"][0] == "--stdio"
    settings = settings_mod.parse_settings(server["config"])  # raises SettingsError on an unknown key
    assert settings.generation.max_tokens_line == server["config"]["generation"]["maxTokensLine"]
    languages = {lang["name"] for lang in data["language"] if "gpt-lsp" in lang["language-servers"]}
    assert {"python", "javascript", "typescript", "go", "rust", "java", "c", "cpp"} <= languages
