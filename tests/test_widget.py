"""The in-app chat widget's websocket against the real bot: signed links, replay after a
dropped connection without loss or duplicates, and a human agent taking the chat over."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from chat.lost_turns import LOST_TURN_APOLOGY, TURN_OWNER
from core.customer_tokens import issue
from core.clock import utcnow
from core.owners import Owner
from core.settings import PROJECT_ROOT
from handoff import agents, messages
from offercall.web.app import init_app
from persistence import branches
from persistence.engine import session_scope
from tests.test_lost_turns import dead_pid

pytestmark = pytest.mark.model

PASSWORD = "widget-agent-pass"


@pytest.fixture
async def client(aiohttp_client, bot_stack):
    with session_scope(bot_stack.engine) as session:
        branches.load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        if agents.log_in(session, "widget_jt", PASSWORD, utcnow()) is None:
            agents.add_agent(session, username="widget_jt", password=PASSWORD, display_name="小金",
                             branch_id="JT", now=utcnow())
    return await aiohttp_client(init_app(bot_stack.settings))


def token(bot_stack, customer="C0001", **kwargs):
    return issue(customer, bot_stack.settings.secret_key, **kwargs)


async def frames_until(ws, done, timeout=20.0):
    """Frames until ``done(frame)`` is true (inclusive)."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await asyncio.wait_for(ws.receive_json(), deadline - time.monotonic())
        seen.append(frame)
        if done(frame):
            return seen


def texts(frames, sender=None):
    return [f["text"] for f in frames if f["type"] == "message" and (sender is None or f["sender"] == sender)]


async def hello(ws, bot_stack, **extra):
    await ws.send_json({"type": "hello", "token": token(bot_stack), **extra})
    return await frames_until(ws, lambda f: f["type"] == "ready")


async def say(ws, text, client_id, until_sender="bot"):
    await ws.send_json({"type": "message", "text": text, "client_id": client_id})
    return await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == until_sender)


@pytest.mark.parametrize("bad", ["", "abc", "e30.forged-signature"])
async def test_a_forged_or_malformed_link_is_refused(client, bad):
    ws = await client.ws_connect("/ws/widget")
    await ws.send_json({"type": "hello", "token": bad})
    refused = await ws.receive_json()
    assert (refused["type"], refused["status"]) == ("error", 401)
    await ws.send_json({"type": "message", "text": "你好", "client_id": "m1"})
    assert (await ws.receive_json())["status"] == 409  # the connection survives, still not in a chat
    await ws.close()


async def test_another_customers_conversation_is_not_reachable(client, bot_stack):
    ws = await client.ws_connect("/ws/widget")
    ready = (await hello(ws, bot_stack))[-1]
    other = await client.ws_connect("/ws/widget")
    await other.send_json({"type": "hello", "token": token(bot_stack, "C0002"),
                           "conversation_id": ready["conversation_id"]})
    assert (await other.receive_json())["status"] == 403
    await ws.close()
    await other.close()


async def test_expired_links_say_so(client, bot_stack):
    ws = await client.ws_connect("/ws/widget")
    await ws.send_json({"type": "hello", "token": token(bot_stack, ttl_s=-1)})
    refused = await ws.receive_json()
    assert refused["status"] == 401 and "expired" in refused["message"]
    await ws.close()


async def test_a_reconnecting_client_gets_what_it_missed_once(client, bot_stack):
    ws = await client.ws_connect("/ws/widget")
    conversation = (await hello(ws, bot_stack))[-1]["conversation_id"]
    opening = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    await ws.close()  # the network drops

    again = await client.ws_connect("/ws/widget")
    await hello(again, bot_stack, conversation_id=conversation, after=opening[-1]["id"])
    first = await say(again, "是我", "c-1")
    first_ack = next(f for f in first if f["type"] == "ack")
    await again.send_json({"type": "message", "text": "是我", "client_id": "c-1"})  # resent: unsure it arrived
    resent = await frames_until(again, lambda f: f["type"] == "ack")
    assert resent[-1]["id"] == first_ack["id"]
    await again.close()

    third = await client.ws_connect("/ws/widget")
    replay = await hello(third, bot_stack, conversation_id=conversation, after=0)
    replay += await frames_until(third, lambda f: f["type"] == "message" and "五万元" in f["text"])
    ids = [f["id"] for f in replay if f["type"] == "message"]
    assert ids == sorted(set(ids))  # in order, no duplicates
    assert texts(replay, "customer") == ["是我"]  # stored once although sent twice
    assert any("张**" in t for t in texts(replay, "bot"))  # the opening it had already seen
    await third.close()


