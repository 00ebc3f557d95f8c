"""Post-loan alerts end to end, on SQLite and on a real PostgreSQL server: the settlement feed
by file and by signed API call (bad rows named, bad requests refused, nothing changed by
either; the same records again change nothing), alerts raised once for the customer's
owner, acknowledged with a note, and escalated to the branch manager on a controllable
clock, by the scan and by the worker that runs it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from branches import leads
from core.access import Staff
from core.vocabulary import AlertRule, AlertStatus, AuditAction, LeadSource, Role
from handoff.api import HANDOFF
from lending import alerts, settlements
from lending.alert_policy import AlertPolicy
from lending.errors import AlertError, SettlementFileError, SettlementsRefused
from lending.settlement_rows import parse_csv, parse_request
from lending.signatures import signed_headers
from offercall.web.app import init_app
from offercall.worker import Worker
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import (
    Agent,
    AuditEntry,
    Customer,
    PostLoanAlert,
    Settlement,
    SettlementNonce,
)
from tests.stack import stack_settings
from tests.test_campaign_api import add_staff
from tests.test_leads_api import Clock, bearer

T0 = datetime(2026, 12, 5, 2, 0, tzinfo=timezone.utc)  # 10:00 on 5 December in Shanghai
TODAY = T0.date()
POLICY = AlertPolicy()  # 30 % drop, 10 idle days, 60 % share of 3 settlements, 48 h to acknowledge
KEY = "settlement-test-key-0123456789"
STAFF = [("jt_am", "account_manager", "JT"), ("jt_am2", "account_manager", "JT"),
         ("cd_mgr", "branch_manager", "CD"), ("root", "admin", None)]
HEADER = "ref,customer_id,date,amount,payer"


def history(customer_id: str, prefix: str) -> list[str]:
    """October: 30,000 yuan from three payers evenly; November: 12,000, 10,000 of it from one
    payer, the last on 20 November. As of 5 December: a 60 % drop, a payer at 83.3 %, and 14
    days without a settlement."""
    rows = [f"{prefix}-o{i},{customer_id},2026-10-{10 + i},10000.00,付款方{i}" for i in range(3)]
    rows += [f"{prefix}-n0,{customer_id},2026-11-05,10000,成都某医药公司",
             f"{prefix}-n1,{customer_id},2026-11-12,1000,付款方0",
             f"{prefix}-n2,{customer_id},2026-11-20,1000,付款方1"]
    return rows


def write(path: Path, rows: list[str], encoding: str = "utf-8", header: str = HEADER) -> Path:
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


@pytest.fixture
def bank(staffed) -> dict[str, int]:
    """The sample whitelist and branches, jt_mgr and the staff above; C0001 a lead of 金堂's
    given to jt_am. The accounts' ids by username."""
    ids = add_staff(staffed, STAFF)
    with session_scope(staffed) as session:
        ids["jt_mgr"] = session.execute(
            select(Agent.id).where(Agent.username == "jt_mgr")).scalar_one()
        lead = leads.open_lead(session, "C0001", LeadSource.PARTNER_INTAKE, "intake-c1",
                               T0 - timedelta(days=60))
    assert (lead.branch_id, lead.manager_id) == ("JT", ids["jt_am"])
    return ids


def staff_of(ids: dict[str, int], username: str) -> Staff:
    role, branch = {"jt_am": ("account_manager", "JT"), "jt_am2": ("account_manager", "JT"),
                    "jt_mgr": ("branch_manager", "JT"), "cd_mgr": ("branch_manager", "CD"),
                    "root": ("admin", None)}[username]
    return Staff(ids[username], Role(role), branch)


def counts(engine: Engine) -> tuple[int, int, int, int]:
    """Settlements, alerts, audit entries and nonces stored."""
    with session_scope(engine) as session:
        return tuple(session.execute(select(func.count()).select_from(table)).scalar()
                     for table in (Settlement, PostLoanAlert, AuditEntry, SettlementNonce))


def alert_rows(engine: Engine) -> list[PostLoanAlert]:
    with session_scope(engine) as session:
        return session.execute(select(PostLoanAlert).order_by(PostLoanAlert.id)).scalars().all()


