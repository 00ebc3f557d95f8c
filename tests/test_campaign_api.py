"""The campaign API, on SQLite and real PostgreSQL: who may call what (every endpoint, every
role), a campaign's life with its audit trail, bad input refused with nothing written, the
masked attempts export, the HTML report and the live status socket."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import aiohttp
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from core.access import BRANCH_SCOPED, Permission, allows
from core.clock import utcnow
from core.settings import PROJECT_ROOT
from core.vocabulary import CampaignStatus, Role
from handoff.agents import add_agent, open_session, touch
from offercall.web.app import init_app
from outbound import campaigns
from outbound.campaigns import CampaignConfig
from outbound.web.campaign_common import CAMPAIGN_API
from outbound.whitelist import import_whitelist_file
from persistence.audit import Actor
from persistence.branches import load_branches
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import Agent, AuditEntry, CallAttempt, Campaign, CampaignTarget
from tests.conftest import AGENT_PASSWORD, QUEUE_NOW, _one_hash
from tests.stack import stack_settings

S = CampaignStatus
SEEDER = Actor("seed", Role.ADMIN)


# ------------------------------------------------------------------ helpers
def add_staff(engine: Engine, accounts: list[tuple[str, str, str | None]]) -> dict[str, int]:
    """Accounts (username, role, branch) sharing the suite's one password hash; their ids."""
    with session_scope(engine) as session, mock.patch("handoff.agents.hash_password", _one_hash):
        return {username: add_agent(session, username=username, password=AGENT_PASSWORD,
                                    display_name=username, role=role, branch_id=branch,
                                    now=QUEUE_NOW)
                for username, role, branch in accounts}


def seed_campaign(engine: Engine, campaign_id: str, status: CampaignStatus = S.DRAFT,
                  customers: tuple[str, ...] = ("C0001", "C0002")) -> None:
    """A campaign in ``status`` as another process would have made it."""
    with session_scope(engine) as session:
        now = utcnow()
        campaigns.create_campaign(session, campaign_id, campaign_id, "simulated",
                                  CampaignConfig.from_json({}), now, actor=SEEDER)
        campaigns.add_targets(session, campaign_id, list(customers), now)
        session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=status))


def rows(engine: Engine) -> tuple[int, int, int]:
    """Campaigns, targets and audit entries in the database."""
    with session_scope(engine) as session:
        return tuple(session.execute(select(func.count()).select_from(table)).scalar()
                     for table in (Campaign, CampaignTarget, AuditEntry))


def audit_count(engine: Engine, campaign_id: str) -> int:
    with session_scope(engine) as session:
        return session.execute(select(func.count()).where(
            AuditEntry.subject_kind == "campaign", AuditEntry.subject_id == campaign_id)).scalar()


def status_of(engine: Engine, campaign_id: str) -> str | None:
    with session_scope(engine) as session:
        return session.execute(select(Campaign.status).where(Campaign.id == campaign_id)).scalar()


def app_for(tmp_path, db_url: str, live_every_s: float = 1.0):
    app = init_app(stack_settings(tmp_path / "var", db_url))
    app[CAMPAIGN_API] = replace(app[CAMPAIGN_API], live_every_s=live_every_s)
    return app


async def login(client, username: str) -> dict[str, str]:
    response = await client.post("/api/staff/login",
                                 json={"username": username, "password": AGENT_PASSWORD})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


