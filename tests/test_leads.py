"""Branch leads in the database, on SQLite and on a real PostgreSQL server, with a controllable
clock: the claim -> verify deadline chain with its re-routes, every step's time and event,
idempotent sources, who may touch which lead, suspended branches passed over until they
recover, and sweepers racing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from unittest import mock

import pytest
from sqlalchemy import select, update

from branches import lead_sources, leads
from branches.deadlines import DeadlinePolicy
from branches.leads import LeadError, LeadEventKind
from branches.scorecard import ScorecardPolicy
from core.access import Staff
from core.settings import PROJECT_ROOT
from core.vocabulary import (
    AuditAction,
    LeadOutcome,
    LeadSource,
    RerouteReason,
    Role,
)
from handoff import tickets
from handoff.agents import add_agent
from outbound import chat_callbacks, report_data
from outbound.lead_funnel import leads_by_branch
from persistence import audit, handoffs, store
from persistence.branches import load_branch_sites
from persistence.engine import session_scope
from persistence.schema import (
    Agent,
    Branch,
    CallAttempt,
    Callback,
    Campaign,
    CampaignTarget,
    Customer,
    Handoff,
)
from tests.conftest import AGENT_PASSWORD, QUEUE_NOW, _one_hash

T0 = QUEUE_NOW
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
PARTNER = LeadSource.PARTNER_INTAKE


def at(days: float) -> datetime:
    """T0 plus ``days``: the tests' clock."""
    return T0 + timedelta(days=days)


@pytest.fixture
def branch_staff(staffed):
    """The staffed database plus account managers (JT has two, CD and PD one, SL and DY none),
    CD's branch manager and an administrator."""
    with session_scope(staffed) as session, mock.patch("handoff.agents.hash_password", _one_hash):
        for username, role, branch in [
            ("jt_am1", "account_manager", "JT"), ("jt_am2", "account_manager", "JT"),
            ("cd_am", "account_manager", "CD"), ("pd_am", "account_manager", "PD"),
            ("cd_mgr", "branch_manager", "CD"), ("root", "admin", None),
        ]:
            add_agent(session, username=username, password=AGENT_PASSWORD, display_name=username,
                      role=role, branch_id=branch, now=T0)
    return staffed


def who(engine, username: str) -> Staff:
    with session_scope(engine) as session:
        row = session.execute(select(Agent).where(Agent.username == username)).scalar_one()
        return Staff(row.id, Role(row.role), row.branch_id)


def add_customer(engine, customer_id: str, region: str = "金堂县") -> str:
    with session_scope(engine) as session:
        session.add(Customer(customer_id=customer_id, name="测试客户", masked_name="测**",
                             phone=f"139{int(customer_id[1:]):08d}", region=region, consent=True,
                             created_at=T0, updated_at=T0))
    return customer_id


def run(engine, fn, *args, **kwargs):
    with session_scope(engine) as session:
        return fn(session, *args, **kwargs)


def open_(engine, customer="C0001", ref="p-1", now=T0, **kwargs) -> leads.Lead:
    return run(engine, leads.open_lead, customer, PARTNER, ref, now, **kwargs)


def sweep(engine, now, **kwargs) -> list[leads.Reroute]:
    return run(engine, leads.sweep_overdue, now, **kwargs)


def lead(engine, lead_id, now=T0) -> leads.Lead:
    return run(engine, leads.get_lead, lead_id, now)


def refused(engine, status: int, fn, *args) -> str:
    with pytest.raises(LeadError) as error, session_scope(engine) as session:
        fn(session, *args)
    assert error.value.status == status, error.value
    return str(error.value)


