"""languages.py: languageId / extension mapping and the node-type sets of every grammar."""

from __future__ import annotations

import pytest

from gpt_lsp.text.languages import LanguageSpec, language_for, supported_language_ids

EXPECTED = {
    "python": "python",
    "javascript": "javascript",
    "javascriptreact": "javascript",
    "typescript": "typescript",
    "typescriptreact": "tsx",
    "go": "go",
    "rust": "rust",
    "java": "java",
    "c": "c",
    "cpp": "cpp",
}


@pytest.mark.parametrize("language_id,name", sorted(EXPECTED.items()))
def test_language_ids(language_id: str, name: str) -> None:
    spec = language_for(language_id)
    assert spec is not None and spec.name == name
    assert spec.indent_based == (name == "python")
    assert spec.block_opener == (":" if name == "python" else "{")


@pytest.mark.parametrize(
    "uri,name",
    [
        ("file:///w/a.py", "python"),
        ("file:///w/b.tsx", "tsx"),
        ("file:///w/c.ts", "typescript"),
        ("file:///w/d.mjs", "javascript"),
        ("file:///w/e.RS", "rust"),
        ("file:///w/f%20g.go", "go"),
        ("file:///w/h.hpp", "cpp"),
        ("file:///w/i.h", "c"),
        ("/plain/path/j.java", "java"),
    ],
)
def test_extension_fallback(uri: str, name: str) -> None:
    for language_id in ("plaintext", "", "unknown-id"):
        spec = language_for(language_id, uri)
        assert spec is not None and spec.name == name


def test_language_id_wins_over_extension() -> None:
    spec = language_for("python", "file:///w/x.js")
    assert spec is not None and spec.name == "python"


@pytest.mark.parametrize("language_id,uri", [("plaintext", "file:///a.txt"), ("markdown", ""), ("", "")])
def test_unsupported(language_id: str, uri: str) -> None:
    assert language_for(language_id, uri) is None


def test_grammars_are_cached() -> None:
    assert language_for("python") is language_for("python", "file:///x.py")


@pytest.mark.parametrize("language_id", sorted(EXPECTED))
def test_node_types_exist_in_grammar(language_id: str) -> None:
    """A misspelt node type would silently never match; every name must be in the grammar."""
    spec = language_for(language_id)
    assert isinstance(spec, LanguageSpec)
    for field in ("string_types", "comment_types", "block_types", "scope_types", "import_types"):
        names = getattr(spec, field)
        assert names, field
        for name in names:
            assert spec.language.id_for_node_kind(name, True) is not None, (field, name)


def test_supported_ids() -> None:
    assert set(EXPECTED) <= set(supported_language_ids())
