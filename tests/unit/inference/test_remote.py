"""The remote backend (server/inference/remote.py) against a scriptable completion server on loopback.

Every fault the backend must survive is produced by a real HTTP server in this process
(fake_model_server.py): streaming, stop rules closing the stream, cancellation mid-stream,
429 with Retry-After, 500, 401, garbage, a silent server, a connection dropped mid-stream,
nothing listening, and recovery once the server is back.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from fake_model_server import FakeModelServer, Script

from gpt_lsp.completion.postprocess import line_stop
from gpt_lsp.inference.backend import SPECIAL_BASE, BudgetTokenizer
from gpt_lsp.inference.engine import DecodeLimits
from gpt_lsp.inference.model_dir import ModelDirError
from gpt_lsp.inference.remote import RemoteEngine, check_base_url
from gpt_lsp.inference.remote_health import Fault, RemoteHealth
from gpt_lsp.settings import RemoteSettings, SettingsError, parse_settings

LIMITS = DecodeLimits(max_tokens=64, timeout_ms=3000)


@pytest.fixture
def server():
    fake = FakeModelServer()
    yield fake
    fake.close()


@pytest.fixture
def alerts() -> list[str]:
    return []


def engine_for(url: str, alerts: list[str], first_pause_s: float = 0.2, **settings) -> RemoteEngine:
    health = RemoteHealth(alerts.append, first_pause_s=first_pause_s)
    return RemoteEngine(RemoteSettings(base_url=url, **settings), health=health)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- settings and prompt shape (no network) ----------------------------------------------------------
def test_the_key_setting_names_a_variable_and_is_never_the_key():
    assert parse_settings({"remote": {"apiKeyEnv": "TEAM_LLM_KEY"}}).remote.api_key_env == "TEAM_LLM_KEY"
    with pytest.raises(SettingsError, match="NAME of an environment variable"):
        parse_settings({"remote": {"apiKeyEnv": "sk-proj-abc123"}})
    with pytest.raises(SettingsError):
        parse_settings({"backend": "chat"})


def test_plain_http_only_to_loopback_unless_allowed():
    for url in (
        "http://127.0.0.1:8080/v1",
        "http://localhost:11434/v1",
        "http://[::1]:8000/v1",
        "https://llm.example.com/v1",
    ):
        check_base_url(url, allow_insecure=False)
    with pytest.raises(ModelDirError, match="refusing plain http://"):
        RemoteEngine(RemoteSettings(base_url="http://10.1.2.3:8000/v1"))
    check_base_url("http://10.1.2.3:8000/v1", allow_insecure=True)  # explicitly allowed: no error


def test_budget_tokenizer_counts_characters_and_restores_sentinels():
    tok = BudgetTokenizer(None, ["<PRE>", "<SUF>", "<MID>", ""])
    ids = [SPECIAL_BASE, *tok.encode("def f(x"), SPECIAL_BASE + 1, *tok.encode("):"), SPECIAL_BASE + 2]
    assert len(tok.encode("déf 😋")) == 5
    assert tok.decode(ids) == "<PRE>def f(x<SUF>):<MID>"
    assert tok.decode([SPECIAL_BASE + 3]) == ""


@pytest.mark.parametrize("fim", ["none", "sentinels", "suffix"])
def test_fim_is_sent_the_way_the_server_expects(fim):
    engine = RemoteEngine(
        RemoteSettings(
            fim=fim,
            fim_prefix="<|fim_prefix|>",
            fim_suffix="<|fim_suffix|>",
            fim_middle="<|fim_middle|>",
            model="qwen",
        )
    )
    from gpt_lsp.completion.prompt import build_fim_prompt

    prompt = build_fim_prompt(
        engine, engine.fim, "def add(a, b):\n    ret", "\n\nprint(add(1, 2))\n", 200, heal=False
    )
    body = engine.request_body(prompt.ids, LIMITS, healed="")
    assert body["model"] == "qwen" and body["stream"] is True and body["max_tokens"] == 64
    if fim == "none":
        assert body["prompt"] == "def add(a, b):\n    ret" and "suffix" not in body
    elif fim == "sentinels":
        assert (
            body["prompt"]
            == "<|fim_prefix|>def add(a, b):\n    ret<|fim_suffix|>\n\nprint(add(1, 2))\n<|fim_middle|>"
        )
    else:
        assert (body["prompt"], body["suffix"]) == ("def add(a, b):\n    ret", "\n\nprint(add(1, 2))\n")
    engine.close()


# -- streaming through a real HTTP server --------------------------------------------------------------
def test_stream_is_cut_by_the_line_stop_rule_and_the_server_stops(server, alerts):
    server.script.pieces = ["x", " =", " 1", "\n", *(["y = 2\n"] * 200)]
    server.script.piece_delay_s = 0.01
    engine = engine_for(server.url, alerts)
    generation = engine.generate(engine.encode("def f():\n    "), LIMITS, line_stop)
    assert (generation.text, generation.stop_reason) == ("x = 1", "stop_rule")
    assert server.wait_for(lambda: server.served[0].client_left_at is not None), (
        "the server never saw the client leave"
    )
    assert server.served[0].chunks_sent < 20 and not server.served[0].finished
    assert not alerts
    engine.close()


def test_a_newer_keystroke_cancels_mid_stream_at_once(server, alerts):
    server.script.pieces = [f"t{i} " for i in range(500)]
    server.script.piece_delay_s = 0.01
    engine = engine_for(server.url, alerts)
    flag = threading.Event()
    threading.Timer(0.15, flag.set).start()
    generation = engine.generate(engine.encode("x = "), DecodeLimits(500, 10_000), None, flag.is_set)
    returned = time.perf_counter()
    assert generation.stop_reason == "cancelled" and 0 < generation.tokens < 100
    assert server.wait_for(lambda: server.served[0].client_left_at is not None)
    assert server.served[0].client_left_at - returned < 1.0  # the connection closed, not left to run out
    assert server.served[0].chunks_sent < 100
    engine.close()


def test_429_backs_off_honours_retry_after_and_pops_up_once(server, alerts):
    server.script.mode, server.script.retry_after = "429", "0.4"
    engine = engine_for(server.url, alerts, first_pause_s=0.05)
    assert engine.generate(engine.encode("x"), LIMITS).stop_reason == "unavailable"
    assert "rate limiting" in (engine.outage() or "")
    started = time.perf_counter()
    for _ in range(20):  # typing during the pause sends nothing and blocks nothing
        assert engine.generate(engine.encode("x"), LIMITS).stop_reason == "unavailable"
    assert len(server.served) == 1 and time.perf_counter() - started < 1.0
    time.sleep(0.45)
    assert engine.generate(engine.encode("x"), LIMITS).stop_reason == "unavailable"  # the probe: still 429
    assert len(server.served) == 2 and len(alerts) == 1 and "429" in alerts[0]
    server.script.mode = "ok"
    time.sleep(0.45)
    assert engine.generate(engine.encode("x"), LIMITS, line_stop).text == "x = 1"  # recovered, no restart
    assert engine.outage() is None
    engine.close()


@pytest.mark.parametrize(
    ("mode", "kind", "words"),
    [
        ("500", "server_error", "HTTP 500"),
        ("garbage", "garbage", "not a completion stream"),
        ("401", "auth", "API key"),
    ],
)
def test_server_faults_are_reported_once_and_recovered_from(server, alerts, mode, kind, words):
    server.script.mode = mode
    engine = engine_for(server.url, alerts, first_pause_s=0.05)
    for _ in range(3):
        assert engine.generate(engine.encode("x"), LIMITS).stop_reason == "unavailable"
        assert engine.health.fault is not None and engine.health.fault.kind == kind
        time.sleep(0.06 * 2**engine.health.failures)
    assert len(server.served) == 3 and len(alerts) == 1 and words in alerts[0]
    server.script.mode = "ok"
    time.sleep(0.6)
    assert engine.generate(engine.encode("x"), LIMITS, line_stop).text == "x = 1"
    engine.close()


def test_a_silent_server_costs_one_deadline_then_nothing(server, alerts):
    server.script.mode, server.script.slow_s = "slow", 3.0
    engine = engine_for(server.url, alerts)
    started = time.perf_counter()
    generation = engine.generate(engine.encode("x"), DecodeLimits(16, 200))
    assert generation.stop_reason == "timeout" and generation.text == ""
    assert time.perf_counter() - started < 1.0
    assert engine.health.fault and engine.health.fault.kind == "slow"
    started = time.perf_counter()
    assert engine.generate(engine.encode("x"), LIMITS).stop_reason == "unavailable"
    assert len(server.served) == 1 and time.perf_counter() - started < 1.0  # no second wait for the server
    engine.close()


def test_server_killed_mid_stream_then_restarted_on_the_same_port(alerts):
    port = free_port()
    server = FakeModelServer(port, Script(mode="drop", piece_delay_s=0.01))
    engine = engine_for(server.url, alerts, first_pause_s=0.1)
    generation = engine.generate(engine.encode("x"), LIMITS)
    assert generation.stop_reason == "unavailable"
    assert engine.health.fault and engine.health.fault.kind == "down"
    server.close()
    time.sleep(0.15)
    assert engine.generate(engine.encode("x"), LIMITS).stop_reason == "unavailable"  # nothing listening
    assert "cannot connect" in (engine.outage() or "")
    server = FakeModelServer(port)
    time.sleep(0.25)
    assert engine.generate(engine.encode("x"), LIMITS, line_stop).text == "x = 1"
    assert len(alerts) == 1
    server.close()
    engine.close()


def test_the_api_key_comes_from_the_named_variable_and_is_never_logged(server, alerts, monkeypatch, caplog):
    secret = "sk-test-4f9a2c7e"
    monkeypatch.setenv("GPT_LSP_TEST_KEY", secret)
    server.script.api_key = secret
    engine = engine_for(server.url, alerts, api_key_env="GPT_LSP_TEST_KEY")
    assert engine.generate(engine.encode("x"), LIMITS, line_stop).text == "x = 1"
    assert server.served[0].headers["Authorization"] == f"Bearer {secret}"
    engine.close()
    monkeypatch.setenv("GPT_LSP_TEST_KEY", "sk-wrong")
    with caplog.at_level(logging.DEBUG):
        engine = engine_for(server.url, alerts, api_key_env="GPT_LSP_TEST_KEY")
        assert engine.generate(engine.encode("x"), LIMITS).stop_reason == "unavailable"
    assert len(alerts) == 1 and "GPT_LSP_TEST_KEY" in alerts[0]
    assert secret not in caplog.text and "sk-wrong" not in caplog.text and "sk-wrong" not in alerts[0]
    engine.close()


# -- the breaker itself -------------------------------------------------------------------------------
def test_pauses_double_up_to_a_ceiling_and_popups_stay_quiet():
    now = [0.0]
    alerts: list[str] = []
    health = RemoteHealth(alerts.append, clock=lambda: now[0], first_pause_s=1.0)
    pauses = []
    for _ in range(8):
        health.failed(Fault("down", "refused"))
        pauses.append(health._retry_at - now[0])
        now[0] = health._retry_at
    assert pauses == [1, 2, 4, 8, 16, 30, 30, 30]
    health.failed(Fault("slow", "silent"))
    assert len(alerts) == 2  # one per kind of fault
    health.succeeded()
    assert health.outage() is None and health.failures == 0
    health.failed(Fault("down", "refused again"))
    assert len(alerts) == 2  # the same fault soon after: the status line says it, no new popup
    health.succeeded()
    now[0] += 601
    health.failed(Fault("throttled", "429", retry_after_s=90))
    assert len(alerts) == 3 and health._retry_at - now[0] == 90


def test_cancelling_before_the_first_byte_leaks_no_connection(server, alerts):
    """Cancel while the server is still 'processing the prompt', more times than the pool has connections."""
    server.script.mode, server.script.slow_s = "slow", 2.0
    engine = engine_for(server.url, alerts, max_concurrent_requests=2)
    for _ in range(5):
        flag = threading.Event()
        threading.Timer(0.05, flag.set).start()
        started = time.perf_counter()
        assert engine.generate(engine.encode("x"), LIMITS, None, flag.is_set).stop_reason == "cancelled"
        assert time.perf_counter() - started < 1.5  # long before the server would answer
    server.script.mode = "ok"
    assert engine.generate(engine.encode("x"), LIMITS, line_stop).text == "x = 1"
    assert not alerts and engine.outage() is None
    engine.close()