# ------------------------------------------------------------- the deadline chain
def test_the_whole_deadline_chain_with_every_time_and_event(branch_staff):
    engine = branch_staff
    jt_am1, cd_am, pd_am = who(engine, "jt_am1"), who(engine, "cd_am"), who(engine, "pd_am")
    opened = open_(engine, "C0001")  # 金堂县: JT 3 km, CD 45, PD 55, SL 55, DY 95
    assert (opened.branch_id, opened.status, opened.manager_id) == (
        "JT", "assigned", jt_am1.account_id)
    assert opened.claim_due == at(2) and opened.verify_due is None and opened.overdue is None
    assert (opened.masked_name, opened.masked_phone, opened.product) == (
        "张**", "138****8001", "邮享贷")

    assert sweep(engine, at(2)) == [], "due at the very instant: still on time"
    [first] = sweep(engine, at(2) + SECOND)
    assert (first.lead_id, first.from_branch, first.to_branch, first.missed) == (
        opened.id, "JT", "CD", RerouteReason.CLAIM_OVERDUE)
    assert first.due == at(2) and first.manager_id == cd_am.account_id
    assert "分派后 2 天内未认领" in first.reason
    assert "JT（3.0 公里）此前已从该支行改派" in first.reason
    moved = lead(engine, opened.id, at(2) + SECOND)
    assert (moved.status, moved.branch_id, moved.manager_id, moved.reroutes) == (
        "rerouted", "CD", cd_am.account_id, 1)
    assert moved.assigned_at == at(2) + SECOND and moved.claim_due == at(4) + SECOND

    claimed = run(engine, leads.claim, opened.id, cd_am, at(3))
    assert (claimed.status, claimed.claimed_at, claimed.verify_due) == ("claimed", at(3), at(5))
    assert sweep(engine, at(5)) == []
    [second] = sweep(engine, at(5) + SECOND)
    assert (second.from_branch, second.to_branch, second.missed) == (
        "CD", "PD", RerouteReason.VERIFY_OVERDUE), "PD and SL are both 55 km: PD by id"
    assert "认领后 2 天内未完成核实" in second.reason
    assert "JT（3.0 公里）" in second.reason and "CD（45.0 公里）" in second.reason
    moved = lead(engine, opened.id, at(5) + SECOND)
    assert (moved.claimed_at, moved.manager_id, moved.reroutes) == (None, pd_am.account_id, 2)

    run(engine, leads.claim, opened.id, pd_am, at(5.5))
    run(engine, leads.record_step, opened.id, pd_am, LeadOutcome.CONTACTED, "约了明天面签", at(6))
    run(engine, leads.record_step, opened.id, pd_am, "verified", "", at(6.5))
    done = run(engine, leads.record_step, opened.id, pd_am, LeadOutcome.APPLIED, "已提交申请",
               at(7))
    assert (done.status, done.outcome, done.note, done.is_open) == (
        "closed", "applied", "已提交申请", False)
    assert (done.assigned_at, done.claimed_at, done.contacted_at, done.verified_at,
            done.closed_at) == (at(5) + SECOND, at(5.5), at(6), at(6.5), at(7))
    assert done.claim_due is None and done.verify_due is None
    assert sweep(engine, at(30)) == []

    periods = run(engine, leads.periods_of, opened.id)
    assert [(p.branch_id, p.assigned_at, p.claimed_at, p.verified_at, p.outcome, p.ended_at,
             p.end_reason) for p in periods] == [
        ("JT", T0, None, None, None, at(2) + SECOND, "claim_overdue"),
        ("CD", at(2) + SECOND, at(3), None, None, at(5) + SECOND, "verify_overdue"),
        ("PD", at(5) + SECOND, at(5.5), at(6.5), "applied", at(7), "closed"),
    ]
    events = run(engine, leads.events_of, opened.id)
    K = LeadEventKind
    assert [(e.kind, e.from_branch, e.to_branch, e.at) for e in events] == [
        (K.ASSIGNED, None, "JT", T0), (K.MANAGER, None, "JT", T0),
        (K.REROUTED, "JT", "CD", at(2) + SECOND), (K.MANAGER, None, "CD", at(2) + SECOND),
        (K.CLAIMED, None, "CD", at(3)),
        (K.REROUTED, "CD", "PD", at(5) + SECOND), (K.MANAGER, None, "PD", at(5) + SECOND),
        (K.CLAIMED, None, "PD", at(5.5)), (K.CONTACTED, None, "PD", at(6)),
        (K.VERIFIED, None, "PD", at(6.5)), (K.OUTCOME, None, "PD", at(7)),
    ]
    assert events[2].actor == "system:lead_sweep" and events[2].detail["missed"] == "claim_overdue"
    assert events[4].actor == f"account_manager:{cd_am.account_id}"
    assert events[8].detail["note"] == "约了明天面签"

    cards = run(engine, leads.branch_scorecards, at(7))
    jt, cd, pd = cards["JT"], cards["CD"], cards["PD"]
    assert (jt.leads, jt.claims_judged, jt.claims_on_time, jt.rerouted_away) == (1, 1, 0, 1)
    assert (cd.claims_on_time, cd.verifications_judged, cd.verifications_on_time) == (1, 1, 0)
    assert (pd.claims_on_time, pd.verifications_on_time, pd.finished, pd.applied) == (1, 1, 1, 1)
    assert cards["DY"].leads == 0


