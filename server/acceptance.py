"""A local count of inline completions shown, accepted and partially accepted, per model and
language. It lives in one small JSON file in the user cache directory and is never sent anywhere.

Counting is a dict update under a lock; the file is written off the request path, by a timer at
most every `FLUSH_SECONDS` and on shutdown. Each write adds this process's counts since its last
write to what the file holds, under an advisory lock, so two editors' servers sharing the file
both keep their counts. A file that cannot be read is set aside (renamed) with one log line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: writes are still atomic, concurrent servers may lose a few counts
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

FILE_NAME = "acceptance.json"
FORMAT = 1
FLUSH_SECONDS = 5.0
FIELDS = ("shown", "accepted", "partial")
REMEMBERED = 512  # shown suggestions whose acceptance is still counted; older ids are ignored


def acceptance_path() -> Path:
    from .inference.model_dir import user_cache_dir

    return user_cache_dir() / FILE_NAME


Counts = dict[tuple[str, str], dict[str, int]]


@dataclass
class _Shown:
    model: str
    language: str
    accepted: bool = False
    partial: bool = False


def _add(into: Counts, other: Counts) -> None:
    for key, row in other.items():
        target = into.setdefault(key, dict.fromkeys(FIELDS, 0))
        for name in FIELDS:
            target[name] += row.get(name, 0)


def read_counts(path: Path) -> Counts:
    """The counts in `path` (empty when it does not exist). ValueError when it is not a count file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not readable: {err}") from err
    if not isinstance(raw, dict) or not isinstance(raw.get("counts"), list):
        raise ValueError(f"{path} has no list of counts")
    out: Counts = {}
    for row in raw["counts"]:
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("model"), str)
            or not isinstance(row.get("language"), str)
        ):
            raise ValueError(f"{path} has a malformed row: {row!r}")
        values = {name: row.get(name, 0) for name in FIELDS}
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values.values()):
            raise ValueError(f"{path} has a malformed row: {row!r}")
        _add(out, {(row["model"], row["language"]): values})
    return out


def rows(counts: Counts) -> list[dict]:
    """Counts as sorted rows: model, language, shown, accepted, partial, acceptance rate (or None)."""
    out = []
    for (model, language), row in sorted(counts.items()):
        shown = row["shown"]
        rate = round(row["accepted"] / shown, 4) if shown else None
        out.append({"model": model, "language": language, **{n: row[n] for n in FIELDS}, "rate": rate})
    return out


def _set_aside(path: Path, why: str) -> None:
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, aside)
        log.warning("acceptance counts: %s; set aside as %s, counting from zero", why, aside)
    except OSError as err:
        log.warning("acceptance counts: %s; could not set it aside: %s", why, err)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    if fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _load_or_set_aside(path: Path) -> Counts:
    try:
        return read_counts(path)
    except ValueError as err:
        _set_aside(path, str(err))
        return {}


def _write(path: Path, counts: Counts) -> None:
    body = {"format": FORMAT, "counts": rows(counts)}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class AcceptanceCounter:
    """Thread-safe counts of this process, added to the file's by `flush()`."""

    def __init__(self, path: Path | None = None, flush_seconds: float = FLUSH_SECONDS) -> None:
        self.path = path or acceptance_path()
        self.flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._saved: Counts | None = None  # the file's counts at the last read or write
        self._pending: Counts = {}
        self._shown: OrderedDict[str, _Shown] = OrderedDict()
        self._timer: threading.Timer | None = None
        self._closed = False

    # -- counting (called on the event loop: dict updates only) -------------------------------
    def shown(self, model: str, language: str) -> str:
        """Count one inline answer with items; the id its items' accept command carries."""
        suggestion_id = secrets.token_hex(4)
        with self._lock:
            self._shown[suggestion_id] = _Shown(model, language)
            while len(self._shown) > REMEMBERED:
                self._shown.popitem(last=False)
            self._bump(model, language, "shown")
        return suggestion_id

    def accepted(self, suggestion_id: str, partial: bool = False) -> bool:
        """Count an acceptance of a shown answer, once per answer (and once more for a partial one).

        False for an id this server did not show (or forgot), or one already counted.
        """
        with self._lock:
            shown = self._shown.get(suggestion_id)
            if shown is None or (shown.partial if partial else shown.accepted):
                return False
            if partial:
                shown.partial = True
            else:
                shown.accepted = True
            self._bump(shown.model, shown.language, "partial" if partial else "accepted")
            return True

    def _bump(self, model: str, language: str, name: str) -> None:
        row = self._pending.setdefault((model, language), dict.fromkeys(FIELDS, 0))
        row[name] += 1
        if self._timer is None and not self._closed and self.flush_seconds > 0:
            self._timer = threading.Timer(self.flush_seconds, self._timed_flush)
            self._timer.daemon = True
            self._timer.start()

    # -- reading -----------------------------------------------------------------------------
    def totals(self) -> Counts:
        """The file's counts (read once) plus this process's not yet written."""
        if self._saved is None:
            with self._flush_lock:
                if self._saved is None:
                    self._saved = _load_or_set_aside(self.path)
        with self._lock:
            out: Counts = {}
            _add(out, self._saved or {})
            _add(out, self._pending)
            return out

    def summary(self) -> list[dict]:
        return rows(self.totals())

    # -- writing -----------------------------------------------------------------------------
    def _timed_flush(self) -> None:
        with self._lock:
            self._timer = None
        try:
            self.flush()
        except Exception:  # a full disk or a read-only cache costs the counts, never the server
            log.exception("acceptance counts: writing %s failed", self.path)

    def flush(self) -> None:
        """Add this process's counts to the file, atomically (temp file + os.replace)."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending and self._saved is not None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with _locked(self.path):
                    counts = _load_or_set_aside(self.path)
                    if pending:
                        _add(counts, pending)
                        _write(self.path, counts)
                self._saved = counts
            except BaseException:
                with self._lock:  # keep them for the next try
                    _add(self._pending, pending)
                raise

    def close(self) -> None:
        """Stop the timer and write what is pending (the server's shutdown)."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        try:
            self.flush()
        except Exception:
            log.exception("acceptance counts: writing %s failed", self.path)
