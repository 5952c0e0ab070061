"""Secret redaction: API keys, tokens, private keys and passwords replaced before text is trained on.

A model memorises rare strings, and a completion model would happily suggest a colleague's AWS key
back to the next person, so the corpus builder (and the server, before text leaves the editor)
runs every file through `redact_secrets`. Patterns follow the formats providers publish (AWS key
ids, GitHub token prefixes, PEM armour, JWT's `eyJ` header) and stay narrow on purpose: ordinary
code must come through untouched (tests check a sample of the standard library: zero hits).

Standard library only, regexes compiled once: this is on the serving path.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

# Values that are obviously examples or templates, not secrets ("password", "${TOKEN}", "<key>").
_PLACEHOLDER = re.compile(
    r"(?i)^(?:[*x.]+|pass(?:word|wd)?|secret|token|changeme|example|dummy|test|none|null|"
    r"your[-_]?\w*|[$%{<].*)$"
)
# A value that reads like a name (`"SECRET_KEY"`, `"token_type"`) is a key name or a sentinel.
_NAME_LIKE = re.compile(r"^(?:[a-z]+(?:[_.-][a-z]+)*|[A-Z]+(?:[_.-][A-Z]+)*)$")

# (kind, literal triggers, pattern) in the order they run; PEM blocks first so their base64 body is
# gone before the narrower patterns look at it. A pattern runs only when one of its triggers occurs
# in the text: `in` is a memchr-speed scan, a regex with `\b` is not.
_PATTERNS: list[tuple[str, tuple[str, ...], re.Pattern[str]]] = [
    (
        "private-key",
        ("PRIVATE KEY-----",),
        re.compile(
            r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----",
            re.DOTALL,
        ),
    ),
    # AWS access key ids: a four-letter type prefix and 16 upper-case base-32 characters.
    (
        "aws-key",
        ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA"),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z2-7]{16}\b"),
    ),
    # GitHub: classic (ghp_, gho_, ghu_, ghs_, ghr_ + 36) and fine-grained (github_pat_) tokens.
    (
        "github-token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    ),
    # OpenAI / Anthropic style secret keys: sk-, sk-proj-, sk-ant-... followed by a long random tail.
    ("api-key", ("sk-",), re.compile(r"\bsk-(?:[a-z]+-)?[A-Za-z0-9_-]{20,}")),
    # JWT: base64url header and payload both start with `{"` -> "eyJ".
    ("jwt", ("eyJ",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
]

# scheme://user:password@host -- the password is replaced, the rest of the URL kept.
_URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\"]+):([^/\s@'\"]+)@")
# password = "literal" / "api_key": 'literal' / token='literal' (not ==, not a call or a name).
# Matching starts at the keyword, not at the start of the name: a leading `\b[\w.]*` makes the
# engine rescan every identifier and costs 10x on ordinary code.
_ASSIGNMENT_TRIGGERS = ("passw", "passphrase", "secret", "token", "key")
_ASSIGNMENT = re.compile(
    r"""(?i)(?:password|passwd|passphrase|secret|token|api_?key|access_?key)[\w-]*"""
    r"""['"]?\s*[:=]\s*[rbu]?(['"])([^'"\s]{4,200})\1"""
)


def _is_secret_value(value: str) -> bool:
    return not _PLACEHOLDER.match(value) and not _NAME_LIKE.match(value)


def redact_secrets(text: str) -> tuple[str, Counter[str]]:
    """Replace secrets in `text` with `<redacted:KIND>`; return the new text and counts per kind."""
    counts: Counter[str] = Counter()

    def replace(kind: str) -> Callable[[re.Match[str]], str]:
        def sub(_: re.Match[str]) -> str:
            counts[kind] += 1
            return f"<redacted:{kind}>"

        return sub

    for kind, triggers, pattern in _PATTERNS:
        if any(t in text for t in triggers):
            text = pattern.sub(replace(kind), text)

    def url(match: re.Match[str]) -> str:
        if not _is_secret_value(match.group(2)):
            return match.group(0)
        counts["url-credentials"] += 1
        return f"{match.group(1)}:<redacted:password>@"

    def assignment(match: re.Match[str]) -> str:
        value = match.group(2)
        if value.startswith("<redacted:") or not _is_secret_value(value):
            return match.group(0)
        counts["password"] += 1
        head = match.group(0)[: match.start(2) - match.start()]
        return f"{head}<redacted:password>{match.group(1)}"

    if "://" in text:
        text = _URL_CREDENTIALS.sub(url, text)
    lowered = text.lower()
    if any(t in lowered for t in _ASSIGNMENT_TRIGGERS):
        text = _ASSIGNMENT.sub(assignment, text)
    return text, counts
