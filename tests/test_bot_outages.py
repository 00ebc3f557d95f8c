"""Customers are never left in silence, and their requests are never lost, when the bot's
servers fail: a Rasa server that hangs (stopped with SIGSTOP, not mocked) and an action server
that is killed (``kill -9``) and started again by the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from core.customer_tokens import issue
from chat.widget import UNAVAILABLE
from handoff import tickets
from offercall.processes import is_healthy
from offercall.simulated_calls import simulated_call
from offercall.voice_calls import VoiceRuntime
from offercall.web.app import init_app
from persistence import store
from persistence.engine import session_scope
from tests.test_widget import frames_until
from voice.session import HOLD_TEXT, SORRY_TEXT, SessionConfig
from voice.transports.simulated import parse_script
from voice.turns import TurnConfig

pytestmark = pytest.mark.model


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """The process hangs (SIGSTOP) until the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def action_server_health(bot_stack) -> str:
    return bot_stack.settings.action_server_url.rsplit("/webhook", 1)[0] + "/health"


OUTAGE_CUSTOMERS = """customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,term_months,valid_until,consent,gender
C9101,周强,13700137101,金堂县,农户,邮享贷,50000,3.6,7.2,12,2099-12-31,1,M
C9102,吴敏,13700137102,双流区,农户,邮享贷,40000,3.6,7.2,12,2099-12-31,1,F
C9103,郑丽,13700137103,郫都区,农户,邮享贷,30000,3.6,7.2,12,2099-12-31,1,F
C9104,王磊,13700137104,新都区,农户,邮享贷,20000,3.6,7.2,12,2099-12-31,1,M
"""


@pytest.fixture(scope="module")
def customers(bot_stack, tmp_path_factory) -> None:
    """Customers of these tests alone: an opt-out here must not stop another module's calls."""
    from outbound.whitelist import import_whitelist_file

    path = tmp_path_factory.mktemp("outages") / "whitelist.csv"
    path.write_text(OUTAGE_CUSTOMERS, encoding="utf-8")
    report = import_whitelist_file(bot_stack.engine, path)
    assert not report.errors, report.summary()


@pytest.fixture
async def widget(aiohttp_client, bot_stack, customers):
    client = await aiohttp_client(init_app(bot_stack.settings))

    async def open_chat(customer: str, confirm: bool = False):
        ws = await client.ws_connect("/ws/widget")
        await ws.send_json({"type": "hello", "token": issue(customer, bot_stack.settings.secret_key)})
        ready = await frames_until(ws, lambda f: f["type"] == "ready")
        await frames_until(ws, lambda f: f["type"] == "message" and "本人" in f["text"])  # the opening
        if confirm:  # the right person: the offer is presented
            await ws.send_json({"type": "message", "text": "是的，是我", "client_id": "confirm"})
            await frames_until(ws, lambda f: f["type"] == "message" and any(
                d["name"] == "dtmf_request" for d in f["directives"]))  # the end of the offer
        return ws, ready[-1]["conversation_id"]

    return open_chat


async def test_a_hung_rasa_gets_the_chat_customer_an_apology_within_5s_and_the_socket_stays_open(
        widget, bot_stack):
    ws, _ = await widget("C9101")
    with stopped(bot_stack.supervisor.started["rasa"].pid):
        sent = time.monotonic()
        await ws.send_json({"type": "message", "text": "利息是多少", "client_id": "hung-1"})
        frames = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
        waited = time.monotonic() - sent
        assert frames[-1]["text"] == UNAVAILABLE
        assert waited < 5, f"the apology took {waited:.1f} s"
        await ws.send_json({"type": "ping"})
        assert (await ws.receive_json())["type"] == "pong", "the socket stays open"
    await ws.close()


