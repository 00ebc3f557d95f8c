"""Contact plans at work on a controllable clock, on SQLite and PostgreSQL: a text through real
Kannel to the fake phones, an app pop-up, a call (the dialer's own claim and finish), and a
branch lead; and a plan that stops when the customer opts out, applies or refuses."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from branches.lead_sources import collect_leads
from core.vocabulary import ConversationOutcome, LeadSource
from outbound import campaigns, popups
from outbound.campaigns import AttemptOutcome, CampaignConfig
from outbound.plan_runner import PlanRunner
from outbound.sms_channel import SmsChannel
from persistence import handoffs, store
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import BranchLeadSource, CampaignTarget, PlanStepTaken
from tests.conftest import QUEUE_NOW
from tests.kannel_network import kannel_network
from tests.stack import free_port

T0 = QUEUE_NOW
HOUR = timedelta(hours=1)
# 主动授信: SMS on day 1, a pop-up that afternoon, a call on day 2, a branch lead on day 5
PLAN = {"steps": [
    {"channel": "sms"},
    {"channel": "popup", "wait_hours": 4},
    {"channel": "call", "wait_hours": 20},
    {"channel": "branch_lead", "wait_hours": 72},
]}
CUSTOMERS = ["C0001", "C0003", "C0004", "C0005"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self):
        return self.now


def _campaign(engine, customers=CUSTOMERS, plan=PLAN) -> str:
    config = CampaignConfig(window_start="00:00", window_end="00:00", max_attempts=1, plan=plan)
    with session_scope(engine) as session:
        campaigns.create_campaign(session, "plan", "联络计划", "simulated", config, T0,
                                  actor=Actor.command_line())
        campaigns.add_targets(session, "plan", customers, T0)
        campaigns.command(session, "plan", "start", Actor.command_line(), T0)
    return "plan"


def _steps(engine, customer_id: str) -> list[tuple[int, str, str, object]]:
    with session_scope(engine) as session:
        return [(s.step_no, s.channel, s.result, s.taken_at - T0) for s in session.scalars(
            select(PlanStepTaken).where(PlanStepTaken.customer_id == customer_id)
            .order_by(PlanStepTaken.step_no))]


def _target(engine, customer_id: str) -> CampaignTarget:
    with session_scope(engine) as session:
        return session.execute(select(CampaignTarget).where(
            CampaignTarget.customer_id == customer_id)).scalar_one()


def _dial_everyone_due(engine, now, outcome: str = "no_answer") -> list[str]:
    """What the dialer does with the due calls: claims them and records how they ended."""
    ids = (f"call-{n}" for n in itertools.count(int(now.timestamp())))
    with session_scope(engine) as session:
        claimed = campaigns.claim_due(session, "plan", 10, now, "dialer-1", lambda: next(ids))
    with session_scope(engine) as session:
        for job in claimed.jobs:
            campaigns.finish_attempt(session, job.attempt_id, "dialer-1",
                                     AttemptOutcome(outcome, {}), now)
    return [job.customer_id for job in claimed.jobs]


@pytest.fixture
def world(staffed, tmp_path):
    """The staffed database, Kannel with its phones, and a runner on the test clock."""
    clock = Clock()
    with kannel_network(tmp_path / "kannel", f"http://127.0.0.1:{free_port()}") as network:
        yield staffed, network, clock


async def _runner(staffed, network, clock, http) -> PlanRunner:
    channel = SmsChannel(engine=staffed, gateway=network.gateway(), http=http, bank="邮储银行",
                         hotline="95580", link_for=lambda c: f"https://b.example/chat?t={c}",
                         rate=1000, clock=clock)
    return PlanRunner(staffed, sms=channel, bank="邮储银行", clock=clock)


async def _at(runner: PlanRunner, clock: Clock, hours: float) -> None:
    clock.now = T0 + hours * HOUR
    await runner.advance("plan", clock.now)


async def test_a_silent_customer_gets_each_step_on_time_and_ends_as_a_branch_lead(world):
    staffed, network, clock = world
    _campaign(staffed, ["C0001"])
    async with aiohttp.ClientSession() as http:
        runner = await _runner(staffed, network, clock, http)
        await _at(runner, clock, 0)
        phone = store_phone(staffed, "C0001")
        text = (await asyncio.to_thread(network.phones.wait_for_message, phone)).text
        assert "https://b.example/chat?t=C0001" in text and text.endswith("回复TD退订")
        await _at(runner, clock, 3.9)  # the pop-up's wait is not over
        assert [s[1] for s in _steps(staffed, "C0001")] == ["sms"]
        await _at(runner, clock, 4)
        with session_scope(staffed) as session:
            assert popups.pending_popup(session, "C0001", clock.now) is not None
        await _at(runner, clock, 24)
        assert _target(staffed, "C0001").status == "pending"  # the dialer's now
        assert _dial_everyone_due(staffed, clock.now) == ["C0001"]
        assert _target(staffed, "C0001").status == "planned"  # back to the plan after the call
        await _at(runner, clock, 95)
        await _at(runner, clock, 96)
    assert _steps(staffed, "C0001") == [
        (0, "sms", "submitted", timedelta(0)), (1, "popup", "pending", 4 * HOUR),
        (2, "call", "dialling", 24 * HOUR), (3, "branch_lead", "requested", 96 * HOUR)]
    target = _target(staffed, "C0001")
    assert (target.status, target.last_outcome, target.plan_step) == ("done", "no_answer", 4)
    with session_scope(staffed) as session:
        collect_leads(session, clock.now)
        sources = session.scalars(select(BranchLeadSource.source)).all()
    assert LeadSource.CONTACT_PLAN in sources


async def test_the_plan_stops_for_whoever_opted_out_applied_or_refused_and_goes_on_for_the_rest(world):
    staffed, network, clock = world
    _campaign(staffed)
    async with aiohttp.ClientSession() as http:
        runner = await _runner(staffed, network, clock, http)
        await _at(runner, clock, 0)
        await asyncio.to_thread(network.phones.wait_for_total, 4)
        with session_scope(staffed) as session:  # between the text and the pop-up:
            store.add_do_not_contact(session, customer_id=None, phone=store_phone(staffed, "C0003"),
                                     utterance="TD", conversation_id=None, source="sms")
            handoffs.create_ticket(session, conversation_id="chat-c4", customer_id="C0004",
                                   offer_id=None, channel="chat", reason="customer_requested",
                                   transcript=[], intents=[], now=T0 + HOUR)
            store.start_conversation(session, "chat-c5", "C0005", "chat", None)
            store.record_outcome(session, "chat-c5", ConversationOutcome.NOT_INTERESTED, "不需要")
        await _at(runner, clock, 4)
    assert [s[1] for s in _steps(staffed, "C0001")] == ["sms", "popup"]
    for customer, reason in [("C0003", "opt_out"), ("C0004", "applied"), ("C0005", "refused")]:
        assert [s[1] for s in _steps(staffed, customer)] == ["sms"], customer
        target = _target(staffed, customer)
        assert (target.status, target.final_reason) == ("done", f"plan stopped: {reason}")
    with session_scope(staffed) as session:
        assert not campaigns.progress(session, "plan").finished  # C0001 still has steps to go


async def test_a_text_outside_the_window_waits_for_it_and_two_workers_never_take_a_step_twice(world):
    staffed, network, clock = world
    night = CampaignConfig(window_start="09:00", window_end="20:00", max_attempts=1, plan=PLAN)
    with session_scope(staffed) as session:
        campaigns.create_campaign(session, "plan", "夜里", "simulated", night, T0,
                                  actor=Actor.command_line())
        campaigns.add_targets(session, "plan", CUSTOMERS, T0)
        campaigns.command(session, "plan", "start", Actor.command_line(), T0)
    async with aiohttp.ClientSession() as http:
        one = await _runner(staffed, network, clock, http)
        two = await _runner(staffed, network, clock, http)
        clock.now = T0 + 11 * HOUR  # 21:00 in Shanghai
        await asyncio.gather(one.advance("plan", clock.now), two.advance("plan", clock.now))
        assert all(_steps(staffed, c) == [] for c in CUSTOMERS)
        assert {_target(staffed, c).next_attempt_at for c in CUSTOMERS} == {T0 + 23 * HOUR}
        clock.now = T0 + 23 * HOUR  # 09:00 the next morning
        await asyncio.gather(one.advance("plan", clock.now), two.advance("plan", clock.now))
    assert all([s[1] for s in _steps(staffed, c)] == ["sms"] for c in CUSTOMERS)
    assert len(await asyncio.to_thread(network.phones.wait_for_total, 4)) == 4


def store_phone(engine, customer_id: str) -> str:
    with session_scope(engine) as session:
        return store.get_customer_offer(session, customer_id).phone


def test_a_plan_is_added_or_taken_away_before_the_start_only_and_its_steps_change_while_paused(staffed):
    actor = Actor.command_line()
    with session_scope(staffed) as session:
        campaigns.create_campaign(session, "later", "先打电话", "simulated",
                                  CampaignConfig(window_start="00:00", window_end="00:00"), T0,
                                  actor=actor)
        campaigns.add_targets(session, "later", ["C0001", "C0003"], T0)
        campaigns.change_settings(session, "later", {"plan": PLAN}, actor, T0)
    assert {_target(staffed, c).status for c in ("C0001", "C0003")} == {"planned"}
    with session_scope(staffed) as session:
        campaigns.command(session, "later", "start", actor, T0)
        campaigns.command(session, "later", "pause", actor, T0)
        shorter = {"steps": PLAN["steps"][:2]}
        changed = campaigns.change_settings(session, "later", {"plan": shorter}, actor, T0)
        assert set(changed) == {"plan"}
    with pytest.raises(campaigns.CampaignRefused, match="only before the campaign starts"), \
            session_scope(staffed) as session:
        campaigns.change_settings(session, "later", {"plan": None}, actor, T0)
    with pytest.raises(campaigns.CampaignError, match="bad contact plan: step 1"), \
            session_scope(staffed) as session:
        campaigns.change_settings(session, "later", {"plan": {"steps": [{"channel": "fax"}]}},
                                  actor, T0)
