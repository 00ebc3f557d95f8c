"""Partner intake end to end: a partner submits applicants through the signed API, the result is
posted back to a local partner server (real HTTP) that fails its first callbacks, and the
sender retries with growing delays until it is acknowledged, once. Resubmissions never make a
second lead; unsigned, forged, stale and replayed requests and malformed bodies are refused and
change nothing. The idempotency and the single-sender claim also run on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from branches.leads import events_of, lead_of_source
from core.vocabulary import LeadSource
from lending import partner_callbacks
from lending.callback_schedule import RetryPolicy
from lending.errors import SignatureError
from lending.intake import source_ref, submit
from lending.partner_callbacks import (
    APPLICATION_HEADER,
    ATTEMPT_HEADER,
    PARTNER_HEADER,
    CallbackSender,
    CallbackStatus,
)
from lending.partners import Partners
from lending.signatures import NONCE_HEADER, signed_headers, verify
from lending.web.intake_api import PARTNER_INTAKE, PartnerIntake, add_partner_routes
from outbound import campaigns
from persistence import store
from persistence.audit import Actor
from persistence.engine import in_transaction, session_scope
from persistence.schema import (
    BranchLead,
    CampaignTarget,
    Customer,
    Offer,
    PartnerApplication,
    PartnerCallback,
    PartnerNonce,
)
from tests.intake_builders import KEY, NOW, TODAY, application, body, id_number, months, partner
from tests.stack import free_port

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
PATH = "/api/partner/applications"
FAST = RetryPolicy(base_s=0.05, factor=2, cap_s=1, timeout_s=0.3, lease_s=5)
"""Back-off of 0.05 s, 0.1 s, 0.2 s …: the retries take a second, not an hour."""
PHONE, ID_NUMBER = "13600136001", id_number()


def moving_clock() -> Callable[[], datetime]:
    """The time from ``NOW`` on, as fast as the wall clock (the rules judge by ``NOW``'s date)."""
    start = time.monotonic()
    return lambda: NOW + timedelta(seconds=time.monotonic() - start)


# ----------------------------------------------------------- the partner's side
@dataclass
class Received:
    at: float
    attempt: int
    application: str
    body: bytes
    nonce: str
    verified: bool
    answer: str


@dataclass
class PartnerServer:
    """The partner's callback endpoint, which checks every signature and answers the first
    callbacks as ``script`` says (``500``, ``timeout``: no answer in time, ``drop``: the
    connection closed), then acknowledges."""

    clock: Callable[[], datetime]
    script: list[str] = field(default_factory=list)
    hang_s: float = 0.8
    received: list[Received] = field(default_factory=list)
    acks: int = 0
    acknowledged: asyncio.Event = field(default_factory=asyncio.Event)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            verify(KEY, request.headers, request.method, request.raw_path, raw,
                   now=self.clock().timestamp())
            verified = True
        except SignatureError:
            verified = False
        answer = (self.script.pop(0) if self.script else "ok") if verified else "401"
        self.received.append(Received(
            time.monotonic(), int(request.headers[ATTEMPT_HEADER]),
            request.headers[APPLICATION_HEADER], raw, request.headers[NONCE_HEADER], verified,
            answer))
        if answer == "401":
            return web.json_response({"error": "bad signature"}, status=401)
        if answer == "500":
            return web.Response(status=500, text="busy")
        if answer == "timeout":
            await asyncio.sleep(self.hang_s)
            return web.Response(status=503)
        if answer == "drop":
            request.transport.abort()
            return web.Response(status=204)
        self.acks += 1
        self.acknowledged.set()
        return web.json_response({"received": True})

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/offercall/results", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}/offercall/results?v=1"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def partner_server():
    servers: list[PartnerServer] = []

    async def start(clock, script=()) -> tuple[PartnerServer, str]:
        server = PartnerServer(clock, list(script))
        servers.append(server)
        return server, await server.start()

    yield start
    for server in servers:
        await server.stop()


# --------------------------------------------------------------- our side
def partners_of(url: str = "http://127.0.0.1:9/results", **changes) -> Partners:
    return Partners({"yibao": partner(callback_url=url, **changes),
                     "other": partner(id="other", name="另一家", secret="o" * 40,
                                      callback_url=url)})


def intake_app(engine: Engine, partners: Partners, clock: Callable[[], datetime],
               sender: CallbackSender | None = None) -> web.Application:
    app = web.Application()
    app[PARTNER_INTAKE] = PartnerIntake(engine, partners, "Asia/Shanghai", sender=sender,
                                        clock=clock)
    add_partner_routes(app)
    return app


def signed(method: str, path: str, payload: bytes, *, at: datetime, key: str = KEY,
           partner_id: str = "yibao", nonce: str | None = None) -> dict[str, str]:
    return {PARTNER_HEADER: partner_id, "Content-Type": "application/json",
            **signed_headers(key, method, path, payload, now=at.timestamp(),
                             nonce=nonce or secrets.token_urlsafe(16))}


async def post(client, payload: dict | bytes, clock, **signing) -> tuple[int, dict]:
    raw = payload if isinstance(payload, bytes) else json.dumps(
        payload, ensure_ascii=False).encode()
    response = await client.post(PATH, data=raw, headers=signed("POST", PATH, raw, at=clock(),
                                                                **signing))
    return response.status, await response.json()


async def status_of(client, application_id, clock, **signing) -> tuple[int, dict]:
    path = f"{PATH}/{application_id}"
    response = await client.get(path, headers=signed("GET", path, b"", at=clock(), **signing))
    return response.status, await response.json()


def count(engine: Engine, model, *where) -> int:
    with session_scope(engine) as session:
        return session.execute(select(func.count()).select_from(model).where(*where)).scalar()


def stored(engine: Engine) -> dict[str, int]:
    """How many of everything intake writes there are."""
    return {model.__tablename__: count(engine, model) for model in (
        PartnerApplication, PartnerCallback, PartnerNonce, BranchLead, Customer, Offer,
        CampaignTarget)}


def make_campaign(engine: Engine, campaign_id: str = "yibao-dec") -> None:
    with session_scope(engine) as session:
        campaigns.create_campaign(session, campaign_id, "医保贷十二月", "simulated",
                                  campaigns.CampaignConfig(), NOW, actor=Actor.command_line())


# ------------------------------------------------------------------ the story
@SQLITE_ONLY
async def test_the_result_reaches_a_failing_partner_signed_after_growing_retries_exactly_once(
        staffed, aiohttp_client, partner_server, caplog):
    caplog.set_level(logging.DEBUG)
    clock = moving_clock()
    server, url = await partner_server(clock, ["500", "timeout", "drop"])
    partners = partners_of(url)
    sender = CallbackSender(staffed, partners, policy=FAST, clock=clock, sender_id="web-1",
                            poll_s=5)
    client = await aiohttp_client(intake_app(staffed, partners, clock, sender))
    sender.start()
    try:
        status, answer = await post(client, body(), clock)
        assert status == 202, answer
        assert (answer["status"], answer["duplicate"], answer["amount_yuan"]) == (
            "admitted", False, 200_000)
        assert answer["branch"] == {"id": "SL", "name": "双流区支行"}
        await asyncio.wait_for(server.acknowledged.wait(), 10)
        await asyncio.sleep(0.3)  # anything more it would post comes now
    finally:
        await sender.stop()

    calls = server.received
    assert [c.answer for c in calls] == ["500", "timeout", "drop", "ok"]
    assert all(c.verified for c in calls), "every attempt is signed with the partner's key"
    assert [c.attempt for c in calls] == [1, 2, 3, 4]
    assert len({c.nonce for c in calls}) == 4, "a fresh nonce each time"
    assert len({c.body for c in calls}) == 1, "the same result each time"
    result = json.loads(calls[0].body)
    assert result == {key: answer[key] for key in result}
    assert result["application_id"] == int(calls[0].application) == answer["application_id"]
    gaps = [later.at - earlier.at for earlier, later in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.3 + 0.1 and gaps[2] >= 0.2, gaps  # 0.05, 0.1, 0.2 s
    assert gaps[2] > gaps[0] and max(gaps) < 3, gaps  # growing, and never the 5 s poll
    assert server.acks == 1

    assert await sender.send_due() == 0, "an acknowledged result is never posted again"
    with session_scope(staffed) as session:
        row = session.execute(select(PartnerCallback)).scalar_one()
        assert (row.status, row.attempts, row.last_status) == (CallbackStatus.DELIVERED, 4, 200)
    code, seen = await status_of(client, answer["application_id"], clock)
    assert code == 200 and seen["callback"]["status"] == "delivered"
    assert seen["callback"]["attempts"] == 4 and seen["requested_amount_yuan"] == 200_000

    # the partner, unsure, submits the same application again (signed anew): same id, no new lead
    before = stored(staffed)
    status, again = await post(client, body(), clock)
    assert status == 202 and again["duplicate"] is True
    assert again["application_id"] == answer["application_id"]
    assert {k: v for k, v in stored(staffed).items() if k != "oc_partner_nonces"} == {
        k: v for k, v in before.items() if k != "oc_partner_nonces"}
    assert await sender.send_due() == 0 and len(server.received) == 4

    leaked = [r for r in caplog.records
              if PHONE in str(r.__dict__) or ID_NUMBER in str(r.__dict__) or KEY in str(r.__dict__)]
    assert not leaked, "no phone, ID number or key in the logs"


@SQLITE_ONLY
async def test_an_admitted_applicant_becomes_a_customer_with_an_offer_and_a_lead_nearby(
        staffed, aiohttp_client):
    clock = moving_clock()
    make_campaign(staffed)
    partners = partners_of(campaigns=("yibao-dec",))
    client = await aiohttp_client(intake_app(staffed, partners, clock))
    status, answer = await post(client, body(campaign_id="yibao-dec",
                                             requested_amount_yuan=300_000), clock)
    assert status == 202 and answer["status"] == "admitted", answer
    assert answer["amount_yuan"] == 240_000, "capped at 3 × the monthly settlements"
    assert answer["campaign_id"] == "yibao-dec"
    with session_scope(staffed) as session:
        row = session.get(PartnerApplication, answer["application_id"])
        customer = session.get(Customer, row.customer_id)
        assert customer.customer_id == f"PI{row.id:08d}" and customer.phone == PHONE
        assert (customer.masked_name, customer.region, customer.org_name, customer.consent) == (
            "赵**", "双流区", "棠湖社区诊所", True)
        offer = store.get_customer_offer(session, customer.customer_id)
        assert (offer.product, offer.amount_yuan, offer.term_months) == ("医保贷", 240_000, 12)
        lead = lead_of_source(session, LeadSource.PARTNER_INTAKE,
                              source_ref("yibao", "YB-20261204-0001"), clock())
        assert lead is not None and lead.id == row.lead_id
        assert (lead.branch_id, lead.customer_id, lead.masked_phone) == (
            "SL", customer.customer_id, "136****6001")
        assert "棠湖社区诊所" in events_of(session, lead.id)[0].detail["note"]
        target = session.execute(select(CampaignTarget).where(
            CampaignTarget.customer_id == customer.customer_id)).scalar_one()
        assert target.campaign_id == "yibao-dec"
        kept = json.dumps(row.applicant, ensure_ascii=False)
        assert PHONE not in kept and ID_NUMBER not in kept and "赵小兰" not in kept


@SQLITE_ONLY
async def test_a_known_customer_is_matched_and_their_offer_gets_a_new_version(
        staffed, aiohttp_client):
    clock = moving_clock()
    client = await aiohttp_client(intake_app(staffed, partners_of(), clock))
    known = body(customer_id="C0002", applicant__name="李秀英", applicant__phone="13900139002")
    status, answer = await post(client, known, clock)
    assert status == 202 and answer["status"] == "admitted", answer
    with session_scope(staffed) as session:
        assert session.get(PartnerApplication, answer["application_id"]).customer_id == "C0002"
        versions = session.execute(select(Offer.version, Offer.active, Offer.amount_yuan).where(
            Offer.customer_id == "C0002").order_by(Offer.version)).all()
        assert [tuple(v) for v in versions] == [(1, False, 30_000), (2, True, 200_000)]
        assert session.get(Customer, "C0002").org_name == "棠湖社区诊所"
    by_phone = body(application_id="YB-2", applicant__name="李秀英",
                    applicant__phone="13900139002")
    status, answer = await post(client, by_phone, clock)
    assert status == 202 and answer["status"] == "admitted"
    with session_scope(staffed) as session:
        assert session.get(PartnerApplication, answer["application_id"]).customer_id == "C0002"
        assert session.execute(select(func.count()).select_from(BranchLead).where(
            BranchLead.customer_id == "C0002")).scalar() == 1, "the second joins the open lead"


@SQLITE_ONLY
async def test_a_refused_applicant_gets_every_reason_and_makes_no_customer_or_lead(
        staffed, aiohttp_client):
    clock = moving_clock()
    client = await aiohttp_client(intake_app(staffed, partners_of(), clock))
    before = stored(staffed)
    status, answer = await post(client, body(settlement=months(4, amount=15_000),
                                             organisation__region="拉萨市"), clock)
    assert status == 202 and answer["status"] == "refused"
    assert [r["code"] for r in answer["reasons"]] == [
        "region_not_served", "settlement_history_short", "settlement_too_low"]
    assert "暂无本行服务网点" in answer["reasons"][0]["message"]
    assert answer["amount_yuan"] is None and answer["branch"] is None
    after = stored(staffed)
    assert (after["oc_customers"], after["oc_leads"]) == (
        before["oc_customers"], before["oc_leads"])
    with session_scope(staffed) as session:
        result = json.loads(session.execute(select(PartnerCallback.body)).scalar_one())
    assert result["status"] == "refused" and len(result["reasons"]) == 3


# ----------------------------------------------------------- refused requests
@SQLITE_ONLY
async def test_unsigned_forged_stale_replayed_and_unknown_requests_are_refused_and_change_nothing(
        staffed, aiohttp_client):
    clock = moving_clock()
    client = await aiohttp_client(intake_app(staffed, partners_of(), clock))
    raw = json.dumps(body()).encode()
    before = stored(staffed)

    async def attempt(headers) -> tuple[int, dict, str]:
        response = await client.post(PATH, data=raw, headers=headers)
        return response.status, await response.json(), response.headers.get("WWW-Authenticate", "")

    cases = {
        "unsigned": {"Content-Type": "application/json"},
        "no signature": {k: v for k, v in signed("POST", PATH, raw, at=clock()).items()
                         if k != "X-Offercall-Signature"},
        "unknown partner": signed("POST", PATH, raw, at=clock(), partner_id="nobody"),
        "bad signature": signed("POST", PATH, raw, at=clock(), key="x" * 40),
        "another partner's key": signed("POST", PATH, raw, at=clock(), partner_id="other"),
        "stale": signed("POST", PATH, raw, at=clock() - timedelta(seconds=301)),
        "from the future": signed("POST", PATH, raw, at=clock() + timedelta(seconds=301)),
        "signed for another path": signed("POST", PATH + "?x=1", raw, at=clock()),
        "signed for another body": signed("POST", PATH, raw + b" ", at=clock()),
    }
    codes = {}
    for name, headers in cases.items():
        status, answer, challenge = await attempt(headers)
        assert status == 401 and challenge.startswith("HMAC-SHA256"), (name, status, answer)
        codes[name] = answer["code"]
    assert codes == {
        "unsigned": "unsigned", "no signature": "unsigned", "unknown partner": "unknown_partner",
        "bad signature": "bad_signature", "another partner's key": "bad_signature",
        "stale": "stale", "from the future": "stale", "signed for another path": "bad_signature",
        "signed for another body": "bad_signature"}
    assert stored(staffed) == before

    headers = signed("POST", PATH, raw, at=clock(), nonce="n" * 20)
    assert (await attempt(headers))[0] == 202
    after_first = stored(staffed)
    status, answer, _ = await attempt(headers)  # the same request again, byte for byte
    assert (status, answer["code"]) == (409, "replayed")
    assert stored(staffed) == after_first
    path = f"{PATH}/1"
    get_headers = signed("GET", path, b"", at=clock(), nonce="g" * 20)
    assert (await client.get(path, headers=get_headers)).status == 200
    replayed = await client.get(path, headers=get_headers)
    assert replayed.status == 409 and (await replayed.json())["code"] == "replayed"


@SQLITE_ONLY
async def test_malformed_bodies_name_the_bad_field_and_change_nothing(staffed, aiohttp_client):
    clock = moving_clock()
    client = await aiohttp_client(intake_app(staffed, partners_of(), clock))
    before = stored(staffed)
    status, answer = await post(client, b"{not json", clock)
    assert (status, answer["code"], answer["fields"]) == (
        400, "invalid", {"(body)": "must be a JSON object in UTF-8"})
    status, answer = await post(client, body(applicant__phone="555", settlement=[
        {"month": "2026-11", "amount_yuan": "lots"}], colour="red"), clock)
    assert (status, answer["code"]) == (400, "invalid")
    assert set(answer["fields"]) == {"applicant.phone", "settlement[0].amount_yuan", "colour"}
    assert "applicant.phone must be a mainland mobile number" in answer["error"]
    status, answer = await post(client, body(campaign_id="not-ours"), clock)
    assert status == 400 and set(answer["fields"]) == {"campaign_id"}
    status, answer = await post(client, body(customer_id="C9999"), clock)
    assert (status, answer["code"]) == (422, "unknown_customer")
    status, answer = await post(client, body(customer_id="C0001"), clock)
    assert (status, answer["code"]) == (422, "customer_mismatch")
    assert stored(staffed) == before, "not even a nonce is kept"

    assert (await post(client, body(), clock))[0] == 202
    status, answer = await post(client, body(requested_amount_yuan=150_000), clock)
    assert (status, answer["code"]) == (409, "application_id_reused")
    assert "use a new application_id" in answer["error"]
    code, _ = await status_of(client, 1, clock, partner_id="other", key="o" * 40)
    assert code == 404, "another partner's application is not found"
    code, _ = await status_of(client, "abc", clock)
    assert code == 404


# --------------------------------------------- both databases: idempotency, one sender
async def test_simultaneous_submissions_of_one_application_make_one_application_one_lead(
        staffed):
    yibao = partner()
    app = application()

    def work(session):
        return submit(session, yibao, app, NOW, TODAY)

    first, second = await asyncio.gather(in_transaction(staffed, work),
                                         in_transaction(staffed, work))
    assert first.application.id == second.application.id
    assert sorted([first.duplicate, second.duplicate]) == [False, True]
    assert count(staffed, PartnerApplication) == 1 and count(staffed, PartnerCallback) == 1
    assert count(staffed, BranchLead, BranchLead.source == LeadSource.PARTNER_INTAKE) == 1
    again = await in_transaction(staffed, work)
    assert again.duplicate and again.application.lead_id == first.application.lead_id
    assert count(staffed, BranchLead, BranchLead.source == LeadSource.PARTNER_INTAKE) == 1


async def test_each_due_result_is_taken_by_one_sender_and_a_dead_senders_lease_passes_on(staffed):
    def applications(session):
        ids = []
        for n in range(8):
            session.add(PartnerApplication(
                partner_id="yibao", partner_application_id=f"A{n}", digest="0" * 64,
                status="refused", reasons=[], applicant={}, requested_amount_yuan=1,
                received_at=NOW))
            session.flush()
            ids.append(partner_callbacks.queue_result(
                session, n + 1, "yibao", "{}", NOW))
        return ids

    queued = await in_transaction(staffed, applications)
    lease = timedelta(seconds=30)

    def claim(sender):
        return lambda session: partner_callbacks.claim_due(session, sender, NOW, lease, limit=20)

    a, b = await asyncio.gather(in_transaction(staffed, claim("a")),
                                in_transaction(staffed, claim("b")))
    assert sorted(d.id for d in a + b) == sorted(queued), "every result taken, none twice"
    assert await in_transaction(staffed, claim("c")) == []

    taken = (a or b)[0]
    first_sender = "a" if a else "b"
    later = NOW + lease + timedelta(seconds=1)
    retaken = await in_transaction(staffed, lambda s: partner_callbacks.claim_due(
        s, "c", later, lease, limit=20))
    assert {d.id for d in retaken} == set(queued) and {d.attempt for d in retaken} == {2}
    late = await in_transaction(staffed, lambda s: partner_callbacks.record_delivered(
        s, taken, first_sender, 200, later))
    assert late is False, "the dead sender's answer no longer counts"
    mine = next(d for d in retaken if d.id == taken.id)
    assert await in_transaction(staffed, lambda s: partner_callbacks.record_delivered(
        s, mine, "c", 200, later))
    with session_scope(staffed) as session:
        row = session.get(PartnerCallback, taken.id)
        assert (row.status, row.attempts, row.sender) == (CallbackStatus.DELIVERED, 2, "c")


@SQLITE_ONLY
async def test_a_restarted_server_posts_what_its_predecessor_left_pending_or_half_sent(
        staffed, partner_server):
    clock = moving_clock()
    server, url = await partner_server(clock, ["500"])
    partners = partners_of(url)
    yibao = partners["yibao"]
    for ref in ("R1", "R2"):
        await in_transaction(staffed, lambda s, ref=ref: submit(
            s, yibao, application(application_id=ref), clock(), TODAY))
    short = RetryPolicy(base_s=0.05, factor=2, cap_s=1, timeout_s=0.3, lease_s=0.5)
    first = CallbackSender(staffed, partners, policy=short, clock=clock, sender_id="old")
    # the old process: posts R1 once (the partner answers 500) and takes R2, then dies
    taken = await in_transaction(staffed, lambda s: partner_callbacks.claim_due(
        s, "old", clock(), timedelta(seconds=0.5), limit=1))
    assert len(taken) == 1
    async with aiohttp.ClientSession() as http:
        first.http = http
        assert await first.send_due() == 1
    assert [c.answer for c in server.received] == ["500"]

    second = CallbackSender(staffed, partners, policy=short, clock=clock, sender_id="new",
                            poll_s=5)
    second.start()
    try:
        for _ in range(100):
            if server.acks == 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await second.stop()
    assert server.acks == 2
    assert sorted(c.application for c in server.received if c.answer == "ok") == ["1", "2"]
    assert count(staffed, PartnerCallback, PartnerCallback.status == CallbackStatus.DELIVERED) == 2


@SQLITE_ONLY
async def test_a_result_nobody_acknowledges_is_abandoned_and_an_operator_can_send_it_again(staffed):
    yibao = partner()
    await in_transaction(staffed, lambda s: submit(s, yibao, application(), NOW, TODAY))
    policy = RetryPolicy(base_s=60, factor=2, cap_s=3600, give_up_after=timedelta(minutes=5))
    moment = NOW
    for attempt in range(1, 4):
        (due,) = await in_transaction(staffed, lambda s, at=moment: partner_callbacks.claim_due(
            s, "w", at, timedelta(seconds=60)))
        assert due.attempt == attempt
        again = await in_transaction(staffed, lambda s, d=due, at=moment: (
            partner_callbacks.record_failure(s, d, "w", 500, "HTTP 500", at, policy)))
        if again is None:
            break
        moment = again
    assert attempt == 3 and again is None  # 60 s + 120 s, then 240 s more passes 5 minutes
    with session_scope(staffed) as session:
        state = partner_callbacks.state_of(session, 1)
        assert (state.status, state.attempts, state.last_status) == (
            CallbackStatus.ABANDONED, 3, 500)
    assert await in_transaction(staffed, lambda s: partner_callbacks.claim_due(
        s, "w", moment + timedelta(days=1), timedelta(seconds=60))) == []
    assert await in_transaction(staffed, lambda s: partner_callbacks.retry_abandoned(s, 1, moment))
    (due,) = await in_transaction(staffed, lambda s: partner_callbacks.claim_due(
        s, "w", moment, timedelta(seconds=60)))
    assert due.attempt == 1


# ------------------------------------------------------------ the real web app
@SQLITE_ONLY
async def test_the_web_app_serves_the_api_with_the_partners_file(staffed, db_url, tmp_path,
                                                                  aiohttp_client, monkeypatch):
    from offercall.web.app import init_app
    from tests.stack import stack_settings

    monkeypatch.setenv("OFFERCALL_PARTNERS", str(tmp_path / "partners.yml"))
    monkeypatch.setenv("YIBAO_KEY", KEY)
    (tmp_path / "partners.yml").write_text(
        "partners:\n  yibao:\n    name: 医保服务平台\n    secret_env: YIBAO_KEY\n"
        "    callback_url: http://127.0.0.1:9/results\n", encoding="utf-8")
    settings = stack_settings(tmp_path / "var", db_url)
    assert settings.partners_path == tmp_path / "partners.yml"
    client = await aiohttp_client(init_app(settings))
    now = datetime.now().astimezone()
    fresh = body(consent__signed_at=(now - timedelta(days=1)).isoformat(),
                 consent__expires_at=(now + timedelta(days=300)).isoformat(),
                 settlement=months(12, newest=((now.replace(day=1) - timedelta(days=1)).year,
                                               (now.replace(day=1) - timedelta(days=1)).month)))
    status, answer = await post(client, fresh, lambda: datetime.now().astimezone())
    assert status == 202, answer
    assert (answer["application_id"], answer["status"]) == (1, "admitted"), answer
    response = await client.post(PATH, json=body())
    assert response.status == 401
