"""`gpt-lsp bench --backend openai --url URL`: the typing-trace bench for a model server.

On the trace that `gpt-lsp bench` replays for the local model, it prints:
1. completion p50/p95 through gpt-lsp over real LSP (`gpt-lsp --stdio`, backend openai), as an editor sees it;
2. the same requests sent straight to the server: an in-process replay of the same pipeline records
   what gpt-lsp sends on each keystroke, and a bare streaming client sends it again, stopping where
   gpt-lsp stopped; the paired difference per keystroke is the overhead gpt-lsp adds;
3. cancellation: long completions cancelled mid-stream by another thread (as a newer keystroke does),
   how long until gpt-lsp lets go, and, with --server-pid for a server on this machine, the server's
   CPU time in the second after (it stops generating) against its CPU while generating;
4. requests per second per developer: the trace typed at a human pace with editor-side debounce,
   counting only what reaches the server after gpt-lsp's gate, cache and typing-through.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from gpt_lsp.completion.pipeline import Pipeline
from gpt_lsp.inference.engine import DecodeLimits
from gpt_lsp.inference.remote import RemoteEngine
from gpt_lsp.model.bench import TRACE, bench_server
from gpt_lsp.model.metrics import percentile
from gpt_lsp.settings import GenerationSettings, RemoteSettings
from gpt_lsp.text.documents import DocumentStore, Position, TextChange

GENERATION = GenerationSettings(timeout_ms=10_000)
# Typing pace: Dhakal et al., "Observations on Typing from 136 Million Keystrokes" (CHI 2018) report a mean
# inter-key interval of about 240 ms (52 wpm); the spread of a log-normal with sigma 0.6 is our assumption.
MEAN_INTERKEY_MS = 240.0
INTERKEY_SIGMA = 0.6
DEBOUNCES_MS = (0, 150, 350)  # none; a typical editor debounce; Continue's 350 ms


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backend", choices=["local", "openai"], default="local", help="openai: bench a model server"
    )
    p.add_argument(
        "--url", default="http://127.0.0.1:8080/v1", help="the server's API root (--backend openai)"
    )
    p.add_argument("--model-name", default="", help="the server's model name (remote.model)")
    p.add_argument("--api-key-env", default="", help="NAME of the environment variable holding the API key")
    p.add_argument("--fim", choices=["none", "sentinels", "suffix"], default="none", help="remote.fim")
    p.add_argument(
        "--server-pid", type=int, default=0, help="a server on this machine: its CPU after a cancel"
    )
    p.add_argument("--cancels", type=int, default=10, help="cancelled completions to time")


def _settings(args: argparse.Namespace) -> RemoteSettings:
    return RemoteSettings(
        base_url=args.url, model=args.model_name, api_key_env=args.api_key_env, fim=args.fim
    )


def _lsp_options(args: argparse.Namespace) -> dict:
    remote = {"baseUrl": args.url, "model": args.model_name, "apiKeyEnv": args.api_key_env, "fim": args.fim}
    return {"backend": "openai", "remote": remote, "generation": {"timeoutMs": GENERATION.timeout_ms}}


class RecordingEngine(RemoteEngine):
    """The remote backend, noting each request it sends and how its stream ended."""

    def __init__(self, settings: RemoteSettings) -> None:
        super().__init__(settings)
        self.sent: list[tuple[dict, int, str]] = []  # body, chunks read, stop reason
        self._body: dict | None = None

    def request_body(self, *args: Any, **kwargs: Any) -> dict:
        self._body = super().request_body(*args, **kwargs)
        return self._body

    def generate(self, *args: Any, **kwargs: Any):
        self._body = None
        generation = super().generate(*args, **kwargs)
        if self._body is not None:
            self.sent.append((self._body, generation.tokens, generation.stop_reason))
        return generation


class Replay:
    """Types `text` into the serving pipeline in this process, one keystroke per `step`, and notes each request."""

    def __init__(self, settings: RemoteSettings, text: str) -> None:
        self.engine = RecordingEngine(settings)
        self.pipeline = Pipeline(self.engine, GENERATION, token_healing=False)  # as the session builds it
        self.store, self.uri, self.text = DocumentStore(), "file:///bench/trace.py", text
        self.store.open(self.uri, "python", 0, "")
        self.line, self.col = 0, 0
        self.suggested: list[str] = []  # what the last step suggested

    def step(self, i: int, complete: bool) -> tuple | None:
        ch, at = self.text[i], Position(self.line, self.col)
        doc = self.store.change(self.uri, i + 1, [TextChange(ch, at, at)])
        self.line, self.col = (self.line + 1, 0) if ch == "\n" else (self.line, self.col + 1)
        before = len(self.engine.sent)
        self.suggested = []
        if complete:
            self.suggested = [
                s.text for s in self.pipeline.complete(doc, Position(self.line, self.col)).suggestions
            ]
        return self.engine.sent[before] if len(self.engine.sent) > before else None

    def close(self) -> None:
        self.engine.close()


def direct_ms(client: httpx.Client, url: str, headers: dict, body: dict, chunks: int, reason: str) -> float:
    """The same request from a bare streaming client that stops where gpt-lsp stopped."""
    cut = reason in ("stop_rule", "repetition", "cancelled", "timeout")
    body = {**body, "max_tokens": chunks} if cut and chunks else body
    start, n = time.perf_counter(), 0
    with client.stream("POST", url, json=body, headers=headers) as response:
        for line in response.iter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            n += bool(json.loads(line[5:])["choices"][0].get("text"))
            if cut and n >= chunks:
                break
    return (time.perf_counter() - start) * 1000


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cancel_once(engine: RemoteEngine, prompt: list[int], server_pid: int) -> dict[str, float] | None:
    """One long completion cancelled 300 ms into its stream from another thread, as a newer keystroke does."""
    newer_keystroke = threading.Event()
    first: dict[str, float] = {}

    def note_first(text: str) -> None:  # a stop rule that never cuts: it notes when the stream began
        if not first:
            first["at"], first["cpu"] = time.perf_counter(), _cpu_s(server_pid) if server_pid else 0.0
            threading.Timer(0.3, newer_keystroke.set).start()

    generation = engine.generate(prompt, DecodeLimits(600, 30_000), note_first, newer_keystroke.is_set)
    returned = time.perf_counter()
    if generation.stop_reason != "cancelled":
        return None
    figures = {"let_go_ms": (returned - first["at"] - 0.3) * 1000}
    if server_pid:
        figures["busy"] = (_cpu_s(server_pid) - first["cpu"]) / (returned - first["at"])
        time.sleep(0.2)  # the server notices the closed connection at its next token
        settled = _cpu_s(server_pid)
        time.sleep(1.0)
        figures["after"] = _cpu_s(server_pid) - settled
    return figures


def cancellation(settings: RemoteSettings, rounds: int, server_pid: int) -> dict[str, float]:
    """Time how fast gpt-lsp lets go of a cancelled stream, and watch the server's CPU after it."""
    engine = RemoteEngine(settings)
    engine.repetition_guard = False  # let the list run on: these completions should be long
    prompt = engine.encode("squares = [" + ", ".join(str(i * i) for i in range(12)) + ",")
    runs = [r for r in (_cancel_once(engine, prompt, server_pid) for _ in range(rounds)) if r]
    engine.close()
    let_go = [r["let_go_ms"] for r in runs]
    return {
        "rounds": len(runs),
        "let_go_p50_ms": percentile(let_go, 0.5),
        "let_go_max_ms": max(let_go, default=float("nan")),
        "busy_cpu": percentile([r["busy"] for r in runs if "busy" in r], 0.5),
        "after_cpu": percentile([r["after"] for r in runs if "after" in r], 0.5),
    }


