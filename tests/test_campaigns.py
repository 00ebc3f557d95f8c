"""Campaign state in a real database (SQLite and PostgreSQL): targets, claims that re-check
compliance right before each dial, attempts with leases, recovery after a dialer dies, and
dialers that share a campaign."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from outbound import campaigns
from outbound.campaigns import AttemptOutcome, CampaignConfig
from outbound.dialer import Dialer
from outbound.whitelist import import_whitelist_file
from persistence import store
from persistence.audit import Actor
from persistence.engine import make_engine, session_scope
from persistence.schema import CallAttempt, CampaignTarget
from voice.events import CallResult

# Monday 2026-11-23 10:00 in Shanghai
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
ALL_DAY = {"window_start": "00:00", "window_end": "23:59:59", "min_gap_s": 0,
           "max_attempts_per_week": 50}
HEADER = "customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,term_months,valid_until,consent\n"


def load_customers(engine, tmp_path, count: int) -> list[str]:
    ids = [f"K{i:04d}" for i in range(1, count + 1)]
    rows = "".join(f"{c},客户{i},138{i:08d},金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1\n"
                   for i, c in enumerate(ids, 1))
    path = tmp_path / "whitelist.csv"
    path.write_text(HEADER + rows, encoding="utf-8")
    report = import_whitelist_file(engine, path, today=NOW.date())
    assert not report.errors
    return ids


MANAGER = Actor("wang_mgr", "campaign_manager", account_id=7)


def new_campaign(engine, customer_ids, **settings) -> str:
    with session_scope(engine) as session:
        campaigns.create_campaign(session, "c1", "测试", "simulated",
                                  CampaignConfig.from_json(settings), NOW, actor=MANAGER)
        campaigns.add_targets(session, "c1", customer_ids, NOW)
    return "c1"


_ids = itertools.count(1)


def call_id() -> str:
    return f"call-t{next(_ids)}"


def claim(engine, limit=10, now=NOW, dialer="d1") -> campaigns.ClaimResult:
    with session_scope(engine) as session:
        return campaigns.claim_due(session, "c1", limit, now, dialer, call_id)


def target(engine, customer_id) -> CampaignTarget:
    with session_scope(engine) as session:
        return session.execute(select(CampaignTarget).where(
            CampaignTarget.customer_id == customer_id)).scalar_one()


def test_targets_get_a_stable_variant_and_are_not_added_twice(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 40)
    new_campaign(engine, ids)
    with session_scope(engine) as session:
        added, unknown = campaigns.add_targets(session, "c1", [*ids[:5], "NOPE"], NOW)
        variants = dict(session.execute(select(CampaignTarget.customer_id, CampaignTarget.variant)).all())
    assert (added, unknown) == (0, ["NOPE"])
    assert len(variants) == 40 and set(variants.values()) == {"A", "B"}
    assert all(campaigns.assign_variant("c1", c, {"A": 1, "B": 1}) == v for c, v in variants.items())
    assert 10 <= Counter(variants.values())["A"] <= 30  # random-looking, not all one arm


def test_a_claim_records_the_attempt_and_freezes_the_offer_version_before_the_dial(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 3)
    new_campaign(engine, ids, **ALL_DAY)
    claimed = claim(engine, limit=2)
    assert [j.attempt_no for j in claimed.jobs] == [1, 1]
    with session_scope(engine) as session:
        attempts = session.execute(select(CallAttempt)).scalars().all()
        offer = store.get_customer_offer(session, claimed.jobs[0].customer_id)
    assert {a.status for a in attempts} == {"dialing"}
    assert attempts[0].offer_version == offer.offer_version == 1
    assert attempts[0].offer_terms["amount_yuan"] == 50000
    assert attempts[0].lease_until > NOW
    again = claim(engine, limit=10)
    assert [j.customer_id for j in again.jobs] == [ids[2]]  # the two in flight are not taken again


def test_do_not_contact_added_mid_campaign_is_honoured_at_the_next_dial(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 2)
    new_campaign(engine, ids, **ALL_DAY)
    with session_scope(engine) as session:
        store.add_do_not_contact(session, customer_id=ids[0], phone=None, utterance="别再打了",
                                 conversation_id=None)
    claimed = claim(engine)
    assert [j.customer_id for j in claimed.jobs] == [ids[1]]
    assert claimed.skipped == [(ids[0], "do_not_contact")]
    assert target(engine, ids[0]).status == "done"
    with session_scope(engine) as session:
        assert session.execute(select(CallAttempt).where(
            CallAttempt.customer_id == ids[0])).first() is None


def test_outside_the_calling_window_the_target_waits_for_the_next_opening(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 1)
    new_campaign(engine, ids)  # 09:00-20:00 Shanghai
    late = datetime(2026, 11, 23, 13, 30, tzinfo=timezone.utc)  # 21:30 in Shanghai
    claimed = claim(engine, now=late)
    assert claimed.jobs == [] and claimed.waiting[0][0] == ids[0]
    assert target(engine, ids[0]).next_attempt_at == datetime(2026, 11, 24, 1, 0, tzinfo=timezone.utc)


def test_retries_back_off_and_stop_after_the_last_attempt(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 1)
    new_campaign(engine, ids, **ALL_DAY, retry_backoff_s=[60, 600], max_attempts=3)
    now = NOW
    for attempt in (1, 2, 3):
        job = claim(engine, now=now).jobs[0]
        assert job.attempt_no == attempt
        with session_scope(engine) as session:
            assert campaigns.finish_attempt(session, job.attempt_id, "d1",
                                            AttemptOutcome("no_answer", {}), now)
        row = target(engine, ids[0])
        if attempt < 3:
            assert row.status == "pending"
            assert row.next_attempt_at == now + timedelta(seconds=60 if attempt == 1 else 600)
            assert claim(engine, now=now).jobs == []  # not before its time
            now = row.next_attempt_at
    row = target(engine, ids[0])
    assert (row.status, row.attempts, row.next_attempt_at) == ("done", 3, None)


def test_a_booked_callback_is_dialled_at_its_time_and_a_transfer_ends_the_target(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 2)
    new_campaign(engine, ids, **ALL_DAY)
    first, second = claim(engine).jobs
    due = NOW + timedelta(hours=5)
    with session_scope(engine) as session:
        campaigns.finish_attempt(session, first.attempt_id, "d1",
                                 AttemptOutcome("callback", {}, callback_at=due), NOW)
        campaigns.finish_attempt(session, second.attempt_id, "d1",
                                 AttemptOutcome("transferred", {"transferred": True}, handoff_id=7), NOW)
    assert target(engine, first.customer_id).next_attempt_at == due
    assert target(engine, second.customer_id).status == "done"


def test_an_attempt_whose_dialer_died_is_closed_as_interrupted_and_the_customer_retried(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 1)
    new_campaign(engine, ids, **ALL_DAY, lease_s=30, retry_backoff_s=[5])
    job = claim(engine, dialer="dead").jobs[0]
    with session_scope(engine) as session:
        assert campaigns.recover_expired(session, NOW + timedelta(seconds=10)) == []  # lease alive
        assert campaigns.recover_expired(session, NOW + timedelta(seconds=31)) == [job.attempt_id]
    with session_scope(engine) as session:  # the dead dialer's late write cannot land twice
        assert not campaigns.finish_attempt(session, job.attempt_id, "dead",
                                            AttemptOutcome("transferred", {}), NOW)
    retry = claim(engine, now=NOW + timedelta(seconds=40), dialer="d2").jobs
    assert [(j.customer_id, j.attempt_no) for j in retry] == [(ids[0], 2)]
    with session_scope(engine) as session:
        statuses = [a.status for a in session.execute(
            select(CallAttempt).order_by(CallAttempt.attempt_no)).scalars()]
    assert statuses == ["interrupted", "dialing"]


def test_racing_dialers_never_take_the_same_customer(engine, db_url, tmp_path):
    ids = load_customers(engine, tmp_path, 60)
    new_campaign(engine, ids, **ALL_DAY)
    taken: list[str] = []
    barrier = threading.Barrier(4)

    def dialer(name: str) -> None:
        own = make_engine(db_url)
        barrier.wait()
        try:
            while True:
                with session_scope(own) as session:
                    jobs = campaigns.claim_due(session, "c1", 3, NOW, name, call_id).jobs
                if not jobs:
                    return
                taken.extend(j.customer_id for j in jobs)
        finally:
            own.dispose()

    run_together(dialer, ["d0", "d1", "d2", "d3"])
    assert sorted(taken) == sorted(ids)  # every customer once, none twice


def run_together(target, names: list[str]) -> None:
    """``target(name)`` for every name, each on its own thread, all at once; returns when all end."""
    threads = [threading.Thread(target=target, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class FakeNetwork:
    """Answers after a short wait: the first attempt of odd customers is not answered."""

    def __init__(self) -> None:
        self.dialled: list[tuple[str, int]] = []

    async def place(self, job: campaigns.DialJob) -> CallResult:
        self.dialled.append((job.customer_id, job.attempt_no))
        await asyncio.sleep(0.05)
        unanswered = int(job.customer_id[1:]) % 2 == 1 and job.attempt_no == 1
        outcome = "no_answer" if unanswered else "not_interested"
        return CallResult(job.call_id, job.customer_id, outcome, "bot", 0.0, [])


def test_two_dialers_share_a_campaign_and_finish_it_without_doubling_a_dial(engine, db_url, tmp_path):
    ids = load_customers(engine, tmp_path, 20)
    new_campaign(engine, ids, **ALL_DAY, retry_backoff_s=[1], max_concurrency=3, agent_gated=False)
    with session_scope(engine) as session:
        campaigns.command(session, "c1", "start", MANAGER, NOW)
    network = FakeNetwork()

    async def both() -> None:
        engines = [make_engine(db_url) for _ in range(2)]
        dialers = [Dialer(e, "c1", network.place, dialer_id=f"d{i}", new_call_id=call_id, poll_s=0.05)
                   for i, e in enumerate(engines)]
        await asyncio.gather(*(d.run() for d in dialers))
        for e in engines:
            e.dispose()

    asyncio.run(both())
    assert len(network.dialled) == len(set(network.dialled)) == 30  # 20 first + 10 retries
    with session_scope(engine) as session:
        targets = session.execute(select(CampaignTarget)).scalars().all()
        assert campaigns.get_campaign(session, "c1").status == "done"
    assert {t.status for t in targets} == {"done"}
    assert sum(t.attempts for t in targets) == 30


@pytest.mark.parametrize("settings, message", [
    ({"max_concurency": 2}, "unknown campaign settings: max_concurency"),
    ({"window_start": "9am"}, "bad calling window"),
    ({"variants": {"A": 1, "B": 0}}, "positive weights"),
    ({"retry_backoff_s": [-5]}, "bad campaign settings"),
])
def test_bad_campaign_settings_are_refused_with_the_reason(settings, message):
    with pytest.raises(campaigns.CampaignError, match=message):
        CampaignConfig.from_json(settings)


def test_an_unknown_campaign_is_named_with_the_ones_that_exist(engine, tmp_path):
    new_campaign(engine, load_customers(engine, tmp_path, 1))
    with session_scope(engine) as session, pytest.raises(campaigns.CampaignError, match="campaigns: c1"):
        campaigns.get_campaign(session, "c2")


def test_a_callback_the_customer_asked_for_keeps_its_time_despite_the_minimum_gap(engine, tmp_path):
    ids = load_customers(engine, tmp_path, 2)
    new_campaign(engine, ids, window_start="00:00", window_end="23:59:59", min_gap_s=4 * 3600)
    first, second = claim(engine).jobs
    soon = NOW + timedelta(hours=1)
    with session_scope(engine) as session:
        campaigns.finish_attempt(session, first.attempt_id, "d1",
                                 AttemptOutcome("callback", {}, callback_at=soon), NOW)
        campaigns.finish_attempt(session, second.attempt_id, "d1",
                                 AttemptOutcome("busy", {}), NOW)
    claimed = claim(engine, now=soon)
    assert [j.customer_id for j in claimed.jobs] == [first.customer_id]
    # the busy line's retry is due after 30 minutes but must keep the 4-hour gap
    assert claimed.waiting == [(second.customer_id, "min_gap")]
    assert target(engine, second.customer_id).next_attempt_at == NOW + timedelta(hours=4)


@pytest.mark.postgres
def test_dialers_of_several_workers_together_keep_the_campaigns_concurrency(postgres_server, tmp_path):
    from persistence.migrator import migrate

    db_url = postgres_server.new_database()
    engine = make_engine(db_url)
    migrate(engine)
    ids = load_customers(engine, tmp_path, 20)
    new_campaign(engine, ids, **ALL_DAY, max_concurrency=3)
    taken: list[tuple[str, campaigns.DialJob]] = []
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:  # each a dialer in its own process, sharing the campaign
        own = make_engine(db_url)
        barrier.wait()
        try:
            for _ in range(5):
                with session_scope(own) as session:
                    jobs = campaigns.claim_due(session, "c1", 2, NOW, name, call_id, max_in_call=3).jobs
                taken.extend((name, job) for job in jobs)
        finally:
            own.dispose()

    run_together(worker, ["w0", "w1", "w2", "w3"])
    assert len(taken) == 3, "four workers, yet never more calls at once than the campaign allows"
    assert len({job.customer_id for _, job in taken}) == 3
    dialer, ended = taken[0]
    with session_scope(engine) as session:
        assert campaigns.finish_attempt(session, ended.attempt_id, dialer,
                                        AttemptOutcome("no_answer", {}), NOW)
    with session_scope(engine) as session:  # the line that call held is free again, one line
        assert len(campaigns.claim_due(session, "c1", 2, NOW, "w9", call_id, max_in_call=3).jobs) == 1
    engine.dispose()


def test_a_finished_calls_outcome_waits_out_a_database_outage_instead_of_being_redialled(
        engine, tmp_path, monkeypatch):
    from sqlalchemy.exc import OperationalError

    ids = load_customers(engine, tmp_path, 2)[1:]  # an even customer: answers the first time
    new_campaign(engine, ids, **ALL_DAY, agent_gated=False, lease_s=2)
    with session_scope(engine) as session:
        campaigns.command(session, "c1", "start", MANAGER, NOW)
    network = FakeNetwork()
    real_finish, failures = campaigns.finish_attempt, []

    def finish_while_the_database_restarts(*args, **kwargs):
        if len(failures) < 3:  # the database is away for the first three tries (~1.5 s)
            failures.append(1)
            raise OperationalError("UPDATE", {}, Exception("the database system is shutting down"))
        return real_finish(*args, **kwargs)

    monkeypatch.setattr(campaigns, "finish_attempt", finish_while_the_database_restarts)
    dialer = Dialer(engine, "c1", network.place, new_call_id=call_id, poll_s=0.05)
    status = asyncio.run(dialer.run())
    with session_scope(engine) as session:
        attempts = session.execute(select(CallAttempt)).scalars().all()
    assert [(a.status, a.outcome) for a in attempts] == [("done", "not_interested")]
    assert network.dialled == [(ids[0], 1)], "the customer was dialled once"
    assert len(failures) == 3 and status.finished == 1