def test_leads_go_to_the_account_manager_with_the_fewest_open_leads_or_wait_for_the_branch(
        branch_staff):
    engine = branch_staff
    jt_am1, jt_am2 = who(engine, "jt_am1"), who(engine, "jt_am2")
    first, second = open_(engine, "C0001", "a"), open_(engine, "C0007", "b", at(0.1))
    assert (first.manager_id, second.manager_id) == (jt_am1.account_id, jt_am2.account_id)
    third = open_(engine, add_customer(engine, "T0301"), "c", at(0.2))
    assert third.manager_id == jt_am1.account_id, "equal load: the one longest without a new lead"
    sl = open_(engine, "C0002", "d", at(0.3))  # 双流区: SL, which has no account manager yet
    assert (sl.branch_id, sl.manager_id) == ("SL", None)
    assert [x.id for x in run(engine, leads.leads_of_manager, jt_am1.account_id, at(1))] == [
        first.id, third.id]
    assert [x.id for x in run(engine, leads.leads_of_branch, "JT", at(1))] == [
        first.id, second.id, third.id]


# ---------------------------------------------------------------- who may do what
def test_each_person_touches_only_the_leads_within_their_reach(branch_staff):
    engine = branch_staff
    jt_am1, jt_am2, cd_am = who(engine, "jt_am1"), who(engine, "jt_am2"), who(engine, "cd_am")
    jt_mgr, cd_mgr, root = who(engine, "jt_mgr"), who(engine, "cd_mgr"), who(engine, "root")
    agent, mgr = who(engine, "jt"), who(engine, "mgr")
    mine = open_(engine, "C0001")  # JT, given to jt_am1
    assert mine.manager_id == jt_am1.account_id

    assert "another account manager's" in refused(engine, 403, leads.claim, mine.id, jt_am2, T0)
    assert "outside this account's branch" in refused(engine, 403, leads.claim, mine.id, cd_am, T0)
    assert "outside this account's branch" in refused(engine, 403, leads.claim, mine.id, cd_mgr, T0)
    assert "may not work leads" in refused(engine, 403, leads.claim, mine.id, agent, T0)
    assert "may not work leads" in refused(engine, 403, leads.claim, mine.id, mgr, T0)
    assert "not claimed yet" in refused(engine, 409, leads.record_step, mine.id, jt_am1,
                                        LeadOutcome.CONTACTED, "", T0)
    refused(engine, 404, leads.claim, 999999, jt_am1, T0)

    assert "may not give out leads" in refused(engine, 403, leads.assign_manager, mine.id,
                                               jt_am2.account_id, jt_am1, T0)
    assert "outside" in refused(engine, 403, leads.assign_manager, mine.id, cd_am.account_id,
                                cd_mgr, T0)
    assert "not an account manager of branch JT" in refused(
        engine, 422, leads.assign_manager, mine.id, cd_am.account_id, jt_mgr, T0)
    given = run(engine, leads.assign_manager, mine.id, jt_am2.account_id, jt_mgr, at(0.1))
    assert given.manager_id == jt_am2.account_id
    refused(engine, 403, leads.claim, mine.id, jt_am1, at(0.2))
    run(engine, leads.claim, mine.id, jt_am2, at(0.2))
    assert "already claimed" in refused(engine, 409, leads.claim, mine.id, jt_am2, at(0.3))
    refused(engine, 403, leads.record_step, mine.id, jt_am1, LeadOutcome.CONTACTED, "", at(0.3))
    refused(engine, 403, leads.record_step, mine.id, cd_mgr, LeadOutcome.CONTACTED, "", at(0.3))
    refused(engine, 400, leads.record_step, mine.id, jt_am2, "sold", "", at(0.3))
    run(engine, leads.record_step, mine.id, jt_mgr, LeadOutcome.VISITED, "支行经理上门", at(0.4))
    run(engine, leads.add_note, mine.id, root, "总行跟进", at(0.5))

    details = run(engine, leads.contact_details, mine.id, jt_am2, at(0.6))
    assert (details.name, details.phone) == ("张伟", "13800138001")
    refused(engine, 403, leads.contact_details, mine.id, jt_am1, at(0.6))
    refused(engine, 403, leads.contact_details, mine.id, mgr, at(0.6))
    [viewed] = run(engine, audit.history, "customer", "C0001")
    assert (viewed.action, viewed.actor, viewed.actor_role, viewed.detail["lead_id"]) == (
        AuditAction.UNMASKED_VIEWED, "jt_am2", "account_manager", mine.id)

    view = lead(engine, mine.id)
    assert leads.can_see(jt_am2, view) and leads.can_see(jt_mgr, view) and leads.can_see(root, view)
    assert not any(leads.can_see(s, view) for s in (jt_am1, cd_am, cd_mgr, agent, mgr))
    run(engine, leads.record_step, mine.id, jt_am2, LeadOutcome.DECLINED, "", at(1))
    assert "closed" in refused(engine, 409, leads.record_step, mine.id, jt_am2,
                               LeadOutcome.APPLIED, "", at(1))
    assert "closed" in refused(engine, 409, leads.assign_manager, mine.id, jt_am1.account_id,
                               jt_mgr, at(1))


