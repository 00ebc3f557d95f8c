"""The leads API and the branch pages: who may call what (every endpoint and page, every role,
expectations from ``core.access``), each person's reach (a branch manager their branch, an
account manager their own leads), a lead worked from claim to application with its times and
history, the audited contact view, giving leads out, and a branch's scorecard from late and
on-time leads. On SQLite and real PostgreSQL where the database matters; the app's clock is
the test's."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from branches import leads
from branches.web.pages import ASSETS, PAGES
from core.access import BRANCH_SCOPED, Permission, Staff, allows
from core.settings import PROJECT_ROOT
from core.vocabulary import AuditAction, LeadSource, Role
from handoff.agents import open_session
from handoff.api import HANDOFF
from offercall.web.app import init_app
from outbound.web.pages import ASSETS as WORKSPACE_ASSETS
from outbound.whitelist import import_whitelist_file
from persistence.branches import load_branches
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import Agent, AuditEntry, BranchLead, BranchLeadEvent, Customer
from tests.conftest import QUEUE_NOW
from tests.stack import stack_settings
from tests.test_campaign_api import add_staff

T0 = QUEUE_NOW
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
TOKENS_AT = T0 + 20 * DAY
"""Sessions are opened at the latest instant a test's clock reaches: valid for all before it."""
SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
_customers = itertools.count(1)


class Clock:
    """The app's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def add_customer(engine: Engine, region: str = "金堂县") -> str:
    """A new customer in ``region`` (no offer), like the whitelist's."""
    number = next(_customers)
    customer_id = f"L{number:05d}"
    with session_scope(engine) as session:
        session.add(Customer(customer_id=customer_id, name=f"测试{number}", masked_name="测**",
                             phone=f"1370000{number:04d}", region=region, consent=True,
                             created_at=T0, updated_at=T0))
    return customer_id


def open_lead(engine: Engine, customer_id: str, now: datetime = T0) -> leads.Lead:
    with session_scope(engine) as session:
        return leads.open_lead(session, customer_id, LeadSource.PARTNER_INTAKE,
                               f"intake-{customer_id}-{now.timestamp()}", now)


def staff(engine: Engine, username: str) -> Staff:
    with session_scope(engine) as session:
        row = session.execute(select(Agent).where(Agent.username == username)).scalar_one()
        return Staff(row.id, Role(row.role), row.branch_id)


def act(engine: Engine, fn: Callable[..., Any], *args: Any) -> Any:
    with session_scope(engine) as session:
        return fn(session, *args)


def bearer(engine: Engine, usernames: list[str]) -> dict[str, dict[str, str]]:
    """A logged-in session per account, opened directly (no password hashing per test)."""
    with session_scope(engine) as session:
        ids = dict(session.execute(select(Agent.username, Agent.id)
                                   .where(Agent.username.in_(usernames))).all())
        return {name: {"Authorization": f"Bearer {open_session(session, ids[name], TOKENS_AT)}"}
                for name in usernames}


def unmasked_views(engine: Engine) -> list[tuple[str, str, dict]]:
    with session_scope(engine) as session:
        return [(row.actor, row.subject_id, dict(row.detail)) for row in session.execute(
            select(AuditEntry).where(AuditEntry.action == AuditAction.UNMASKED_VIEWED)
            .order_by(AuditEntry.id)).scalars()]


def lead_state(engine: Engine, lead_id: int | None) -> tuple:
    """What a refused call must leave alone: the lead row, its history, the audit trail."""
    with session_scope(engine) as session:
        row = session.get(BranchLead, lead_id) if lead_id else None
        events = session.execute(select(func.count()).where(
            BranchLeadEvent.lead_id == lead_id)).scalar()
        audits = session.execute(select(func.count()).select_from(AuditEntry)).scalar()
        shown = (row.status, row.manager_id, row.note, row.updated_at) if row else None
        return shown, events, audits


async def app_client(aiohttp_client, tmp_path, url: str, clock: Clock):
    client = await aiohttp_client(init_app(stack_settings(tmp_path / "var", url)))
    client.server.app[HANDOFF].clock = clock
    return client


async def get_json(client, path: str, headers: dict[str, str], status: int = 200) -> Any:
    response = await client.get(path, headers=headers)
    body = await response.json()
    assert response.status == status, (path, body)
    return body


