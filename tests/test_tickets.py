"""The handoff queue's transactions on SQLite and on a real PostgreSQL server: routing on
enqueue, atomic claims, the SLA with a controllable clock, the event log, and restarts."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from handoff import agents, tickets
from handoff.sla import SlaPolicy
from persistence import handoffs, store
from persistence.engine import session_scope
from tests.conftest import QUEUE_NOW


def account(engine, username, now=QUEUE_NOW, online=True):
    from sqlalchemy import select

    from persistence.schema import Agent

    with session_scope(engine) as session:
        agent_id = session.execute(select(Agent.id).where(Agent.username == username)).scalar_one()
        agents.touch(session, agent_id, now if online else None)
        return agents.get_account(session, agent_id, now)


def enqueue(engine, customer="C0001", channel="voice", now=QUEUE_NOW, conversation=None):
    with session_scope(engine) as session:
        offer_id = store.get_customer_offer(session, customer).offer_id
        return handoffs.create_ticket(
            session, conversation_id=conversation or f"conv-{customer}-{channel}", customer_id=customer,
            offer_id=offer_id, channel=channel, reason="customer_requested",
            transcript=[{"speaker": "customer", "text": "我要申请"}], intents=["request_handoff"], now=now,
        )


def ticket(engine, ticket_id):
    with session_scope(engine) as session:
        return tickets.get_ticket(session, ticket_id)


def history(engine, ticket_id):
    with session_scope(engine) as session:
        return [(e.from_status, e.to_status, e.tier, e.actor) for e in tickets.events_of(session, ticket_id)]


def test_a_ticket_is_routed_to_the_branch_nearest_the_customers_region(staffed):
    jintang = ticket(staffed, enqueue(staffed, "C0001"))  # 金堂县
    xindu = ticket(staffed, enqueue(staffed, "C0004"))  # 新都区: 营业部 is nearer than 郫都
    assert (jintang.branch_id, jintang.region, jintang.tier, jintang.status) == ("JT", "金堂县", "branch", "queued")
    assert xindu.branch_id == "CD"
    assert (jintang.product, jintang.amount_yuan, jintang.masked_name) == ("邮享贷", 50000, "张**")
    assert history(staffed, jintang.id) == [(None, "queued", "branch", "bot")]


def test_only_the_branch_and_supervisors_can_claim_a_fresh_ticket(staffed):
    ticket_id = enqueue(staffed, "C0001")
    with session_scope(staffed) as session, pytest.raises(tickets.TicketError) as refused:
        tickets.claim(session, ticket_id, account(staffed, "pool"), QUEUE_NOW)
    assert refused.value.status == 403
    with session_scope(staffed) as session:
        claimed = tickets.claim(session, ticket_id, account(staffed, "jt"), QUEUE_NOW)
    assert claimed.status == "claimed" and claimed.claimed_by == account(staffed, "jt").id
    with session_scope(staffed) as session, pytest.raises(tickets.TicketError) as taken:
        tickets.claim(session, ticket_id, account(staffed, "boss"), QUEUE_NOW)
    assert taken.value.status == 409


def test_an_online_admin_takes_a_fresh_ticket_like_a_supervisor_and_waiting_tickets_are_still_offered(
        staffed):
    with session_scope(staffed) as session:
        agents.add_agent(session, username="root", password="admin-pass-123", display_name="管理员",
                         role="admin", branch_id=None, products=["*"], now=QUEUE_NOW)
    admin = account(staffed, "root")
    account(staffed, "jt")
    ticket_id = enqueue(staffed, "C0001")
    with session_scope(staffed) as session:
        assert tickets.offer_waiting(session, QUEUE_NOW) == [ticket_id]
    with session_scope(staffed) as session:
        assert tickets.claim(session, ticket_id, admin, QUEUE_NOW).claimed_by == admin.id


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_claims_have_exactly_one_winner(staffed, round_):
    """Eight agents' requests race for one ticket in real threads and connections."""
    ticket_id = enqueue(staffed, "C0001", conversation=f"race-{round_}")
    jt, boss = account(staffed, "jt"), account(staffed, "boss")
    start = threading.Barrier(8)
    results: list[object] = []

    def race(who):
        start.wait()
        try:
            with session_scope(staffed) as session:
                results.append(tickets.claim(session, ticket_id, who, QUEUE_NOW).claimed_by)
        except tickets.TicketError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=race, args=(jt if i % 2 else boss,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [r for r in results if r in (jt.id, boss.id)]
    assert len(winners) == 1 and sorted(r for r in results if r not in winners) == [409] * 7
    assert ticket(staffed, ticket_id).claimed_by == winners[0]
    assert [e[1] for e in history(staffed, ticket_id)] == ["queued", "claimed"]


def test_claim_next_hands_concurrent_agents_different_tickets(staffed):
    ids = [enqueue(staffed, c, conversation=f"next-{c}") for c in ("C0001", "C0002", "C0004", "C0007")]
    boss = account(staffed, "boss")
    got: list[int | None] = []
    start = threading.Barrier(4)

    def take():
        start.wait()
        with session_scope(staffed) as session:
            taken = tickets.claim_next(session, boss, QUEUE_NOW)
            got.append(taken.id if taken else None)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == sorted(ids)


def test_live_calls_come_before_chats_and_older_before_newer(staffed):
    chat = enqueue(staffed, "C0001", "chat", now=QUEUE_NOW - timedelta(seconds=30))
    old_call = enqueue(staffed, "C0007", "voice", now=QUEUE_NOW - timedelta(seconds=10))
    new_call = enqueue(staffed, "C0001", "voice", now=QUEUE_NOW)
    jt = account(staffed, "jt")
    order = []
    for _ in range(3):
        with session_scope(staffed) as session:
            order.append(tickets.claim_next(session, jt, QUEUE_NOW).id)
    assert order == [old_call, new_call, chat]


def sweep(engine, now, policy=SlaPolicy()):
    with session_scope(engine) as session:
        tickets.offer_waiting(session, now)
        return [(i, s.action) for i, s in tickets.apply_sla(session, now, policy)]


def test_sla_widens_an_unclaimed_call_at_20_s_and_makes_it_a_callback_at_60_s(staffed):
    account(staffed, "jt")  # the 金堂 agent is online, so the branch is staffed
    ticket_id = enqueue(staffed, "C0001")
    assert sweep(staffed, QUEUE_NOW + timedelta(seconds=19.9)) == []
    assert ticket(staffed, ticket_id).status == "offered"
    assert sweep(staffed, QUEUE_NOW + timedelta(seconds=20)) == [(ticket_id, "widen")]
    widened = ticket(staffed, ticket_id)
    assert (widened.status, widened.tier) == ("rerouted", "pool")
    with session_scope(staffed) as session:  # now the pool may claim it... but not yet: keep waiting
        assert tickets.get_ticket(session, ticket_id).facts().tier == "pool"
    later = QUEUE_NOW + timedelta(seconds=60)
    assert sweep(staffed, later) == [(ticket_id, "to_callback")]
    callback = ticket(staffed, ticket_id)
    assert (callback.kind, callback.tier, callback.status) == ("callback", "branch", "rerouted")
    assert callback.claim_deadline == later + timedelta(days=2)
    assert callback.callback_due_at == later + timedelta(minutes=30)
    assert sweep(staffed, later + timedelta(days=2)) == [(ticket_id, "reroute_callback")]
    assert ticket(staffed, ticket_id).tier == "pool"
    actors = [e[3] for e in history(staffed, ticket_id)]
    assert actors == ["bot", "system:router", "system:sla", "system:sla", "system:sla"]


def test_a_ticket_goes_to_the_pool_at_once_when_nobody_at_its_branch_is_online(staffed):
    account(staffed, "pool")  # only the 营业部 agent is online
    ticket_id = enqueue(staffed, "C0001")
    assert sweep(staffed, QUEUE_NOW + timedelta(seconds=1)) == [(ticket_id, "widen")]
    with session_scope(staffed) as session:
        claimed = tickets.claim(session, ticket_id, account(staffed, "pool"), QUEUE_NOW)
    assert claimed.status == "claimed"


def test_chat_tickets_have_their_own_limits(staffed):
    ticket_id = enqueue(staffed, "C0001", "chat")
    policy = SlaPolicy(chat_widen_s=90, chat_callback_s=600)
    account(staffed, "jt", now=QUEUE_NOW + timedelta(seconds=60))  # still online
    assert sweep(staffed, QUEUE_NOW + timedelta(seconds=60), policy) == []
    account(staffed, "jt", now=QUEUE_NOW + timedelta(seconds=90))
    assert sweep(staffed, QUEUE_NOW + timedelta(seconds=90), policy) == [(ticket_id, "widen")]


def test_two_sweepers_racing_apply_each_step_once(staffed):
    account(staffed, "jt")
    ticket_id = enqueue(staffed, "C0001")
    at = QUEUE_NOW + timedelta(seconds=25)
    results = []
    start = threading.Barrier(2)

    def run():
        start.wait()
        results.append(sweep(staffed, at))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 1]
    assert [e[1] for e in history(staffed, ticket_id)].count("rerouted") == 1