def import_(engine: Engine, path: Path, now: datetime = T0) -> settlements.Stored:
    return settlements.import_file(engine, path, now=now, policy=POLICY, actor=Actor.command_line())


# ------------------------------------------------------------------ reading the feed (pure)
def test_every_bad_row_of_a_file_is_named_with_its_line_and_reason():
    rows = [
        "r1,C0001,2026-11-01,1000,甲",                  # line 2: good
        "r2,C0001,2026-11-31,1000,甲",                  # no such date
        "r3,C0001,2026-11-02,10.001,甲",                # three decimals
        "r4,C0001,2026-11-02,-5,甲",                    # not above 0
        "r5,C0001,2026-11-02,0,甲",
        "r6,C0001,2026-11-02,100,",                     # no payer
        "r 7,C0001,2026-11-02,100,甲",                  # a ref with a space
        "r8,C0001,2026-12-06,100,甲",                   # after today
        "r9,C0001,2026-11-02",                          # too few fields
        "",                                             # blank lines are skipped
        "r1,C0001,2026-11-01,1000,甲",                  # the same record again: fine
        "r1,C0001,2026-11-01,1001,甲",                  # the same ref, other figures
        '"r10",C0001,2026/11/03,"12,000.50",乙',        # quoted, slashes, thousands: good
    ]
    parsed = parse_csv(("\n".join([HEADER, *rows]) + "\n").encode(), TODAY)
    assert [(r.ref, r.amount_fen) for r in parsed.rows] == [("r1", 100_000), ("r10", 1_200_050)]
    assert [where for where, _ in parsed.problems] == [
        "line 3", "line 4", "line 5", "line 6", "line 7", "line 8", "line 9", "line 10", "line 13"]
    reasons = dict(parsed.problems)
    assert "2026-11-31" in reasons["line 3"] and "two decimals" in reasons["line 4"]
    assert "above 0" in reasons["line 5"] and "payer" in reasons["line 7"]
    assert "after today" in reasons["line 9"] and "expected 5 fields" in reasons["line 10"]
    assert reasons["line 13"] == "ref r1 is also line 2, with other figures"


def test_a_gbk_file_with_a_chinese_header_is_read():
    text = "流水号,客户号,结算日期,金额,付款方\nG1,C0001,2026-11-01,88.80,成都某医药公司\n"
    data = text.encode("gbk")
    [row] = parse_csv(data, TODAY).rows
    assert (row.ref, row.amount_fen, row.payer) == ("G1", 8880, "成都某医药公司")


@pytest.mark.parametrize("data, why", [
    (b"", "empty"), (b"\n\n", "empty"), (b"\xff\xfe\x00\x81\x00", "neither UTF-8 nor GBK"),
    (b"ref,customer_id,date,amount\nx,C0001,2026-11-01,1\n", "lacks payer"),
    (HEADER.encode() + b"\n", "no settlement rows"),
])
def test_a_file_that_cannot_be_read_at_all_says_why(data, why):
    with pytest.raises(SettlementFileError, match=why):
        parse_csv(data, TODAY)


@pytest.mark.parametrize("body, why", [
    ([], "the body must be"), ({"settlements": {}}, "the body must be"),
    ({"settlements": []}, "empty"), ({"settlements": [{}] * 2001}, "at most 2000"),
])
def test_a_request_of_the_wrong_shape_is_refused(body, why):
    with pytest.raises(SettlementFileError, match=why):
        parse_request(body, TODAY)


