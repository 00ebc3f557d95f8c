"""Rasa's ``GET /webhooks/offercall/metrics``: the input channel times every turn and counts
the failed ones. The channel's blueprint is served by a real Sanic server in this process, on
a scripted ``on_new_message`` in place of Rasa's agent (no model is loaded)."""

from __future__ import annotations

import logging
import uuid

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage
from sanic import Sanic

from bot.channel import OffercallInput
from bot.scrape import TOKEN_ENV
from tests.stack import free_port
from tests.test_metrics import TOKEN, value


async def scripted_bot(message: UserMessage) -> None:
    """``坏了`` crashes the turn; ``转人工`` fails a custom action (as Rasa's processor logs it);
    anything else is answered."""
    if message.text == "坏了":
        raise RuntimeError("a broken policy")
    if message.text == "转人工":
        logging.getLogger("rasa.core.processor").error(
            "Encountered an exception while running action 'action_create_handoff'.")
        return
    await message.output_channel.send_text_message(message.sender_id, "您好")


@pytest.fixture
async def rasa(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    app = Sanic(f"offercall_channel_{uuid.uuid4().hex[:8]}")
    app.blueprint(OffercallInput().blueprint(scripted_bot), url_prefix="/webhooks/offercall")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    yield f"http://127.0.0.1:{port}/webhooks/offercall"
    server.close()
    await server.wait_closed()


async def test_the_channel_times_each_turn_and_counts_the_failed_ones(rasa):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        async def scrape() -> str:
            async with http.get(f"{rasa}/metrics", headers=auth) as response:
                assert response.status == 200
                return await response.text()

        async def say(text: str) -> int:
            async with http.post(f"{rasa}/webhook", json={"sender": "c-1", "message": text}) as r:
                return r.status

        before = await scrape()
        assert await say("你好") == 200
        assert await say("坏了") == 500
        assert await say("转人工") == 502
        after = await scrape()
        async with http.get(f"{rasa}/metrics") as refused:
            assert refused.status == 401  # the token is set: everyone shows it
    turns, failures = "offercall_rasa_turn_seconds_count", "offercall_rasa_turn_failures_total"
    assert value(after, turns) - value(before, turns) == 3
    for reason in ("error", "action_failed"):
        assert value(after, failures, reason=reason) - value(before, failures, reason=reason) == 1
