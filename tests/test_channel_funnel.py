"""The funnel across channels: customers (not messages) per stage of each channel, honest
counting, which text or pop-up opened a chat, per variant and per branch; read back from real
records on SQLite and PostgreSQL; and its tables in the campaign report."""

from __future__ import annotations

import ast
import inspect
from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from sqlalchemy import select

from branches import leads
from core.vocabulary import LeadSource
from outbound import campaigns, channel_funnel, popups, sms_messages
from outbound.campaigns import AttemptOutcome, CampaignConfig
from outbound.channel_funnel import (
    CALL_STAGES,
    CHANNEL_STAGES,
    OPENER_WINDOW,
    BranchLeadFact,
    ChannelFacts,
    ChatFact,
    PopupFact,
    SmsFact,
    Touch,
    channel_funnels,
    chat_openers,
)
from outbound.channel_funnel_data import channel_facts
from outbound.funnel import ALL, NO_BRANCH, STAGES
from outbound.report import channel_funnel_json, render_html
from persistence import handoffs
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import Agent, CampaignTarget, PlanStepTaken
from tests.conftest import QUEUE_NOW
from tests.test_funnel import ANSWERED_TO_OFFER, TRANSFERRED, attempt
from tests.test_report import GENERATED, Page, campaign

T0 = datetime(2024, 5, 6, 1, 0, tzinfo=timezone.utc)
MINUTE, HOUR = timedelta(minutes=1), timedelta(hours=1)


def text(customer: str = "C1", at: timedelta = timedelta(0), *, variant: str = "A",
         branch: str | None = "JT", sent: bool = True, delivered: bool = False) -> SmsFact:
    """A text of the campaign written at T0 + ``at``, sent at once unless told otherwise."""
    return SmsFact(customer, variant, branch, "out", T0 + at,
                   submitted_at=T0 + at if sent else None, delivered=delivered)


def reply(customer: str = "C1", at: timedelta = HOUR, *, opted_out: bool = False,
          variant: str = "A") -> SmsFact:
    return SmsFact(customer, variant, "JT", "in", T0 + at, opted_out=opted_out)


def popup(customer: str = "C1", *, variant: str = "A", branch: str | None = "JT",
          shown: timedelta | None = None, clicked: timedelta | None = None,
          dismissed: timedelta | None = None) -> PopupFact:
    def when(offset: timedelta | None) -> datetime | None:
        return None if offset is None else T0 + offset

    return PopupFact(customer, variant, branch, T0, when(shown), when(clicked), when(dismissed))


def chat(customer: str = "C1", at: timedelta = 2 * HOUR, *, reasons: tuple[str, ...] = (),
         applied: bool = False, variant: str = "A", branch: str | None = "JT") -> ChatFact:
    return ChatFact(customer, variant, branch, T0 + at, frozenset(reasons), applied)


def stages(facts: ChannelFacts, channel: str, row: str = ALL) -> dict[str, int]:
    found = channel_funnels(facts)[channel]
    return dict((found.total if row == ALL else found.by_variant[row]).stages)


# --- texts and pop-ups ---------------------------------------------------------------------


def test_a_customer_texted_twice_counts_once_at_each_stage_the_texts_reached():
    facts = ChannelFacts(sms=(text("C1", delivered=True), text("C1", HOUR, delivered=True),
                              text("C2", sent=False)))
    found = channel_funnels(facts)["sms"]
    assert found.total.customers == 2
    assert found.total.stages == {"queued": 2, "sent": 1, "delivered": 1, "replied": 0,
                                  "chatted": 0, "opted_out": 0}
    assert found.total.share("sent") == 0.5


def test_stages_are_not_implied_a_delivery_without_a_recorded_submission_is_not_sent():
    facts = ChannelFacts(
        sms=(text("C1", sent=False, delivered=True), reply("C2", opted_out=True)),
        popups=(popup("C1", clicked=HOUR),))  # clicked, though the app never said shown
    assert stages(facts, "sms") == {"queued": 1, "sent": 0, "delivered": 1, "replied": 1,
                                    "chatted": 0, "opted_out": 1}
    assert stages(facts, "popup") == {"queued": 1, "shown": 0, "clicked": 1, "dismissed": 0,
                                      "chatted": 0}


def test_replies_count_customers_and_opting_out_twice_is_one_customer():
    facts = ChannelFacts(sms=(text("C1"), reply("C1", HOUR), reply("C1", 2 * HOUR, opted_out=True),
                              reply("C1", 3 * HOUR, opted_out=True), text("C2")))
    assert stages(facts, "sms")["replied"] == 1
    assert stages(facts, "sms")["opted_out"] == 1