async def test_an_agent_takes_over_the_chat_and_the_bot_resumes_after(client, bot_stack):
    ws = await client.ws_connect("/ws/widget")
    ready = (await hello(ws, bot_stack))[-1]
    assert ready["state"] == "bot"
    await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    await say(ws, "是我", "t-1")
    await ws.send_json({"type": "message", "text": "我想申请", "client_id": "t-2"})
    handoff = await frames_until(ws, lambda f: f["type"] == "message" and any(
        d["name"] == "transfer" for d in f["directives"]))
    if not any(f["type"] == "state" for f in handoff):
        handoff += await frames_until(ws, lambda f: f["type"] == "state")
    assert [f["state"] for f in handoff if f["type"] == "state"] == ["waiting"]
    ticket_id = next(d["handoff_id"] for f in handoff if f["type"] == "message"
                     for d in f["directives"] if d["name"] == "transfer")

    await ws.send_json({"type": "message", "text": "请问要等多久", "client_id": "t-3"})
    waiting = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "customer")
    assert texts(waiting, "bot") == []  # nobody but a human answers now

    login = await client.post("/api/agent/login", json={"username": "widget_jt", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {(await login.json())['token']}"}
    claimed = await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=auth)
    assert claimed.status == 200
    assert "请问要等多久" in [m["text"] for m in (await claimed.json())["live"]]
    joined = await frames_until(ws, lambda f: f["type"] == "state")
    assert joined[-1]["state"] == "agent"
    if not texts(joined, "system"):
        joined += await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "system")
    assert any("小金" in t for t in texts(joined, "system"))

    await client.post(f"/api/agent/tickets/{ticket_id}/messages", json={"text": "您好，我是客户经理小金"}, headers=auth)
    from_agent = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "agent")
    assert texts(from_agent, "agent") == ["您好，我是客户经理小金"]
    await ws.send_json({"type": "message", "text": "利率是多少", "client_id": "t-4"})
    await frames_until(ws, lambda f: f["type"] == "ack")
    await asyncio.sleep(1.0)
    detail = await (await client.get(f"/api/agent/tickets/{ticket_id}", headers=auth)).json()
    assert detail["live"][-1]["text"] == "利率是多少"  # went to the agent...
    with pytest.raises(asyncio.TimeoutError):  # ...and the bot stayed quiet
        await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot", timeout=1.5)

    closed = await client.post(f"/api/agent/tickets/{ticket_id}/close", json={"outcome": "applied", "note": ""}, headers=auth)
    assert closed.status == 200
    back = await frames_until(ws, lambda f: f["type"] == "state")
    assert back[-1]["state"] == "bot"
    answer = await say(ws, "利率是多少", "t-5")
    assert any("%" in t or "百分之" in t or "利率" in t for t in texts(answer, "bot"))
    await ws.close()


async def test_a_turn_whose_server_died_gets_one_apology_when_the_customer_reconnects(client, bot_stack):
    ws = await client.ws_connect("/ws/widget")
    conversation = (await hello(ws, bot_stack))[-1]["conversation_id"]
    opening = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    await ws.close()
    # another web server stored the customer's message, took it to the bot and was killed
    gone = Owner(Owner.of_this_process().host, dead_pid(), "gone").tag
    with session_scope(bot_stack.engine) as session:
        lost, _ = messages.post(session, conversation_id=conversation, sender="customer",
                                text="利率多少", client_msg_id="c-9", now=utcnow(),
                                data={TURN_OWNER: gone})

    for _ in range(2):  # the widget reconnects here, then once more
        again = await client.ws_connect("/ws/widget")
        frames = await hello(again, bot_stack, conversation_id=conversation, after=opening[-1]["id"])
        frames += await frames_until(again, lambda f: f["type"] == "message" and f["sender"] == "bot")
        assert texts(frames, "customer") == ["利率多少"]
        assert texts(frames, "bot") == [LOST_TURN_APOLOGY]  # asked to say it again, once
        await again.close()
    with session_scope(bot_stack.engine) as session:
        after = messages.history(session, conversation, lost.id)
    assert [(m.sender, m.text) for m in after] == [("bot", LOST_TURN_APOLOGY)]


async def test_a_turn_still_with_a_living_server_gets_no_apology(client, bot_stack):
    ws = await client.ws_connect("/ws/widget")
    conversation = (await hello(ws, bot_stack))[-1]["conversation_id"]
    opening = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    await ws.close()
    alive = Owner(Owner.of_this_process().host, os.getppid(), "other").tag  # answering still
    with session_scope(bot_stack.engine) as session:
        messages.post(session, conversation_id=conversation, sender="customer", text="利率多少",
                      client_msg_id="c-9", now=utcnow(), data={TURN_OWNER: alive})
    again = await client.ws_connect("/ws/widget")
    await hello(again, bot_stack, conversation_id=conversation, after=opening[-1]["id"])
    frames = await frames_until(again, lambda f: f["type"] == "message")
    assert texts(frames) == ["利率多少"]
    with pytest.raises(asyncio.TimeoutError):  # nothing more: that server will answer
        await frames_until(again, lambda f: f["type"] == "message", timeout=1.0)
    await again.close()