async def post_json(client, path: str, headers: dict[str, str], body: dict | None = None,
                    status: int = 200) -> Any:
    response = await client.post(path, json=body or {}, headers=headers)
    answer = await response.json()
    assert response.status == status, (path, answer)
    return answer


# ------------------------------------------------------------------ who may call what
@dataclass(frozen=True)
class Endpoint:
    """One endpoint or page as the matrix calls it, on a fresh lead of 金堂 (JT) given to its
    account manager (claimed first when ``claimed``)."""

    method: str  # PAGE: a page (302 without a session, 403 page, 200 html)
    path: str  # {id}: the fresh lead
    needs: tuple[Permission, ...]
    body: Callable[[dict[str, int]], dict[str, Any]] | None = None
    claimed: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


P = Permission
ENDPOINTS = (
    Endpoint("GET", "/api/leads", (P.WORK_LEADS,)),
    Endpoint("GET", "/api/leads/{id}", (P.WORK_LEADS,)),
    Endpoint("POST", "/api/leads/{id}/claim", (P.WORK_LEADS,)),
    Endpoint("POST", "/api/leads/{id}/steps", (P.WORK_LEADS,), claimed=True,
             body=lambda ids: {"outcome": "contacted", "note": "电话已联系"}),
    Endpoint("POST", "/api/leads/{id}/notes", (P.WORK_LEADS,),
             body=lambda ids: {"note": "下午再约"}),
    Endpoint("POST", "/api/leads/{id}/assign", (P.MANAGE_BRANCH_LEADS,),
             body=lambda ids: {"manager_id": ids[Role.BRANCH_MANAGER]}),
    Endpoint("POST", "/api/leads/{id}/reroute", (P.MANAGE_BRANCH_LEADS,),
             body=lambda ids: {"reason": "客户已搬到锦江区", "branch": "CD"}),
    Endpoint("GET", "/api/leads/{id}/contact", (P.VIEW_UNMASKED, P.WORK_LEADS)),
    Endpoint("GET", "/api/branches/JT/scorecard", (P.MANAGE_BRANCH_LEADS,)),
    Endpoint("GET", "/api/branches/JT/managers", (P.MANAGE_BRANCH_LEADS,)),
    Endpoint("PAGE", "/workspace/leads", (P.WORK_LEADS,)),
    Endpoint("PAGE", "/workspace/leads/{id}", (P.WORK_LEADS,)),
)
CALLERS = ("anonymous", "forged", *Role)


@pytest.fixture(scope="module")
def matrix_db(tmp_path_factory) -> Iterator[tuple[str, Engine, dict[str, int], dict]]:
    """One SQLite database for the whole matrix: the whitelist, the branches, one account of
    each role (the branch roles at JT) with a session."""
    url = f"sqlite:///{tmp_path_factory.mktemp('leads-matrix') / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv",
                          today=QUEUE_NOW.date())
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    ids = add_staff(engine, [(f"the_{role}", role, "JT" if role in BRANCH_SCOPED else None)
                             for role in Role])
    tokens = bearer(engine, [f"the_{role}" for role in Role])
    yield url, engine, {role: ids[f"the_{role}"] for role in Role}, tokens
    engine.dispose()


def expected(endpoint: Endpoint, caller: str) -> int:
    page = endpoint.method == "PAGE"
    if caller in ("anonymous", "forged"):
        return 302 if page else 401
    return 200 if all(allows(caller, need) for need in endpoint.needs) else 403


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_every_endpoint_and_page_answers_each_role_as_its_permissions_say(
        aiohttp_client, tmp_path, matrix_db, endpoint):
    url, engine, ids, tokens = matrix_db
    client = await app_client(aiohttp_client, tmp_path, url, Clock(T0 + HOUR))
    owner = staff(engine, f"the_{Role.ACCOUNT_MANAGER}")
    for caller in CALLERS:
        lead = open_lead(engine, add_customer(engine))
        assert (lead.branch_id, lead.manager_id) == ("JT", owner.account_id)
        if endpoint.claimed:
            act(engine, leads.claim, lead.id, owner, T0)
        headers = {"anonymous": {}, "forged": {"Authorization": "Bearer forged"}}.get(
            caller, tokens.get(f"the_{caller}"))
        want = expected(endpoint, caller)
        before = lead_state(engine, lead.id)

        path = endpoint.path.format(id=lead.id)
        body = endpoint.body(ids) if endpoint.body else None
        method = "GET" if endpoint.method == "PAGE" else endpoint.method
        answer = await client.request(method, path, json=body, headers=headers,
                                      allow_redirects=False)
        assert answer.status == want, (caller, await answer.text())
        if endpoint.method == "PAGE":
            assert answer.headers["Cache-Control"] == "no-store"
            if want == 302:
                target = urlsplit(answer.headers["Location"])
                assert (target.path, parse_qs(target.query)) == ("/workspace/login",
                                                                  {"next": [path]})
            else:
                assert answer.content_type == "text/html"
                assert '<html lang="zh-CN">' in await answer.text()
        elif want != 200:
            assert "error" in await answer.json()
            assert lead_state(engine, lead.id) == before, "a refused call changes nothing"


