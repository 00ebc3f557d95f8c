"""The HTTP/websocket chat endpoint against the real bot: what the web widget and voice build on."""

from __future__ import annotations

import dataclasses

import pytest

from offercall.web.app import init_app
from tests.stack import free_port

pytestmark = pytest.mark.model


@pytest.fixture
async def client(aiohttp_client, bot_stack):
    return await aiohttp_client(init_app(bot_stack.settings))


async def test_http_chat_opens_offers_and_transfers_with_a_directive(client):
    start = await client.post("/api/chat/start", json={"customer_id": "C0001"})
    assert start.status == 200
    opened = await start.json()
    assert "张**先生" in "".join(opened["texts"])
    conversation = opened["conversation_id"]

    offer = await (await client.post(f"/api/chat/{conversation}/messages", json={"text": "是我"})).json()
    assert any("五万元" in text for text in offer["texts"])

    transfer = await (await client.post(f"/api/chat/{conversation}/messages", json={"text": "我想办"})).json()
    (directive,) = transfer["directives"]
    assert directive["name"] == "transfer" and isinstance(directive["handoff_id"], int)


@pytest.mark.parametrize(
    ("body", "status"),
    [({"customer_id": "C9999"}, 404), ({}, 400), ([1, 2], 400)],
)
async def test_bad_start_requests_get_a_clear_error(client, body, status):
    response = await client.post("/api/chat/start", json=body)
    assert response.status == status and "error" in await response.json()


async def test_a_body_that_is_not_json_is_refused(client):
    response = await client.post("/api/chat/start", data=b"customer_id=C0001")
    assert response.status == 400


async def test_websocket_chat_survives_bad_frames(client):
    ws = await client.ws_connect("/ws/chat")
    await ws.send_json({"type": "message", "text": "是我"})
    assert (await ws.receive_json())["status"] == 409  # no conversation yet
    await ws.send_str("not json")
    assert (await ws.receive_json())["type"] == "error"
    await ws.send_json({"type": "start", "customer_id": "C0008"})  # 黄丽, opts out below
    opened = await ws.receive_json()
    assert opened["type"] == "bot" and "智能语音助手" in "".join(opened["texts"])
    await ws.send_json({"type": "message", "text": "以后别给我打电话了"})
    ended = await ws.receive_json()
    assert ended["directives"][0] == {"name": "hangup", "outcome": "opt_out"}
    await ws.close()


async def test_a_crashed_rasa_server_is_a_503_not_a_hang(aiohttp_client, bot_stack):
    down = dataclasses.replace(bot_stack.settings, rasa_url=f"http://127.0.0.1:{free_port()}")
    client = await aiohttp_client(init_app(down))
    response = await client.post("/api/chat/start", json={"customer_id": "C0001"})
    assert response.status == 503
    assert "unavailable" in (await response.json())["error"]