def test_an_account_manager_may_claim_a_lead_of_their_branch_given_to_nobody(branch_staff):
    engine = branch_staff
    sl = open_(engine, "C0002")  # SL has no account manager
    with session_scope(engine) as session, mock.patch("handoff.agents.hash_password", _one_hash):
        add_agent(session, username="sl_am", password=AGENT_PASSWORD, display_name="sl_am",
                  role="account_manager", branch_id="SL", now=T0)
    sl_am = who(engine, "sl_am")
    claimed = run(engine, leads.claim, sl.id, sl_am, at(1))
    assert (claimed.manager_id, claimed.status) == (sl_am.account_id, "claimed")


# ------------------------------------------------------------------- suspensions
def test_a_branch_below_the_threshold_gets_no_new_leads_until_it_recovers(branch_staff):
    engine = branch_staff
    policy = ScorecardPolicy(window_days=10, min_judged=2)
    late = [open_(engine, add_customer(engine, f"T{i:04d}"), f"late-{i}", T0,
                  scorecard_policy=policy) for i in range(2)]
    assert {x.branch_id for x in late} == {"JT"}
    assert len(sweep(engine, at(2) + SECOND, scorecard_policy=policy)) == 2

    assert run(engine, leads.suspended_branches, at(3), policy=policy).keys() == {"JT"}
    passed = open_(engine, add_customer(engine, "T0100"), "next", at(3), scorecard_policy=policy)
    assert passed.branch_id == "CD"
    [assigned] = [e for e in run(engine, leads.events_of, passed.id) if e.kind == "assigned"]
    assert ("JT（3.0 公里）暂停派单：按时认领率 0%（近 10 天考核 2 条，按时 0 条）"
            in assigned.reason)

    suspended = run(engine, leads.suspended_branches, at(10), policy=policy)
    assert "JT" not in suspended, "its late leads aged out of the window"
    assert "CD" in suspended, "CD never claimed the leads it was given either"
    back = open_(engine, add_customer(engine, "T0101"), "back", at(10), scorecard_policy=policy)
    assert back.branch_id == "JT"


# ------------------------------------------------------------------ sweepers race
def test_concurrent_sweeps_never_reroute_a_lead_twice(branch_staff):
    engine = branch_staff
    opened = [open_(engine, add_customer(engine, f"T{i:04d}"), f"race-{i}") for i in range(4)]
    start = threading.Barrier(2)
    results: list[list[leads.Reroute]] = []
    errors: list[BaseException] = []

    def run_sweep() -> None:
        start.wait()
        try:
            results.append(sweep(engine, at(3)))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run_sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    moved = sorted(r.lead_id for result in results for r in result)
    assert moved == sorted(x.id for x in opened)
    for x in opened:
        kinds = [e.kind for e in run(engine, leads.events_of, x.id)]
        assert kinds.count("rerouted") == 1
        assert [p.branch_id for p in run(engine, leads.periods_of, x.id)] == ["JT", "CD"]