# ------------------------------------------------------------------ the file
def test_a_file_is_stored_once_and_its_alerts_go_to_the_customers_owner(bank, staffed, tmp_path):
    engine = staffed
    path = write(tmp_path / "settlements.csv", history("C0001", "a") + history("C0004", "b"),
                 encoding="gbk")
    done = import_(engine, path)
    assert (done.received, done.new, done.unchanged) == (12, 12, 0)
    by_customer: dict[str, dict[str, PostLoanAlert]] = {}
    for row in alert_rows(engine):
        by_customer.setdefault(row.customer_id, {})[row.rule] = row
    assert set(by_customer["C0001"]) == set(AlertRule)  # drop, 14 idle days, one payer at 83 %
    drop = by_customer["C0001"][AlertRule.MONTH_DROP]
    assert (drop.period, drop.figures["drop_pct"], drop.figures["previous_fen"]) == (
        "2026-11", "60.0", 3_000_000)
    assert by_customer["C0001"][AlertRule.NO_SETTLEMENT].period == "2026-11-21"
    share = by_customer["C0001"][AlertRule.PAYER_CONCENTRATION]
    assert share.figures["payer"] == "成都某医药公司" and share.figures["share_pct"] == "83.3"
    # C0001 is jt_am's through their lead; C0004 (新都区) has no lead: its nearest branch's
    assert {(r.branch_id, r.manager_id, r.status) for r in by_customer["C0001"].values()} == {
        ("JT", bank["jt_am"], AlertStatus.OPEN)}
    assert "客户在办线索" in drop.owner_reason
    assert {(r.branch_id, r.manager_id) for r in by_customer["C0004"].values()} == {("CD", None)}
    assert all(r.due_at == T0 + timedelta(hours=48) for r in alert_rows(engine))

    before = counts(engine)
    again = import_(engine, path, now=T0 + timedelta(hours=1))  # the same file again
    assert (again.new, again.unchanged, again.raised) == (0, 12, [])
    assert counts(engine)[:2] == before[:2]  # no settlement, no alert more (an audit entry)
    with session_scope(engine) as session:
        imports = session.execute(select(AuditEntry.detail).where(
            AuditEntry.action == AuditAction.SETTLEMENTS_IMPORTED)).scalars().all()
    assert [entry["new"] for entry in imports] == [12, 0]


def test_a_bad_file_names_each_bad_row_and_changes_nothing(bank, staffed, tmp_path):
    engine = staffed
    import_(engine, write(tmp_path / "first.csv", ["k1,C0001,2026-11-01,100,甲"]))
    before = counts(engine)
    bad = write(tmp_path / "bad.csv", [
        "k2,C0002,2026-11-01,100,甲",      # good, but the file is refused whole
        "k3,C9999,2026-11-01,100,甲",      # an unknown customer
        "k1,C0001,2026-11-01,999,甲",      # a stored ref with other figures
        "k4,C0002,2026-11-01,abc,甲",      # not an amount
    ])
    with pytest.raises(SettlementsRefused) as refused:
        import_(engine, bad)
    assert refused.value.problems == [
        ("line 3", "unknown customer C9999"),
        ("line 4", "ref k1 is already stored with other figures (customer C0001, 2026-11-01, "
                   "100.00 yuan, payer 甲)"),
        ("line 5", "amount must be yuan above 0 with at most two decimals, got 'abc'"),
    ]
    assert counts(engine) == before


# ------------------------------------------------------------------ the API
def signed(body: bytes, *, key: str = KEY, now: datetime = T0, nonce: str = "nonce-0000000000001",
           path: str = "/api/settlements") -> dict[str, str]:
    return {"Content-Type": "application/json",
            **signed_headers(key, "POST", path, body, now=now.timestamp(), nonce=nonce)}


def records(*rows: str) -> bytes:
    keys = ("ref", "customer_id", "date", "amount", "payer")
    items = [dict(zip(keys, row.split(","), strict=True)) for row in rows]
    return json.dumps({"settlements": items}, ensure_ascii=False).encode()


async def app_client(aiohttp_client, tmp_path, engine: Engine, key: str = KEY):
    url = engine.url.render_as_string(hide_password=False)
    settings = stack_settings(tmp_path / "var", url, {"OFFERCALL_SETTLEMENT_KEY": key})
    client = await aiohttp_client(init_app(settings))
    client.server.app[HANDOFF].clock = Clock(T0)
    return client


async def post(client, body: bytes, headers: dict[str, str], status: int) -> dict[str, Any]:
    response = await client.post("/api/settlements", data=body, headers=headers)
    answer = await response.json()
    assert response.status == status, answer
    return answer