def test_pop_ups_count_shown_clicked_and_dismissed_per_customer():
    facts = ChannelFacts(popups=(
        popup("C1", shown=HOUR, clicked=HOUR), popup("C1", shown=3 * HOUR),
        popup("C2", shown=HOUR, dismissed=2 * HOUR), popup("C3")))
    assert stages(facts, "popup") == {"queued": 3, "shown": 2, "clicked": 1, "dismissed": 1,
                                      "chatted": 0}


# --- which channel opened a chat -----------------------------------------------------------


def test_a_chat_goes_to_the_latest_text_or_click_before_it():
    facts = ChannelFacts(
        sms=(text("C1"), text("C2", 30 * MINUTE), text("C3", 3 * HOUR)),
        popups=(popup("C1", shown=HOUR, clicked=HOUR), popup("C2", shown=0 * HOUR,
                                                             clicked=0 * HOUR),
                popup("C3", shown=HOUR, clicked=HOUR)),
        chats=(chat("C1"), chat("C2"), chat("C3")))
    # C1: the click after the text; C2: the text after the click; C3: its text came after the chat
    assert [(t.channel, t.customer_id) for t in chat_openers(facts)] == [
        ("popup", "C1"), ("sms", "C2"), ("popup", "C3")]
    assert stages(facts, "sms")["chatted"] == 1
    assert stages(facts, "popup")["chatted"] == 2
    assert stages(facts, "chat")["chatted"] == 3


def test_a_chat_opens_from_nothing_unsent_too_old_or_of_another_customer():
    facts = ChannelFacts(
        sms=(text("C1", sent=False), text("C2"), text("C3")),
        popups=(popup("C4", shown=HOUR),),  # shown, never clicked
        chats=(chat("C1"), chat("C2", OPENER_WINDOW + MINUTE), chat("C4"), chat("C9")))
    assert chat_openers(facts) == []
    assert stages(facts, "chat")["chatted"] == 4


def test_a_click_at_the_same_moment_as_a_text_opened_the_chat():
    facts = ChannelFacts(sms=(text("C1", HOUR),), popups=(popup("C1", clicked=HOUR),),
                         chats=(chat("C1", HOUR),))
    assert [t.channel for t in chat_openers(facts)] == ["popup"]


def test_the_opener_credits_its_own_variant_and_branch():
    facts = ChannelFacts(sms=(text("C1", variant="B", branch="PD"),),
                         chats=(chat("C1", variant="A", branch="JT"),))
    [opened] = chat_openers(facts)
    assert (opened.variant, opened.branch, opened.at) == ("B", "PD", T0 + 2 * HOUR)


# --- chats, calls and leads ----------------------------------------------------------------


def test_chat_interest_is_asking_for_an_agent_or_accepting_not_the_bot_giving_up():
    facts = ChannelFacts(chats=(
        chat("C1", reasons=("not_understood",)),
        chat("C2", reasons=("customer_requested",), applied=True),
        chat("C3", reasons=("accepted_offer",)), chat("C3", 5 * HOUR), chat("C4")))
    assert stages(facts, "chat") == {"chatted": 4, "interested": 2, "handed_off": 3,
                                     "applied": 1}


def test_calls_keep_the_call_funnels_meaning_of_each_stage():
    assert set(CALL_STAGES) <= set(STAGES)
    facts = ChannelFacts(calls=(
        attempt("C1", 1), attempt("C1", 2, outcome="busy"),
        attempt("C1", 3, outcome="not_interested", **ANSWERED_TO_OFFER),
        attempt("C2", 1, **TRANSFERRED, agent_outcome="applied"),
        # asked for an agent during the opening: interested, not offer_heard
        attempt("C3", 1, outcome="transferred", answered=True, interested=True,
                transferred=True)))
    assert stages(facts, "call") == {"dialed": 3, "answered": 3, "offer_heard": 2,
                                     "interested": 2, "transferred": 2, "applied": 1}


def test_a_planned_request_and_its_lead_are_one_customer_at_the_leads_branch():
    facts = ChannelFacts(leads=(
        BranchLeadFact("C1", "A", "JT", T0, requested=True),
        BranchLeadFact("C1", "A", "CD", T0 + HOUR, assigned=True, claimed=True,
                       contacted=True),
        BranchLeadFact("C2", "A", "PD", T0 + HOUR, assigned=True, claimed=True, verified=True,
                       applied=True)))
    found = channel_funnels(facts)["branch_lead"]
    assert found.total.stages == {"requested": 1, "assigned": 2, "claimed": 2, "contacted": 1,
                                  "verified": 1, "applied": 1}
    assert list(found.by_branch) == ["CD", "PD"]
    assert found.by_branch["CD"].stages["requested"] == 1


