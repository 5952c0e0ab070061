"""The VS Code extension's contributed settings mirror the server's Settings dataclasses exactly.

One source of truth: gpt_lsp.settings.Settings. Every dataclass field (nested dataclasses give
dotted camelCase names) must be a `gptLsp.<name>` property in editors/vscode/package.json with the
same default and a matching JSON type, and package.json may add only client-side keys.
"""

from __future__ import annotations

import json
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path

import pytest

PACKAGE_JSON = Path(__file__).resolve().parents[2] / "editors" / "vscode" / "package.json"
CLIENT_ONLY = ("gptLsp.server.", "gptLsp.trace.", "gptLsp.languages")

settings_mod = pytest.importorskip("gpt_lsp.settings", reason="server/settings.py not written yet")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def _walk(cls: type, prefix: str = "") -> dict[str, tuple[object, object]]:
    """Dotted camelCase key -> (annotation, default) for every leaf field of a settings dataclass."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[object, object]] = {}
    for f in fields(cls):
        key = prefix + _camel(f.name)
        tp = hints[f.name]
        if is_dataclass(tp):
            out.update(_walk(tp, key + "."))
        else:
            default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
            out[key] = (tp, default)
    return out


def _json_schema_type(tp: object) -> tuple[set[str], list[object] | None]:
    """JSON schema `type` names (and enum values for Literal) for a Python annotation."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        values = list(typing.get_args(tp))
        return {"string"} if all(isinstance(v, str) for v in values) else {"number"}, values
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        names: set[str] = set()
        enum = None
        for arg in typing.get_args(tp):
            n, e = _json_schema_type(arg)
            names |= n
            enum = enum or e
        return names, enum
    mapping = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
    if tp in mapping:
        return {mapping[tp]}, None
    raise AssertionError(f"no JSON schema mapping for {tp!r}; extend this test")


@pytest.fixture(scope="module")
def properties() -> dict[str, dict]:
    return json.loads(PACKAGE_JSON.read_text())["contributes"]["configuration"]["properties"]


@pytest.fixture(scope="module")
def server_fields() -> dict[str, tuple[object, object]]:
    return {f"{settings_mod.SECTION}.{k}": v for k, v in _walk(settings_mod.Settings).items()}


def test_same_keys(properties: dict, server_fields: dict) -> None:
    contributed = {k for k in properties if not k.startswith(CLIENT_ONLY)}
    assert contributed == set(server_fields), (
        f"missing in package.json: {sorted(set(server_fields) - contributed)}; "
        f"unknown to the server: {sorted(contributed - set(server_fields))}"
    )


def test_same_defaults_and_types(properties: dict, server_fields: dict) -> None:
    for key, (tp, default) in server_fields.items():
        prop = properties[key]
        assert prop.get("default") == default, (
            f"{key}: package.json default {prop.get('default')!r} != server {default!r}"
        )
        types, enum = _json_schema_type(tp)
        declared = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        assert set(declared) == types, f"{key}: package.json type {declared} != server {sorted(types)}"
        if enum is not None:
            assert prop.get("enum") == enum, f"{key}: enum {prop.get('enum')} != server {enum}"
        assert prop.get("description") or prop.get("markdownDescription"), f"{key}: no description"


def test_schema_helper_agrees(server_fields: dict) -> None:
    """settings_schema() (what the server offers other editors) lists the same keys and defaults."""
    schema = getattr(settings_mod, "settings_schema", None)
    if schema is None:
        pytest.skip("gpt_lsp.settings has no settings_schema()")
    assert {f"{settings_mod.SECTION}.{k}": v for k, v in schema().items()} == {
        k: d for k, (_, d) in server_fields.items()
    }


def test_client_only_settings_are_restricted_in_untrusted_workspaces() -> None:
    manifest = json.loads(PACKAGE_JSON.read_text())
    restricted = set(manifest["capabilities"]["untrustedWorkspaces"]["restrictedConfigurations"])
    assert {
        "gptLsp.server.path",
        "gptLsp.server.pythonPath",
        "gptLsp.server.args",
        "gptLsp.model.path",
    } <= restricted


def test_defaults_are_accepted_by_the_server(properties: dict) -> None:
    """The nested object the extension sends (every server key at its default) parses cleanly."""
    nested: dict = {}
    for key, prop in properties.items():
        if key.startswith(CLIENT_ONLY):
            continue
        node = nested
        parts = key.split(".")[1:]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = prop["default"]
    assert settings_mod.parse_settings({"gptLsp": nested}) == settings_mod.Settings()
    assert settings_mod.parse_settings(nested) == settings_mod.Settings()


def test_languages_setting_defaults_to_languages_with_a_grammar(properties: dict) -> None:
    """`gptLsp.languages` (client-side): one boolean per language id, on by default, each one a
    language the server has a grammar for."""
    from gpt_lsp.text.languages import supported_language_ids

    setting = properties["gptLsp.languages"]
    assert setting["type"] == "object" and setting["additionalProperties"] == {"type": "boolean"}
    assert setting["default"] and all(on is True for on in setting["default"].values())
    assert set(setting["default"]) <= set(supported_language_ids())


def test_icon_and_explain_command_contributed() -> None:
    manifest = json.loads(PACKAGE_JSON.read_text())
    icon = PACKAGE_JSON.parent / manifest["icon"]
    assert icon.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(icon.read_bytes()[16:20], "big") == 128  # IHDR width
    assert int.from_bytes(icon.read_bytes()[20:24], "big") == 128  # IHDR height
    titles = {c["command"]: c["title"] for c in manifest["contributes"]["commands"]}
    assert titles["gptLsp.explain"] == "Show how this was made"
    assert "gptLsp.installServer" in titles