def test_close_records_the_outcome_and_only_the_owner_may_close(staffed):
    ticket_id = enqueue(staffed, "C0001")
    jt, sl = account(staffed, "jt"), account(staffed, "sl")
    with session_scope(staffed) as session:
        tickets.claim(session, ticket_id, jt, QUEUE_NOW)
        assert tickets.connect(session, ticket_id, "voice:bridge", QUEUE_NOW)
    with session_scope(staffed) as session, pytest.raises(tickets.TicketError) as refused:
        tickets.close(session, ticket_id, sl, "applied", "", QUEUE_NOW)
    assert refused.value.status == 403
    with session_scope(staffed) as session, pytest.raises(tickets.TicketError) as bad:
        tickets.close(session, ticket_id, jt, "sold", "", QUEUE_NOW)
    assert bad.value.status == 400
    with session_scope(staffed) as session:
        closed = tickets.close(session, ticket_id, jt, "applied", "客户当场提交申请", QUEUE_NOW)
    assert (closed.status, closed.agent_outcome, closed.agent_note) == ("closed", "applied", "客户当场提交申请")
    assert [e[1] for e in history(staffed, ticket_id)] == ["queued", "claimed", "connected", "closed"]


def test_a_customer_who_hangs_up_while_waiting_abandons_the_ticket(staffed):
    ticket_id = enqueue(staffed, "C0001")
    with session_scope(staffed) as session:
        assert tickets.abandon(session, ticket_id, "the customer hung up", QUEUE_NOW)
    with session_scope(staffed) as session, pytest.raises(tickets.TicketError) as late:
        tickets.claim(session, ticket_id, account(staffed, "jt"), QUEUE_NOW)
    assert late.value.status == 409 and "abandoned" in str(late.value)