async def test_the_api_takes_a_signed_request_once_and_refuses_bad_ones(
        bank, staffed, tmp_path, aiohttp_client):
    engine = staffed
    client = await app_client(aiohttp_client, tmp_path, engine)
    body = records(*[row for row in history("C0001", "api")])
    nothing = counts(engine)

    assert (await post(client, body, {}, 401))["code"] == "unsigned"
    assert (await post(client, body, signed(body, key="another-key-0123456789abc"), 401))["code"] \
        == "bad_signature"
    assert (await post(client, body + b" ", signed(body), 401))["code"] == "bad_signature"
    stale = signed(body, now=T0 - timedelta(minutes=6))
    assert (await post(client, body, stale, 401))["code"] == "stale"
    malformed = {**signed(body), "X-Offercall-Nonce": "short"}
    assert (await post(client, body, malformed, 400))["code"] == "malformed"
    not_json = b"{not json"
    await post(client, not_json, signed(not_json), 400)
    unknown = records("u1,C9999,2026-11-01,100,甲", "u2,C0001,2026-11-01,1.234,甲",
                      "u3,C0001,2026-11-01,100,甲")
    refused = await post(client, unknown, signed(unknown, nonce="nonce-0000000000002"), 422)
    assert refused["problems"] == [
        {"where": "settlements[0]", "reason": "unknown customer C9999"},
        {"where": "settlements[1]", "reason": "amount has at most two decimals (fen), got '1.234'"}]
    assert counts(engine) == nothing  # the refused request's nonce is not kept either

    done = await post(client, body, signed(body, nonce="nonce-0000000000003"), 200)
    assert done == {"received": 6, "new": 6, "unchanged": 0, "alerts_raised": 3}
    replay = await post(client, body, signed(body, nonce="nonce-0000000000003"), 409)
    assert replay["code"] == "replayed"
    again = await post(client, body, signed(body, nonce="nonce-0000000000004"), 200)
    assert again == {"received": 6, "new": 0, "unchanged": 6, "alerts_raised": 0}
    assert counts(engine)[:2] == (6, 3)
    with session_scope(engine) as session:
        sources = set(session.execute(select(Settlement.source)).scalars())
    assert sources == {"api:nonce-0000000000003"}


async def test_the_api_is_off_without_a_key(staffed, tmp_path, aiohttp_client):
    client = await app_client(aiohttp_client, tmp_path, staffed, key="")
    body = records("x,C0001,2026-11-01,1,甲")
    answer = await post(client, body, signed(body), 503)
    assert "OFFERCALL_SETTLEMENT_KEY" in answer["error"]


# ------------------------------------------------------------------ who sees and acknowledges
async def test_each_manager_sees_their_own_alerts_and_acknowledges_them_with_a_note(
        bank, staffed, tmp_path, aiohttp_client):
    engine = staffed
    import_(engine, write(tmp_path / "s.csv", history("C0001", "a") + history("C0004", "b")))
    client = await app_client(aiohttp_client, tmp_path, engine)
    who = bearer(engine, ["jt_am", "jt_am2", "jt_mgr", "cd_mgr", "root", "jt"])

    async def listed(username: str, query: str = "", status: int = 200) -> dict[str, Any]:
        response = await client.get(f"/api/alerts{query}", headers=who.get(username, {}))
        answer = await response.json()
        assert response.status == status, answer
        return answer

    mine = await listed("jt_am")
    assert {(a["customer"]["id"], a["rule"]) for a in mine["alerts"]} == {
        ("C0001", rule) for rule in AlertRule}
    first = mine["alerts"][0]
    assert first["customer"]["name"] == "张**" and first["customer"]["phone"] == "138****8001"
    assert first["manager"] == {"id": bank["jt_am"], "name": "jt_am"} and not first["overdue"]
    assert (await listed("jt_am2"))["alerts"] == []  # another account manager's customers
    assert {a["customer"]["id"] for a in (await listed("jt_mgr"))["alerts"]} == {"C0001"}
    assert {a["customer"]["id"] for a in (await listed("cd_mgr"))["alerts"]} == {"C0004"}
    assert len((await listed("root"))["alerts"]) == 6
    in_cd = (await listed("root", "?branch=CD"))["alerts"]
    assert {a["customer"]["id"] for a in in_cd} == {"C0004"}
    await listed("jt_mgr", "?branch=CD", status=403)
    await listed("jt", status=403)  # an agent
    await listed("nobody", status=401)
    await listed("jt_am", "?status=closed", status=400)

    alert_id = first["id"]
    url = f"/api/alerts/{alert_id}/acknowledge"
    before = counts(engine)
    for username, body, status in [
            ("jt_am2", {"note": "不是我的"}, 403), ("cd_mgr", {"note": "x"}, 403),
            ("jt_am", {"note": "  "}, 400), ("jt_am", {}, 400), ("jt", {"note": "x"}, 403)]:
        response = await client.post(url, json=body, headers=who[username])
        assert response.status == status, (username, await response.json())
    assert counts(engine) == before  # refusals change nothing

    response = await client.post(url, json={"note": "已电话联系客户，淡季回款减少"},
                                 headers=who["jt_am"])
    shown = await response.json()
    assert response.status == 200, shown
    assert (shown["status"], shown["note"], shown["acknowledged_by"]["id"]) == (
        "acknowledged", "已电话联系客户，淡季回款减少", bank["jt_am"])
    response = await client.post(url, json={"note": "再次确认"}, headers=who["jt_mgr"])
    assert response.status == 409
    with session_scope(engine) as session:
        row = session.get(PostLoanAlert, alert_id)
        assert (row.status, row.acknowledged_by, row.acknowledged_at) == (
            AlertStatus.ACKNOWLEDGED, bank["jt_am"], T0)
        [entry] = session.execute(select(AuditEntry).where(
            AuditEntry.action == AuditAction.ALERT_ACKNOWLEDGED)).scalars().all()
        assert (entry.actor, entry.actor_id, entry.subject_id, entry.detail["note"]) == (
            "jt_am", bank["jt_am"], str(alert_id), "已电话联系客户，淡季回款减少")
    assert len((await listed("jt_am"))["alerts"]) == 2  # open ones
    acknowledged = (await listed("jt_mgr", "?status=acknowledged"))["alerts"]
    assert [a["id"] for a in acknowledged] == [alert_id]