async def test_a_hung_rasa_on_a_call_gets_a_holding_phrase_then_an_apology_and_a_recorded_outcome(
        bot_stack, customers):
    runtime = VoiceRuntime(bot_stack.settings)
    runtime.session_config = lambda detect_machine=False: SessionConfig(  # type: ignore[method-assign]
        turn=TurnConfig(silence_timeout_ms=4000), bot_hold_ms=1500, bot_timeout_ms=5000)
    rasa = bot_stack.supervisor.started["rasa"].pid
    hung = []

    class HangRasaAfterTheOpening:
        """Stops Rasa as soon as the opening is on the line, before the customer answers."""

        def write(self, line: str) -> None:
            if "机器人" in line and not hung:
                os.kill(rasa, signal.SIGSTOP)
                hung.append(time.monotonic())

        def flush(self) -> None: ...

    try:
        run = await simulated_call(bot_stack.settings, "C9101", parse_script(["是的，是我"]),
                                   speed=3.0, runtime=runtime, out=HangRasaAfterTheOpening())
    finally:
        os.kill(rasa, signal.SIGCONT)
    result = run.result
    bot_said = result.bot_texts()
    assert hung and bot_said[-2:] == [HOLD_TEXT, SORRY_TEXT], bot_said
    hold = next(e for e in result.transcript if e.kind == "hold")
    answer = next(e for e in result.transcript if e.speaker == "customer" and e.kind == "speech")
    assert hold.start_ms > answer.end_ms, "the holding phrase comes after the customer spoke"
    assert (result.outcome, result.ended_by) == ("error", "error")
    assert run.customer.hung_up_by_bot == "error"
    with session_scope(bot_stack.engine) as session:
        stored = store.get_call(session, result.call_id)
    assert stored is not None and stored.outcome == "error", "the campaign retries an error"


async def test_a_killed_action_server_loses_no_handoff_and_is_started_again(widget, bot_stack):
    ws, conversation_id = await widget("C9102", confirm=True)
    actions = bot_stack.supervisor.started["actions"]
    restarts = bot_stack.supervisor.restarts("actions")
    os.kill(actions.pid, signal.SIGKILL)
    actions.wait()
    await ws.send_json({"type": "message", "text": "我想申请，帮我转人工", "client_id": "kill-1"})
    frames = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    assert "正在为您转接" in frames[-1]["text"], "the customer is told at once"
    assert {"name": "transfer", "handoff_id": frames[-1]["directives"][0]["handoff_id"],
            "reason": "customer_requested"} == frames[-1]["directives"][0]
    await frames_until(ws, lambda f: f["type"] == "state" and f["state"] == "waiting")
    with session_scope(bot_stack.engine) as session:
        ticket = tickets.ticket_for_conversation(session, conversation_id)
    assert ticket is not None and ticket.status in ("queued", "offered") and ticket.customer_id == "C9102"
    assert ticket.transcript[-1]["text"] == "我想申请，帮我转人工"
    await ws.close()

    deadline = time.monotonic() + 60
    while not (bot_stack.supervisor.restarts("actions") > restarts
               and is_healthy(action_server_health(bot_stack))):
        assert time.monotonic() < deadline, "the supervisor did not start the action server again"
        await asyncio.sleep(0.5)
    ws, _ = await widget("C9104")  # the opening is said by the action server again
    await ws.close()


async def test_an_opt_out_while_the_action_server_is_down_is_written_at_once(widget, bot_stack):
    ws, conversation_id = await widget("C9103", confirm=True)
    actions = bot_stack.supervisor.started["actions"]
    os.kill(actions.pid, signal.SIGKILL)
    actions.wait()
    await ws.send_json({"type": "message", "text": "以后别再给我打电话了", "client_id": "optout-1"})
    frames = await frames_until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
    assert "不会再" in frames[-1]["text"]
    assert frames[-1]["directives"] == [{"name": "hangup", "outcome": "opt_out"}]
    with session_scope(bot_stack.engine) as session:
        assert store.is_do_not_contact(session, customer_id="C9103")
        assert store.latest_outcome(session, conversation_id) == "opt_out"
    await ws.close()
    deadline = time.monotonic() + 60
    while not is_healthy(action_server_health(bot_stack)):
        assert time.monotonic() < deadline, "the supervisor did not start the action server again"
        await asyncio.sleep(0.5)
