"""One typed, fully-defaulted Settings object, read from `initializationOptions` and
`workspace/didChangeConfiguration`.

Editors send camelCase keys (`generation.maxTokensLine`); fields here are snake_case. Invalid
settings fall back to the defaults and the caller tells the user once (jedi-language-server's
habit), so a typo in a config file never takes completions away silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal, get_type_hints

import cattrs
from cattrs.gen import make_dict_structure_fn, override

SECTION = "gptLsp"
MAX_INLINE_CANDIDATES = 3  # each candidate is one more decode: latency grows about linearly


@dataclass(frozen=True)
class InlineCompletionSettings:
    enable: bool = True  # answer textDocument/inlineCompletion (ghost text)
    candidates: int = (
        1  # 1-3 items per request: the greedy one first, then sampled alternatives to cycle through
    )


@dataclass(frozen=True)
class CompletionSettings:
    enable: bool = True  # add AI items to textDocument/completion lists


@dataclass(frozen=True)
class ContextSettings:
    # Show the model definitions, imported signatures and similar code from other files. Off by default:
    # measured with `gpt-lsp eval-context`, it did not raise EM/ES for the shipped models (README).
    other_files: bool = False


@dataclass(frozen=True)
class ModelSettings:
    path: str | None = None  # model directory; None = the model shipped with gpt-lsp
    variant: Literal["auto", "int8", "fp32"] = "auto"  # auto = int8 when the directory has it
    threads: int = 0  # ONNX Runtime intra-op threads; 0 = half the cores, at least 1


@dataclass(frozen=True)
class GenerationSettings:
    max_tokens_line: int = 48  # token cap for a single-line completion
    max_tokens_block: int = 128  # token cap for a multi-line (block) completion
    timeout_ms: int = 1000  # stop decoding after this long and return what is ready
    # While typing, a multi-line suggestion ends at its last complete line once this is spent;
    # completions the user asks for decode up to timeoutMs. 0 = whole blocks while typing too.
    typing_budget_ms: int = 250
    temperature: float = 0.0  # 0 = greedy (deterministic); > 0 samples
    debounce_ms: int = 0  # extra wait before decoding; clients usually debounce already


@dataclass(frozen=True)
class DiagnosticsSettings:
    syntax: bool = True  # publish tree-sitter syntax errors with quick fixes
    model_hints: bool = True  # publish "did you mean" hints where the model strongly disagrees


@dataclass(frozen=True)
class RemoteSettings:
    """An OpenAI-compatible `/v1/completions` server (llama.cpp, Ollama, vLLM, TGI, hosted) for `backend: openai`."""

    base_url: str = "http://127.0.0.1:8080/v1"  # the API root; `/completions` is appended
    model: str = ""  # the server's model name; "" sends none (llama.cpp serves its one model)
    api_key_env: str = ""  # NAME of the environment variable holding the API key; "" = no key
    fim: Literal["none", "sentinels", "suffix"] = "none"  # none = prefix only; suffix = the `suffix` field
    fim_prefix: str = "<fim_prefix>"  # the model's FIM sentinels, sent in the prompt with fim: sentinels
    fim_suffix: str = "<fim_suffix>"
    fim_middle: str = "<fim_middle>"
    tokenizer: str | None = None  # the model's tokenizer.json for an exact prompt budget; None = characters
    context_length: int = 4096  # prompt budget: tokens of `tokenizer`, or characters without one
    connect_timeout_ms: int = 1000  # give up connecting after this long (then back off)
    max_concurrent_requests: int = 2  # requests in flight to the server at once
    allow_insecure_http: bool = False  # allow plain http:// to a host that is not this machine
    fallback_to_local: bool = False  # serve from the local model while the server is unavailable


@dataclass(frozen=True)
class Settings:
    enable: bool = True  # master switch for every AI feature
    backend: Literal["local", "openai"] = "local"  # local ONNX model, or an OpenAI-compatible server
    remote: RemoteSettings = field(default_factory=RemoteSettings)
    inline_completion: InlineCompletionSettings = field(default_factory=InlineCompletionSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    context: ContextSettings = field(default_factory=ContextSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)
    log_level: Literal["error", "info", "verbose"] = (
        "info"  # verbose logs why each suggestion was (not) shown
    )


class SettingsError(ValueError):
    """The client's settings could not be read; the message names the offending key."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    # Nested classes first: a hook is generated against the hooks registered before it. They are
    # read off Settings' fields, so a new section cannot be left out.
    sections = [t for t in get_type_hints(Settings).values() if is_dataclass(t)]
    for cls in (*sections, Settings):
        overrides = {f.name: override(rename=_camel(f.name)) for f in fields(cls)}
        converter.register_structure_hook(cls, make_dict_structure_fn(cls, converter, **overrides))  # type: ignore[arg-type]
    return converter


_converter = _make_converter()


def _validate(settings: Settings) -> None:
    gen = settings.generation
    for name in ("max_tokens_line", "max_tokens_block", "timeout_ms"):
        if getattr(gen, name) <= 0:
            raise SettingsError(f"generation.{_camel(name)} must be positive")
    if not 1 <= settings.inline_completion.candidates <= MAX_INLINE_CANDIDATES:
        raise SettingsError(f"inlineCompletion.candidates must be between 1 and {MAX_INLINE_CANDIDATES}")
    if min(gen.temperature, gen.debounce_ms, gen.typing_budget_ms, settings.model.threads) < 0:
        raise SettingsError(
            "generation.temperature, generation.debounceMs, generation.typingBudgetMs and model.threads "
            "must not be negative"
        )


def _validate_remote(remote: RemoteSettings) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", remote.api_key_env or "_"):
        # The key itself never belongs in a settings file that may be committed or synced.
        raise SettingsError(
            "remote.apiKeyEnv is the NAME of an environment variable (e.g. OPENAI_API_KEY), not the key"
        )
    if not remote.base_url.startswith(("http://", "https://")):
        raise SettingsError(f"remote.baseUrl must start with http:// or https://, not {remote.base_url!r}")
    for name in ("context_length", "connect_timeout_ms", "max_concurrent_requests"):
        if getattr(remote, name) <= 0:
            raise SettingsError(f"remote.{_camel(name)} must be positive")


def parse_settings(raw: Any) -> Settings:
    """Structure the client's settings (camelCase, possibly wrapped in a `gptLsp` section).

    Missing keys take their defaults; unknown keys or wrong types raise SettingsError.
    """
    if raw is None:
        return Settings()
    if not isinstance(raw, dict):
        raise SettingsError(f"settings must be an object, not {type(raw).__name__}")
    if SECTION in raw and isinstance(raw[SECTION], dict):
        raw = raw[SECTION]
    try:
        settings = _converter.structure(raw, Settings)
    except (cattrs.BaseValidationError, ValueError, TypeError) as err:
        messages = cattrs.transform_error(err) if isinstance(err, cattrs.BaseValidationError) else [str(err)]
        raise SettingsError("; ".join(messages)) from err
    _validate(settings)
    _validate_remote(settings.remote)
    return settings


def settings_schema(cls: type = Settings, prefix: str = "") -> dict[str, object]:
    """Dotted camelCase key -> default value, for editors' settings UIs and the schema test."""
    out: dict[str, object] = {}
    for f in fields(cls):
        key = prefix + _camel(f.name)
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(f.type) or (isinstance(f.type, str) and f.type.endswith("Settings")):
            out.update(settings_schema(type(default), key + "."))
        else:
            out[key] = default
    return out