# ------------------------------------------------------------------ who may call what
@dataclass(frozen=True)
class Endpoint:
    """One endpoint as the matrix calls it: on a fresh campaign in the status it needs."""

    method: str
    path: str  # {id}: the fresh campaign's id
    permission: Permission
    needs: CampaignStatus | None = S.DRAFT  # None: no campaign is made first
    ok: int = 200
    body: Callable[[str], dict[str, Any]] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = (
    Endpoint("GET", "/api/campaigns", Permission.VIEW_CAMPAIGNS, needs=None),
    Endpoint("POST", "/api/campaigns", Permission.MANAGE_CAMPAIGNS, needs=None, ok=201,
             body=lambda cid: {"id": cid, "name": "新活动", "transport": "simulated",
                               "customer_ids": ["C0001"]}),
    Endpoint("GET", "/api/campaigns/{id}", Permission.VIEW_CAMPAIGNS),
    Endpoint("PATCH", "/api/campaigns/{id}", Permission.MANAGE_CAMPAIGNS,
             body=lambda cid: {"name": "改名"}),
    Endpoint("POST", "/api/campaigns/{id}/start", Permission.MANAGE_CAMPAIGNS),
    Endpoint("POST", "/api/campaigns/{id}/pause", Permission.PAUSE_CAMPAIGNS, needs=S.RUNNING),
    Endpoint("POST", "/api/campaigns/{id}/resume", Permission.MANAGE_CAMPAIGNS, needs=S.PAUSED),
    Endpoint("POST", "/api/campaigns/{id}/stop", Permission.MANAGE_CAMPAIGNS, needs=S.RUNNING),
    Endpoint("GET", "/api/campaigns/{id}/audit", Permission.VIEW_AUDIT),
    Endpoint("GET", "/api/campaigns/{id}/report", Permission.VIEW_CAMPAIGNS),
    Endpoint("GET", "/api/campaigns/{id}/attempts.csv", Permission.VIEW_CAMPAIGNS),
    Endpoint("GET", "/api/exports/attempts.csv", Permission.VIEW_CAMPAIGNS, needs=None),
    Endpoint("WS", "/ws/campaigns/{id}", Permission.VIEW_CAMPAIGNS),
)
CALLERS = ("anonymous", "forged", *Role)


@pytest.fixture(scope="module")
def matrix_db(tmp_path_factory) -> Iterator[tuple[str, Engine, dict[str, str]]]:
    """One SQLite database for the whole matrix: the sample whitelist, the branches, and one
    logged-in account of each role (tokens opened directly: no password hashing per test)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv",
                          today=QUEUE_NOW.date())
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    ids = add_staff(engine, [(f"the_{role}", role, "JT" if role in BRANCH_SCOPED else None)
                             for role in Role])
    with session_scope(engine) as session:
        tokens = {role: open_session(session, ids[f"the_{role}"], utcnow()) for role in Role}
    yield url, engine, tokens
    engine.dispose()


async def call(client, endpoint: Endpoint, campaign_id: str, headers: dict[str, str]) -> int:
    """The answer's status (for the socket: 200 when it opened and sent its status)."""
    path = endpoint.path.format(id=campaign_id)
    if endpoint.method == "WS":
        try:
            ws = await client.ws_connect(path, headers=headers)
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        assert (await asyncio.wait_for(ws.receive_json(), 3))["type"] == "status"
        await ws.close()
        return 200
    body = endpoint.body(campaign_id) if endpoint.body else None
    response = await client.request(endpoint.method, path, json=body, headers=headers)
    return response.status


@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
async def test_every_endpoint_answers_each_role_as_its_permissions_say(
        aiohttp_client, tmp_path, matrix_db, endpoint, caller):
    url, engine, tokens = matrix_db
    client = await aiohttp_client(app_for(tmp_path, url))
    campaign_id = f"m-{uuid.uuid4().hex[:10]}"
    if endpoint.needs is not None:
        seed_campaign(engine, campaign_id, endpoint.needs)
    headers = {"anonymous": {}, "forged": {"Authorization": "Bearer forged-token"}}.get(
        caller, {"Authorization": f"Bearer {tokens.get(caller)}"})
    if caller in ("anonymous", "forged"):
        expected = 401
    else:
        expected = endpoint.ok if allows(caller, endpoint.permission) else 403
    audited, status = audit_count(engine, campaign_id), status_of(engine, campaign_id)

    assert await call(client, endpoint, campaign_id, headers) == expected
    if expected in (401, 403):  # a refused call changes nothing
        after = audit_count(engine, campaign_id), status_of(engine, campaign_id)
        assert after == (audited, status)


