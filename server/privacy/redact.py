"""Secret redaction: where keys, tokens, private keys and passwords are in a text, and the text without them.

A model memorises rare strings, and a completion model would happily suggest a colleague's AWS key
back to the next person, so the corpus builder redacts every file it keeps, and the server never
sends a secret to the model (`model_input.py` redacts each document once per version).

Two sets of rules find secrets:

* provider token formats (Slack, Stripe, GitLab, npm, SendGrid, Google, ... 200+ of them) come
  from gitleaks's maintained rules, kept as data in `secret_rules.json` (its header names the
  source commit and the MIT license; `python -m gpt_lsp.model.secret_rules` regenerates it);
* formats that no single provider owns are written here: private-key blocks (also unterminated,
  while being pasted), credentials in URLs, `password = "..."`-style assignments in code,
  unquoted `KEY=value` lines of .env/YAML/ini files, `Authorization:` headers and connection
  strings (`AccountKey=...;`).

Each rule runs only when one of its literal keywords occurs in the text (a memchr-speed `in`
scan); ordinary code must come through untouched (`python -m gpt_lsp.model.secret_rules
--false-positives` counts changed lines over the standard library). Standard library only.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

RULES_FILE = Path(__file__).with_name("secret_rules.json")

# Values that are obviously examples or templates, not secrets ("password", "${TOKEN}", "<key>").
_PLACEHOLDER = re.compile(
    r"(?i)^(?:(.)\1*|pass(?:word|wd)?|secret|token|changeme|example|dummy|test|none|null|nil|true|false|"
    r"undefined|your[-_]?\w*|.*(?:\$\{|\{\{|%\(|\{[\w.]*\}).*|[$%{<].*)$"
)
# A value that reads like a name (`SECRET_KEY`, `self._key`, `args.token`) is a reference, not a secret.
_NAME_LIKE = re.compile(r"^[A-Za-z_][A-Za-z_]*(?:[.-][A-Za-z_][A-Za-z_]*)*$")
# Type annotations look like YAML (`password: str`).
_TYPE_NAMES = frozenset(
    "str string bytes int bool any none optional secretstr object number text char unicode".split()
)
_PASSWORD_WORDS = r"pass(?:word|wd|phrase)|pwd"
# A secret-bearing name ends in one of these words (`db_password`, `SECRET_KEY`, `authToken`), never
# merely contains it (`token_type`, `monkey`).
_SECRET_NAME = (
    rf"(?:{_PASSWORD_WORDS}|secret|token|api_?key|apikey|access_?key|secret_?key|private_?key|auth_?key"
    r"|client_?secret|credentials?|connection_?string)"
)

# The two password rules run only on text holding one of these words (lower case): their keyword gate.
_ASSIGNMENT_HINTS = ("pass", "pwd", "secret", "token", "key", "credential", "connection")


@dataclass(frozen=True)
class Secret:
    """text[start:end] is a secret of this kind."""

    start: int
    end: int
    kind: str

    @property
    def placeholder(self) -> str:
        return f"<redacted:{self.kind}>"


def shannon_entropy(value: str) -> float:
    """Bits per character; random tokens score high, words and repeated characters low."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _is_secret_value(value: str, names_allowed: bool = False) -> bool:
    if _PLACEHOLDER.match(value):
        return False
    return names_allowed or not _NAME_LIKE.match(value)


@dataclass(frozen=True)
class _Allow:
    target: str  # "secret", "match" or "line": what the regexes are matched against
    regexes: tuple[re.Pattern[str], ...]
    stopwords: tuple[str, ...]

    def allows(self, secret: str, match: str, line: str) -> bool:
        subject = {"secret": secret, "match": match, "line": line}[self.target]
        lowered = secret.lower()
        return any(r.search(subject) for r in self.regexes) or any(w in lowered for w in self.stopwords)