# ------------------------------------------------------------------ behaviour
@pytest.fixture
def branch_db(staffed) -> Engine:
    """The staffed database (jt_mgr: JT's branch manager, mgr, boss, jt ...) plus JT's account
    managers jt_am and jt_am2, CD's branch manager and account manager, and an admin."""
    add_staff(staffed, [("jt_am", "account_manager", "JT"), ("jt_am2", "account_manager", "JT"),
                        ("cd_mgr", "branch_manager", "CD"), ("cd_am", "account_manager", "CD"),
                        ("root", "admin", None)])
    return staffed


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + HOUR)


@pytest.fixture
async def client(aiohttp_client, branch_db, db_url, tmp_path, clock):
    return await app_client(aiohttp_client, tmp_path, db_url, clock)


@pytest.fixture
def who(branch_db) -> dict[str, dict[str, str]]:
    return bearer(branch_db, ["jt_am", "jt_am2", "jt_mgr", "cd_mgr", "cd_am", "root", "mgr",
                              "boss", "jt"])


async def test_a_lead_is_worked_from_claim_to_application_with_each_step_timed(
        client, branch_db, who, clock):
    jt_am, jt_am2 = staff(branch_db, "jt_am"), staff(branch_db, "jt_am2")
    mine = open_lead(branch_db, "C0001")  # 金堂县: JT; given to jt_am (fewest leads, lower id)
    theirs = open_lead(branch_db, "C0007")  # then to jt_am2
    assert (mine.manager_id, theirs.manager_id) == (jt_am.account_id, jt_am2.account_id)
    base = f"/api/leads/{mine.id}"

    listed = await get_json(client, "/api/leads", who["jt_am"])
    assert listed["now"] == iso(T0 + HOUR) and listed["status"] == "open"
    assert listed["branches"] == [{"id": "JT", "name": "金堂县支行"}]
    [view] = listed["leads"]
    assert view["customer"] == {"id": "C0001", "name": "张**", "phone": "138****8001",
                                "region": "金堂县"}
    assert (view["product"], view["amount_yuan"], view["source"], view["status"]) == (
        "邮享贷", 50000, "partner_intake", "assigned")
    assert view["manager"] == {"id": jt_am.account_id, "name": "jt_am"}
    assert view["branch"] == {"id": "JT", "name": "金堂县支行"}
    assert (view["assigned_at"], view["claim_due"], view["verify_due"], view["overdue"]) == (
        iso(T0), iso(T0 + 2 * DAY), None, None)

    claimed = await post_json(client, f"{base}/claim", who["jt_am"])
    assert (claimed["status"], claimed["claimed_at"], claimed["claim_due"],
            claimed["verify_due"]) == ("claimed", iso(T0 + HOUR), None, iso(T0 + HOUR + 2 * DAY))
    again = await post_json(client, f"{base}/claim", who["jt_am"], status=409)
    assert "already claimed" in again["error"]

    clock.now = T0 + 2 * HOUR
    contacted = await post_json(client, f"{base}/steps", who["jt_am"],
                                {"outcome": "contacted", "note": " 客户约明天上午来网点 "})
    assert (contacted["status"], contacted["contacted_at"], contacted["note"]) == (
        "contacted", iso(T0 + 2 * HOUR), "客户约明天上午来网点")
    clock.now = T0 + DAY
    visited = await post_json(client, f"{base}/steps", who["jt_am"], {"outcome": "visited"})
    assert (visited["status"], visited["outcome"], visited["contacted_at"]) == (
        "contacted", "visited", iso(T0 + 2 * HOUR))
    verified = await post_json(client, f"{base}/steps", who["jt_am"], {"outcome": "verified"})
    assert (verified["status"], verified["verified_at"], verified["verify_due"]) == (
        "verified", iso(T0 + DAY), None)
    await post_json(client, f"{base}/notes", who["jt_am"], {"note": "资料齐全"})
    clock.now = T0 + DAY + HOUR
    applied = await post_json(client, f"{base}/steps", who["jt_am"],
                              {"outcome": "applied", "note": "已提交申请"})
    assert (applied["status"], applied["outcome"], applied["closed_at"], applied["is_open"]) == (
        "closed", "applied", iso(T0 + DAY + HOUR), False)

    closed = await post_json(client, f"{base}/steps", who["jt_am"], {"outcome": "declined"},
                             status=409)
    assert "is closed (applied)" in closed["error"]
    for bad in ({"outcome": "won"}, {}, {"outcome": "contacted", "note": 7},
                {"outcome": "contacted", "note": "长" * 2001}):
        await post_json(client, f"{base}/steps", who["jt_am"], bad, status=400)
    await post_json(client, f"{base}/notes", who["jt_am"], {"note": "  "}, status=400)

    shown = await get_json(client, base, who["jt_am"])
    assert [(e["kind"], e["at"]) for e in shown["events"]] == [
        ("assigned", iso(T0)), ("manager", iso(T0)), ("claimed", iso(T0 + HOUR)),
        ("contacted", iso(T0 + 2 * HOUR)), ("visited", iso(T0 + DAY)),
        ("verified", iso(T0 + DAY)), ("note", iso(T0 + DAY)), ("outcome", iso(T0 + DAY + HOUR))]
    assert [e["note"] for e in shown["events"] if e["note"]] == [
        "客户约明天上午来网点", "资料齐全", "已提交申请"]
    assert shown["events"][2]["by"] == {"id": jt_am.account_id, "name": "jt_am"}
    assert shown["events"][0]["by"] is None and shown["events"][0]["to_branch"]["id"] == "JT"
    [period] = shown["periods"]
    assert (period["branch"]["id"], period["claimed_at"], period["verified_at"],
            period["outcome"], period["ended_at"], period["end_reason"]) == (
        "JT", iso(T0 + HOUR), iso(T0 + DAY), "applied", iso(T0 + DAY + HOUR), "closed")

    by_status = {status: [lead["id"] for lead in (await get_json(
        client, f"/api/leads?status={status}", who["jt_mgr"]))["leads"]]
        for status in ("open", "closed", "all")}
    assert by_status == {"open": [theirs.id], "closed": [mine.id], "all": [theirs.id, mine.id]}
    bad = await get_json(client, "/api/leads?status=late", who["jt_mgr"], status=400)
    assert "status must be one of open, closed, all" in bad["error"]