# ------------------------------------------------------------------ behaviour
@pytest.fixture
def staff(staffed) -> Engine:
    """The shared staffed database plus an administrator, root."""
    add_staff(staffed, [("root", "admin", None)])
    return staffed


@pytest.fixture
async def client(aiohttp_client, staff, db_url, tmp_path):
    return await aiohttp_client(app_for(tmp_path, db_url, live_every_s=0.1))


async def create(client, headers, **fields) -> aiohttp.ClientResponse:
    body = {"id": "dec", "name": "十二月医保贷", "transport": "simulated", **fields}
    return await client.post("/api/campaigns", json=body, headers=headers)


async def test_a_campaign_is_made_of_a_products_customers_with_its_creator_audited(client, staff):
    mgr = await login(client, "mgr")
    made = await create(client, mgr, product="医保贷", config={"max_concurrency": 2})
    view = await made.json()
    assert made.status == 201, view
    assert (view["status"], view["product"], view["counters"]["targets"]) == (
        "draft", "医保贷", {"pending": 3, "total": 3})  # C0002, C0004, C0008
    assert view["config"]["max_concurrency"] == 2

    farmers = await create(client, mgr, id="farm", product="邮享贷", segment="农户")
    assert (await farmers.json())["counters"]["targets"]["total"] == 4  # C0001, 5, 6, 12
    chosen = await create(client, mgr, id="two", customer_ids=["C0003", "C0011"])
    assert (await chosen.json())["counters"]["targets"]["total"] == 2

    listed = await (await client.get("/api/campaigns", headers=mgr)).json()
    assert [(c["id"], c["counters"]["targets"]["total"]) for c in listed["campaigns"]] == [
        ("two", 2), ("farm", 4), ("dec", 3)]
    (entry,) = (await (await client.get("/api/campaigns/dec/audit", headers=mgr)).json())["entries"]
    assert (entry["action"], entry["actor"], entry["actor_role"]) == (
        "campaign_created", "mgr", "campaign_manager")
    assert entry["detail"]["config"]["product"] == "医保贷"
    with session_scope(staff) as session:  # the account itself, not just its name
        actor_id = session.get(AuditEntry, entry["id"]).actor_id
        assert actor_id == session.execute(select(Agent.id).where(Agent.username == "mgr")).scalar()


async def test_start_pause_resume_stop_are_audited_with_who_and_refusals_change_nothing(
        client, staff):
    mgr, boss, root = [await login(client, name) for name in ("mgr", "boss", "root")]
    assert (await create(client, mgr, product="医保贷")).status == 201
    for headers, command, status in [(mgr, "start", "running"), (boss, "pause", "paused"),
                                     (mgr, "resume", "running"), (root, "stop", "stopped")]:
        done = await client.post(f"/api/campaigns/dec/{command}", headers=headers)
        assert (done.status, (await done.json())["status"]) == (200, status)

    entries = (await (await client.get("/api/campaigns/dec/audit", headers=root)).json())["entries"]
    assert [(e["action"], e["actor"], e["actor_role"]) for e in entries] == [
        ("campaign_stopped", "root", "admin"), ("campaign_resumed", "mgr", "campaign_manager"),
        ("campaign_paused", "boss", "supervisor"), ("campaign_started", "mgr", "campaign_manager"),
        ("campaign_created", "mgr", "campaign_manager")]
    assert entries[1]["detail"] == {"before": "paused", "after": "running"}

    for headers, command in [(mgr, "start"), (boss, "pause"), (mgr, "resume")]:
        refused = await client.post(f"/api/campaigns/dec/{command}", headers=headers)
        assert refused.status == 409 and "it was stopped" in (await refused.json())["error"]
    assert (status_of(staff, "dec"), audit_count(staff, "dec")) == ("stopped", 5)
    unknown = await client.post("/api/campaigns/nope/start", headers=mgr)
    assert unknown.status == 404 and "no campaign 'nope'" in (await unknown.json())["error"]