@dataclass(frozen=True)
class _Rule:
    kind: str
    keywords: tuple[str, ...]  # lower case; the rule runs when one occurs in the lower-cased text
    pattern: re.Pattern[str]
    group: int | None = None  # the secret's group; None: the first group that matched, else the match
    entropy: float = 0.0
    allow: tuple[_Allow, ...] = ()
    accept: Callable[[re.Match[str], str], bool] | None = None  # hand rules: is this value a secret?
    spans_paragraphs: bool = False  # may cross a blank line (key armour); every other rule stays within one

    def secrets(self, text: str) -> list[Secret]:
        found = []
        for match in self.pattern.finditer(text):
            group = self.group
            if group is None:
                group = next((i for i in range(1, len(match.groups()) + 1) if match.group(i)), 0)
            value = match.group(group)
            if not value or (self.entropy and shannon_entropy(value) < self.entropy):
                continue
            if self.accept is not None and not self.accept(match, value):
                continue
            if self.allow:
                line_start = text.rfind("\n", 0, match.start()) + 1
                line_end = text.find("\n", match.end())
                line = text[line_start : line_end if line_end >= 0 else len(text)]
                if any(a.allows(value, match.group(0), line) for a in self.allow):
                    continue
            found.append(Secret(match.start(group), match.end(group), self.kind))
        return found


def _quoted_value(match: re.Match[str], value: str) -> bool:
    prefix = (match.group("prefix") or "").lower()
    if "f" in prefix and "{" in value:  # an f-string interpolates, e.g. f"{user_token}"
        return False
    if value.startswith("<redacted:"):
        return False
    return _is_secret_value(value, names_allowed=bool(re.match(_PASSWORD_WORDS, match.group("word"), re.I)))


def _line_value(match: re.Match[str], value: str) -> bool:
    """`KEY=value` (no spaces: .env) takes any value; `key: value`/`key = value` must not read like code."""
    if match.group("sep") == "=" and not match.group("pad") and not match.group("indent"):
        return _is_secret_value(value, names_allowed=True)
    if match.group("sep") == ":" and re.match(_PASSWORD_WORDS, match.group("word"), re.I):
        return value.lower() not in _TYPE_NAMES and _is_secret_value(value, names_allowed=True)
    return _is_secret_value(value) and value.lower() not in _TYPE_NAMES


def _url_password(match: re.Match[str], value: str) -> bool:
    return not re.match(r"\d+(?:/|$)", value) and _is_secret_value(value)  # host:8080/path@x is a port


def _high_entropy(threshold: float) -> Callable[[re.Match[str], str], bool]:
    return lambda _match, value: shannon_entropy(value) >= threshold and _is_secret_value(value)


