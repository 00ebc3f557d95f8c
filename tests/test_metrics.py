"""Every process's ``GET /metrics``: the web server (chat turns, the agents' queue, who may
scrape), the dialer worker (calls in flight, placed and ended), the voice turn histogram and
the action server (its real command line). Rasa's channel: tests/test_metrics_rasa.py."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.scrape import TOKEN_ENV, MetricsConfigError, metrics_token, refusal
from core.customer_tokens import issue
from core.clock import utcnow
from core.settings import PROJECT_ROOT
from offercall.web.app import init_app
from offercall.worker import Worker, _health_site
from persistence import handoffs, store
from persistence.engine import session_scope
from tests.conftest import AGENT_PASSWORD
from tests.scheduler_doubles import ScriptedNetwork, ScriptedPlacing
from tests.stack import free_port, stack_settings
from tests.test_campaigns import load_customers
from tests.test_scheduler import running_campaign, status_of, until
from voice.events import TranscriptEntry
from voice.latency import TurnLatency

TOKEN = "scrape-token-0123456789abcdef"


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: the queue's SQL is the ticket module's, tested on PostgreSQL there."""
    return f"sqlite:///{tmp_path / 'offercall.db'}"


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(sample.value for family in text_string_to_metric_families(text)
               for sample in family.samples
               if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()))


# ------------------------------------------------------------------ who may scrape
@pytest.mark.parametrize(("authorization", "peer", "token", "status"), [
    (None, "127.0.0.1", None, None),
    (None, "::1", None, None),
    (None, "::ffff:127.0.0.1", None, None),
    (None, "10.0.0.8", None, 403),
    (None, None, None, 403),
    (None, "127.0.0.1", TOKEN, 401),  # a token set is asked of everyone, loopback too
    ("Bearer wrong-token-0123456789", "10.0.0.8", TOKEN, 401),
    (f"Basic {TOKEN}", "10.0.0.8", TOKEN, 401),
    (f"Bearer {TOKEN}", "10.0.0.8", TOKEN, None),
    (f"bearer {TOKEN}", "10.0.0.8", TOKEN, None),
])
def test_who_may_scrape(authorization, peer, token, status):
    refused = refusal(authorization, peer, token)
    assert (refused.status if refused else None) == status
    if status == 401:
        assert refused.headers == {"WWW-Authenticate": "Bearer"}


def test_the_token_setting_is_read_strictly():
    assert metrics_token({}) is None and metrics_token({TOKEN_ENV: "  "}) is None
    assert metrics_token({TOKEN_ENV: TOKEN}) == TOKEN
    for bad in ("short", "has a space in the middle"):
        with pytest.raises(MetricsConfigError, match=TOKEN_ENV):
            metrics_token({TOKEN_ENV: bad})


# ------------------------------------------------------------------ the web server
def fake_rasa(engine):
    """Rasa's offercall channel, scripted: the opening starts the conversation as the action
    server would, each message is echoed, and ``出错`` makes the turn fail."""

    def start(conversation_id: str, customer_id: str) -> None:
        with session_scope(engine) as session:
            offer = store.get_customer_offer(session, customer_id)
            store.start_conversation(session, conversation_id, customer_id, "chat", offer.offer_id)

    async def turn(request: web.Request) -> web.Response:
        body = await request.json()
        if body["message"] == "/session_start":
            await asyncio.to_thread(start, body["sender"], body["metadata"]["customer_id"])
            return web.json_response([{"text": "您好"}])
        if body["message"] == "出错":
            return web.json_response({"error": "the assistant failed on this turn"}, status=500)
        return web.json_response([{"text": f"答：{body['message']}"}])

    return turn


@pytest.fixture
async def settings(aiohttp_server, staffed, db_url, tmp_path):
    rasa = web.Application()
    rasa.router.add_post("/webhooks/offercall/webhook", fake_rasa(staffed))
    server = await aiohttp_server(rasa)
    return dataclasses.replace(stack_settings(tmp_path / "var", db_url),
                               rasa_url=str(server.make_url("")).rstrip("/"))