async def test_each_person_sees_and_acts_only_within_their_reach(client, branch_db, who):
    mine = open_lead(branch_db, "C0001")  # JT, jt_am's
    theirs = open_lead(branch_db, "C0007")  # JT, jt_am2's
    cd_lead = open_lead(branch_db, "C0004")  # 新都区: CD, cd_am's

    async def ids(headers, query=""):
        return [lead["id"] for lead in (await get_json(client, "/api/leads" + query,
                                                       headers))["leads"]]

    assert await ids(who["jt_am"]) == [mine.id]
    assert await ids(who["jt_am2"]) == [theirs.id]
    assert sorted(await ids(who["jt_mgr"])) == [mine.id, theirs.id]
    assert await ids(who["cd_mgr"]) == [cd_lead.id] and await ids(who["cd_am"]) == [cd_lead.id]
    assert sorted(await ids(who["root"])) == sorted([mine.id, theirs.id, cd_lead.id])
    assert await ids(who["root"], "?branch=CD") == [cd_lead.id]
    assert await ids(who["jt_mgr"], "?branch=JT") == [mine.id, theirs.id]
    await get_json(client, "/api/leads?branch=CD", who["jt_mgr"], status=403)
    await get_json(client, "/api/leads?branch=NOPE", who["root"], status=404)
    for outsider in ("mgr", "boss", "jt"):  # head office's campaign roles and agents work no leads
        await get_json(client, "/api/leads", who[outsider], status=403)

    before = lead_state(branch_db, mine.id)
    for name in ("cd_mgr", "cd_am", "jt_am2"):  # another branch, another account manager
        headers = who[name]
        base = f"/api/leads/{mine.id}"
        await get_json(client, base, headers, status=403)
        await get_json(client, f"{base}/contact", headers, status=403)
        await post_json(client, f"{base}/claim", headers, status=403)
        await post_json(client, f"{base}/steps", headers, {"outcome": "contacted"}, status=403)
        await post_json(client, f"{base}/notes", headers, {"note": "看一下"}, status=403)
    await post_json(client, f"/api/leads/{mine.id}/assign", who["cd_mgr"],
                    {"manager_id": staff(branch_db, "cd_am").account_id}, status=403)
    await get_json(client, "/api/branches/JT/scorecard", who["cd_mgr"], status=403)
    await get_json(client, "/api/branches/JT/managers", who["cd_mgr"], status=403)
    assert lead_state(branch_db, mine.id) == before and unmasked_views(branch_db) == []
    for headers in (who["jt_am"], who["root"]):
        await get_json(client, "/api/leads/999999", headers, status=404)
        await post_json(client, "/api/leads/999999/claim", headers, status=404)
    assert (await client.get("/api/leads/abc", headers=who["root"])).status == 404
    await get_json(client, "/api/branches/NOPE/scorecard", who["root"], status=404)

    # the branch manager gives jt_am2's lead to jt_am: now it is jt_am's alone
    jt_am = staff(branch_db, "jt_am")
    managers = await get_json(client, "/api/branches/JT/managers", who["jt_mgr"])
    assert [(m["name"], m["role"], m["open_leads"]) for m in managers["managers"]] == [
        ("jt_am", "account_manager", 1), ("jt_am2", "account_manager", 1),
        ("jt_mgr", "branch_manager", 0)]
    given = await post_json(client, f"/api/leads/{theirs.id}/assign", who["jt_mgr"],
                            {"manager_id": jt_am.account_id})
    assert given["manager"] == {"id": jt_am.account_id, "name": "jt_am"}
    assert await ids(who["jt_am"]) == [mine.id, theirs.id] and await ids(who["jt_am2"]) == []
    await get_json(client, f"/api/leads/{theirs.id}", who["jt_am2"], status=403)
    for manager_id, status in ((staff(branch_db, "cd_am").account_id, 422), (999999, 422),
                               ("jt_am", 400), (True, 400)):
        await post_json(client, f"/api/leads/{theirs.id}/assign", who["jt_mgr"],
                        {"manager_id": manager_id}, status=status)
    await post_json(client, f"/api/leads/{theirs.id}/assign", who["jt_am"],
                    {"manager_id": jt_am.account_id}, status=403)  # not a branch manager