# --- variants and branches -----------------------------------------------------------------


def test_variants_and_branches_split_customers_and_add_up():
    facts = ChannelFacts(sms=(
        text("C1", variant="A", branch="JT", delivered=True),
        text("C2", variant="A", branch="PD"),
        text("C3", variant="B", branch="JT", delivered=True),
        text("C4", variant="B", branch=None, sent=False),
        # C5 had a text of each variant: once in A, once in B, once in all
        text("C5", variant="A", branch="PD"), text("C5", HOUR, variant="B", branch="PD",
                                                   delivered=True)))
    found = channel_funnels(facts)["sms"]
    assert {name: (c.customers, c.stages["sent"], c.stages["delivered"])
            for name, c in found.by_variant.items()} == {"A": (3, 3, 1), "B": (3, 2, 2)}
    assert (found.total.customers, found.total.stages["delivered"]) == (5, 3)
    assert {name: (c.customers, c.stages["delivered"]) for name, c in found.by_branch.items()} \
        == {NO_BRANCH: (1, 0), "JT": (2, 2), "PD": (2, 1)}
    assert {key: c.customers for key, c in found.by_variant_branch.items()} == {
        ("A", "JT"): 1, ("A", "PD"): 2, ("B", NO_BRANCH): 1, ("B", "JT"): 1, ("B", "PD"): 1}
    for variant, counts in found.by_variant.items():
        cells = [c for (v, _), c in found.by_variant_branch.items() if v == variant]
        assert sum(c.customers for c in cells) == counts.customers
        assert sum(c.stages["sent"] for c in cells) == counts.stages["sent"]


def test_a_customer_is_at_the_branch_of_their_furthest_record():
    facts = ChannelFacts(chats=(chat("C1", HOUR, branch="PD"),
                                chat("C1", 2 * HOUR, reasons=("customer_requested",), branch="CD"),
                                chat("C1", 3 * HOUR, branch="PD")))
    assert list(channel_funnels(facts)["chat"].by_branch) == ["CD"]


def test_only_channels_with_activity_are_answered_in_order():
    assert channel_funnels(ChannelFacts()) == {}
    facts = ChannelFacts(chats=(chat(),), sms=(text(),), calls=(attempt(),))
    assert list(channel_funnels(facts)) == ["sms", "call", "chat"]


@pytest.mark.parametrize("bad, message", [
    (dict(reached=frozenset({"answered"})), "sms has no stage answered"),
    (dict(channel="fax"), "unknown channel"),
    (dict(variant=ALL), "that key is the total"),
    (dict(at=datetime(2024, 5, 6, 9, 0)), "timezone-aware"),
])
def test_a_touch_refuses_what_no_funnel_can_count(bad, message):
    fields = dict(channel="sms", customer_id="C1", variant="A", branch=None, at=T0,
                  reached=frozenset({"queued"}))
    with pytest.raises(ValueError, match=message):
        Touch(**{**fields, **bad})


def test_the_counting_is_pure():
    tree = ast.parse(inspect.getsource(channel_funnel))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert not {m for m in imported if m and m.split(".")[0] in ("sqlalchemy", "persistence",
                                                                  "aiohttp")}


# --- the report ----------------------------------------------------------------------------


def report_facts() -> ChannelFacts:
    return ChannelFacts(
        sms=(text("C1", variant="A", delivered=True), text("C2", variant="A"),
             text("C3", variant="B", branch="PD", delivered=True),
             reply("C3", opted_out=True, variant="B")),
        popups=(popup("C1", shown=HOUR, clicked=HOUR),),
        chats=(chat("C1", reasons=("customer_requested",), applied=True),))