async def test_starting_a_running_campaign_is_refused_with_the_reason(client, staff):
    mgr = await login(client, "mgr")
    await create(client, mgr, product="医保贷")
    assert (await client.post("/api/campaigns/dec/start", headers=mgr)).status == 200
    again = await client.post("/api/campaigns/dec/start", headers=mgr)
    assert again.status == 409
    assert (await again.json())["error"] == (
        "campaign 'dec': cannot start the campaign: it is already running")
    assert (status_of(staff, "dec"), audit_count(staff, "dec")) == ("running", 2)


BAD_CREATIONS = [
    # (what is wrong, fields over a good request, status, words the message must have)
    ("window ends before it starts", {"config": {"window_start": "20:00", "window_end": "09:00"}},
     400, "start 20:00:00 must be before end 09:00:00"),
    ("more calls than lines", {"config": {"max_concurrency": 5}}, 400,
     "max_concurrency 5 is more than the 4 dial lines"),
    ("unknown product", {"product": "房贷"}, 400, "unknown product '房贷'"),
    ("unknown variant", {"config": {"variants": {"A": 1, "Z": 1}}}, 400,
     "unknown script variants Z"),
    ("unknown transport", {"transport": "pigeon"}, 400, "transport 'pigeon' is not available"),
    ("unknown setting", {"config": {"max_concurency": 2}}, 400,
     "unknown campaign settings: max_concurency"),
    ("setting of the wrong type", {"config": {"max_concurrency": "4"}}, 400,
     "max_concurrency must be a whole number"),
    ("nobody matches", {"segment": "没有这个客群"}, 400, "no customers match"),
    ("unknown customers", {"product": None, "customer_ids": ["C0001", "C9999"]}, 400,
     "unknown customers: C9999"),
    ("unknown field", {"colour": "red"}, 400, "unknown fields: colour"),
    ("id unfit for a URL", {"id": "../x"}, 400, "id is required"),
    ("id taken", {"id": "taken"}, 409, "campaign 'taken' already exists"),
]


async def test_bad_creations_are_refused_naming_the_problem_and_write_nothing(client, staff):
    mgr = await login(client, "mgr")
    assert (await create(client, mgr, id="taken", product="医保贷")).status == 201
    before = rows(staff)
    for what, fields, status, words in BAD_CREATIONS:
        answer = await create(client, mgr, **{"product": "医保贷", **fields})
        error = (await answer.json()).get("error", "")
        assert (answer.status, words in error) == (status, True), (what, error)
        assert rows(staff) == before, what
    not_json = await client.post("/api/campaigns", data="{", headers=mgr)
    assert not_json.status == 400 and rows(staff) == before


async def test_settings_change_only_in_draft_or_paused_audited_with_before_and_after(client, staff):
    mgr = await login(client, "mgr")
    await create(client, mgr, product="医保贷")
    changed = await client.patch("/api/campaigns/dec", headers=mgr, json={
        "name": "十二月",
        "config": {"max_concurrency": 2, "window_end": "18:00", "timezone": "Asia/Shanghai"}})
    view = await changed.json()
    expected = {"max_concurrency": {"before": 4, "after": 2},
                "window_end": {"before": "20:00", "after": "18:00"},
                "name": {"before": "十二月医保贷", "after": "十二月"}}
    assert (changed.status, view["changed"], view["name"], view["config"]["window_end"]) == (
        200, expected, "十二月", "18:00")
    trail = await (await client.get("/api/campaigns/dec/audit", headers=mgr)).json()
    newest = trail["entries"][0]
    assert (newest["action"], newest["actor"], newest["detail"]) == (
        "campaign_changed", "mgr", {"changes": expected})

    audited = audit_count(staff, "dec")
    for body, status, words in [
        ({"config": {"max_concurrency": 9}}, 400, "more than the 4 dial lines"),
        ({"config": {"product": "邮享贷"}}, 400, "product chose the campaign's customers"),
        ({"config": {"variants": {"Q": 1}}}, 400, "unknown script variants Q"),
        ({"config": {"lines": 2}}, 400, "unknown campaign settings: lines"),
        ({}, 400, "nothing to change"),
    ]:
        refused = await client.patch("/api/campaigns/dec", headers=mgr, json=body)
        assert (refused.status, words in (await refused.json())["error"]) == (status, True), body
    await client.post("/api/campaigns/dec/start", headers=mgr)
    one_line = {"config": {"max_concurrency": 1}}
    running = await client.patch("/api/campaigns/dec", headers=mgr, json=one_line)
    assert running.status == 409
    assert "it is running: pause it first" in (await running.json())["error"]
    await client.post("/api/campaigns/dec/pause", headers=mgr)
    paused = await client.patch("/api/campaigns/dec", headers=mgr, json=one_line)
    assert paused.status == 200
    assert audit_count(staff, "dec") == audited + 3  # start, pause, the paused change
    with session_scope(staff) as session:
        assert campaigns.get_campaign(session, "dec").config.max_concurrency == 1