def test_a_claim_and_a_sweep_at_the_same_moment_change_the_lead_once(branch_staff):
    engine = branch_staff
    jt_am1 = who(engine, "jt_am1")
    opened = open_(engine, "C0001")
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def claim() -> None:
        start.wait()
        try:
            outcomes.append(run(engine, leads.claim, opened.id, jt_am1, at(3)).status)
        except LeadError as exc:
            outcomes.append(exc.status)

    def sweeper() -> None:
        start.wait()
        outcomes.append(len(sweep(engine, at(3))))

    threads = [threading.Thread(target=claim), threading.Thread(target=sweeper)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = lead(engine, opened.id, at(3))
    if final.status == "claimed":  # the claim won (late): nothing was moved
        assert sorted(outcomes, key=str) == [0, "claimed"] and final.branch_id == "JT"
    else:  # the sweep won: the claim was refused
        assert sorted(outcomes, key=str) == [1, 409] or sorted(outcomes, key=str) == [1, 403]
        assert final.branch_id == "CD"
    assert len(run(engine, leads.periods_of, opened.id)) == (1 if final.status == "claimed" else 2)


# ----------------------------------------------------------------------- sources
def test_the_same_event_twice_makes_one_lead_and_another_joins_the_open_one(branch_staff):
    engine = branch_staff
    first = open_(engine, "C0001", "p-1")
    assert open_(engine, "C0001", "p-1", at(1)).id == first.id
    joined = run(engine, leads.open_lead, "C0001", LeadSource.CAMPAIGN_UNREACHED, "target:x/C0001",
                 at(1))
    assert joined.id == first.id and joined.source == PARTNER
    note = run(engine, leads.events_of, first.id)[-1]
    assert (note.kind, note.detail["source_ref"]) == ("note", "target:x/C0001")
    assert run(engine, leads.open_lead, "C0001", LeadSource.CAMPAIGN_UNREACHED, "target:x/C0001",
               at(2)).id == first.id
    assert len(run(engine, leads.events_of, first.id)) == 3, "the same event joins once"

    jt_am1 = who(engine, "jt_am1")
    run(engine, leads.claim, first.id, jt_am1, at(1))
    run(engine, leads.record_step, first.id, jt_am1, LeadOutcome.UNREACHABLE, "", at(1.5))
    again = open_(engine, "C0001", "p-2", at(3))
    assert again.id != first.id and again.status == "assigned"


def test_customers_who_opted_out_or_live_where_no_branch_is_are_refused(branch_staff):
    engine = branch_staff
    run(engine, store.add_do_not_contact, customer_id="C0001", phone=None, utterance="别再打了",
        conversation_id=None)
    assert "not to be contacted" in refused(engine, 409, leads.open_lead, "C0001", PARTNER, "x", T0)
    add_customer(engine, "T0900", "西藏")
    assert "no branches" in refused(engine, 422, leads.open_lead, "T0900", PARTNER, "y", T0)
    refused(engine, 404, leads.open_lead, "NOBODY", PARTNER, "z", T0)
    refused(engine, 400, leads.open_lead, "C0002", "walk_in", "z", T0)


def ticket(engine, customer: str, now=T0, callback=None) -> int:
    with session_scope(engine) as session:
        return handoffs.create_ticket(
            session, conversation_id=f"conv-{customer}-{now.timestamp()}", customer_id=customer,
            offer_id=None, channel="voice", reason="customer_requested",
            transcript=[{"speaker": "customer", "text": "我要申请"}], intents=["request_handoff"],
            now=now, callback=callback)


def test_an_abandoned_handoff_becomes_one_lead_however_often_it_is_seen(branch_staff):
    engine = branch_staff
    waiting = ticket(engine, "C0001")
    assert "not abandoned" in refused(engine, 409, lead_sources.lead_from_ticket, waiting, T0)
    run(engine, tickets.abandon, waiting, "customer hung up", at(0.01))
    made = run(engine, lead_sources.lead_from_ticket, waiting, at(0.02))
    assert (made.source, made.source_ref, made.branch_id) == (
        LeadSource.BOT_INTERESTED_NOT_CONNECTED, f"ticket:{waiting}", "JT")
    assert run(engine, lead_sources.lead_from_ticket, waiting, at(0.03)).id == made.id
    assert run(engine, lead_sources.leads_from_tickets, at(0.04)) == []

    other = ticket(engine, "C0002", at(0.05))  # scanned: abandoned, then reached on a later ticket
    run(engine, tickets.abandon, other, "customer hung up", at(0.06))
    reached = ticket(engine, "C0002", at(0.07))
    with session_scope(engine) as session:
        session.execute(update(Handoff).where(Handoff.id == reached).values(status="claimed"))
    gone = ticket(engine, "C0004", at(0.08))
    run(engine, tickets.abandon, gone, "customer hung up", at(0.09))
    [scanned] = run(engine, lead_sources.collect_leads, at(0.1))
    assert scanned.customer_id == "C0004" and scanned.source_ref == f"ticket:{gone}"
    assert run(engine, lead_sources.collect_leads, at(0.2)) == []


def test_a_callback_task_the_pool_did_not_work_becomes_a_lead_and_leaves_the_queue(branch_staff):
    engine = branch_staff
    task = ticket(engine, "C0007", callback=(at(0.02), at(2)))
    with session_scope(engine) as session:  # the SLA moved it to the pool at its branch deadline
        session.execute(update(Handoff).where(Handoff.id == task).values(
            status="rerouted", tier="pool", claim_deadline=at(4), updated_at=at(2)))
    assert "still has time" in refused(engine, 409, lead_sources.lead_from_ticket, task, at(3))
    assert run(engine, lead_sources.leads_from_tickets, at(4)) == []
    [made] = run(engine, lead_sources.leads_from_tickets, at(4) + SECOND)
    assert (made.source, made.customer_id, made.branch_id) == (
        LeadSource.CALLBACK_TASK, "C0007", "JT")
    after = run(engine, tickets.get_ticket, task)
    assert after.status == "abandoned"
    history = run(engine, tickets.events_of, task)
    assert history[-1].reason == f"已转交支行 JT（线索 {made.id}）"
    assert run(engine, lead_sources.lead_from_ticket, task, at(5)).id == made.id


def campaign_target(engine, customer: str, outcomes: list[str], campaign="camp-1",
                    status="done") -> int:
    with session_scope(engine) as session:
        if session.get(Campaign, campaign) is None:
            session.add(Campaign(id=campaign, name=campaign, status="done", transport="simulated",
                                 config={}, created_at=T0, updated_at=T0))
        target = CampaignTarget(campaign_id=campaign, customer_id=customer, variant="A",
                                status=status, attempts=len(outcomes),
                                last_outcome=outcomes[-1] if outcomes else None,
                                created_at=T0, updated_at=at(1))
        session.add(target)
        session.flush()
        for number, outcome in enumerate(outcomes, start=1):
            session.add(CallAttempt(
                target_id=target.id, campaign_id=campaign, customer_id=customer,
                attempt_no=number, call_id=f"{campaign}-{customer}-{number}", variant="A",
                status="done", outcome=outcome, dialer="test", lease_until=at(1), facts={},
                started_at=at(number / 10), ended_at=at(number / 10)))
        return target.id


def test_a_campaign_target_never_reached_becomes_a_lead_and_one_reached_does_not(branch_staff):
    engine = branch_staff
    unreached = campaign_target(engine, "C0001", ["no_answer", "busy", "voicemail"])
    wrong_number = campaign_target(engine, "C0002", ["invalid_number"])
    spoke = campaign_target(engine, "C0004", ["no_answer", "callback", "no_answer"])
    ours = campaign_target(engine, "C0005", ["failed", "failed"])
    dialling = campaign_target(engine, "C0007", ["no_answer"], status="pending")

    made = run(engine, lead_sources.leads_from_unreached_targets, at(2))
    assert sorted((m.customer_id, m.source_ref) for m in made) == [
        ("C0001", "target:camp-1/C0001"), ("C0002", "target:camp-1/C0002")]
    assert {m.source for m in made} == {LeadSource.CAMPAIGN_UNREACHED}
    assert run(engine, lead_sources.leads_from_unreached_targets, at(2)) == []
    by_customer = {m.customer_id: m.id for m in made}
    assert run(engine, lead_sources.lead_from_unreached_target, unreached, at(3)).id == \
        by_customer["C0001"]
    assert run(engine, lead_sources.lead_from_unreached_target, wrong_number, at(3)).id == \
        by_customer["C0002"]
    assert "reached the customer (callback)" in refused(
        engine, 409, lead_sources.lead_from_unreached_target, spoke, at(2))
    assert "ended failed" in refused(
        engine, 409, lead_sources.lead_from_unreached_target, ours, at(2))
    assert "still working" in refused(
        engine, 409, lead_sources.lead_from_unreached_target, dialling, at(2))


def test_a_chat_callback_no_campaign_can_make_becomes_a_lead_once_due(branch_staff):
    engine = branch_staff
    unplaced = run(engine, store.book_callback, conversation_id="chat-1", customer_id="C0003",
                   due_at=at(1), requested_text="明天下午")
    campaign_target(engine, "C0009", [], campaign="live", status="pending")
    with session_scope(engine) as session:
        session.execute(update(Campaign).where(Campaign.id == "live").values(status="running"))
    adoptable = run(engine, store.book_callback, conversation_id="chat-2", customer_id="C0009",
                    due_at=at(1), requested_text="明天下午")

    assert "not due until" in refused(engine, 409, lead_sources.lead_from_chat_callback,
                                      unplaced, at(0.5))
    assert run(engine, lead_sources.leads_from_unplaced_callbacks, at(0.5)) == []
    [made] = run(engine, lead_sources.leads_from_unplaced_callbacks, at(1))
    assert (made.source, made.source_ref, made.customer_id, made.branch_id) == (
        LeadSource.CALLBACK_TASK, f"callback:{unplaced}", "C0003", "PD")
    with session_scope(engine) as session:
        assert session.get(Callback, unplaced).status == lead_sources.TO_BRANCH
    assert "campaign being worked" in refused(engine, 409, lead_sources.lead_from_chat_callback,
                                              adoptable, at(1))
    assert run(engine, lead_sources.lead_from_chat_callback, unplaced, at(2)).id == made.id
    assert run(engine, chat_callbacks.unplaced_chat_callbacks) == 0


def test_deadlines_and_policies_come_from_the_caller(branch_staff):
    engine = branch_staff
    quick = DeadlinePolicy(claim_within=timedelta(hours=4), verify_within=timedelta(hours=8))
    opened = open_(engine, "C0001", deadlines=quick)
    assert opened.claim_due == T0 + timedelta(hours=4)
    [moved] = sweep(engine, T0 + timedelta(hours=4, seconds=1), deadlines=quick)
    assert "分派后 4 小时内未认领" in moved.reason
    assert run(engine, leads.get_lead, opened.id, T0 + timedelta(hours=9),
               deadlines=quick).overdue.startswith("分派后 4 小时内未认领")


def test_an_account_manager_account_needs_its_branch(engine):
    from handoff.agents import AccountError

    with session_scope(engine) as session, pytest.raises(AccountError, match="needs its branch"):
        add_agent(session, username="floating", password=AGENT_PASSWORD, display_name="x",
                  role="account_manager", branch_id=None, now=T0)


def test_a_step_from_a_clock_a_little_behind_never_precedes_the_step_before(branch_staff):
    engine = branch_staff
    jt_am1 = who(engine, "jt_am1")
    opened = open_(engine, "C0001", now=at(1))
    claimed = run(engine, leads.claim, opened.id, jt_am1, at(1) - SECOND)
    assert claimed.claimed_at == at(1)
    verified = run(engine, leads.record_step, opened.id, jt_am1, "verified", "", at(0.5))
    assert verified.verified_at == at(1)
    assert run(engine, leads.branch_scorecards, at(2))["JT"].verifications_on_time == 1


def test_a_region_the_distance_table_does_not_list_goes_to_the_nearest_branch_site(branch_staff):
    engine = branch_staff
    with session_scope(engine) as session:
        assert load_branch_sites(session, PROJECT_ROOT / "data" / "branch_sites.csv") == 5
    add_customer(engine, "T0901", "都江堰市")  # 30.99 N 103.65 E: 郫都's branch is 32 km away, 大邑's 46 km
    add_customer(engine, "T0902", "广元市利州区")  # 240 km north-east: 金堂 is the nearest
    add_customer(engine, "T0903", "本地")  # no county: the address decides
    with session_scope(engine) as session:
        session.get(Customer, "T0903").address = "四川省成都市大邑县安仁镇公馆路5号"
    routed = {c: open_(engine, c, f"site-{c}") for c in ("T0901", "T0902", "T0903")}
    assert {c: lead.branch_id for c, lead in routed.items()} == {
        "T0901": "PD", "T0902": "JT", "T0903": "DY"}
    [period] = run(engine, leads.periods_of, routed["T0901"].id)
    assert (round(period.distance_km, 1), period.reason) == (31.9, "距离最近的支行（31.9 公里）")
    # a region the table lists keeps the bank's own figure (金堂县 -> JT: 3 km)
    [period] = run(engine, leads.periods_of, open_(engine, "C0001", "site-table").id)
    assert period.distance_km == 3
    add_customer(engine, "T0904", "西藏")
    assert "no branches" in refused(engine, 422, leads.open_lead, "T0904", PARTNER, "site-x", T0)


def test_branch_sites_with_bad_rows_are_refused_by_line(engine, tmp_path):
    sheet = tmp_path / "sites.csv"
    sheet.write_text("branch_id,branch_name,address,lat,lon\nJT,金堂县支行,,30.86,104.41\n"
                     "XX,某支行,,north,104\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sites.csv:3: lat and lon"), session_scope(engine) as session:
        load_branch_sites(session, sheet)
    with session_scope(engine) as session:
        assert session.get(Branch, "XX") is None
    sheet.write_text("branch_id,branch_name,address,lat\nJT,金堂县支行,,30.86\n", encoding="utf-8")
    with pytest.raises(ValueError, match="missing columns lon"), session_scope(engine) as session:
        load_branch_sites(session, sheet)


def test_the_campaign_report_counts_the_leads_of_its_customers_at_their_branch(branch_staff):
    engine = branch_staff
    before = open_(engine, "C0005", "before-the-campaign", at(-1))  # 大邑: older than the campaign
    for customer in ("C0001", "C0002", "C0007"):
        campaign_target(engine, customer, ["no_answer", "no_answer"])
    made = {m.customer_id: m for m in run(engine, lead_sources.leads_from_unreached_targets, at(2))}
    assert set(made) == {"C0001", "C0002", "C0007"}
    open_(engine, "C0003", "another-customer", at(2))  # not the campaign's
    jt_am1 = who(engine, "jt_am1")
    run(engine, leads.claim, made["C0001"].id, jt_am1, at(2.1))
    run(engine, leads.record_step, made["C0001"].id, jt_am1, "contacted", "", at(2.2))
    run(engine, leads.record_step, made["C0001"].id, jt_am1, "applied", "", at(2.3))
    run(engine, leads.claim, made["C0007"].id, who(engine, "jt_am2"), at(2.1))
    sweep(engine, at(4.05))  # 双流 (no account manager) never claimed C0002's lead: it moves on

    facts = run(engine, report_data.lead_facts, "camp-1")
    assert before.id and len(facts) == 3
    counts = {b: c.counts for b, c in leads_by_branch(facts).items()}
    assert (counts["JT"]["leads"], counts["JT"]["claimed"], counts["JT"]["contacted"],
            counts["JT"]["applied"], counts["JT"]["open"]) == (2, 2, 1, 1, 1)
    moved = run(engine, leads.get_lead, made["C0002"].id, at(4.05))
    assert moved.branch_id != "SL" and counts[moved.branch_id]["rerouted"] >= 1
    assert counts["all"]["leads"] == 3 and counts["all"]["open"] == 2
    assert run(engine, report_data.lead_facts, "no-such-campaign") == []
