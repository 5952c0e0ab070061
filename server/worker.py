"""The one inference worker: a single thread that runs every model job, and the cancel tokens
that stop a decode at its next token.

One thread, because two decodes on two cores are each slower than one after the other, and a
keystroke only needs the newest. Each document has at most one live token: a newer edit or a
newer request for the same document trips the older one (`supersede`), so a result computed on an
old version is never sent and at most one useful decode per document is queued.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Worker:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpt-lsp-inference")
        self._latest: dict[str, threading.Event] = {}

    async def run(self, job: Callable[[], T]) -> T:
        """Run `job` on the inference thread; the event loop stays free meanwhile."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, job)

    def submit(self, job: Callable[[], object]) -> None:
        """Queue `job` (model loading) without waiting for it."""
        self._executor.submit(job)

    def supersede(self, uri: str) -> threading.Event:
        """A new cancel token for `uri`, tripping the one a running job for it holds."""
        self.cancel(uri)
        event = self._latest[uri] = threading.Event()
        return event

    def cancel(self, uri: str) -> None:
        """Stop the job running for `uri`, if any (an edit, a close, a newer request)."""
        event = self._latest.pop(uri, None)
        if event is not None:
            event.set()

    def finished(self, uri: str, event: threading.Event) -> None:
        """Forget `event` once its job is over, unless a newer one already replaced it."""
        if self._latest.get(uri) is event:
            del self._latest[uri]

    def shutdown(self) -> None:
        for event in self._latest.values():
            event.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
