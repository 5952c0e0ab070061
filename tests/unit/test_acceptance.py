"""The local acceptance counter (server/acceptance.py): counting, persistence, a corrupt file,
concurrent increments, and two servers sharing one file."""

from __future__ import annotations

import json
import logging
import threading

from gpt_lsp.acceptance import AcceptanceCounter, acceptance_path, read_counts


def test_shown_accepted_and_partial_are_counted_per_model_and_language(tmp_path):
    counter = AcceptanceCounter(tmp_path / "acceptance.json", flush_seconds=0)
    py = counter.shown("default", "python")
    counter.shown("default", "python")
    go = counter.shown("gemma-code", "go")
    assert counter.accepted(py)
    assert counter.accepted(go, partial=True)
    assert not counter.accepted(py)  # one answer is accepted once
    assert not counter.accepted("not-an-id")
    assert counter.summary() == [
        {"model": "default", "language": "python", "shown": 2, "accepted": 1, "partial": 0, "rate": 0.5},
        {"model": "gemma-code", "language": "go", "shown": 1, "accepted": 0, "partial": 1, "rate": 0.0},
    ]


def test_counts_survive_a_restart_and_add_up(tmp_path):
    path = tmp_path / "cache" / "acceptance.json"
    first = AcceptanceCounter(path, flush_seconds=0)
    first.accepted(first.shown("default", "python"))
    first.close()
    assert json.loads(path.read_text())["counts"][0]["accepted"] == 1
    second = AcceptanceCounter(path, flush_seconds=0)
    second.shown("default", "python")
    assert second.totals()[("default", "python")] == {"shown": 2, "accepted": 1, "partial": 0}
    second.flush()
    assert read_counts(path)[("default", "python")] == {"shown": 2, "accepted": 1, "partial": 0}
    assert [
        p.name for p in path.parent.iterdir() if p.name.startswith(".acceptance")
    ] == []  # no temp files left


def test_the_timer_writes_without_a_flush_call(tmp_path):
    path = tmp_path / "acceptance.json"
    counter = AcceptanceCounter(path, flush_seconds=0.05)
    counter.shown("default", "rust")
    for _ in range(100):
        if path.exists():
            break
        threading.Event().wait(0.05)
    assert read_counts(path) == {("default", "rust"): {"shown": 1, "accepted": 0, "partial": 0}}
    counter.close()


def test_a_corrupt_file_is_set_aside_with_one_log_line(tmp_path, caplog):
    path = tmp_path / "acceptance.json"
    path.write_text("{not json")
    counter = AcceptanceCounter(path, flush_seconds=0)
    with caplog.at_level(logging.WARNING, logger="gpt_lsp.acceptance"):
        assert counter.totals() == {}
        counter.shown("default", "python")
        counter.flush()
    assert len(caplog.records) == 1 and "set aside" in caplog.records[0].getMessage()
    [aside] = list(tmp_path.glob("acceptance.json.corrupt-*"))
    assert aside.read_text() == "{not json"
    assert read_counts(path)[("default", "python")]["shown"] == 1


def test_a_file_of_the_wrong_shape_is_set_aside_too(tmp_path):
    path = tmp_path / "acceptance.json"
    path.write_text(json.dumps({"counts": [{"model": "m", "language": "python", "shown": -3}]}))
    counter = AcceptanceCounter(path, flush_seconds=0)
    assert counter.totals() == {}
    assert list(tmp_path.glob("acceptance.json.corrupt-*"))


def test_concurrent_increments_are_all_counted(tmp_path):
    counter = AcceptanceCounter(tmp_path / "acceptance.json", flush_seconds=0)
    ids: list[str] = []
    lock = threading.Lock()

    def show() -> None:
        for _ in range(200):
            suggestion_id = counter.shown("default", "python")
            with lock:
                ids.append(suggestion_id)

    threads = [threading.Thread(target=show) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepters = [
        threading.Thread(target=lambda part=ids[i::4]: [counter.accepted(x) for x in part]) for i in range(4)
    ]
    for t in accepters:
        t.start()
    for t in accepters:
        t.join()
    counter.flush()
    # Only the most recent REMEMBERED ids can still be accepted; every one of those counts once.
    assert read_counts(counter.path)[("default", "python")] == {"shown": 1600, "accepted": 512, "partial": 0}


def test_two_servers_sharing_the_file_keep_both_counts(tmp_path):
    path = tmp_path / "acceptance.json"
    a, b = AcceptanceCounter(path, flush_seconds=0), AcceptanceCounter(path, flush_seconds=0)
    a.shown("default", "python")
    b.shown("default", "python")
    b.shown("default", "go")
    a.flush()
    b.flush()
    a.shown("default", "python")
    a.close()
    assert read_counts(path) == {
        ("default", "python"): {"shown": 3, "accepted": 0, "partial": 0},
        ("default", "go"): {"shown": 1, "accepted": 0, "partial": 0},
    }


def test_the_file_lives_in_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GPT_LSP_CACHE", str(tmp_path))
    assert acceptance_path() == tmp_path / "acceptance.json"