_BASE64_LINE = r"\n[ \t\"'+]*[A-Za-z0-9+/]{16,}={0,2}(?:\\n)?[\"',]*[ \t]*(?=\n|$)"
_HAND_RULES: list[_Rule] = [
    # PEM and PGP armour. An unterminated block (mid-paste, or cut by the end of the text) covers
    # its header and every base64 or armour-header line after it.
    _Rule(
        "private-key",
        ("private key",),
        re.compile(
            r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----(?:.*?-----END \1PRIVATE KEY\2-----"
            rf"|(?:{_BASE64_LINE}|\n[ \t]*[\w-]+: [^\n]*|\n[ \t]*(?=\n))*)",
            re.DOTALL,
        ),
        group=0,
        spans_paragraphs=True,
    ),
    # AWS access key ids: a four-letter type prefix and 16 upper-case base-32 characters.
    _Rule(
        "aws-key",
        ("akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva"),
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z2-7]{16}\b"),
    ),
    # GitHub: classic (ghp_, gho_, ghu_, ghs_, ghr_ + 36) and fine-grained (github_pat_) tokens.
    _Rule(
        "github-token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b"),
    ),
    # OpenAI / Anthropic style secret keys: sk-, sk-proj-, sk-ant-... followed by a long random tail.
    _Rule("api-key", ("sk-",), re.compile(r"\bsk-(?:[a-z]+-)?[A-Za-z0-9_-]{20,}")),
    # JWT: base64url header and payload both start with `{"` -> "eyJ".
    _Rule("jwt", ("eyj",), re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    # scheme://user:password@host -- only the password (which may contain `/`) is secret.
    _Rule(
        "url-credentials",
        ("://",),
        re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@'\"]+:([^\s@'\"]+)@"),
        group=1,
        accept=_url_password,
    ),
    # Authorization: Bearer/Basic/Token <credential>, in headers, dicts and curl lines.
    _Rule(
        "authorization",
        ("authorization", "bearer"),
        re.compile(
            r"(?i)(?:\bauthorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic|token|bot|apikey)|\bbearer"
            r"|\bauthorization:)[ \t]+([A-Za-z0-9._~+/-]{8,}=*)"
        ),
        group=1,
        accept=lambda _m, value: any(c.isdigit() for c in value) and _high_entropy(3.0)(_m, value),
    ),
    # Connection strings and SAS URLs: AccountKey=...; Password=...; sig=...
    _Rule(
        "connection-string",
        ("accountkey=", "sharedaccesskey=", "sharedaccesssignature=", "password=", "pwd=", "sig="),
        re.compile(
            r"(?i)(?:^|[;&?\"'])(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|Pwd|sig)="
            r"([^;&\s'\"(),]{4,})"
        ),
        group=1,
        accept=lambda _m, value: _is_secret_value(value),
    ),
    # password = "literal" / "api_key": 'literal' / token := `literal` (not ==, not a call or a name).
    _Rule(
        "password",
        _ASSIGNMENT_HINTS,
        re.compile(
            rf"(?i)(?:(?<![A-Za-z])|(?-i:(?<=[a-z])(?=[A-Z])))(?P<word>{_SECRET_NAME})s?\d*['\"]?\s*(?::=|=>|[:=])\s*"
            r"(?P<prefix>[rbuf]{0,2})(['\"`])(?P<value>[^'\"`\n]{3,300}?)\3"
        ),
        group=4,
        accept=_quoted_value,
    ),
    # Unquoted KEY=value / key: value lines of .env, YAML, ini and shell files.
    _Rule(
        "password",
        _ASSIGNMENT_HINTS,
        re.compile(
            rf"(?im)^(?P<indent>[ \t]*)(?:export[ \t]+)?[\w.-]*?(?:(?<![A-Za-z])|(?-i:(?<=[a-z])(?=[A-Z])))(?P<word>{_SECRET_NAME})s?\d*"
            r"(?P<pad>[ \t]*)(?P<sep>[:=])[ \t]*(?P<value>[^\s'\"`#()\[\]{},;<>]{3,300})[ \t]*$"
        ),
        group=5,
        accept=_line_value,
    ),
]


def _allowlists(raw: list[dict]) -> tuple[_Allow, ...]:
    return tuple(
        _Allow(
            a["target"],
            tuple(re.compile(r) for r in a.get("regexes", [])),
            tuple(a.get("stopwords", [])),
        )
        for a in raw
    )


@functools.cache
def _rules() -> tuple[_Rule, ...]:
    """The hand rules, then gitleaks's (compiled on first use: about 200 patterns)."""
    data = json.loads(RULES_FILE.read_text(encoding="utf-8"))
    shared = _allowlists(data.get("global_allowlists", []))
    provider = [
        _Rule(
            rule["id"],
            tuple(rule["keywords"]),
            re.compile(rule["regex"]),
            rule.get("secretGroup"),
            float(rule.get("entropy", 0.0)),
            _allowlists(rule.get("allowlists", [])) + shared,
            spans_paragraphs=rule["id"] == "private-key",
        )
        for rule in data["rules"]
    ]
    return (*_HAND_RULES, *provider)


