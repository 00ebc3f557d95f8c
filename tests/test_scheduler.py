"""The always-on scheduler (``offercall worker``) on a controllable clock, on SQLite and
PostgreSQL: first dials, retries and booked callbacks at their time (callbacks booked in chat
too), a pause that holds within a second, and a worker killed with calls in flight and started
again that loses nobody and dials no attempt twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from core.settings import PROJECT_ROOT
from offercall.worker import Worker
from outbound import campaigns
from outbound.campaigns import CampaignConfig
from persistence import store
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import CallAttempt, Callback, CampaignTarget
from tests.scheduler_doubles import Clock, ScriptedNetwork, ScriptedPlacing
from tests.test_campaigns import ALL_DAY, NOW, load_customers

MANAGER = Actor("wang_mgr", "campaign_manager", account_id=7)
QUICK = {**ALL_DAY, "agent_gated": False, "retry_backoff_s": [600], "max_attempts": 3}


def running_campaign(engine, campaign_id, customer_ids, **settings) -> None:
    with session_scope(engine) as session:
        campaigns.create_campaign(session, campaign_id, "测试", "simulated",
                                  CampaignConfig.from_json({**QUICK, **settings}), NOW, actor=MANAGER)
        campaigns.add_targets(session, campaign_id, customer_ids, NOW)
        campaigns.command(session, campaign_id, "start", MANAGER, NOW)


async def until(condition, timeout_s: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def quiet_for(network, seconds: float = 0.3) -> None:
    """Lets the worker poll several times, and checks it dialled nobody meanwhile."""
    before = len(network.dials)
    await asyncio.sleep(seconds)
    assert len(network.dials) == before, network.dials[before:]


def status_of(engine, campaign_id) -> str:
    with session_scope(engine) as session:
        return campaigns.get_campaign(session, campaign_id).status


def started_worker(engine, network):
    worker = Worker(engine, ScriptedPlacing(network), clock=network.clock, poll_s=0.02,
                    dialer_poll_s=0.02)
    stop = asyncio.Event()
    return worker, stop, asyncio.create_task(worker.run(stop))


async def test_retries_and_callbacks_are_dialled_at_their_time_and_not_before(engine, tmp_path):
    a, b, c = load_customers(engine, tmp_path, 3)
    clock = Clock(NOW)
    network = ScriptedNetwork(engine, clock, {(a, 1): "no_answer", (b, 1): "callback+7200"})
    running_campaign(engine, "c1", [a, b, c])
    worker, stop, task = started_worker(engine, network)
    try:
        await until(lambda: len(network.dials) == 3, what="the three first dials")
        await quiet_for(network)
        clock.advance(seconds=599)  # the retry is due at +600 s
        await quiet_for(network)
        clock.advance(seconds=2)
        await until(lambda: len(network.dials) == 4, what="the retry")
        assert (network.dials[3].customer_id, network.dials[3].attempt_no) == (a, 2)
        clock.advance(seconds=7200 - 601 - 1)  # the callback is due at +7200 s
        await quiet_for(network)
        clock.advance(seconds=2)
        await until(lambda: len(network.dials) == 5, what="the callback")
        assert (network.dials[4].customer_id, network.dials[4].attempt_no) == (b, 2)
        await until(lambda: status_of(engine, "c1") == "done", what="the campaign to finish")
        await until(lambda: not worker._running, what="the dialer to end")
    finally:
        stop.set()
        await task
    late = [d for d in network.dials if d.attempt_no == 2]
    assert [d.at - NOW for d in late] == [timedelta(seconds=601), timedelta(seconds=7201)]


async def test_a_callback_booked_in_chat_is_dialled_by_the_campaign_that_reached_the_customer(
        engine, tmp_path):
    a, b = load_customers(engine, tmp_path, 2)
    clock = Clock(NOW)
    # b books a callback for tomorrow on the call, which keeps the campaign running
    network = ScriptedNetwork(engine, clock, {(b, 1): "callback+86400"})
    running_campaign(engine, "c1", [a, b])
    worker, stop, task = started_worker(engine, network)
    try:
        await until(lambda: len(network.dials) == 2, what="the first dials")
        await until(lambda: worker._running["c1"].dialer.status.finished == 2, what="both calls to end")
        with session_scope(engine) as session:  # a, no longer interested on the call, then chats
            assert session.execute(select(CampaignTarget.status).where(
                CampaignTarget.customer_id == a)).scalar() == "done"
            store.book_callback(session, conversation_id="chat-7f3a", customer_id=a,
                                due_at=NOW + timedelta(minutes=30), requested_text="半小时后打给我")
        await quiet_for(network)
        clock.advance(minutes=31)
        await until(lambda: len(network.dials) == 3, what="the chat callback")
        assert (network.dials[2].customer_id, network.dials[2].attempt_no) == (a, 2)
        with session_scope(engine) as session:
            assert session.execute(select(Callback.status).where(
                Callback.conversation_id == "chat-7f3a")).scalar() == "queued"
        await quiet_for(network)  # once
    finally:
        stop.set()
        await task


async def test_a_pause_holds_within_a_second_and_a_resume_finishes_the_campaign(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 12)
    network = ScriptedNetwork(engine, call_s=0.15)
    running_campaign(engine, "c1", ids, max_concurrency=2)
    worker, stop, task = started_worker(engine, network)
    try:
        await until(lambda: len(network.dials) >= 3, what="some dials")
        with session_scope(engine) as session:
            campaigns.command(session, "c1", "pause", MANAGER, NOW)
        paused_at = time.monotonic()
        await until(lambda: not worker._running, what="the dialer to stop after its calls")
        await asyncio.sleep(0.5)
        after_pause = [d for d in network.dials if d.wall > paused_at]
        assert all(d.wall - paused_at < 1.0 for d in after_pause)
        assert len(after_pause) <= 2  # at most a round already being claimed
        dialled_while_paused = len(network.dials)
        assert dialled_while_paused < len(ids)
        with session_scope(engine) as session:  # the calls in flight ended and were recorded
            assert set(session.execute(select(CallAttempt.status)).scalars()) == {"done"}
            campaigns.command(session, "c1", "resume", MANAGER, NOW)
        await until(lambda: status_of(engine, "c1") == "done", what="the campaign to finish")
    finally:
        stop.set()
        await task
    dialled = [d.customer_id for d in network.dials]
    assert sorted(dialled) == sorted(ids)  # everybody once, nobody twice


def test_a_worker_killed_with_calls_in_flight_and_started_again_loses_nobody_and_doubles_no_dial(
        engine, db_url, tmp_path):
    ids = load_customers(engine, tmp_path, 16)
    now = datetime.now(timezone.utc)
    with session_scope(engine) as session:
        campaigns.create_campaign(session, "kill", "测试", "simulated", CampaignConfig.from_json(
            {**QUICK, "max_concurrency": 3, "lease_s": 2, "retry_backoff_s": [1]}), now, actor=MANAGER)
        campaigns.add_targets(session, "kill", ids, now)
        campaigns.command(session, "kill", "start", MANAGER, now)
    dial_log = tmp_path / "dials.jsonl"
    command = [sys.executable, "-m", "tests.scheduler_doubles", db_url, str(dial_log)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}

    def attempts():
        with session_scope(engine) as session:
            return session.execute(select(CallAttempt).where(CallAttempt.campaign_id == "kill")
                                   ).scalars().all()

    first = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill it with calls in flight and some already done
        statuses = [a.status for a in attempts()]
        if statuses.count("done") >= 3 and "dialing" in statuses:
            break
        time.sleep(0.05)
    else:
        first.kill()
        pytest.fail("the worker never had calls in flight after three finished")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    in_flight_at_kill = [a.status for a in attempts()].count("dialing")

    second = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while status_of(engine, "kill") != "done":
            assert time.monotonic() < deadline, "the restarted worker did not finish the campaign"
            assert second.poll() is None, "the restarted worker died"
            time.sleep(0.1)
    finally:
        second.terminate()
        second.wait(timeout=20)

    dialled = [(d["customer_id"], d["attempt_no"])
               for d in map(json.loads, dial_log.read_text().splitlines())]
    assert len(dialled) == len(set(dialled))  # no attempt was dialled twice
    recorded = attempts()
    assert set(dialled) == {(a.customer_id, a.attempt_no) for a in recorded}
    interrupted = [a for a in recorded if a.status == "interrupted"]
    assert len(interrupted) == in_flight_at_kill > 0
    assert {a.status for a in recorded} == {"done", "interrupted"}
    finished = {a.customer_id for a in recorded if a.status == "done"}
    assert finished == set(ids)  # every customer's call ended, the cut-off ones on a retry
    for attempt in recorded:  # only the cut-off calls were dialled again
        if attempt.attempt_no > 1:
            assert any(i.customer_id == attempt.customer_id for i in interrupted)


async def test_a_customer_the_campaign_never_reached_becomes_a_lead_of_the_nearest_branch_which_loses_it_when_late(
        engine, tmp_path):
    from branches.leads import events_of, leads_of_branch
    from core.settings import PROJECT_ROOT
    from persistence.branches import load_branches

    a, b = load_customers(engine, tmp_path, 2)  # both of 金堂县
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    clock = Clock(NOW)
    network = ScriptedNetwork(engine, clock, {(a, 1): "no_answer", (b, 1): "callback+86400"})
    running_campaign(engine, "c1", [a, b], max_attempts=1)
    worker = Worker(engine, ScriptedPlacing(network), clock=clock, poll_s=0.02, dialer_poll_s=0.02,
                    leads_every_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    def leads(branch: str):
        with session_scope(engine) as session:
            return leads_of_branch(session, branch, clock())

    try:
        await until(lambda: worker.leads_opened == 1, what="the unreached customer's lead")
        [lead] = leads("JT")  # 金堂县支行 is the nearest branch
        assert (lead.customer_id, lead.source, lead.status) == (a, "campaign_unreached", "assigned")
        clock.advance(days=2, seconds=1)  # nobody at 金堂 claimed it within 2 days
        await until(lambda: worker.leads_rerouted == 1, what="the late lead to move")
        assert leads("JT") == []
        [moved] = leads("CD")  # the next nearest: 成都分行营业部
        with session_scope(engine) as session:
            [moved_why] = [e for e in events_of(session, lead.id) if e.kind == "rerouted"]
        assert moved.id == lead.id and (moved_why.from_branch, moved_why.to_branch) == ("JT", "CD")
        assert moved_why.reason.startswith("分派后 2 天内未认领")
    finally:
        stop.set()
        await task
