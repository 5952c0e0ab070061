"""Typed settings from the client (server/settings.py)."""

import pytest

from gpt_lsp.settings import Settings, SettingsError, parse_settings, settings_schema


def test_missing_settings_take_defaults_and_sections_are_unwrapped():
    assert parse_settings(None) == Settings()
    s = parse_settings({"gptLsp": {"generation": {"maxTokensLine": 12}, "logLevel": "verbose"}})
    assert s.generation.max_tokens_line == 12
    assert s.generation.max_tokens_block == Settings().generation.max_tokens_block
    assert s.log_level == "verbose"


@pytest.mark.parametrize(
    "raw",
    [
        {"generation": {"maxTokensLine": "many"}},
        {"unknownKey": True},
        {"logLevel": "loud"},
        {"generation": {"timeoutMs": 0}},
        {"model": {"variant": "int4"}},
        [1, 2],
    ],
)
def test_invalid_settings_raise_a_readable_error(raw):
    with pytest.raises(SettingsError) as err:
        parse_settings(raw)
    assert str(err.value)


def test_schema_lists_every_leaf_in_camel_case():
    schema = settings_schema()
    assert schema["generation.maxTokensLine"] == 48
    assert schema["inlineCompletion.enable"] is True
    assert all("_" not in key for key in schema)


def test_inline_candidates_default_to_one_and_stay_between_one_and_three():
    assert Settings().inline_completion.candidates == 1
    assert parse_settings({"inlineCompletion": {"candidates": 3}}).inline_completion.candidates == 3
    for bad in (0, 4):
        with pytest.raises(SettingsError, match="inlineCompletion.candidates"):
            parse_settings({"inlineCompletion": {"candidates": bad}})


def test_every_documented_setting_parses_back_from_its_camel_case_key():
    """Each key of the schema (what editors list) is accepted by the parser: a section the parser does
    not know would make every client's settings invalid."""
    for key, default in settings_schema().items():
        raw: dict = {}
        node = raw
        *sections, leaf = key.split(".")
        for section in sections:
            node = node.setdefault(section, {})
        node[leaf] = default
        assert parse_settings(raw) == Settings(), key
    assert parse_settings({"context": {"otherFiles": True}}).context.other_files is True
