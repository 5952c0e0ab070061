"""Secret redaction: every format in the table is caught, ordinary code is left alone.

Every value below is fake: random characters in each provider's published format.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from gpt_lsp.privacy.redact import ParagraphCache, find_secrets, redact_secrets

PEM_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
)
# (name, line of code, the secret in it)
FORMATS = [
    ("aws access key id", 'aws_id = "{}"\n', "AKIAIOSFODNN7EXAMPLE"),
    ("aws secret in ini", "aws_secret_access_key = {}\n", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("openai key", "client = OpenAI(api_key_value({!r}))\n", "sk-proj-abcDEF1234567890ghijKLMN5678"),
    ("anthropic key", "KEY = '{}'\n", "sk-ant-api03-Zx8Qw2Er5Ty7Ui9Op1As3Df6Gh8Jk0LzXcVbNm"),
    ("github classic", "GITHUB = {}\n", "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("github fine-grained", "gh = '{}'\n", "github_pat_11ABCDEFG0123456789_abcdefghijKLMNOPQRSTuvwxyz0123"),
    (
        "rsa pem",
        "KEY = '''{}'''\n",
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----",
    ),
    ("pkcs8 pem", "{}\n", f"-----BEGIN PRIVATE KEY-----\n{PEM_BODY}-----END PRIVATE KEY-----"),
    (
        "openssh key",
        "{}\n",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}-----END OPENSSH PRIVATE KEY-----",
    ),
    (
        "pgp private key block",
        "{}\n",
        f"-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\n{PEM_BODY}=a1b2\n"
        "-----END PGP PRIVATE KEY BLOCK-----",
    ),
    (
        "pem in a python string",
        'K = "{}"\n',
        "-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIBkg4LVWM9nuwNSk3\\n-----END EC PRIVATE KEY-----",
    ),
    (
        "jwt",
        "auth = 'Bearer {}'\n",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("quoted password", 'db_password = "{}"\n', "hunter2!x"),
    ("lowercase password", 'password = "{}"\n', "letmein"),
    ("camelCase token", 'const authToken = "{}";\n', "q8Fz3LmN0pXr7TvW"),
    ("json client secret", '{{"client_secret": "{}"}}\n', "Zk8mP2qL9vX4nR7t"),
    ("go api key", 'const apiKey = "{}"\n', "a8F3kL9mQ2xZ7vB1nC4"),
    ("url credentials", 'DSN = "postgres://admin:{}@db.example.com:5432/app"\n', "s3cr3tPass"),
    ("url password with /", 'DSN = "mysql://app:{}@db:3306/x"\n', "pa/ss0rd+Q"),
    (".env line", "DB_PASSWORD={}\n", "hunter2"),
    (".env lowercase", "SMTP_PASSWORD={}\n", "letmein"),
    (".env export", "export API_TOKEN={}\n", "abc123def456ghi789"),
    ("yaml password", "  password: {}\n", "s3cretValue9"),
    ("yaml lowercase password", "db:\n  password: {}\n", "letmein"),
    ("yaml api key", "api_key: {}\n", "8d2f9c1e7b3a4f6d"),
    ("slack bot token", "SLACK = '{}'\n", "xoxb-2938475610-4857362918273-ZbYxWvUtSrQpOnMlKjIhGfEd"),
    (
        "slack user token",
        "t = '{}'\n",
        "xoxp-2938475610-4857362918-4857362918273-0123456789abcdef0123456789abcdef",
    ),
    (
        "slack webhook",
        "HOOK = '{}'\n",
        "https://hooks.slack.com/services/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",
    ),
    ("stripe live key", "stripe.api_key = '{}'\n", "sk_live_51HxQ2eKJ8sLmN3pQ4rS5tU6v"),
    ("stripe restricted key", "STRIPE = '{}'\n", "rk_live_51HxQ2eKJ8sLmN3pQ4rS5tU6v"),
    ("google api key", "maps_key = '{}'\n", "AIzaSyD8fK2mQ9xL4vB7nR1tZ5wC3yH6jP0sE2g"),
    ("gitlab pat", "GL = '{}'\n", "glpat-Xq7RmK2vL9pZ4wB8nT1y"),
    ("npm token", "//registry.npmjs.org/:_authToken={}\n", "npm_a8f3kl9mq2xz7vb1nc4hd6jp0se2gw5ty8ui"),
    (
        "sendgrid key",
        "SENDGRID = '{}'\n",
        "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",
    ),
    ("bearer header", 'headers = {{"Authorization": "Bearer {}"}}\n', "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    (
        "curl basic auth",
        "curl -H 'Authorization: Basic {}' https://api.example.com\n",
        "dXNlcjpwYXNzd29yZDEyMw==",
    ),
    (
        "azure storage key",
        'conn = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={};EndpointSuffix=core.windows.net"\n',
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    ),
    ("sql server password", 'cs = "Server=db;Database=app;User Id=sa;Password={};"\n', "Xk9#mP2vL"),
    ("hugging face token", "HF = '{}'\n", "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"),
    ("shopify token", "SHOP = '{}'\n", "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"),
    ("digitalocean token", "DO = '{}'\n", "dop_v1_" + "0a1b2c3d4e5f60718293a4b5c6d7e8f9" * 2),
    (
        "pypi upload token",
        "password = {}\n",
        "pypi-AgEIcHlwaS5vcmcCJGQ4ZmE5YzEyLTY3YjQtNDk0MS1hNzE2LTBhOTg3NjU0MzIxMAACKlszLCJlM2Y",
    ),
]


@pytest.mark.parametrize(("name", "line", "secret"), FORMATS, ids=[f[0] for f in FORMATS])
def test_each_format_is_redacted(name: str, line: str, secret: str) -> None:
    text = line.format(secret)
    redacted, counts = redact_secrets(text)
    assert sum(counts.values()) == 1, (counts, redacted)
    assert "<redacted:" in redacted
    for piece in secret.splitlines():  # not a line of a multi-line secret survives
        assert not piece.strip("\\n'\"") or piece.strip("\\n'\"") not in redacted, redacted


def test_an_unterminated_private_key_is_redacted_to_its_last_base64_line() -> None:
    text = f"x = 1\n-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\ndef after():\n    return 2\n"
    redacted, counts = redact_secrets(text)
    assert counts == {"private-key": 1}
    assert redacted == "x = 1\n<redacted:private-key>\ndef after():\n    return 2\n"


def test_redaction_keeps_the_code_around_the_secret() -> None:
    redacted, _ = redact_secrets(
        'conn = connect("https://bob:Tr0ub4dor&3@example.com/x")\ntoken = "x9Yz81LmQ"\n'
    )
    assert redacted == (
        'conn = connect("https://bob:<redacted:url-credentials>@example.com/x")\ntoken = "<redacted:password>"\n'
    )


def test_spans_are_sorted_and_disjoint() -> None:
    text = "".join(line.format(secret) for _, line, secret in FORMATS)
    secrets = find_secrets(text)
    assert len(secrets) == len(FORMATS)
    assert all(a.end <= b.start for a, b in zip(secrets, secrets[1:], strict=False))


@pytest.mark.parametrize(
    "text",
    [
        'if token == "NAME":\n',
        'password = getpass.getpass("Password: ")\n',
        'SECRET_KEY_NAME = "SECRET_KEY"\n',
        'url = "https://user:${PASSWORD}@host"\n',
        "token_type = 'bearer'\n",
        "sk = skip_list.get(key)\n",
        "password: str\n",
        "    password: Optional[str] = None\n",
        "key = self._key\n",
        "token = tokens[0]\n",
        'monkey = "banana12"\n',
        "url = 'http://localhost:8000/@vite/client'\n",
        'headers = {"Authorization": f"Bearer {token}"}\n',
        'api_key = os.environ["API_KEY"]\n',
        "PASSWORD=$1\n",
        "secret_key: ${SECRET_KEY}\n",
        'key = "user_id"\n',
        "def login(password=password, token=None):\n",
    ],
)
def test_ordinary_code_is_not_redacted(text: str) -> None:
    assert redact_secrets(text) == (text, {})


def test_no_false_positives_on_stdlib_modules_about_tokens_keys_and_urls() -> None:
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
        assert find_secrets(text) == [], name


def test_the_paragraph_cache_finds_what_a_whole_scan_finds_and_stays_bounded() -> None:
    text = "\n\n".join(line.format(secret) for _, line, secret in FORMATS) + "\n"
    cache = ParagraphCache(max_chars=len(text) // 4)
    assert cache.find(text) == find_secrets(text)
    for i in range(20):  # typing into the middle of the text
        middle = len(text) // 2
        text = text[:middle] + f"x{i}" + text[middle:]
        assert cache.find(text) == find_secrets(text)
    assert cache._chars <= 2 * len(text)
