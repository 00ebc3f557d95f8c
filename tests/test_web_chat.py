"""The HTTP/websocket chat endpoint against the real bot: what the web widget and voice build on."""

from __future__ import annotations

import dataclasses

import pytest

from core.customer_tokens import issue
from offercall.web.app import init_app
from tests.stack import free_port

pytestmark = pytest.mark.model


@pytest.fixture
async def client(aiohttp_client, bot_stack):
    return await aiohttp_client(init_app(bot_stack.settings))


def token(bot_stack, customer="C0001"):
    return issue(customer, bot_stack.settings.secret_key)


async def test_http_chat_opens_offers_and_transfers_with_a_directive(client, bot_stack):
    start = await client.post("/api/chat/start", json={"token": token(bot_stack)})
    assert start.status == 200
    opened = await start.json()
    assert "张**先生" in "".join(opened["texts"])
    conversation = opened["conversation_id"]

    say = {"token": token(bot_stack)}
    offer = await (await client.post(f"/api/chat/{conversation}/messages", json={**say, "text": "是我"})).json()
    assert any("五万元" in text for text in offer["texts"])

    stranger = await client.post(f"/api/chat/{conversation}/messages",
                                 json={"token": token(bot_stack, "C0002"), "text": "我想办"})
    assert stranger.status == 403  # another customer's conversation
    transfer = await (await client.post(f"/api/chat/{conversation}/messages", json={**say, "text": "我想办"})).json()
    (directive,) = transfer["directives"]
    assert directive["name"] == "transfer" and isinstance(directive["handoff_id"], int)


@pytest.mark.parametrize(
    ("body", "status"),
    [({"customer": "C9999"}, 404), ({"customer_id": "C0001"}, 401), ({"token": "x.y"}, 401),
     ({}, 401), ([1, 2], 400)],
)
async def test_bad_start_requests_get_a_clear_error(client, bot_stack, body, status):
    if isinstance(body, dict) and "customer" in body:
        body = {"token": token(bot_stack, body["customer"])}
    response = await client.post("/api/chat/start", json=body)
    assert response.status == status and "error" in await response.json()


async def test_a_body_that_is_not_json_is_refused(client):
    response = await client.post("/api/chat/start", data=b"customer_id=C0001")
    assert response.status == 400


async def test_the_widget_socket_survives_bad_frames_and_honours_an_opt_out(client, bot_stack):
    ws = await client.ws_connect("/ws/widget")
    await ws.send_json({"type": "message", "text": "是我", "client_id": "x"})
    assert (await ws.receive_json())["status"] == 409  # no conversation yet
    await ws.send_str("not json")
    assert (await ws.receive_json())["type"] == "error"
    await ws.send_json({"type": "hello", "token": token(bot_stack, "C0008")})  # 黄丽, opts out below
    assert (await ws.receive_json())["type"] == "ready"
    opening = await ws.receive_json()
    assert opening["sender"] == "bot" and "智能助手" in opening["text"]  # it writes, not speaks
    assert "语音" not in opening["text"]
    await ws.send_json({"type": "message", "text": "以后别给我打电话了", "client_id": "o-1"})
    while True:
        frame = await ws.receive_json()
        if frame["type"] == "message" and frame["directives"]:
            break
    assert frame["directives"][0] == {"name": "hangup", "outcome": "opt_out"}
    await ws.close()


async def test_a_crashed_rasa_server_is_a_503_not_a_hang(aiohttp_client, bot_stack):
    down = dataclasses.replace(bot_stack.settings, rasa_url=f"http://127.0.0.1:{free_port()}")
    client = await aiohttp_client(init_app(down))
    response = await client.post("/api/chat/start", json={"token": token(bot_stack)})
    assert response.status == 503
    assert "unavailable" in (await response.json())["error"]
