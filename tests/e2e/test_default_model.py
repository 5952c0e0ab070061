"""With no model named, the server serves what this machine has built, and says once how to do better."""

from __future__ import annotations

import asyncio

from lsprotocol import types as lsp

from .conftest import start_client


async def test_the_small_model_serves_by_default_with_one_notice_about_the_better_one():
    # The test cache is empty (tests/conftest.py), as on a fresh install: no gemma-code is built.
    client = await start_client(None)
    try:
        ready = await client.status_log.wait_for(lambda s: s["state"] in ("ready", "error"))
        assert ready["state"] == "ready", ready
        assert "default" in ready["reason"], ready  # the shipped model's folder is named default
        await asyncio.sleep(0.2)  # the notice leaves on the event loop right after the status
        notices = [m.message for m in client.messages if "gemma-code" in m.message]
        assert len(notices) == 1, client.messages
        assert "gpt-lsp build gemma-code" in notices[0]
        assert [m.type for m in client.messages if "gemma-code" in m.message] == [lsp.MessageType.Info]
        # A settings change that reloads nothing does not repeat it.
        client.workspace_did_change_configuration(
            lsp.DidChangeConfigurationParams(settings={"logLevel": "info"})
        )
        await asyncio.sleep(0.5)
        assert len([m for m in client.messages if "gemma-code" in m.message]) == 1
    finally:
        await client.shutdown_session()
        await client.stop()


async def test_a_named_model_gets_no_notice(model_path):
    client = await start_client(model_path)
    try:
        await client.status_log.wait_for(lambda s: s["state"] in ("ready", "error"))
        await asyncio.sleep(0.2)
        assert not [m for m in client.messages if "gemma-code" in m.message]
    finally:
        await client.shutdown_session()
        await client.stop()
