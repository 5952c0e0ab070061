"""When to try a model server again, and what to tell the user about it.

A server that is down, slow, rate limiting, failing or answering garbage must never cost a
keystroke: after a fault no request is sent until an exponentially growing pause has passed
(honouring `Retry-After` on 429, RFC 9110 section 10.2.3), and the first request after the pause
is the probe that ends the outage. The user gets one popup per kind of fault, not one per
keystroke; the status line carries the details while it lasts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

FIRST_PAUSE_S = 1.0
LONGEST_PAUSE_S = 30.0
LONGEST_RETRY_AFTER_S = 120.0  # a server asking for more than this is treated as asking for this
POPUP_QUIET_S = 600.0  # the same kind of fault pops up again only after this long


@dataclass(frozen=True)
class Fault:
    """One failed request: a kind the user is told about once, and the details for the status line."""

    kind: str  # down | slow | throttled | server_error | garbage | auth | rejected
    detail: str
    retry_after_s: float | None = None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header; the HTTP-date form is rare on APIs and read as absent."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class RemoteHealth:
    """A circuit breaker over one server: closed while it answers, open for a growing pause after a fault."""

    def __init__(
        self,
        alert: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        first_pause_s: float = FIRST_PAUSE_S,
    ) -> None:
        self._alert = alert
        self._clock = clock
        self._first_pause_s = first_pause_s
        self._lock = threading.Lock()
        self.fault: Fault | None = None
        self.failures = 0  # consecutive, reset by the first success
        self._retry_at = 0.0
        self._down_since = 0.0
        self._popped: dict[str, float] = {}  # fault kind -> when the user was last told

    def outage(self) -> str | None:
        """Why no request should be sent now, or None when one may (the server is up, or a probe is due)."""
        with self._lock:
            left = self._retry_at - self._clock()
            if self.fault is None or left <= 0:
                return None
            return f"{self.fault.detail}; retrying in {left:.0f} s"

    def failed(self, fault: Fault) -> None:
        with self._lock:
            now = self._clock()
            if self.fault is None:
                self._down_since = now
            self.failures += 1
            pause = min(LONGEST_PAUSE_S, self._first_pause_s * 2 ** (self.failures - 1))
            if fault.retry_after_s is not None:
                pause = max(pause, min(fault.retry_after_s, LONGEST_RETRY_AFTER_S))
            self.fault, self._retry_at = fault, now + pause
            last = self._popped.get(fault.kind)
            popup = last is None or now - last >= POPUP_QUIET_S
            if popup:
                self._popped[fault.kind] = now
        log.warning(
            "model server fault (%s, %d in a row): %s; pausing %.1f s",
            fault.kind,
            self.failures,
            fault.detail,
            pause,
        )
        if popup:
            self._alert(f"gpt-lsp: model server unavailable: {fault.detail}. Retrying in the background.")

    def succeeded(self) -> None:
        with self._lock:
            if self.fault is None:
                return
            down_s = self._clock() - self._down_since
            self.fault, self.failures, self._retry_at = None, 0, 0.0
        log.warning("model server is back after %.1f s", down_s)