def test_a_restart_loses_no_ticket(staffed, db_url):
    """Tickets live only in the database: a new process (engine) sees every one, in order."""
    from persistence.engine import make_engine

    ids = [enqueue(staffed, c, conversation=f"restart-{c}") for c in ("C0001", "C0002", "C0003")]
    with session_scope(staffed) as session:
        tickets.claim(session, ids[1], account(staffed, "boss"), QUEUE_NOW)
    staffed.dispose()
    fresh = make_engine(db_url)
    try:
        with session_scope(fresh) as session:
            assert [(t.id, t.status) for t in tickets.open_tickets(session)] == [
                (ids[0], "queued"), (ids[1], "claimed"), (ids[2], "queued")]
    finally:
        fresh.dispose()


def test_wrong_passwords_and_revoked_sessions_are_refused(staffed):
    with session_scope(staffed) as session:
        assert agents.log_in(session, "jt", "wrong-password", QUEUE_NOW) is None
        token, jt = agents.log_in(session, "jt", "correct-horse-battery", QUEUE_NOW)
        assert agents.account_for_token(session, token, QUEUE_NOW).id == jt.id
        assert agents.account_for_token(session, token, QUEUE_NOW + timedelta(hours=13)) is None
        agents.log_out(session, token, QUEUE_NOW)
        assert agents.account_for_token(session, token, QUEUE_NOW) is None
        stored = session.execute(__import__("sqlalchemy").text("SELECT password_hash FROM oc_agents")).scalars().all()
    assert all(h.startswith("scrypt$") and "correct-horse" not in h for h in stored)


# --- phone transfers over SIP ----------------------------------------------------------------

def transfer(engine, ticket_id, status, *, mode="refer", promised=False, at=None, detail="200 OK"):
    with session_scope(engine) as session:
        return tickets.record_transfer(
            session, ticket_id, mode=mode, target="sip:agents@pbx", status=status, detail=detail,
            at=at or QUEUE_NOW + timedelta(seconds=5), callback_promised=promised, policy=SlaPolicy(),
        )