def _find(text: str, spans_paragraphs: bool | None) -> list[tuple[int, int, int, str]]:
    lowered = text.lower()
    found: list[tuple[int, int, int, str]] = []
    for priority, rule in enumerate(_rules()):
        if spans_paragraphs is not None and rule.spans_paragraphs != spans_paragraphs:
            continue
        if rule.keywords and not any(k in lowered for k in rule.keywords):
            continue
        found += [(s.start, s.end, priority, s.kind) for s in rule.secrets(text)]
    return found


def find_secrets(text: str) -> list[Secret]:
    """Every secret in `text`, sorted and non-overlapping (overlapping finds are merged; the first
    rule's kind names the merged span)."""
    return _merge(_find(text, None))


def _merge(found: list[tuple[int, int, int, str]]) -> list[Secret]:
    found.sort()
    merged: list[tuple[int, int, int, str]] = []
    for start, end, priority, kind in found:
        if merged and start < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], end), *min((last[2], last[3]), (priority, kind)))
        else:
            merged.append((start, end, priority, kind))
    return [Secret(start, end, kind) for start, end, _, kind in merged]


def apply_redaction(text: str, secrets: list[Secret]) -> str:
    """`text` with each secret replaced by `<redacted:KIND>`."""
    parts, last = [], 0
    for secret in secrets:
        parts += [text[last : secret.start], secret.placeholder]
        last = secret.end
    parts.append(text[last:])
    return "".join(parts)


def redact_secrets(text: str) -> tuple[str, Counter[str]]:
    """Replace secrets in `text` with `<redacted:KIND>`; return the new text and counts per kind."""
    secrets = find_secrets(text)
    return apply_redaction(text, secrets), Counter(s.kind for s in secrets)


class ParagraphCache:
    """`find_secrets` for texts that change a little at a time: a document being typed into.

    Finds are remembered per paragraph (text up to and including a blank line): one keystroke
    changes one paragraph, so only that one is scanned again. The key-armour rules, the only ones
    that may cross a blank line, run on the whole text (a literal `in` check when there is none).
    The memory is bounded by characters, oldest paragraphs forgotten first: `max_chars`, or twice
    the text being scanned when that is more (so a large file does not evict its own paragraphs).
    """

    MAX_PARAGRAPH = 1 << 16  # a longer run without blank lines is cut at line breaks

    def __init__(self, max_chars: int = 4 << 20) -> None:
        self.max_chars = max_chars
        self._chars = 0
        self._found: OrderedDict[str, list[tuple[int, int, int, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def find(self, text: str) -> list[Secret]:
        found = _find(text, spans_paragraphs=True)
        limit = max(self.max_chars, 2 * len(text))
        for start, paragraph in _paragraphs(text, self.MAX_PARAGRAPH):
            found += [(a + start, b + start, p, kind) for a, b, p, kind in self._paragraph(paragraph, limit)]
        return _merge(found)

    def _paragraph(self, paragraph: str, limit: int) -> list[tuple[int, int, int, str]]:
        with self._lock:
            hit = self._found.get(paragraph)
            if hit is not None:
                self._found.move_to_end(paragraph)
                return hit
        found = _find(paragraph, spans_paragraphs=False)
        with self._lock:
            if paragraph not in self._found:
                self._found[paragraph] = found
                self._chars += len(paragraph)
            while self._chars > limit and self._found:
                old, _ = self._found.popitem(last=False)
                self._chars -= len(old)
        return found


_BLANK_LINE = re.compile(r"\n[ \t]*\n")


def _paragraphs(text: str, max_chars: int) -> list[tuple[int, str]]:
    """(offset, paragraph) pieces of `text`, each ending after a blank line or at a line break."""
    pieces, start = [], 0
    ends = [m.end() for m in _BLANK_LINE.finditer(text)] + [len(text)]
    for end in ends:
        while end - start > max_chars:
            cut = text.rfind("\n", start, start + max_chars) + 1
            if cut <= start:
                cut = text.find("\n", start + max_chars) + 1 or end
            if cut >= end:
                break
            pieces.append((start, text[start:cut]))
            start = cut
        if end > start:
            pieces.append((start, text[start:end]))
            start = end
    return pieces
