"""A file's outline: what another file needs to call into it (server/workspace/outline.py)."""

from __future__ import annotations

from gpt_lsp.text.languages import language_for
from gpt_lsp.workspace.outline import outline

PYTHON = b'''"""A module."""
import os

DEFAULT_PORT = 8080
_cache: dict = {}


@dataclass
class Config(Base):
    """Settings."""

    name: str = ""

    def load(self, path: str, *, strict: bool = False) -> "Config":
        return self

    @property
    def port(self) -> int:
        return DEFAULT_PORT


def connect(host: str,
            port: int = DEFAULT_PORT) -> Connection:
    pass
'''


def test_python_outline_has_signatures_class_members_and_assignments():
    spec = language_for("python")
    found = {(d.owner, d.name): d for d in outline(PYTHON, spec)}
    assert set(found) == {
        ("", "DEFAULT_PORT"),
        ("", "_cache"),
        ("", "Config"),
        ("Config", "load"),
        ("Config", "port"),
        ("", "connect"),
    }
    assert found[("", "DEFAULT_PORT")].header == "DEFAULT_PORT = 8080"
    assert (
        found[("", "connect")].header
        == "def connect(host: str,\n            port: int = DEFAULT_PORT) -> Connection:"
    )
    # A class shows its header and its members' headers, never their bodies.
    assert found[("", "Config")].header == (
        "class Config(Base):\n"
        '    def load(self, path: str, *, strict: bool = False) -> "Config":\n'
        "    def port(self) -> int:"
    )
    assert found[("Config", "load")].line == 13  # 0-based


def test_javascript_exports_and_constants():
    spec = language_for("javascript")
    source = b"export function area(w, h) {\n  return w * h;\n}\nconst LIMIT = 10;\nexport class Shape {\n  grow(by) { }\n}\n"
    found = {(d.owner, d.name): d.header for d in outline(source, spec)}
    assert found[("", "area")] == "export function area(w, h) {"
    assert found[("", "LIMIT")] == "const LIMIT = 10;"
    assert ("Shape", "grow") in found