@pytest.mark.parametrize(("mode", "status"), [("refer", "accepted"), ("bridge", "bridged")])
def test_a_completed_phone_transfer_connects_the_ticket_and_nobody_can_claim_it(staffed, mode, status):
    ticket_id = enqueue(staffed, "C0001")
    assert transfer(staffed, ticket_id, status, mode=mode)
    connected = ticket(staffed, ticket_id)
    assert connected.status == "connected" and connected.connected_at == QUEUE_NOW + timedelta(seconds=5)
    assert (connected.transfer_mode, connected.transfer_target, connected.transfer_status) == (
        mode, "sip:agents@pbx", status)
    assert history(staffed, ticket_id)[-1] == ("queued", "connected", "branch", "sip")
    with session_scope(staffed) as session, pytest.raises(tickets.TicketError) as refused:
        tickets.claim(session, ticket_id, account(staffed, "jt"), QUEUE_NOW)
    assert refused.value.status == 409


def test_the_sla_sweeper_never_turns_a_transferred_call_into_a_phantom_callback(staffed):
    ticket_id = enqueue(staffed, "C0001")
    transfer(staffed, ticket_id, "accepted")
    for later in (timedelta(seconds=30), timedelta(minutes=2), timedelta(days=3)):
        with session_scope(staffed) as session:
            assert tickets.apply_sla(session, QUEUE_NOW + later, SlaPolicy()) == []
    assert ticket(staffed, ticket_id).kind == "live"


def test_a_transfer_that_completes_after_the_sla_made_a_callback_task_connects_the_call(staffed):
    ticket_id = enqueue(staffed, "C0001")
    with session_scope(staffed) as session:
        tickets.apply_sla(session, QUEUE_NOW + timedelta(seconds=61), SlaPolicy())
    assert ticket(staffed, ticket_id).kind == "callback"
    transfer(staffed, ticket_id, "bridged", mode="bridge", at=QUEUE_NOW + timedelta(seconds=70))
    connected = ticket(staffed, ticket_id)
    assert (connected.status, connected.kind) == ("connected", "live")


def test_a_failed_transfer_with_a_promised_callback_becomes_a_callback_task(staffed):
    ticket_id = enqueue(staffed, "C0001")
    at = QUEUE_NOW + timedelta(seconds=40)
    assert transfer(staffed, ticket_id, "failed", promised=True, at=at, detail="486 Busy Here")
    task = ticket(staffed, ticket_id)
    assert (task.status, task.kind, task.tier) == ("rerouted", "callback", "branch")
    assert task.callback_due_at == at + timedelta(minutes=SlaPolicy().callback_promise_min)
    assert task.claim_deadline == at + timedelta(seconds=SlaPolicy().callback_claim_s)
    assert task.transfer_status == "failed"
    with session_scope(staffed) as session:
        reason = tickets.events_of(session, ticket_id)[-1].reason
        claimed = tickets.claim(session, ticket_id, account(staffed, "jt"), at)
    assert "486 Busy Here" in reason and "promised a callback" in reason
    assert claimed.status == "claimed", "the branch's agents call the customer back"


def test_a_failed_transfer_of_a_customer_who_was_gone_abandons_the_ticket(staffed):
    ticket_id = enqueue(staffed, "C0001")
    transfer(staffed, ticket_id, "failed", promised=False, detail="the customer hung up before the transfer")
    assert ticket(staffed, ticket_id).status == "abandoned"


def test_a_transfer_onto_a_closed_ticket_is_noted_in_its_history_only(staffed):
    ticket_id = enqueue(staffed, "C0001")
    jt = account(staffed, "jt")
    with session_scope(staffed) as session:
        tickets.claim(session, ticket_id, jt, QUEUE_NOW)
        tickets.close(session, ticket_id, jt, "applied", "", QUEUE_NOW)
    transfer(staffed, ticket_id, "accepted")
    closed = ticket(staffed, ticket_id)
    assert closed.status == "closed" and closed.transfer_status == "accepted"
    assert history(staffed, ticket_id)[-1] == ("closed", "closed", "branch", "sip")


def test_transfers_of_unknown_tickets_modes_or_statuses_are_refused(staffed):
    ticket_id = enqueue(staffed, "C0001")
    assert not transfer(staffed, 99999, "accepted")
    with pytest.raises(ValueError, match="transfer mode"):
        transfer(staffed, ticket_id, "accepted", mode="carrier-pigeon")
    with pytest.raises(ValueError, match="transfer status"):
        transfer(staffed, ticket_id, "lost")
    assert ticket(staffed, ticket_id).status == "queued"
