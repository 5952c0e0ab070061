"""Secret redaction: every supported format is caught, ordinary code is left alone."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from gpt_lsp.redact import redact_secrets

# Fake secrets in each provider's published format (none of them is a live credential).
SECRETS = {
    "aws-key": 'aws_id = "AKIAIOSFODNN7EXAMPLE"\n',
    "api-key": 'client = OpenAI(api_key_value("sk-proj-abcDEF1234567890ghijKLMN5678"))\n',
    "github-token": "GITHUB = ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8" + "\n",
    "private-key": (
        "KEY = '''-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
        "-----END RSA PRIVATE KEY-----'''\n"
    ),
    "jwt": "auth = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'\n",
    "password": 'db_password = "hunter2!x"\n',
    "url-credentials": 'DSN = "postgres://admin:s3cr3tPass@db.example.com:5432/app"\n',
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_each_format_is_redacted(kind: str) -> None:
    text = SECRETS[kind]
    redacted, counts = redact_secrets(text)
    assert counts[kind] == 1, (counts, redacted)
    assert sum(counts.values()) == 1
    assert "<redacted:" in redacted


def test_redaction_keeps_the_code_around_the_secret() -> None:
    redacted, _ = redact_secrets(
        'conn = connect("https://bob:Tr0ub4dor&3@example.com/x")\ntoken = "x9Yz81LmQ"\n'
    )
    assert redacted == (
        'conn = connect("https://bob:<redacted:password>@example.com/x")\ntoken = "<redacted:password>"\n'
    )


@pytest.mark.parametrize(
    "text",
    [
        'if token == "NAME":\n',
        'password = getpass.getpass("Password: ")\n',
        'SECRET_KEY_NAME = "SECRET_KEY"\n',
        'url = "https://user:${PASSWORD}@host"\n',
        "token_type = 'bearer'\n",
        "sk = skip_list.get(key)\n",
    ],
)
def test_ordinary_code_is_not_redacted(text: str) -> None:
    assert redact_secrets(text) == (text, {})


def test_no_false_positives_on_stdlib_files() -> None:
    """Data: a few standard-library modules full of tokens, keys and URLs, none of them secret."""
    root = Path(sysconfig.get_paths()["stdlib"])
    names = [
        "tokenize.py",
        "secrets.py",
        "hashlib.py",
        "netrc.py",
        "ssl.py",
        "http/cookiejar.py",
        "urllib/parse.py",
    ]
    for name in names:
        text = (root / name).read_text(encoding="utf-8")
        redacted, counts = redact_secrets(text)
        assert not counts, (name, counts)
        assert redacted == text
