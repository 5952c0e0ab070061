"""Files the model never reads: secret-bearing by name, or ignored by their repository's `.gitignore`.

One list serves the server (never completed in, never sent as context) and the fine-tuning corpus
(never trained on), so the two cannot drift apart. Names compare case-insensitively: `.ENV` and
`server.PEM` are as secret as `.env` and `server.pem` (and on macOS and Windows they are the same
file). The names are the credential files of common tools (dotenv and direnv, curl/ftp `.netrc`,
npm, PyPI, PostgreSQL, git's credential store, AWS/GCP `credentials`) and key/keystore extensions.

Ignored files are what a repository keeps out of version control: build output, local settings,
and often exactly the files that hold keys. Matching follows git: the deepest `.gitignore` with a
matching pattern decides, and nothing inside an ignored directory is re-included (pathspec's
GitIgnoreSpec implements the pattern syntax).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pathspec

SECRET_FILE = re.compile(
    r"""(?ix)^(?:
        \.env | \.env\..* | .*\.env | \.envrc            # dotenv (.env, .env.local, prod.env), direnv
      | [._]netrc | \.npmrc | \.yarnrc(?:\.yml)? | \.pypirc | \.pgpass | \.my\.cnf
      | \.git-credentials | \.htpasswd | \.dockercfg | \.s3cfg | \.boto
      | credentials(?:\.(?:json|ya?ml|toml|ini|xml|csv|txt))?   # AWS, gcloud, many CLIs
      | id_(?:rsa|dsa|ecdsa|ed25519)(?:[._-].*)?        # ssh keys and their copies (id_rsa.bak)
      | .*\.(?:pem|key|p8|p12|pfx|jks|keystore|ppk|kdbx|tfstate|tfvars)
    )$"""
)


def file_name(uri_or_path: str) -> str:
    """The last path segment of a file path or a (percent-encoded) URI."""
    return unquote(uri_or_path.rstrip("/").rsplit("/", 1)[-1])


def is_secret_file(uri_or_path: str) -> bool:
    return bool(SECRET_FILE.match(file_name(uri_or_path)))


# --- .gitignore ----------------------------------------------------------------------------------


def gitignore_spec(directory: Path) -> Any | None:
    """The patterns of `directory/.gitignore` (and `.git/info/exclude` at a repository root)."""
    lines: list[str] = []
    for name in (".gitignore", ".git/info/exclude"):
        try:
            lines += (directory / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    return pathspec.GitIgnoreSpec.from_lines(lines) if lines else None


def is_ignored(specs: list[tuple[Path, Any]], path: Path, is_dir: bool) -> bool:
    """Git semantics: the deepest .gitignore with a matching pattern decides (last match wins inside it)."""
    for base, spec in reversed(specs):
        relative = path.relative_to(base).as_posix() + ("/" if is_dir else "")
        include = spec.check_file(relative).include
        if include is not None:
            return bool(include)
    return False


def uri_path(uri: str) -> Path | None:
    """The local path of a file:// URI, None for any other scheme (untitled:, ...)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file" or not parsed.path:
        return None
    return Path(unquote(parsed.path))


def local_path(uri: str) -> Path | None:
    """The absolute local path of a file:// URI (`..` resolved, symlinks kept), None for other schemes."""
    path = uri_path(uri)
    return Path(os.path.abspath(path)) if path is not None else None


class WorkspaceIgnores:
    """Answers "is this document ignored by its workspace's .gitignore files?" for the server.

    Each directory's patterns are cached with the file's modification time, so asking on every
    request costs a few stat() calls, and an edited .gitignore takes effect at once.
    """

    def __init__(self, roots: list[Path] | None = None) -> None:
        self.roots = [Path(os.path.abspath(r)) for r in roots or []]
        self._specs: dict[Path, tuple[tuple[int, ...], Any | None]] = {}

    @classmethod
    def for_uris(cls, uris: list[str]) -> WorkspaceIgnores:
        """From initialize's workspace folder URIs (or its rootUri); non-file URIs are left out."""
        return cls([p for p in map(uri_path, uris) if p is not None])

    def _spec(self, directory: Path) -> Any | None:
        stamps = []
        for name in (".gitignore", ".git/info/exclude"):
            try:
                stamps.append((directory / name).stat().st_mtime_ns)
            except OSError:
                stamps.append(-1)
        key = tuple(stamps)
        cached = self._specs.get(directory)
        if cached is None or cached[0] != key:
            cached = self._specs[directory] = (key, gitignore_spec(directory) if max(key) >= 0 else None)
        return cached[1]

    def ignores(self, uri: str) -> bool:
        path = uri_path(uri)
        if path is None:
            return False
        path = Path(os.path.abspath(path))
        root = max(
            (r for r in self.roots if path.is_relative_to(r)), key=lambda r: len(r.parts), default=None
        )
        if root is None or path == root:
            return False
        specs: list[tuple[Path, Any]] = []
        directory = root
        for part in path.relative_to(root).parts[:-1]:
            spec = self._spec(directory)
            if spec is not None:
                specs.append((directory, spec))
            directory = directory / part
            if directory.name == ".git" or is_ignored(specs, directory, is_dir=True):
                return True
        spec = self._spec(directory)
        if spec is not None:
            specs.append((directory, spec))
        return is_ignored(specs, path, is_dir=False)