@pytest.fixture
async def client(aiohttp_client, settings, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    return await aiohttp_client(init_app(settings))


async def scrape(client) -> str:
    response = await client.get("/metrics")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return await response.text()


async def test_an_http_chat_turn_is_timed_and_a_failed_one_counted(client, settings):
    token = issue("C0001", settings.secret_key)
    opened = await (await client.post("/api/chat/start", json={"token": token})).json()
    url = f"/api/chat/{opened['conversation_id']}/messages"
    labels = {"channel": "chat", "via": "http"}
    before = await scrape(client)

    answer = await client.post(url, json={"token": token, "text": "利率多少"})
    assert (await answer.json())["texts"] == ["答：利率多少"]
    failed = await client.post(url, json={"token": token, "text": "出错"})
    assert failed.status == 503

    after = await scrape(client)
    count = "offercall_chat_turn_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 1  # the answered one
    failures = "offercall_chat_turn_failures_total"
    assert value(after, failures, **labels, reason="unavailable") - value(
        before, failures, **labels, reason="unavailable") == 1


async def next_message(ws) -> dict:
    while True:
        frame = await asyncio.wait_for(ws.receive_json(), 5)
        if frame["type"] == "message" and frame["sender"] == "bot":
            return frame


async def test_a_widget_turn_is_timed_until_the_reply_is_sent_and_an_apology_counted(
        client, settings):
    labels = {"channel": "chat", "via": "widget"}
    count, failures = "offercall_chat_turn_seconds_count", "offercall_chat_turn_failures_total"
    before = await scrape(client)
    ws = await client.ws_connect("/ws/widget")
    await ws.send_json({"type": "hello", "token": issue("C0001", settings.secret_key)})
    await next_message(ws)  # the opening: not a customer's turn
    during = await scrape(client)
    assert value(during, "offercall_websockets_open", route="/ws/widget") == 1

    await ws.send_json({"type": "message", "text": "利率多少", "client_id": "m-1"})
    assert (await next_message(ws))["text"] == "答：利率多少"
    await ws.send_json({"type": "message", "text": "出错", "client_id": "m-2"})
    assert "抱歉" in (await next_message(ws))["text"]  # the apology is the reply

    after = await scrape(client)
    assert value(after, count, **labels) - value(before, count, **labels) == 2
    assert value(after, failures, **labels, reason="unavailable") - value(
        before, failures, **labels, reason="unavailable") == 1
    await ws.close()
    await settles(client, "offercall_websockets_open", 0, route="/ws/widget")  # seen a moment later


async def settles(client, name: str, expected: float, **labels: str) -> None:
    """Scrapes until ``name`` shows ``expected`` (what another task does shows a moment later)."""
    deadline = time.monotonic() + 3
    while (seen := value(await scrape(client), name, **labels)) != expected:
        assert time.monotonic() < deadline, f"{name}{labels} is {seen}, not {expected}"
        await asyncio.sleep(0.02)


def enqueue(engine, customer="C0001") -> int:
    with session_scope(engine) as session:
        offer_id = store.get_customer_offer(session, customer).offer_id
        return handoffs.create_ticket(
            session, conversation_id=f"call-{customer}", customer_id=customer, offer_id=offer_id,
            channel="voice", reason="customer_requested", transcript=[], intents=[], now=utcnow())


async def test_the_queue_gauges_follow_a_ticket_from_waiting_to_claimed(client, staffed):
    waiting = {"channel": "voice", "kind": "live"}
    empty = await scrape(client)
    assert value(empty, "offercall_handoff_queue_up") == 1
    assert value(empty, "offercall_handoff_queue_length", **waiting) == 0
    assert "13800138001" not in empty and "C0001" not in empty  # no personal data, ever

    ticket = enqueue(staffed)
    queued = await scrape(client)
    assert value(queued, "offercall_handoff_queue_length", **waiting) == 1
    assert value(queued, "offercall_handoff_oldest_wait_seconds", **waiting) >= 0
    assert value(queued, "offercall_handoff_with_agents") == 0

    login = await client.post("/api/agent/login",
                              json={"username": "jt", "password": AGENT_PASSWORD})
    headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
    console = await client.ws_connect("/ws/agent", headers=headers)  # the agent is online
    assert (await asyncio.wait_for(console.receive_json(), 5))["type"]
    claimed = await client.post(f"/api/agent/tickets/{ticket}/claim", headers=headers)
    assert claimed.status == 200, await claimed.text()
    taken = await scrape(client)
    assert value(taken, "offercall_handoff_queue_length", **waiting) == 0
    assert value(taken, "offercall_handoff_with_agents") == 1
    assert value(taken, "offercall_websockets_open", route="/ws/agent") == 1
    await settles(client, "offercall_agents_online", 1, role="agent")  # the console's presence
    assert value(taken, "offercall_handoff_sla_breaches_total") == 0
    await console.close()


async def test_with_a_token_set_a_scrape_without_it_is_refused(
        aiohttp_client, settings, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    client = await aiohttp_client(init_app(settings))
    assert (await client.get("/metrics")).status == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
    allowed = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status == 200 and "offercall_handoff_queue_length" in await allowed.text()


# ------------------------------------------------------------------ the dialer worker
class Lines:
    """A SIP stack's line count."""

    max_calls = 4

    def calls_in_flight(self) -> int:
        return 1


async def test_the_workers_metrics_count_calls_in_flight_placed_and_ended(
        staffed, db_url, tmp_path):
    settings = stack_settings(tmp_path / "var", db_url)
    ids = load_customers(staffed, tmp_path, 2)
    network = ScriptedNetwork(staffed, call_s=0.4)
    worker = Worker(staffed, ScriptedPlacing(network), poll_s=0.02, dialer_poll_s=0.02)
    runner = await _health_site(worker, settings, Lines())
    url = f"http://{settings.web_host}:{settings.worker_port}/metrics"
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with aiohttp.ClientSession() as http:
            async def metrics() -> str:
                async with http.get(url) as response:
                    assert response.status == 200
                    return await response.text()

            before = await metrics()
            running_campaign(staffed, "m1", ids)
            await until(lambda: len(network.dials) == 2, what="both dials")
            busy = await metrics()
            assert value(busy, "offercall_calls_in_flight", kind="campaign") == 2
            assert value(busy, "offercall_dialers_running") == 1
            assert value(busy, "offercall_sip_lines_in_use") == 1
            assert value(busy, "offercall_sip_lines_max") == 4
            await until(lambda: status_of(staffed, "m1") == "done", what="the campaign to end")
            await until(lambda: not worker.dialers(), what="the dialer to end")
            after = await metrics()
    finally:
        stop.set()
        await task
        await runner.cleanup()
    for name in ("offercall_calls_placed_total", "offercall_calls_ended_total"):
        assert value(after, name) - value(before, name) == 2, name
    assert value(after, "offercall_calls_in_flight", kind="campaign") == 0


# ------------------------------------------------------------------ voice turns
def test_a_voice_turns_latency_is_observed_when_its_first_audio_plays():
    from prometheus_client import REGISTRY

    def count() -> float:
        return REGISTRY.get_sample_value("offercall_voice_turn_seconds_count",
                                         {"channel": "voice"}) or 0.0

    before = count()
    entry = TranscriptEntry(speaker="customer", text="利率多少", start_ms=0, end_ms=900)
    timeline = TurnLatency(entry, endpoint_wall=10.0, final_wall=10.2, replied_wall=10.5)
    assert timeline.finish(first_audio_wall=10.75)["total"] == 750.0
    assert count() - before == 1
    assert REGISTRY.get_sample_value("offercall_voice_turn_stage_seconds_sum",
                                     {"stage": "nlu_dialogue"}) >= 0.3 - 1e-9


# ------------------------------------------------------------------ the action server
def tracker(**slots: str) -> dict:
    return {"sender_id": "metrics-test", "slots": slots, "latest_message": {}, "events": [],
            "active_loop": {}}


async def test_the_action_servers_metrics_count_runs_and_failures(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), TOKEN_ENV: TOKEN,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'unmigrated.db'}", "SANIC_HOST": "127.0.0.1"}
    log_path = tmp_path / "actions.log"
    with log_path.open("wb") as log:  # the command line processes.py runs, with its own port
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.action_server", "--actions", "bot.actions",
            "--port", str(port), cwd=PROJECT_ROOT, env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 15
            while True:
                assert process.returncode is None, log_path.read_text()[-2000:]
                try:
                    async with http.get(f"{base}/health") as health:
                        if health.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, "the action server did not start"
                await asyncio.sleep(0.05)

            async def run(action: str, **slots: str) -> int:
                call = {"next_action": action, "tracker": tracker(**slots), "domain": {},
                        "version": "3.6.2"}
                async with http.post(f"{base}/webhook", json=call) as response:
                    return response.status

            assert await run("action_repeat_last") == 200
            assert await run("action_present_offer", customer_id="C0001") == 500  # no schema
            assert await run("no_such_action") == 404
            async with http.get(f"{base}/metrics") as refused:
                assert refused.status == 401
            async with http.get(f"{base}/metrics", headers=auth) as response:
                assert response.status == 200
                text = await response.text()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 10)
    seconds = "offercall_action_seconds_count"
    assert value(text, seconds, action="action_repeat_last") == 1
    assert value(text, seconds, action="action_present_offer") == 1
    assert value(text, seconds, action="unknown") == 1  # a stray name is not a label
    failures = "offercall_action_failures_total"
    assert value(text, failures, action="action_repeat_last") == 0
    assert value(text, failures, action="action_present_offer") == 1
    assert value(text, failures, action="unknown") == 1
    assert "no_such_action" not in text
