"""A remote backend: the OpenAI-compatible `/v1/completions` API, streamed, as vLLM, TGI, llama.cpp's
server, Ollama and hosted APIs speak it.

The pipeline builds the prompt exactly as for the local model and this module sends it as text:
with the model's FIM sentinels inside (`fim: sentinels`), split into `prompt` and `suffix`
(`fim: suffix`, where the server supports the field), or the prefix alone. The reply is read as
server-sent events one chunk at a time on a private event loop, while the inference worker
applies the local engine's stop rules to the growing text and watches `cancelled()`: a stop rule,
a newer keystroke or the deadline cancels the HTTP request at once, which closes the connection,
and servers stop generating for a closed connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import numpy as np

from ..completion.prompt import FimIds
from ..settings import RemoteSettings
from .backend import SPECIAL_BASE, BudgetTokenizer
from .engine import DecodeLimits, DecodeObserver, Generation, StopRule, repetition_start
from .model_dir import ModelDirError
from .remote_health import Fault, RemoteHealth, parse_retry_after

log = logging.getLogger(__name__)

POLL_S = 0.002  # how often the worker looks at `cancelled()` while no chunk arrives
FINISH_REASONS = {"stop": "eos", "length": "max_tokens"}


@dataclass(frozen=True)
class _Finished:
    reason: str


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, allow_insecure: bool) -> None:
    """Prompts carry source code: plain http:// only to this machine unless the user explicitly allows it."""
    parts = urlsplit(url)
    if parts.scheme == "http" and not is_loopback(parts.hostname) and not allow_insecure:
        raise ModelDirError(
            f"refusing plain http:// to {parts.hostname}: prompts would cross the network unencrypted; "
            "use https://, or set remote.allowInsecureHttp if this network is trusted"
        )


class _TokenizerFile:
    """A tokenizer.json, for counting the prompt budget in the remote model's own tokens."""

    def __init__(self, path: str) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(os.path.expanduser(path))
        except Exception as err:  # tokenizers raises plain Exception subclasses
            raise ModelDirError(f"remote.tokenizer {path}: cannot load tokenizer: {err}") from err

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)