def test_a_branch_manager_gives_an_unowned_alert_to_an_account_manager(bank, staffed, tmp_path):
    engine = staffed
    import_(engine, write(tmp_path / "s.csv", history("C0007", "c")))  # 金堂县, no lead
    with session_scope(engine) as session:
        found = alerts.alerts_for(session, staff_of(bank, "jt_mgr"), T0)
        assert {(a.branch_id, a.manager_id) for a in found} == {("JT", None)}
        assert alerts.alerts_for(session, staff_of(bank, "jt_am"), T0) == []
        alert_id = found[0].id
        with pytest.raises(AlertError) as refused:
            alerts.assign(session, alert_id, bank["jt_am2"], staff_of(bank, "jt_am"), T0)
        assert refused.value.status == 403
        with pytest.raises(AlertError) as refused:
            alerts.assign(session, alert_id, bank["cd_mgr"], staff_of(bank, "jt_mgr"), T0)
        assert refused.value.status == 422
        given = alerts.assign(session, alert_id, bank["jt_am2"], staff_of(bank, "jt_mgr"), T0)
        assert given.manager_id == bank["jt_am2"]
    with session_scope(engine) as session:
        given = alerts.alerts_for(session, staff_of(bank, "jt_am2"), T0)
        assert [a.id for a in given] == [alert_id]


def test_owners_a_closed_lead_and_a_region_without_a_branch(bank, staffed):
    engine = staffed
    with session_scope(engine) as session:
        session.add(Customer(customer_id="Z0001", name="赵六", masked_name="赵**",
                             phone="13800000000", region="火星", consent=True, created_at=T0,
                             updated_at=T0))
        session.flush()
        nowhere = alerts.owner_of(session, session.get(Customer, "Z0001"))
        assert (nowhere.branch_id, nowhere.manager_id) == (None, None) and "总行" in nowhere.reason
        lead = leads.lead_of_source(session, LeadSource.PARTNER_INTAKE, "intake-c1", T0)
        am = staff_of(bank, "jt_am")
        leads.claim(session, lead.id, am, T0 - timedelta(days=59))
        leads.record_step(session, lead.id, am, "declined", "", T0 - timedelta(days=58))
        closed = alerts.owner_of(session, session.get(Customer, "C0001"))
        assert (closed.branch_id, closed.manager_id) == ("JT", bank["jt_am"])
        assert "最近一条线索" in closed.reason
        session.execute(Agent.__table__.update().where(Agent.id == bank["jt_am"])
                        .values(active=False))
        gone = alerts.owner_of(session, session.get(Customer, "C0001"))
        assert (gone.branch_id, gone.manager_id) == ("JT", None)