async def test_the_full_number_is_shown_to_who_works_the_lead_and_audited(
        client, branch_db, who):
    mine = open_lead(branch_db, "C0001")
    contact = await client.get(f"/api/leads/{mine.id}/contact", headers=who["jt_am"])
    assert contact.status == 200 and contact.headers["Cache-Control"] == "no-store"
    assert await contact.json() == {"lead_id": mine.id, "customer_id": "C0001", "name": "张伟",
                                    "phone": "13800138001", "region": "金堂县"}
    await get_json(client, f"/api/leads/{mine.id}/contact", who["jt_mgr"])
    for refused in ("jt_am2", "cd_mgr", "mgr", "jt"):
        await get_json(client, f"/api/leads/{mine.id}/contact", who[refused], status=403)
    assert unmasked_views(branch_db) == [
        ("jt_am", "C0001", {"lead_id": mine.id, "shown": ["name", "phone"]}),
        ("jt_mgr", "C0001", {"lead_id": mine.id, "shown": ["name", "phone"]})]
    listed = await get_json(client, "/api/leads", who["jt_am"])
    assert "13800138001" not in str(listed) and "张伟" not in str(listed)


async def test_the_scorecard_counts_late_and_on_time_leads_and_says_why_a_branch_is_suspended(
        client, branch_db, who, clock):
    jt_mgr = staff(branch_db, "jt_mgr")
    made = [open_lead(branch_db, add_customer(branch_db)).id for _ in range(10)]
    assert all(act(branch_db, leads.get_lead, lead_id, T0).branch_id == "JT" for lead_id in made)

    def do(index: int, days: float, outcome: str | None = None) -> None:
        at = T0 + timedelta(days=days)
        if outcome is None:
            act(branch_db, leads.claim, made[index], jt_mgr, at)
        else:
            act(branch_db, leads.record_step, made[index], jt_mgr, outcome, "", at)

    for index in range(6):
        do(index, 1)  # claimed on time (due T0 + 2 days)
    for index in range(6, 10):
        do(index, 3)  # claimed late, before any sweep moved them
    for index in range(3):
        do(index, 2, "verified")  # on time (due T0 + 3 days)
    do(3, 3.5, "verified")  # late; 4 and 5 stay unverified past their due
    for index, outcome in ((0, "applied"), (1, "applied"), (2, "declined")):
        do(index, 2.5, outcome)
    do(6, 3.5, "declined")  # closed before its verification was due: not judged

    clock.now = T0 + 5 * DAY
    card = await get_json(client, "/api/branches/JT/scorecard", who["jt_mgr"])
    assert card["branch"] == {"id": "JT", "name": "金堂县支行"}
    assert (card["window_start"], card["window_end"], card["window_days"]) == (
        iso(T0 - 25 * DAY), iso(T0 + 5 * DAY), 30)
    assert (card["leads"], card["claims_judged"], card["claims_on_time"],
            card["verifications_judged"], card["verifications_on_time"], card["finished"],
            card["applied"], card["rerouted_away"]) == (10, 10, 6, 6, 3, 4, 2, 0)
    assert (card["claimed_on_time_rate"], card["verified_on_time_rate"],
            card["conversion_rate"]) == (0.6, 0.5, 0.5)
    assert (card["min_claim_rate"], card["min_verify_rate"], card["min_judged"]) == (0.8, 0.8, 10)
    assert card["suspended"] == (
        "按时认领率 60%（近 30 天考核 10 条，按时 6 条），低于最低要求 80%"
    ), "6 verifications: too few"
    assert await get_json(client, "/api/branches/JT/scorecard", who["root"]) == card

    listed = (await get_json(client, "/api/leads", who["jt_mgr"]))["leads"]
    late = {lead["id"]: (lead["missed"], lead["overdue"]) for lead in listed if lead["overdue"]}
    assert set(late) == {made[4], made[5]}, "due at the very instant (T0 + 5 days): on time"
    assert all(missed == "verify_overdue" and "认领后 2 天内未完成核实" in reason
               for missed, reason in late.values())
    assert [lead["id"] for lead in listed][:2] == [made[4], made[5]], "the soonest due first"

    empty = await get_json(client, "/api/branches/CD/scorecard", who["cd_mgr"])
    assert (empty["leads"], empty["claimed_on_time_rate"], empty["conversion_rate"],
            empty["suspended"]) == (0, None, None, None)
    await get_json(client, "/api/branches/JT/scorecard", who["jt_am"], status=403)