class RemoteEngine:
    """The pipeline's backend for one OpenAI-compatible server (see `gpt_lsp.inference.backend.Backend`)."""

    def __init__(
        self,
        settings: RemoteSettings,
        alert: Callable[[str], None] = lambda message: None,
        health: RemoteHealth | None = None,
    ) -> None:
        check_base_url(settings.base_url, settings.allow_insecure_http)
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/completions"
        sentinels = [settings.fim_prefix, settings.fim_suffix, settings.fim_middle]
        tokenizer = _TokenizerFile(settings.tokenizer) if settings.tokenizer else None
        self.tokenizer = BudgetTokenizer(tokenizer, [*sentinels, ""])  # the last: an empty document's start
        self.fim = (
            FimIds(SPECIAL_BASE, SPECIAL_BASE + 1, SPECIAL_BASE + 2) if settings.fim != "none" else None
        )
        self.completion_prompt = "fim" if self.fim else "prefix"
        self.eos_id = SPECIAL_BASE + 3
        self.bos_id: int | None = None  # the server adds its model's own <bos>
        self.context_length = settings.context_length
        self.health = health or RemoteHealth(alert)
        self.repetition_guard = True
        self.headers = {"Accept": "text/event-stream"}
        if settings.api_key_env:
            key = os.environ.get(settings.api_key_env)
            if key:
                self.headers["Authorization"] = f"Bearer {key}"  # never logged, never in settings
            else:
                log.warning(
                    "remote.apiKeyEnv names %s, which is not set; sending no key", settings.api_key_env
                )
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="gpt-lsp-remote", daemon=True).start()
        self._client, self._slots = asyncio.run_coroutine_threadsafe(self._open(), self._loop).result()

    async def _open(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        try:
            import h2  # noqa: F401  # HTTP/2 is negotiated over TLS (ALPN) when the server offers it

            http2 = True
        except ImportError:
            http2 = False
        n = self.settings.max_concurrent_requests
        client = httpx.AsyncClient(
            http2=http2,
            timeout=httpx.Timeout(60.0, connect=self.settings.connect_timeout_ms / 1000),
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
        )
        return client, asyncio.Semaphore(n)

    def describe(self) -> str:
        name = self.settings.model or "its default model"
        return f"model server {self.settings.base_url} ({name}, fim: {self.settings.fim})"

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _shutdown(self) -> None:
        streams = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in streams:
            task.cancel()
        await asyncio.gather(*streams, return_exceptions=True)
        await self._client.aclose()

    # -- the Backend interface ------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids)

    def outage(self) -> str | None:
        return self.health.outage()

    def request_body(self, prompt_ids: Sequence[int], limits: DecodeLimits, healed: str = "") -> dict:
        """The `/v1/completions` request for a pipeline prompt. Token healing needs logit access a
        server does not give, so the healed characters go back into the prompt instead."""
        ids = list(prompt_ids)
        body: dict = {"max_tokens": limits.max_tokens, "temperature": limits.temperature, "stream": True}
        if limits.temperature > 0:
            body["top_p"] = limits.top_p
        if self.settings.model:
            body["model"] = self.settings.model
        if self.settings.fim == "suffix" and self.fim and self.fim.suffix in ids:
            split = ids.index(self.fim.suffix)
            prefix_ids = [t for t in ids[:split] if t != self.fim.prefix]
            suffix_ids = [t for t in ids[split + 1 :] if t != self.fim.middle]
            body["prompt"] = self.decode(prefix_ids) + healed
            body["suffix"] = self.decode(suffix_ids)
        elif self.fim and self.fim.suffix in ids:
            # sentinels: <pre> prefix <suf> suffix <mid>; the healed characters end the prefix
            split = ids.index(self.fim.suffix)
            body["prompt"] = self.decode(ids[:split]) + healed + self.decode(ids[split:])
        else:
            body["prompt"] = self.decode(ids) + healed
        return body

    def generate(
        self,
        prompt_ids: Sequence[int],
        limits: DecodeLimits,
        stop: StopRule | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        healed: str = "",
        rng: np.random.Generator | None = None,
        observe: DecodeObserver | None = None,
    ) -> Generation:
        """Stream a completion until the server ends it, a stop rule, the deadline or cancellation.

        `observe` sees nothing: a server streams text, not the scores an observer reports."""
        start = time.perf_counter()
        if cancelled():
            return Generation("", 0, "cancelled", 0.0)
        if self.health.outage():
            return Generation("", 0, "unavailable", 0.0)
        chunks: queue.SimpleQueue = queue.SimpleQueue()
        body = self.request_body(prompt_ids, limits, healed)
        request = asyncio.run_coroutine_threadsafe(self._stream(body, chunks), self._loop)
        deadline = start + limits.timeout_ms / 1000
        pieces: list[str] = []
        text, reason = healed, "max_tokens"
        ended = False  # the server ended the request itself
        try:
            while True:
                left = deadline - time.perf_counter()
                if left <= 0:
                    reason = "timeout"
                    if not pieces:
                        self.health.failed(
                            Fault("slow", f"{self.url} sent nothing within {limits.timeout_ms} ms")
                        )
                    break
                try:
                    item = chunks.get(timeout=min(POLL_S, left))
                except queue.Empty:
                    if cancelled():
                        reason = "cancelled"
                        break
                    continue
                if isinstance(item, Fault):
                    self.health.failed(item)
                    reason, ended = "unavailable", True
                    break
                if isinstance(item, _Finished):
                    reason, ended = item.reason, True
                    break
                if not pieces:
                    self.health.succeeded()
                pieces.append(item)
                text, cut_reason = self._cut(text + item, pieces, stop, healed)
                if cut_reason:
                    reason = cut_reason
                    break
                if cancelled():
                    reason = "cancelled"
                    break
        finally:
            if not ended:
                request.cancel()  # closes the HTTP request at once while it is still streaming
        return Generation(text, len(pieces), reason, (time.perf_counter() - start) * 1000)

    def _cut(self, text: str, pieces: list[str], stop: StopRule | None, healed: str) -> tuple[str, str]:
        """The local engine's rules on the text so far: sentinels end it, loops are cut, then the stop rule."""
        for sentinel in self.tokenizer.specials[:3] if self.fim else ():
            at = text.find(sentinel, len(healed))
            if at >= 0:
                return text[:at], "eos"
        if self.repetition_guard:
            # Servers stream about one token per chunk: the same loop rule as the local engine, on chunks.
            loop_at = repetition_start([hash(p) for p in pieces])
            if loop_at is not None:
                return healed + "".join(pieces[:loop_at]), "repetition"
        cut = stop(text) if stop and len(text) >= len(healed) else None
        if cut is not None:
            return text[:cut], "stop_rule"
        return text, ""

    # -- the HTTP stream, on the private event loop -----------------------------------------------
    async def _stream(self, body: dict, out: queue.SimpleQueue) -> None:
        async with self._slots:
            try:
                request = self._client.build_request("POST", self.url, json=body, headers=self.headers)
                response = await self._client.send(request, stream=True)
                try:
                    if response.status_code != 200:
                        out.put(self._http_fault(response, (await response.aread())[:300]))
                    else:
                        await self._read_events(response, out)
                finally:
                    # A cancel landing while the connection is being closed must not leak it from the pool.
                    await asyncio.shield(response.aclose())
            except httpx.TimeoutException as err:
                out.put(Fault("slow", f"{self.url} timed out ({type(err).__name__})"))
            except httpx.ConnectError as err:
                out.put(Fault("down", f"cannot connect to {self.url} ({err})"))
            except httpx.HTTPError as err:  # the connection dropped mid-stream, a protocol error
                out.put(Fault("down", f"{self.url} dropped the connection ({type(err).__name__}: {err})"))

    async def _read_events(self, response: httpx.Response, out: queue.SimpleQueue) -> None:
        finish = ""
        async for line in response.aiter_lines():
            if not line or line.startswith((":", "event:", "id:", "retry:")):
                continue  # blank separators, comments and pings (RFC-less but WHATWG SSE)
            data = line[5:].strip() if line.startswith("data:") else None
            if data == "[DONE]":
                break
            try:
                event = json.loads(data) if data is not None else None
                if isinstance(event, dict) and "error" in event:
                    out.put(
                        Fault("server_error", f"{self.url} reported an error: {str(event['error'])[:200]}")
                    )
                    return
                choice = event["choices"][0]  # type: ignore[index]
                piece, finish = choice.get("text") or "", choice.get("finish_reason") or finish
                if not isinstance(piece, str):
                    raise TypeError("text is not a string")
            except (ValueError, TypeError, KeyError, IndexError, AttributeError):
                out.put(
                    Fault(
                        "garbage",
                        f"{self.url} sent something that is not a completion stream: {line[:120]!r}",
                    )
                )
                return
            if piece:
                out.put(piece)
        else:
            if not finish:  # the body ended without [DONE] or a finish reason: the server went away
                out.put(Fault("down", f"{self.url} ended the stream early"))
                return
        out.put(_Finished(FINISH_REASONS.get(finish, "eos")))

    def _http_fault(self, response: httpx.Response, raw: bytes) -> Fault:
        status, said = response.status_code, raw.decode("utf-8", "replace").strip()
        if status in (401, 403):
            env = self.settings.api_key_env
            hint = f"check the key in the environment variable {env}" if env else "set remote.apiKeyEnv"
            return Fault("auth", f"{self.url} refused the API key (HTTP {status}); {hint}")
        if status == 429:
            retry = parse_retry_after(response.headers.get("retry-after"))
            return Fault("throttled", f"{self.url} is rate limiting (HTTP 429)", retry)
        if status >= 500:
            return Fault("server_error", f"{self.url} failed (HTTP {status}: {said[:160]})")
        return Fault("rejected", f"{self.url} rejected the request (HTTP {status}: {said[:160]})")