def test_the_report_shows_each_channels_stages_per_variant_and_per_branch():
    calls = [attempt("C1", 1, **TRANSFERRED), attempt("C2", 1, variant="B")]
    page = Page(render_html(campaign(), calls, GENERATED, channels=report_facts()))
    sms = page.table("channel-sms")
    assert sms[0][:4] == ["版本 (variant)", "客户 (customers)", "已创建 (queued)", "已发送 (sent)"]
    assert sms[1] == ["A", "2", "2 (100.0%)", "2 (100.0%)", "1 (50.0%)", "0 (0.0%)",
                      "0 (0.0%)", "0 (0.0%)"]
    assert sms[2] == ["B", "1", "1 (100.0%)", "1 (100.0%)", "1 (100.0%)", "1 (100.0%)",
                      "0 (0.0%)", "1 (100.0%)"]
    assert sms[3][:2] == ["合计 (all)", "3"]
    assert [row[:3] for row in page.table("channel-sms-branches")[1:]] == [
        ["JT", "2", "2 (100.0%)"], ["PD", "1", "1 (100.0%)"], ["合计 (all)", "3", "3 (100.0%)"]]
    assert page.table("channel-popup")[1][-1] == "1 (100.0%)"  # the click opened the chat
    assert page.table("channel-chat")[1] == ["A", "1", "1 (100.0%)", "1 (100.0%)",
                                              "1 (100.0%)", "1 (100.0%)"]
    call = page.table("channel-call")  # the report's own attempts
    assert [row[:3] for row in call[1:]] == [["A", "1", "1 (100.0%)"], ["B", "1", "1 (100.0%)"],
                                             ["合计 (all)", "2", "2 (100.0%)"]]
    assert "channel-branch_lead" not in page.table_classes  # no leads: no table
    assert "跨渠道漏斗" in page.all_text


def test_a_campaign_of_calls_only_renders_as_before():
    calls = [attempt("C1", 1, **TRANSFERRED), attempt("C2", 1, variant="B")]
    before = render_html(campaign(), calls, GENERATED)
    assert render_html(campaign(), calls, GENERATED, channels=ChannelFacts()) == before
    assert 'id="channels"' not in before


def test_the_json_has_every_channels_rows():
    data = channel_funnel_json(channel_funnels(report_facts()))
    assert list(data) == ["sms", "popup", "chat"]
    assert data["sms"]["stages"] == list(CHANNEL_STAGES["sms"])
    assert data["sms"]["all"] == {"customers": 3, "stages": {
        "queued": 3, "sent": 3, "delivered": 2, "replied": 1, "chatted": 0, "opted_out": 1}}
    assert data["sms"]["by_variant"]["B"]["customers"] == 1
    assert data["sms"]["by_branch"]["PD"]["stages"]["opted_out"] == 1
    assert {"variant": "A", "branch": "JT", "customers": 2} \
        .items() <= data["sms"]["by_variant_branch"][0].items()


# --- read back from the database -----------------------------------------------------------


def _run(engine, work, *args):
    with session_scope(engine) as session:
        return work(session, *args)


def _text_and_reports(session, customer_id: str, phone: str, at: datetime, *, template: str,
                      fate: str) -> int:
    """A campaign text through the repository: ``fate`` submitted, delivered or refused."""
    message_id = sms_messages.queue(session, phone=phone, text="【邮储银行】…", gateway="kannel",
                                    now=at, customer_id=customer_id, campaign_id="xc",
                                    template=template, variant="A")
    if fate == "refused":
        sms_messages.mark_failed(session, message_id, "3: rejected", at)
        return message_id
    sms_messages.mark_submitted(session, message_id, "0: Accepted", at)
    if fate == "delivered":
        sms_messages.apply_report(session, message_id, 1, "", at + MINUTE)
    return message_id


def _chat(engine, conversation_id: str, customer_id: str, at: datetime,
          reason: str | None = None) -> int | None:
    """A chat as the bot's actions write it: the conversation, and a handoff when asked."""
    from persistence import store

    with mock.patch("persistence.store.utcnow", return_value=at), session_scope(engine) as session:
        store.start_conversation(session, conversation_id, customer_id, "chat", None)
        if reason is None:
            return None
        ticket = handoffs.create_ticket(
            session, conversation_id=conversation_id, customer_id=customer_id, offer_id=None,
            channel="chat", reason=reason, transcript=[], intents=[], now=at)
        store.record_outcome(session, conversation_id, "transferred", reason)
        return ticket