# ------------------------------------------------------------------ the pages
@SQLITE
async def test_the_pages_refuse_roles_that_work_no_leads_in_chinese(client, who):
    for name, elsewhere in (("jt", 'href="/console"'), ("mgr", 'href="/workspace"')):
        answer = await client.get("/workspace/leads", headers=who[name], allow_redirects=False)
        text = await answer.text()
        assert answer.status == 403 and answer.content_type == "text/html"
        assert "支行线索仅供支行经理、客户经理和系统管理员使用" in text and elsewhere in text
    for name in ("jt_am", "jt_mgr", "root"):
        answer = await client.get("/workspace/leads/1", headers=who[name])
        page = await answer.text()
        assert answer.status == 200 and 'src="/workspace/leads-assets/lead.js"' in page
    assert (await client.get("/workspace/leads/abc", headers=who["root"])).status == 404
    for asset in sorted(ASSETS.iterdir()):
        served = await client.get(f"/workspace/leads-assets/{asset.name}")
        assert served.status == 200, asset.name
    assert (await client.get("/workspace/leads-assets/../pages/leads.html")).status in (403, 404)


def test_every_page_loads_assets_that_exist_and_imports_what_they_export():
    """The pages name assets that exist, and each script imports only names its modules
    export (a typo would show only in a browser)."""
    mine = {asset.name for asset in ASSETS.iterdir()}
    shared = {asset.name for asset in WORKSPACE_ASSETS.iterdir()}

    def exported(path) -> set[str]:
        return set(re.findall(r"export (?:async )?(?:function|const) ([\w$]+)",
                              path.read_text("utf-8")))

    for page in PAGES.iterdir():
        html = page.read_text(encoding="utf-8")
        assert '<html lang="zh-CN">' in html
        assert set(re.findall(r'/workspace/static/([\w.]+)', html)) == {"workspace.css"}
        assert set(re.findall(r'/workspace/leads-assets/([\w.]+)', html)) <= mine, page.name
    for script in ASSETS.glob("*.js"):
        source = script.read_text("utf-8")
        for names, module in re.findall(r'import \{([^}]*)\} from "([^"]+)"', source):
            if module.startswith("/workspace/static/"):
                assert module.rsplit("/", 1)[1] in shared, module
                target = WORKSPACE_ASSETS / module.rsplit("/", 1)[1]
            else:
                assert module.removeprefix("./") in mine, module
                target = ASSETS / module.removeprefix("./")
            wanted = {name.strip() for name in names.split(",") if name.strip()}
            assert wanted <= exported(target), (script.name, wanted - exported(target))


