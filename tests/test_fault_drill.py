"""The fault drill as a test: chat customers talk to the scaled-out stack (two Rasa, two action
and two web servers behind haproxy, Redis's locks, PostgreSQL) through the chat widget's
websocket on the balancer's port, while a dialer worker holds 4 simulated calls at a time. In
turn the drill kills -9 a Rasa server, an action server, a web server and the worker, then
restarts PostgreSQL; nobody restarts anything by hand. Afterwards:

- every customer turn got the bot's answer or an apology within 5 s;
- no chat message the server acknowledged is lost or stored twice;
- no call attempt was dialled twice and every customer's call ended;
- the stack served again within 30 s of each fault.

The worker is offercall's real ``Worker`` over a scripted phone network (the network is the one
part beyond this machine); ``benchmarks/bench_fault_drill.py`` runs the same drill with 16
customers and prints its figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from chat.lost_turns import LOST_TURN_APOLOGY
from core.customer_tokens import issue
from chat.widget import UNAVAILABLE
from offercall.processes import Service
from outbound import campaigns
from outbound.campaigns import CampaignConfig
from persistence.engine import session_scope
from persistence.schema import CallAttempt, Message
from tests.test_campaigns import ALL_DAY, MANAGER, load_customers

pytestmark = [pytest.mark.model, pytest.mark.postgres]

CUSTOMERS = 8
TURNS = ["是我", "利率多少", "多久到账", "有手续费吗", "要什么材料"]
ANSWER_WITHIN_S = 5.0
SERVED_AGAIN_WITHIN_S = 30.0
SETTLE_S = 3.0
THINK_S = 0.3
CALLS_AT_ONCE = 4
APOLOGIES = (UNAVAILABLE, LOST_TURN_APOLOGY)


class Dropped(Exception):
    """The socket closed under the customer (its server was killed)."""


@dataclass
class Turn:
    phase: str
    sent_at: float
    took_s: float
    kind: str  # answered | apology


@dataclass
class Drill:
    phase: str = "quiet"
    faults: dict[str, float] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    """client id -> the message id the server acknowledged for it."""
    stop: bool = False
    customers: list[Customer] = field(default_factory=list)


@dataclass
class Customer:
    """A customer in the widget: reconnects after a drop and says what was not answered again
    (with the same client id, as the page does)."""

    number: int
    url: str
    token: str
    drill: Drill
    conversation: str | None = None
    last_id: int = 0
    turn_no: int = 0
    pending: tuple[str, str, float] | None = None
    """(client id, words, when first sent) of the turn waiting for its answer."""

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            while not self.drill.stop:
                try:
                    async with http.ws_connect(self.url, timeout=5.0) as ws:
                        await self._converse(ws)
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError, Dropped):
                    await asyncio.sleep(0.2)  # the page reconnects after a short pause

    async def _frame(self, ws: aiohttp.ClientWebSocketResponse, timeout: float) -> dict:
        message = await ws.receive(timeout=timeout)
        if message.type != aiohttp.WSMsgType.TEXT:
            raise Dropped(str(message.type))
        frame = json.loads(message.data)
        if frame.get("type") == "message":
            self.last_id = max(self.last_id, frame["id"])
        return frame

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_json({"type": "hello", "token": self.token, "after": self.last_id,
                            **({"conversation_id": self.conversation} if self.conversation else {})})
        while (frame := await self._frame(ws, 10.0))["type"] != "ready":
            if frame["type"] == "error":
                raise Dropped(frame["message"])  # the database is away: try again shortly
        if self.conversation is None:
            self.conversation = frame["conversation_id"]
            while not ((f := await self._frame(ws, 10.0))["type"] == "message" and f["sender"] == "bot"):
                pass
        while not self.drill.stop:
            if self.pending is None:
                if self.turn_no == len(TURNS):  # a new conversation, as a new customer would
                    self.conversation, self.last_id, self.turn_no = None, 0, 0
                    return
                client_id = f"drill-{self.number}-{self.conversation[-8:]}-{self.turn_no}"
                self.pending = (client_id, TURNS[self.turn_no], time.monotonic())
            client_id, words, sent_at = self.pending
            await ws.send_json({"type": "message", "text": words, "client_id": client_id})
            kind = await self._answer(ws, client_id, sent_at)
            self.drill.turns.append(Turn(self.drill.phase, sent_at, time.monotonic() - sent_at, kind))
            self.pending, self.turn_no = None, self.turn_no + 1
            await asyncio.sleep(THINK_S)

    async def _answer(self, ws: aiohttp.ClientWebSocketResponse, client_id: str, sent_at: float) -> str:
        """``answered`` or ``apology``, once the customer sees one (Dropped if the socket goes)."""
        mine = None
        while True:
            frame = await self._frame(ws, max(0.1, sent_at + 30 - time.monotonic()))
            if frame["type"] == "error" and frame["status"] == 503:
                return "apology"
            if frame["type"] == "ack" and frame["client_id"] == client_id:
                mine = self.drill.acked[client_id] = frame["id"]
            elif frame["type"] == "message" and frame.get("client_id") == client_id:
                mine = frame["id"]  # replayed after a reconnect
            elif (frame["type"] == "message" and frame["sender"] == "bot" and mine is not None
                  and frame["id"] > mine):
                return "apology" if frame["text"] in APOLOGIES else "answered"
            elif frame["type"] == "message" and frame["text"] == LOST_TURN_APOLOGY:
                return "apology"  # the server that had the turn died before the ack came


def _dialling(engine, campaign_id: str) -> int:
    with session_scope(engine) as session:
        return session.execute(select(func.count()).select_from(CallAttempt).where(
            CallAttempt.campaign_id == campaign_id, CallAttempt.status == "dialing")).scalar_one()


def _calls_campaign(stack, tmp_path: Path) -> tuple[str, list[str]]:
    ids = load_customers(stack.engine, tmp_path, 40)
    now = datetime.now(timezone.utc)
    with session_scope(stack.engine) as session:
        campaigns.create_campaign(session, "drill", "演练", "simulated", CampaignConfig.from_json(
            {**ALL_DAY, "agent_gated": False, "max_attempts": 3, "max_concurrency": CALLS_AT_ONCE,
             "lease_s": 2, "retry_backoff_s": [1]}), now, actor=MANAGER)
        campaigns.add_targets(session, "drill", ids, now)
        campaigns.command(session, "drill", "start", MANAGER, now)
    return "drill", ids


async def _kill_worker_with_calls_in_flight(stack, name: str) -> int:
    """kill -9 the worker once it has its 4 calls in flight; returns how many it had."""
    deadline = time.monotonic() + 20
    while (dialling := await asyncio.to_thread(_dialling, stack.engine, "drill")) < CALLS_AT_ONCE:
        assert time.monotonic() < deadline, "the worker never had 4 calls in flight"
        await asyncio.sleep(0.05)
    os.kill(stack.supervisor.started[name].pid, signal.SIGKILL)
    return dialling


def test_the_fault_drill_loses_nothing_and_every_turn_is_answered_in_time(
        bot_stack_postgres, postgres_server, tmp_path):
    stack = bot_stack_postgres
    settings = stack.settings
    campaign_id, call_customers = _calls_campaign(stack, tmp_path)
    dial_log = tmp_path / "dials.jsonl"
    stack.supervisor.supervise(Service(
        "drill-worker", [sys.executable, "-m", "tests.scheduler_doubles", settings.database_url,
                         str(dial_log), "2.0"], "", probe=lambda: True))
    try:
        drill = Drill()
        url = f"ws://127.0.0.1:{settings.web_port}/ws/widget"
        token = issue("C0001", settings.secret_key)
        in_flight_at_kill: list[int] = []

        async def worker_fault() -> None:
            in_flight_at_kill.append(await _kill_worker_with_calls_in_flight(stack, "drill-worker"))

        def kill(name: str):
            async def fault() -> None:
                os.kill(stack.supervisor.started[name].pid, signal.SIGKILL)
            return fault

        async def restart_postgres() -> None:
            await asyncio.to_thread(postgres_server.restart)

        faults = [("kill -9 rasa-1", kill("rasa-1")), ("kill -9 actions-1", kill("actions-1")),
                  ("kill -9 web-1", kill("web-1")), ("kill -9 the worker", worker_fault),
                  ("restart PostgreSQL", restart_postgres)]

        async def run() -> None:
            drill.customers = [Customer(i, url, token, drill) for i in range(CUSTOMERS)]
            customers = [asyncio.create_task(customer.run()) for customer in drill.customers]
            await asyncio.sleep(SETTLE_S)
            for name, fault in faults:
                drill.phase = name
                drill.faults[name] = time.monotonic()
                await fault()
                await asyncio.sleep(SETTLE_S)
            drill.stop = True
            _, hung = await asyncio.wait(customers, timeout=40)
            for customer in hung:  # a turn still unanswered 40 s after the drill: name it
                customer.cancel()
            stuck = [c for c in drill.customers if c.pending is not None]
            assert not hung, f"turns never answered nor apologised for: {[c.pending for c in stuck]}"
            for task in customers:
                task.result()

        asyncio.run(run())

        kinds = Counter((turn.phase, turn.kind) for turn in drill.turns)
        print("fault drill:", dict(kinds))
        slow = [turn for turn in drill.turns if turn.took_s > ANSWER_WITHIN_S]
        assert not slow, f"turns without an answer or an apology within 5 s: {slow}"
        assert kinds[("quiet", "answered")] >= CUSTOMERS, "the stack served before the faults"
        for name, at in drill.faults.items():
            again = [t.sent_at + t.took_s - at for t in drill.turns
                     if t.kind == "answered" and t.sent_at >= at]
            assert again and min(again) < SERVED_AGAIN_WITHIN_S, f"not served again after {name}"

        with session_scope(stack.engine) as session:
            stored = dict(session.execute(select(Message.client_msg_id, Message.id).where(
                Message.client_msg_id.in_(list(drill.acked)))).all())
        assert stored == drill.acked, "every acknowledged chat message is in the log, once"

        deadline = time.monotonic() + 60
        while True:
            with session_scope(stack.engine) as session:
                status = campaigns.get_campaign(session, campaign_id).status
            if status == "done":
                break
            assert time.monotonic() < deadline, "the restarted worker did not finish the calls"
            time.sleep(0.2)
        restarts = {name: stack.supervisor.restarts(name) for name in stack.supervisor.started}
    finally:
        stack.supervisor.release("drill-worker")
    dialled = [(d["customer_id"], d["attempt_no"])
               for d in map(json.loads, dial_log.read_text().splitlines())]
    assert len(dialled) == len(set(dialled)), "no attempt was dialled twice"
    with session_scope(stack.engine) as session:
        attempts = session.execute(select(CallAttempt).where(
            CallAttempt.campaign_id == campaign_id)).scalars().all()
        assert {(a.customer_id, a.attempt_no) for a in attempts} == set(dialled)
        assert {a.customer_id for a in attempts if a.status == "done"} == set(call_customers)
    assert in_flight_at_kill and in_flight_at_kill[0] >= CALLS_AT_ONCE
    print("restarts:", restarts)
    for name in ("rasa-1", "actions-1", "web-1", "drill-worker"):
        assert restarts[name] == 1, f"{name} was restarted {restarts[name]} times, not once"
    assert restarts["rasa-2"] == restarts["actions-2"] == restarts["web-2"] == 0, \
        "the survivors (and the worker, through PostgreSQL's restart) stay up"
