"""An LSP client connected to a real `gpt-lsp --stdio` subprocess serving a real exported model.

pytest-lsp's own fixture takes a fixed server command; ours needs the model directory that a
session fixture builds, so it starts the client the same way pytest-lsp does, with that path.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import pytest_asyncio
from lsprotocol import types as lsp
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import make_test_lsp_client

from gpt_lsp.lsp.server import STATUS_NOTIFICATION


def server_command(model: Path | str | None, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "gpt_lsp", "--stdio", *extra]
    return cmd + (["--model", str(model)] if model else [])


class StatusLog:
    """Collects `gpt-lsp/status` notifications so tests can wait for one."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.changed = asyncio.Event()

    def __call__(self, params) -> None:
        self.items.append(params._asdict() if hasattr(params, "_asdict") else dict(params))
        self.changed.set()

    async def wait_for(self, predicate, timeout: float = 20.0) -> dict:
        async def scan():
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                self.changed.clear()
                await self.changed.wait()

        return await asyncio.wait_for(scan(), timeout)


async def start_client(
    model: Path | str | None, encodings: list[str] | None = None, options: dict | None = None, *extra: str
) -> LanguageClient:
    client = make_test_lsp_client()
    client.status_log = StatusLog()  # type: ignore[attr-defined]
    client.feature(STATUS_NOTIFICATION)(client.status_log)
    await client.start_io(*server_command(model, *extra))
    capabilities = client_capabilities("visual-studio-code")
    if encodings is not None:
        capabilities.general = lsp.GeneralClientCapabilities(position_encodings=encodings)
    client.init_result = await client.initialize_session(  # type: ignore[attr-defined]
        lsp.InitializeParams(
            capabilities=capabilities, initialization_options=options or {"logLevel": "verbose"}
        )
    )
    return client


@pytest.fixture(scope="session")
def model_path(tiny_model_dir) -> Path:
    return tiny_model_dir.path


@pytest_asyncio.fixture(params=["utf-16", "utf-8"])
async def client(request, model_path):
    """A client against the tiny model, once per position encoding (utf-8 and utf-16)."""
    encodings = ["utf-8", "utf-16"] if request.param == "utf-8" else ["utf-16"]
    c = await start_client(model_path, encodings)
    await c.status_log.wait_for(lambda s: s["state"] in ("ready", "error"))
    yield c
    if not getattr(c, "_stopped_by_test", False):
        await c.shutdown_session()
    await c.stop()


def open_doc(
    client: LanguageClient, uri: str, text: str, language_id: str = "python", version: int = 1
) -> None:
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri=uri, language_id=language_id, version=version, text=text)
        )
    )