def test_the_funnel_read_back_from_real_records(staffed):
    from handoff import agents, tickets

    t0 = QUEUE_NOW
    config = CampaignConfig(window_start="00:00", window_end="00:00", variants={"A": 1.0})
    with session_scope(staffed) as session:
        campaigns.create_campaign(session, "xc", "跨渠道", "simulated", config, t0,
                                  actor=Actor.command_line())
        campaigns.add_targets(session, "xc", ["C0001", "C0003", "C0004"], t0)
        campaigns.command(session, "xc", "start", Actor.command_line(), t0)
        # C0001 (金堂县, JT): a delivered text, then a pop-up clicked, then the chat it opened
        _text_and_reports(session, "C0001", "13800138001", t0, template="offer", fate="delivered")
        shown = popups.create_popup(session, customer_id="C0001", title="专属额度", body="点击聊聊",
                                    now=t0 + HOUR, ttl=timedelta(days=3), campaign_id="xc",
                                    variant="A")
        popups.record_event(session, shown, "C0001", "shown", t0 + 2 * HOUR)
        popups.record_event(session, shown, "C0001", "clicked", t0 + 2 * HOUR)
        # C0003 (郫都区, PD): two texts sent, neither delivered; replies TD
        _text_and_reports(session, "C0003", "13700137003", t0, template="offer", fate="sent")
        _text_and_reports(session, "C0003", "13700137003", t0 + HOUR, template="reminder",
                          fate="sent")
        sender = sms_messages.sender_of(session, "13700137003", t0 + 3 * HOUR)
        reply_id = sms_messages.record_reply(session, phone="13700137003", text="TD",
                                             gateway="kannel", now=t0 + 3 * HOUR, sender=sender)
        sms_messages.opt_out(session, reply_id, t0 + 3 * HOUR)
        # C0004 (新都区, CD): the gateway refused the first text, took the second; a chat
        _text_and_reports(session, "C0004", "15000150004", t0, template="offer", fate="refused")
        _text_and_reports(session, "C0004", "15000150004", t0 + 4 * HOUR, template="reminder",
                          fate="sent")
        target = session.execute(select(CampaignTarget.id).where(
            CampaignTarget.customer_id == "C0004")).scalar_one()
        session.add(PlanStepTaken(target_id=target, campaign_id="xc", customer_id="C0004",
                                  step_no=3, channel="branch_lead", result="requested",
                                  taken_at=t0 + 5 * HOUR))
    _chat(staffed, "chat-before", "C0001", t0 - HOUR)  # before the campaign: not its
    applied = _chat(staffed, "chat-c1", "C0001", t0 + 2 * HOUR + MINUTE, "customer_requested")
    _chat(staffed, "chat-c4", "C0004", t0 + 5 * HOUR, "not_understood")
    with session_scope(staffed) as session:
        jt = agents.get_account(session, session.execute(
            select(Agent.id).where(Agent.username == "jt")).scalar_one(), t0)
        tickets.claim(session, applied, jt, t0 + 3 * HOUR)
        tickets.close(session, applied, jt, "applied", "", t0 + 3 * HOUR)
        leads.open_lead(session, "C0004", LeadSource.CONTACT_PLAN, "target:xc/C0004",
                        t0 + 6 * HOUR)
    # a day later the dialer calls whoever did not opt out: C0001 is transferred
    day = t0 + timedelta(days=1)
    with session_scope(staffed) as session:
        calls = iter(["call-1", "call-2", "call-3"])
        claimed = campaigns.claim_due(session, "xc", 10, day, "dialer-1", lambda: next(calls))
    with session_scope(staffed) as session:
        for job in claimed.jobs:
            done = (AttemptOutcome("transferred", {"answered": True, "offer_heard": True,
                                                   "interested": True, "transferred": True})
                    if job.customer_id == "C0001" else AttemptOutcome("no_answer", {}))
            campaigns.finish_attempt(session, job.attempt_id, "dialer-1", done, day)

    facts = _run(staffed, channel_facts, "xc")
    found = channel_funnels(facts)
    assert list(found) == ["sms", "popup", "call", "chat", "branch_lead"]
    assert found["sms"].total.stages == {"queued": 3, "sent": 3, "delivered": 1, "replied": 1,
                                         "chatted": 1, "opted_out": 1}
    assert found["popup"].total.stages == {"queued": 1, "shown": 1, "clicked": 1,
                                           "dismissed": 0, "chatted": 1}
    assert found["call"].total.stages == {"dialed": 2, "answered": 1, "offer_heard": 1,
                                          "interested": 1, "transferred": 1, "applied": 0}
    assert found["chat"].total.stages == {"chatted": 2, "interested": 1, "handed_off": 2,
                                          "applied": 1}
    assert found["branch_lead"].total.stages == {"requested": 1, "assigned": 1, "claimed": 0,
                                                 "contacted": 0, "verified": 0, "applied": 0}
    assert {b: c.customers for b, c in found["sms"].by_branch.items()} == {
        "CD": 1, "JT": 1, "PD": 1}
    assert list(found["sms"].by_variant) == ["A"]
    assert {b: c.stages["handed_off"] for b, c in found["chat"].by_branch.items()} == {
        "CD": 1, "JT": 1}
    assert _run(staffed, channel_facts, "no-such-campaign") == ChannelFacts()
