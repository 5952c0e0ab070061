"""The inference worker: one thread for every model job, and per-document cancel tokens."""

from __future__ import annotations

import asyncio
import threading
import time

from gpt_lsp.worker import Worker


async def test_jobs_run_one_at_a_time_off_the_event_loop() -> None:
    worker = Worker()
    running, overlaps, threads = [0], [], set()

    def job() -> str:
        running[0] += 1
        overlaps.append(running[0])
        threads.add(threading.current_thread().name)
        time.sleep(0.02)
        running[0] -= 1
        return "done"

    results = await asyncio.gather(*(worker.run(job) for _ in range(4)))
    worker.shutdown()
    assert results == ["done"] * 4
    assert max(overlaps) == 1
    assert len(threads) == 1 and threading.current_thread().name not in threads


def test_a_newer_token_trips_the_older_one_for_the_same_document_only() -> None:
    worker = Worker()
    first = worker.supersede("file:///a.py")
    other = worker.supersede("file:///b.py")
    second = worker.supersede("file:///a.py")
    assert first.is_set() and not second.is_set() and not other.is_set()
    worker.finished("file:///a.py", first)  # the old job ending must not forget the new token
    worker.cancel("file:///a.py")
    assert second.is_set()
    worker.shutdown()
    assert other.is_set()  # shutdown stops every job still running


async def test_a_job_sees_its_token_trip_while_it_runs() -> None:
    worker = Worker()
    token = worker.supersede("file:///a.py")
    started = threading.Event()

    def decode() -> int:
        started.set()
        steps = 0
        while not token.is_set() and steps < 500:
            time.sleep(0.01)
            steps += 1
        return steps

    pending = asyncio.ensure_future(worker.run(decode))
    await asyncio.to_thread(started.wait, 5)
    worker.cancel("file:///a.py")  # an edit to the document
    steps = await pending
    worker.shutdown()
    assert steps < 500