def typing_schedule(n: int, seed: int = 0) -> np.ndarray:
    """Seconds between keystrokes: log-normal with the mean inter-key interval of Dhakal et al."""
    mu = np.log(MEAN_INTERKEY_MS / 1000) - INTERKEY_SIGMA**2 / 2
    return np.random.default_rng(seed).lognormal(mu, INTERKEY_SIGMA, n)


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    text = TRACE[: args.keystrokes] if args.keystrokes else TRACE
    print(
        f"server: {args.url} ({args.model_name or 'default model'}), fim: {args.fim}, cpu cores: {os.cpu_count()}"
    )

    # Per keystroke: the in-process pipeline (same code, same state as gpt-lsp's) records the request, a bare
    # client sends it straight to the server, then gpt-lsp answers the same keystroke over LSP. Both timed
    # requests follow a request for the same prompt that ran to its end, so neither is favoured.
    replay, direct, expected, answered = Replay(settings, text), {}, {}, {}
    url, headers = settings.base_url.rstrip("/") + "/completions", replay.engine.headers
    with httpx.Client(timeout=60) as client:

        def send_directly(i: int) -> None:
            sent = replay.step(i, True)
            if sent is not None:
                expected[i] = replay.suggested
                # The recording request was cut by a stop rule, and a server finishes its current token
                # before it notices; an untimed first send absorbs that wait, as it would for gpt-lsp.
                direct_ms(client, url, headers, *sent)
                direct[i] = direct_ms(client, url, headers, *sent)

        def note_answer(i: int, result: Any) -> None:
            answered[i] = [item.insert_text for item in (result.items if result else [])]

        lsp = asyncio.run(
            bench_server(None, "auto", len(text), _lsp_options(args), send_directly, note_answer)
        )
    replay.close()
    # A server's greedy output can differ between two runs of one prompt (batching changes the arithmetic);
    # where gpt-lsp's answer differs from the recording, the two did not do the same work: left out.
    same = [i for i in sorted(direct) if answered.get(i) == expected[i]]
    paired = [(lsp["completion_ms"][i], direct[i]) for i in same]
    through, straight = [p[0] for p in paired], [p[1] for p in paired]
    overhead = [a - b for a, b in paired]
    print(
        f"through gpt-lsp, every keystroke ({lsp['requests']}, {sum(bool(a) for a in answered.values())} answered "
        f"with a suggestion): completion p50 {lsp['completion_p50_ms']:.1f} ms, "
        f"p95 {lsp['completion_p95_ms']:.1f} ms; trivial request meanwhile p95 {lsp['trivial_p95_ms']:.1f} ms"
    )
    print(
        f"keystrokes that reached the server ({len(direct)}, {len(direct) - len(same)} left out as diverged): "
        f"through gpt-lsp p50 {percentile(through, 0.5):.1f} ms, p95 {percentile(through, 0.95):.1f} ms; "
        f"direct p50 {percentile(straight, 0.5):.1f} ms, p95 {percentile(straight, 0.95):.1f} ms"
    )
    print(
        f"overhead gpt-lsp adds (paired): p50 {percentile(overhead, 0.5):.1f} ms, p95 {percentile(overhead, 0.95):.1f} ms"
    )

    c = cancellation(settings, args.cancels, args.server_pid)
    line = f"cancellation ({c['rounds']} streams cut 300 ms in): gpt-lsp lets go in p50 {c['let_go_p50_ms']:.1f} ms, max {c['let_go_max_ms']:.1f} ms"
    if args.server_pid:
        line += f"; server CPU {c['busy_cpu']:.2f} s/s while generating, {c['after_cpu']:.3f} s in the second after"
    print(line)

    gaps = typing_schedule(len(text))
    typing_s = float(gaps.sum())
    print(
        f"typing the trace: {len(text)} keystrokes in {typing_s:.0f} s (mean inter-key {MEAN_INTERKEY_MS:.0f} ms)"
    )
    for debounce in DEBOUNCES_MS:
        # The editor asks after a keystroke only when no other follows within the debounce.
        fire = [i == len(text) - 1 or gaps[i + 1] * 1000 > debounce for i in range(len(text))]
        replay = Replay(settings, text)
        sent = [r for r in (replay.step(i, fire[i]) for i in range(len(text))) if r is not None]
        replay.close()
        print(
            f"debounce {debounce:>3} ms: {sum(fire)} completion requests, {len(sent)} reach the server: "
            f"{len(sent) / typing_s:.2f} requests/s per developer while typing; per request: prompt "
            f"p50 {percentile([len(b['prompt']) for b, _, _ in sent], 0.5):.0f} characters, "
            f"{percentile([n for _, n, _ in sent], 0.5):.0f} chunks streamed (p95 {percentile([n for _, n, _ in sent], 0.95):.0f})"
        )
    return 0