async def test_the_deadlines_and_scorecard_minimums_come_from_the_settings(
        aiohttp_client, branch_db, db_url, tmp_path, who):
    settings = replace(stack_settings(tmp_path / "var", db_url), lead_claim_days=1,
                       lead_verify_days=3, scorecard_min_claim_pct=90, scorecard_min_judged=5)
    client = await aiohttp_client(init_app(settings))
    client.server.app[HANDOFF].clock = Clock(T0 + HOUR)
    lead = open_lead(branch_db, "C0001")
    view = await get_json(client, f"/api/leads/{lead.id}", who["jt_am"])
    assert (view["claim_due"], view["verify_due"]) == (iso(T0 + DAY), None)
    claimed = await post_json(client, f"/api/leads/{lead.id}/claim", who["jt_am"])
    assert claimed["verify_due"] == iso(T0 + HOUR + 3 * DAY)
    card = await get_json(client, "/api/branches/JT/scorecard", who["jt_mgr"])
    assert (card["min_claim_rate"], card["min_verify_rate"], card["min_judged"]) == (0.9, 0.8, 5)


async def test_a_manager_moves_a_lead_by_hand_with_the_reason_recorded(client, branch_db, who):
    lead = open_lead(branch_db, "C0001")  # 金堂县: JT
    base = f"/api/leads/{lead.id}"
    assert "reroute_to" not in await get_json(client, base, who["jt_am"])  # theirs, not to move
    offered = (await get_json(client, base, who["jt_mgr"]))["reroute_to"]
    assert {"id": "CD", "name": "成都分行营业部"} in offered and "JT" not in [b["id"] for b in offered]
    for body, status, error in [({"reason": "  "}, 400, "reason"), ({}, 400, "reason"),
                                ({"reason": "x", "branch": 7}, 400, "branch"),
                                ({"reason": "客户搬家", "branch": "NOPE"}, 404, "no branch"),
                                ({"reason": "客户搬家", "branch": "JT"}, 409, "already with JT")]:
        before = lead_state(branch_db, lead.id)
        answer = await post_json(client, f"{base}/reroute", who["jt_mgr"], body, status=status)
        assert error in answer["error"] and lead_state(branch_db, lead.id) == before
    await post_json(client, f"{base}/reroute", who["jt_am"], {"reason": "x"}, status=403)
    await post_json(client, f"{base}/reroute", who["cd_mgr"], {"reason": "x"}, status=403)

    moved = await post_json(client, f"{base}/reroute", who["jt_mgr"],
                            {"reason": "客户已搬到锦江区", "branch": "CD"})
    assert (moved["branch"]["id"], moved["status"]) == ("CD", "rerouted")
    shown = await get_json(client, base, who["cd_mgr"])
    rerouted = [e for e in shown["events"] if e["kind"] == "rerouted"][-1]
    assert "人工改派：客户已搬到锦江区" in rerouted["reason"] and rerouted["missed"] == "manual"
    assert rerouted["by"]["name"] == "jt_mgr"
    assert [(p["branch"]["id"], p["end_reason"]) for p in shown["periods"]] == [
        ("JT", "manual"), ("CD", None)]
    await post_json(client, f"{base}/reroute", who["jt_mgr"], {"reason": "x"}, status=403)

    onward = await post_json(client, f"{base}/reroute", who["root"], {"reason": "营业部人手不足"})
    assert onward["branch"]["id"] not in ("JT", "CD")  # the next nearest it was never taken from