async def test_a_campaign_shows_its_funnel_and_its_settings_only_to_roles_allowed(client, staff):
    mgr, boss = await login(client, "mgr"), await login(client, "boss")
    await create(client, mgr, product="医保贷")
    record_attempt(staff, "dec", "C0002", datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc),
                   facts={"answered": True, "right_person": True, "interested": True,
                          "transferred": True},
                   outcome="transferred")
    managers = await (await client.get("/api/campaigns/dec", headers=mgr)).json()
    floor = await (await client.get("/api/campaigns/dec", headers=boss)).json()
    assert "config" in managers and "config" not in floor
    assert floor["funnel"]["all"]["stages"]["transferred"] == 1
    assert floor["counters"]["outcomes"] == {"transferred": 1}
    missing = await client.get("/api/campaigns/nope", headers=boss)
    assert missing.status == 404


def record_attempt(engine: Engine, campaign_id: str, customer_id: str, started: datetime, *,
                   outcome: str = "not_interested", facts: dict[str, Any] | None = None) -> str:
    """A finished attempt as a dialer (another process) writes it; returns its call id."""
    call_id = f"call-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        target = session.execute(select(CampaignTarget).where(
            CampaignTarget.campaign_id == campaign_id, CampaignTarget.customer_id == customer_id)
        ).scalar_one()
        target.attempts += 1
        session.add(CallAttempt(
            target_id=target.id, campaign_id=campaign_id, customer_id=customer_id,
            attempt_no=target.attempts, call_id=call_id, variant=target.variant, status="done",
            outcome=outcome, dialer="test", lease_until=started, started_at=started,
            ended_at=started + timedelta(minutes=1),
            facts=facts or {"answered": True, "right_person": True, "offer_heard": True}))
    return call_id