# ------------------------------------------------------------------ escalation on a clock
def test_unacknowledged_alerts_go_to_the_branch_manager_past_their_deadline(
        bank, staffed, tmp_path):
    engine = staffed
    import_(engine, write(tmp_path / "s.csv", history("C0001", "a")))
    [drop, idle, share] = alert_rows(engine)
    with session_scope(engine) as session:  # one acknowledged in time
        alerts.acknowledge(session, share.id, staff_of(bank, "jt_am"), "已核实",
                           T0 + timedelta(hours=47))
    due = T0 + timedelta(hours=48)
    with session_scope(engine) as session:
        assert alerts.escalate_overdue(session, due) == []  # the deadline itself is on time
    with session_scope(engine) as session:
        done = alerts.escalate_overdue(session, due + timedelta(seconds=1))
    assert [(e.alert_id, e.branch_id, e.to) for e in done] == [
        (drop.id, "JT", (bank["jt_mgr"],)), (idle.id, "JT", (bank["jt_mgr"],))]
    with session_scope(engine) as session:
        assert alerts.escalate_overdue(session, due + timedelta(days=3)) == []  # once each
        shown = alerts.alerts_for(session, staff_of(bank, "jt_mgr"), due + timedelta(hours=1),
                                  status=alerts.StatusFilter.ALL)
    assert [(a.id, a.escalated_at is not None, a.overdue) for a in shown] == [
        (drop.id, True, True), (idle.id, True, True), (share.id, False, False)]
    with session_scope(engine) as session:  # escalated: still acknowledged by its owner, late
        late = alerts.acknowledge(session, drop.id, staff_of(bank, "jt_am"), "补充说明",
                                  due + timedelta(hours=2))
        assert late.status == AlertStatus.ACKNOWLEDGED and late.escalated_to == (bank["jt_mgr"],)
        entry = session.execute(select(AuditEntry.detail).where(
            AuditEntry.action == AuditAction.ALERT_ACKNOWLEDGED,
            AuditEntry.subject_id == str(drop.id))).scalar_one()
        assert entry["late"] is True and entry["escalated"] is True


async def test_the_worker_judges_once_a_day_and_escalates_on_its_clock(bank, staffed, tmp_path):
    engine = staffed
    # stored on 30 November: October is judged (no month before it), 9 days without
    import_(engine, write(tmp_path / "s.csv", history("C0001", "a")), now=T0 - timedelta(days=5))
    assert alert_rows(engine) == []
    worker = Worker(engine, placing=None, alert_policy=POLICY, alerts_every_s=0.0)  # type: ignore[arg-type]
    await worker._post_loan_alerts(T0)  # 5 December: November is over, 14 days without
    assert (worker.alerts_raised, worker.alerts_escalated) == (3, 0)
    await worker._post_loan_alerts(T0 + timedelta(hours=48))  # due, not past due
    assert (worker.alerts_raised, worker.alerts_escalated) == (3, 0)
    await worker._post_loan_alerts(T0 + timedelta(hours=48, minutes=1))
    assert (worker.alerts_raised, worker.alerts_escalated) == (3, 3)
    assert all(row.escalated_to == [bank["jt_mgr"]] for row in alert_rows(engine))


def test_judging_again_raises_nothing_new(bank, staffed, tmp_path):
    engine = staffed
    import_(engine, write(tmp_path / "s.csv", history("C0001", "a")))
    with session_scope(engine) as session:
        again = alerts.scan(session, T0 + timedelta(hours=3), POLICY)
    assert (again.raised, again.escalated) == ([], [])
    with session_scope(engine) as session:  # a month later: December is judged, a new period
        later = alerts.scan(session, datetime(2027, 1, 3, 2, tzinfo=timezone.utc), POLICY)
    assert {(a.rule, a.period) for a in later.raised} == {(AlertRule.MONTH_DROP, "2026-12")}
    assert len(later.escalated) == 3  # the spell without settlements is still the one of November