def read_csv(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


async def test_the_attempts_export_takes_the_banks_days_masks_customers_and_keeps_branches_apart(
        client, staff):
    mgr, jt_mgr = await login(client, "mgr"), await login(client, "jt_mgr")
    await create(client, mgr, id="one", customer_ids=["C0001", "C0002"])
    await create(client, mgr, id="two", customer_ids=["C0007"])
    utc = timezone.utc
    # in Shanghai: the 23rd at 00:30, the 23rd at 23:59, the 24th at 00:00
    first = record_attempt(staff, "one", "C0001", datetime(2026, 11, 22, 16, 30, tzinfo=utc))
    last = record_attempt(staff, "one", "C0002", datetime(2026, 11, 23, 15, 59, tzinfo=utc))
    record_attempt(staff, "one", "C0001", datetime(2026, 11, 23, 16, 0, tzinfo=utc))
    other = record_attempt(staff, "two", "C0007", datetime(2026, 11, 23, 3, 0, tzinfo=utc))

    day = await client.get("/api/campaigns/one/attempts.csv?from=2026-11-23&to=2026-11-23",
                           headers=mgr)
    assert day.status == 200 and day.content_type == "text/csv"
    body = await day.read()
    found = read_csv(body)
    assert [(r["call_id"], r["customer_id"], r["name"], r["phone"], r["branch"])
            for r in found] == [(first, "C0001", "张**", "138****8001", "JT"),
                                (last, "C0002", "李**", "139****9002", "SL")]
    assert found[0]["started_at"] == "2026-11-23T00:30:00+08:00"
    assert [found[0][flag] for flag in ("answered", "offer_heard", "transferred")] == [
        "true", "true", "false"]
    text = body.decode("utf-8-sig")
    assert not any(secret in text for secret in ("张伟", "李秀英", "13800138001", "13900139002"))

    everything = read_csv(await (await client.get(
        "/api/exports/attempts.csv?from=2026-11-23", headers=mgr)).read())
    assert [r["call_id"] for r in everything] == [first, other, last, everything[-1]["call_id"]]
    branch = read_csv(await (await client.get("/api/exports/attempts.csv", headers=jt_mgr)).read())
    assert {r["customer_id"] for r in branch} == {"C0001", "C0007"}  # 金堂县's customers only

    for query, words in [("from=2026-13-01", "from must be a date"),
                         ("to=yesterday", "to must be a date"),
                         ("from=2026-11-24&to=2026-11-23", "is after to 2026-11-23")]:
        bad = await client.get(f"/api/exports/attempts.csv?{query}", headers=mgr)
        assert (bad.status, words in (await bad.json())["error"]) == (400, True), query
    assert (await client.get("/api/campaigns/nope/attempts.csv", headers=mgr)).status == 404


async def test_the_report_is_the_campaigns_html_page_without_personal_data(client, staff):
    mgr = await login(client, "mgr")
    await create(client, mgr, customer_ids=["C0001"])
    record_attempt(staff, "dec", "C0001", datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    report = await client.get("/api/campaigns/dec/report", headers=mgr)
    page = await report.text()
    assert report.status == 200 and report.content_type == "text/html"
    assert "十二月医保贷" in page and "<svg" in page
    assert "13800138001" not in page and "张伟" not in page


async def test_the_live_socket_pushes_a_frame_when_a_target_changes_in_the_database(client, staff):
    mgr = await login(client, "mgr")
    await create(client, mgr, customer_ids=["C0001", "C0002"])
    client.session.cookie_jar.clear()  # only the token, in the URL: refused
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/ws/campaigns/dec?token={mgr['Authorization'][7:]}")
    assert refused.value.status == 401

    with session_scope(staff) as session:  # jt has the console open, pool is offline
        jt = session.execute(select(Agent.id).where(Agent.username == "jt")).scalar()
        touch(session, jt, utcnow())
    await login(client, "boss")  # the browser's way: the session cookie
    ws = await client.ws_connect("/ws/campaigns/dec")
    snapshot = await asyncio.wait_for(ws.receive_json(), 3)
    assert (snapshot["type"], snapshot["status"], snapshot["counters"]["targets"]) == (
        "status", "draft", {"pending": 2, "total": 2})
    assert (snapshot["in_flight"], snapshot["agents_free"]) == (0, 1)
    with pytest.raises(asyncio.TimeoutError):  # nothing changed: nothing is sent
        await asyncio.wait_for(ws.receive_json(), 0.4)

    with session_scope(staff) as session:  # a dialer finishes one customer
        session.execute(update(CampaignTarget).where(CampaignTarget.customer_id == "C0001")
                        .values(status="done"))
    pushed = await asyncio.wait_for(ws.receive_json(), 3)
    assert pushed["counters"]["targets"] == {"done": 1, "pending": 1, "total": 2}
    assert (await client.post("/api/campaigns/dec/start", headers=mgr)).status == 200
    assert (await asyncio.wait_for(ws.receive_json(), 3))["status"] == "running"
    await ws.close()
