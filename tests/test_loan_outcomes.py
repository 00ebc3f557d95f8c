"""Loan outcomes: the state machine (every pair of statuses), the events' fields, the signed
API (unsigned, forged, stale, replayed, idempotent), the daily file (bad rows named, the same
file again a no-op, the command), on SQLite and PostgreSQL; and the funnel to disbursement
from records written through the repository to the report's A/B test on disbursement."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from unittest import mock

import pytest
from aiohttp import web
from sqlalchemy import func, select

from core.settings import PROJECT_ROOT
from core.vocabulary import LoanStatus
from lending import signatures
from lending.errors import LoanFileError, SignatureError
from lending.loan_events import LoanEvent, parse_event, yuan_text
from lending.loan_file import import_file, parse_file
from lending.loan_outcomes import application_events, record_events, with_retries
from lending.loan_rules import NEXT, Judgement, judge, plan
from lending.web.loan_api import LOAN_API, PATH, LoanApiConfig, add_loan_routes
from outbound import campaigns
from outbound.campaigns import AttemptOutcome, CampaignConfig
from outbound.channel_funnel import ChannelFacts, SmsFact
from outbound.funnel import NO_BRANCH
from outbound.loan_funnel import (
    UNCONTACTED,
    Contact,
    LoanFact,
    contacts,
    disbursement_counts,
    journeys,
    loan_funnel,
)
from outbound.loan_funnel_data import loan_facts
from outbound.report import DISBURSED_METRIC, render_html
from outbound.report_data import attempt_facts
from outbound.whitelist import import_whitelist_file
from persistence.audit import Actor
from persistence.engine import make_engine, session_scope
from persistence.schema import LoanEventRecord, LoanRequestNonce
from tests.conftest import QUEUE_NOW
from tests.test_funnel import TRANSFERRED, attempt
from tests.test_report import GENERATED, Page, campaign, simulated_campaign

S = LoanStatus
T0 = QUEUE_NOW
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
LATER = T0 + 10 * DAY
"""The clock of the repository and the API: after every event of the tests."""
KEY = "loan-system-shared-key-0001"
CHINA = timezone(timedelta(hours=8))


def event(status: S, at: timedelta = timedelta(0), *, app: str = "APP1", customer: str = "C0001",
          event_id: str | None = None, amount_fen: int | None = None,
          branch: str | None = None) -> LoanEvent:
    if status == S.DISBURSED and amount_fen is None:
        amount_fen = 5_000_000
    return LoanEvent(event_id or f"{app}-{status}", customer, app, status, T0 + at, amount_fen,
                     branch)


PATHS: dict[S | None, list[S]] = {
    None: [], S.APPLIED: [S.APPLIED], S.AUTO_APPROVED: [S.APPLIED, S.AUTO_APPROVED],
    S.APPROVED: [S.APPLIED, S.APPROVED], S.DISBURSED: [S.APPLIED, S.APPROVED, S.DISBURSED],
    S.DECLINED: [S.APPLIED, S.DECLINED], S.WITHDRAWN: [S.APPLIED, S.WITHDRAWN],
}
"""A valid history ending at each status."""
ALLOWED = {
    (None, S.APPLIED),
    (S.APPLIED, S.AUTO_APPROVED), (S.APPLIED, S.APPROVED), (S.APPLIED, S.DECLINED),
    (S.APPLIED, S.WITHDRAWN),
    (S.AUTO_APPROVED, S.DISBURSED), (S.AUTO_APPROVED, S.DECLINED), (S.AUTO_APPROVED, S.WITHDRAWN),
    (S.APPROVED, S.DISBURSED), (S.APPROVED, S.DECLINED), (S.APPROVED, S.WITHDRAWN),
}
"""Written out by hand, not derived from ``NEXT``: the table the rules must match."""


def history(current: S | None) -> list[LoanEvent]:
    return [event(status, i * HOUR) for i, status in enumerate(PATHS[current])]


# --- the state machine (pure) --------------------------------------------------------------


@pytest.mark.parametrize("current", list(PATHS))
@pytest.mark.parametrize("new", list(S))
def test_every_pair_of_statuses_is_a_step_or_refused_with_its_reason(current, new):
    chain = history(current)
    late = event(new, 10 * HOUR, event_id="NEW", amount_fen=4_000_000)
    verdict = judge(late, chain, None, LATER)
    if (current, new) in ALLOWED:
        assert verdict.judgement == Judgement.RECORD, verdict.reason
        return
    assert verdict.judgement == Judgement.REFUSED
    if current is None:
        assert verdict.reason.startswith(f"{new} before applied")
    elif current == new:
        assert verdict.reason.startswith(f"the application is already {new}")
        assert f"a different {new} is refused" in verdict.reason
    elif current in (S.DISBURSED, S.DECLINED, S.WITHDRAWN):
        assert verdict.reason == f"{new} after {current}: the application has ended"
    else:
        assert str(new) in verdict.reason and str(current) in verdict.reason


def test_the_table_of_steps_is_the_rules_own():
    assert {(current, new) for current, nexts in NEXT.items() for new in nexts} == ALLOWED


def test_disbursed_before_approved_is_refused_with_the_reason():
    verdict = judge(event(S.DISBURSED, 2 * HOUR), history(S.APPLIED), None, LATER)
    assert verdict.reason == "disbursed before approved: the application is only applied"


def test_a_repeated_identical_event_is_a_no_op_and_a_changed_one_is_refused():
    chain = history(S.APPROVED)
    approved = chain[-1]
    assert judge(approved, chain, approved, LATER).judgement == Judgement.DUPLICATE
    resent = event(S.APPROVED, HOUR, event_id="another-id")  # the same report under a new id
    assert judge(resent, chain, None, LATER).judgement == Judgement.DUPLICATE
    applied_again = event(S.APPLIED, event_id="old-applied-again")
    assert judge(applied_again, chain, None, LATER).judgement == Judgement.DUPLICATE
    changed = event(S.APPROVED, 2 * HOUR, event_id=approved.event_id)
    verdict = judge(changed, chain, approved, LATER)
    assert verdict.judgement == Judgement.REFUSED
    assert "was recorded before with another report" in verdict.reason
    other_amount = event(S.APPROVED, HOUR, event_id="new-id", amount_fen=100)
    assert judge(other_amount, chain, None, LATER).reason.startswith(
        "the application is already approved")


def test_times_out_of_order_in_the_future_or_another_customers_application_are_refused():
    chain = history(S.APPROVED)  # applied at T0, approved at T0 + 1 h
    early = judge(event(S.DISBURSED, timedelta(minutes=30)), chain, None, LATER)
    assert early.reason.startswith("out of order: disbursed at ")
    assert "is before approved at" in early.reason
    future = judge(event(S.DISBURSED, 2 * HOUR), chain, None, T0)
    assert "is in the future" in future.reason
    theirs = judge(event(S.DISBURSED, 2 * HOUR, customer="C0002"), chain, None, LATER)
    assert theirs.reason == "application APP1 is another customer's"


def test_a_batch_sees_its_own_earlier_events_and_refuses_unknown_customers():
    batch = [event(S.APPLIED), event(S.APPROVED, HOUR), event(S.DISBURSED, 2 * HOUR),
             event(S.APPLIED, app="APP2", customer="NOBODY"), event(S.APPROVED, HOUR),
             event(S.DECLINED, 3 * HOUR)]
    result = plan(batch, {}, {}, {"C0001"}, LATER)
    assert [(s.index, s.step) for s in result.record] == [(0, 1), (1, 2), (2, 3)]
    assert result.duplicates == [4]
    assert result.refused == [(3, "unknown customer: not on the whitelist"),
                              (5, "declined after disbursed: the application has ended")]


# --- the events' fields (pure) -------------------------------------------------------------

GOOD = {"event_id": "E-1", "customer_id": "C0001", "application_id": "APP-1", "status": "disbursed",
        "occurred_at": "2026-11-23T10:00:00+08:00", "amount_yuan": "50,000.50", "branch_id": "JT"}


@pytest.mark.parametrize(("change", "reason"), [
    ({"status": "paid"}, "status 'paid' is not one of applied, auto_approved"),
    ({"amount_yuan": None}, "a disbursed event needs amount_yuan"),
    ({"amount_yuan": "12.345"}, "at most two decimals"),
    ({"amount_yuan": -5}, "must be above 0"),
    ({"amount_yuan": True}, "must be a number of yuan"),
    ({"occurred_at": "2026-11-23 10:00"}, "has no offset"),
    ({"occurred_at": "yesterday"}, "is not an ISO 8601 time"),
    ({"event_id": "E 1"}, "event_id 'E 1' must be 1-64 of"),
    ({"customer_id": ""}, "missing customer_id"),
    ({"amount": 5}, "unknown field amount"),
])
def test_bad_fields_are_named(change, reason):
    with pytest.raises(ValueError) as refused:
        parse_event({**GOOD, **change})
    assert reason in str(refused.value)


def test_good_fields_are_read_exactly():
    parsed = parse_event(GOOD)
    assert parsed.amount_fen == 5_000_050 and yuan_text(parsed.amount_fen) == "50000.50"
    assert parsed.occurred_at == datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    assert parse_event({**GOOD, "occurred_at": "2026-11-23 10:00"}, naive_zone=CHINA) == parsed
    assert parse_event({**GOOD, "amount_yuan": 50000.5}).amount_fen == 5_000_050


# --- signatures (pure) ---------------------------------------------------------------------

NONCE = "n0nce-0000000000000001"


def test_a_signed_request_verifies_and_every_fault_has_its_code():
    body = b'{"events": []}'
    now = LATER.timestamp()
    headers = signatures.signed_headers(KEY, "POST", PATH, body, now=now, nonce=NONCE)
    assert signatures.verify(KEY, headers, "POST", PATH, body, now=now).nonce == NONCE
    faults = {
        "unsigned": ({}, body, now),
        "bad_signature": (headers, body + b" ", now),
        "malformed": ({**headers, signatures.SIGNATURE_HEADER: "md5=abc"}, body, now),
        "stale": (headers, body, now + 301),
    }
    for code, (given, sent, at) in faults.items():
        with pytest.raises(SignatureError) as refused:
            signatures.verify(KEY, given, "POST", PATH, sent, now=at)
        assert refused.value.code == code
    with pytest.raises(SignatureError, match="does not match"):
        signatures.verify("another-key-000000000", headers, "POST", PATH, body, now=now)


# --- the API, on SQLite and PostgreSQL -----------------------------------------------------


@pytest.fixture
def whitelisted(engine):
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv",
                          today=QUEUE_NOW.date())
    return engine


def _count(engine, model=LoanEventRecord) -> int:
    with session_scope(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


class Signer:
    """The loan system: signs each request with a new nonce, at the API's clock."""

    def __init__(self, client) -> None:
        self.client, self.sent = client, 0

    async def post(self, events: list[LoanEvent] | dict, *, key: str = KEY, skew: float = 0,
                   nonce: str | None = None, sign: bool = True):
        self.sent += 1
        payload = events if isinstance(events, dict) else {"events": [e.to_json() for e in events]}
        body = json.dumps(payload).encode()
        nonce = nonce or f"request-{self.sent:012d}"
        headers = (signatures.signed_headers(key, "POST", PATH, body,
                                             now=LATER.timestamp() + skew, nonce=nonce)
                   if sign else {})
        response = await self.client.post(PATH, data=body, headers={
            **headers, "Content-Type": "application/json"})
        return response.status, await response.json()


async def test_the_api_records_idempotently_and_refuses_bad_requests_changing_nothing(
        whitelisted, aiohttp_client):
    app = web.Application()
    app[LOAN_API] = LoanApiConfig(KEY, whitelisted, clock=lambda: LATER)
    add_loan_routes(app)
    loan_system = Signer(await aiohttp_client(app))
    first = [event(S.APPLIED), event(S.APPROVED, HOUR, branch="JT")]

    assert await loan_system.post(first, sign=False) == (401, {
        "error": "the request is not signed: missing X-Offercall-Timestamp, X-Offercall-Nonce, "
                 "X-Offercall-Signature", "code": "unsigned"})
    status, answer = await loan_system.post(first, key="not-the-shared-key")
    assert (status, answer["code"]) == (401, "bad_signature")
    status, answer = await loan_system.post(first, skew=-600)
    assert (status, answer["code"]) == (401, "stale")
    assert _count(whitelisted) == 0

    assert await loan_system.post(first, nonce="the-first-good-one") == (200, {
        "recorded": ["APP1-applied", "APP1-approved"], "duplicates": []})
    status, answer = await loan_system.post(first, nonce="the-first-good-one")
    assert (status, answer["code"]) == (409, "replayed")
    assert await loan_system.post(first) == (200, {  # sent again, signed afresh: harmless
        "recorded": [], "duplicates": ["APP1-applied", "APP1-approved"]})

    stranger = event(S.APPLIED, app="APP9", customer="C9999")
    status, answer = await loan_system.post([stranger, event(S.APPLIED, app="APP2")])
    assert status == 422 and answer["problems"] == [
        {"where": "events[0]", "reason": "unknown customer: not on the whitelist"}]
    status, answer = await loan_system.post(
        [event(S.APPLIED, app="APP3"), event(S.DISBURSED, HOUR, app="APP3")])
    assert status == 422 and answer["problems"] == [{"where": "events[1]", "reason":
        "disbursed before approved: the application is only applied"}]
    status, answer = await loan_system.post({"events": [{**first[0].to_json(), "status": "paid"},
                                                        {"event_id": "x"}]})
    assert status == 400 and [p["where"] for p in answer["problems"]] == ["events[0]", "events[1]"]
    assert (await loan_system.post({"loans": []}))[0] == 400
    assert _count(whitelisted) == 2, "the refused requests recorded nothing (APP2 neither)"

    assert await loan_system.post([event(S.DISBURSED, DAY, amount_fen=4_990_000)]) == (200, {
        "recorded": ["APP1-disbursed"], "duplicates": []})
    with session_scope(whitelisted) as session:
        chain = application_events(session, "APP1")
        nonces = session.execute(select(LoanRequestNonce.nonce)).scalars().all()
    assert [(e.status, e.amount_fen, e.branch_id) for e in chain] == [
        (S.APPLIED, None, None), (S.APPROVED, None, "JT"), (S.DISBURSED, 4_990_000, None)]
    assert "the-first-good-one" in nonces


async def test_the_api_is_off_without_a_key(aiohttp_client):
    app = web.Application()
    app[LOAN_API] = LoanApiConfig("", make_engine("sqlite://"))  # never reached
    add_loan_routes(app)
    response = await (await aiohttp_client(app)).post(PATH, data=b"{}")
    assert response.status == 503
    assert "OFFERCALL_LOAN_API_KEY" in (await response.json())["error"]


def test_two_writers_racing_on_one_application_record_one_step(whitelisted):
    """The loser's insert collides on (application, step); its transaction runs again and
    finds the winner's approval: a second, different approval is refused."""
    with session_scope(whitelisted) as session:
        record_events(session, [event(S.APPLIED)], now=LATER, sources=["test"], wheres=["0"],
                      all_or_nothing=True)
    real_plan, raced = plan, threading.Event()

    def plan_then_lose_the_race(*args, **kwargs):
        result = real_plan(*args, **kwargs)
        if not raced.is_set():
            raced.set()
            with session_scope(whitelisted) as rival:
                record_events(rival, [event(S.APPROVED, HOUR)], now=LATER, sources=["rival"],
                              wheres=["0"], all_or_nothing=True)
        return result

    mine = event(S.AUTO_APPROVED, HOUR)
    with mock.patch("lending.loan_outcomes.plan", plan_then_lose_the_race):
        done = with_retries(whitelisted, lambda session: record_events(
            session, [mine], now=LATER, sources=["me"], wheres=["mine"], all_or_nothing=False))
    assert done.recorded == [] and done.refused == [
        ("mine", "auto_approved after approved: an application is approved once")]
    with session_scope(whitelisted) as session:
        assert [e.status for e in application_events(session, "APP1")] == [S.APPLIED, S.APPROVED]


# --- the daily file, on SQLite and PostgreSQL ----------------------------------------------

DAILY = """\
event_id,customer_id,application_id,status,occurred_at,amount_yuan,branch_id
E4,C0001,A1,disbursed,2026-11-25 10:00,"50,000",JT
E1,C0001,A1,applied,2026-11-23 10:00,,
E2,C0001,A1,approved,2026-11-24 10:00,50000,
E5,C0002,A2,applied,2026-11-23T11:00:00+08:00,30000,
E6,C0002,A2,disbursed,2026-11-24T10:00:00+08:00,30000,
E7,C9999,A3,applied,2026-11-23 10:00,,
E8,C0003,A4,applied,2026-11-23 10:00,,
E8,C0003,A4,applied,2026-11-23 10:00,,
E9,C0003,A4,approved,not a time,,
E10,C0003,A4,withdrawn,2026-11-24 10:00,,,extra
E1,C0001,A1,declined,2026-11-23 10:00,,
"""
"""Out of time order (E4 first): applied in order all the same. Bad: E6 (disbursed before
approved), E7 (unknown customer), E9 (its time), E10 (a field too many), the second E1
(another report under its id); E8 twice is once."""


def test_the_daily_file_names_every_bad_row_and_importing_it_again_changes_nothing(
        whitelisted, tmp_path, monkeypatch, capsys):
    path = tmp_path / "loans-20261125.csv"
    path.write_bytes(DAILY.encode("gbk"))
    seen: list[tuple[int, int]] = []
    result = import_file(whitelisted, path, now=LATER, progress=lambda *p: seen.append(p))
    assert [str(error) for error in result.errors] == [
        "line 6 (event E6): disbursed before approved: the application is only applied",
        "line 7 (event E7): unknown customer: not on the whitelist",
        "line 10 (event E9): occurred_at 'not a time' is not an ISO 8601 time "
        "(2026-12-04T10:30:00+08:00)",
        "line 11 (event E10): expected 7 fields as in the header, found 8",
        "line 12 (event E1): the same event_id as line 3 with another report",
    ]
    assert (result.rows, result.recorded, result.duplicates) == (11, 5, 1)
    assert seen == [(7, 7)]
    assert _count(whitelisted) == 5

    again = import_file(whitelisted, path, now=LATER + DAY)
    assert (again.recorded, again.duplicates, len(again.errors)) == (0, 6, 5)
    assert _count(whitelisted) == 5

    monkeypatch.setenv("DATABASE_URL", str(whitelisted.url.render_as_string(hide_password=False)))
    from offercall.cli import main
    assert main(["loans", "import", str(path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "11 rows; 0 recorded, 6 recorded before, 5 refused" in out
    assert "  line 7 (event E7): unknown customer" in out
    (tmp_path / "bad.csv").write_text("event_id,customer,status\nE1,C0001,applied\n")
    assert main(["loans", "import", str(tmp_path / "bad.csv")]) == 2
    assert ("missing columns customer_id, application_id, occurred_at; unknown column "
            "'customer'") in \
        capsys.readouterr().err
    assert _count(whitelisted) == 5


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "the file is empty"),
    (b"\xff\xfe\x00\xd8 not text", "neither UTF-8 nor GBK"),
    (b"event_id,event_id,customer_id,application_id,status,occurred_at\n", "repeated column"),
])
def test_a_file_that_cannot_be_read_is_refused_whole(data, reason):
    with pytest.raises(LoanFileError, match=reason):
        parse_file(data)


# --- the funnel to disbursement ------------------------------------------------------------


def contact(customer: str, channel: str = "call", at: timedelta = timedelta(0), *,
            variant: str = "A", branch: str | None = "JT") -> Contact:
    return Contact(channel, customer, variant, branch, T0 + at)


def loan(customer: str, at: timedelta = HOUR, *, variant: str = "A", approved: bool = False,
         disbursed_fen: int = 0, declined: bool = False, branch: str | None = None,
         app: str | None = None) -> LoanFact:
    return LoanFact(customer, app or f"APP-{customer}-{at}", variant, T0 + at,
                    approved=approved or disbursed_fen > 0, disbursed=disbursed_fen > 0,
                    declined=declined, disbursed_fen=disbursed_fen, branch=branch)


def test_each_customer_counts_once_under_the_last_contact_before_they_applied():
    found = [contact("C1", "sms", timedelta(0), variant="B"), contact("C1", "call", 2 * HOUR),
             contact("C2", "popup", timedelta(0), branch="SL"), contact("C2", "call", 5 * HOUR),
             contact("C3", "call")]
    loans = [loan("C1", 1 * HOUR, disbursed_fen=100_00, branch="CD"),
             loan("C1", 3 * HOUR, declined=True),  # later, but got less far: C1's sms stands
             loan("C2", 2 * HOUR, approved=True),
             loan("C4", 2 * HOUR, variant="B")]  # applied with no contact at all
    by_customer = {j.customer_id: j for j in journeys(found, loans)}
    assert by_customer["C1"].channel == "sms" and by_customer["C1"].variant == "B"
    assert by_customer["C1"].branch == "CD" and by_customer["C1"].disbursed_fen == 100_00
    assert by_customer["C1"].reached == {"contacted", "applied", "approved", "disbursed",
                                         "declined"}
    assert (by_customer["C2"].channel, by_customer["C2"].branch) == ("popup", "SL")
    assert by_customer["C3"].reached == {"contacted"}
    assert (by_customer["C4"].channel, by_customer["C4"].variant, by_customer["C4"].branch,
            by_customer["C4"].reached) == (UNCONTACTED, "B", NO_BRANCH, {"applied"})
    funnel = loan_funnel(found, loans)
    assert list(funnel.by_channel) == ["sms", "popup", "call", UNCONTACTED]
    assert funnel.total.stages == {"contacted": 3, "applied": 3, "approved": 2, "disbursed": 1,
                                   "declined": 1, "withdrawn": 0}
    assert sum(c.customers for c in funnel.by_branch.values()) == funnel.total.customers == 4
    assert funnel.total.rate("disbursed") == pytest.approx(1 / 3)


def test_contacts_are_what_reached_the_customer():
    queued = SmsFact("C1", "A", "JT", "out", T0)  # written, never sent: no contact
    sent = SmsFact("C2", "A", "JT", "out", T0, submitted_at=T0 + HOUR)
    reply = SmsFact("C2", "A", "JT", "in", T0 + 2 * HOUR)
    found = contacts(ChannelFacts(sms=(queued, sent, reply), calls=(attempt("C3"),)))
    assert [(c.channel, c.customer_id, c.at) for c in found] == [
        ("call", "C3", attempt("C3").started_at), ("sms", "C2", T0 + HOUR)]


def test_the_a_b_test_on_disbursement_counts_applications_made_after_the_dial():
    dials = [attempt("C1"), attempt("C2"), attempt("C3", variant="B"),
             attempt("C3", 2, variant="B")]
    dialled_at = attempt("C1").started_at

    def paid(customer: str, applied_at: datetime, disbursed: bool = True) -> LoanFact:
        return LoanFact(customer, f"APP-{customer}", "A", applied_at, approved=True,
                        disbursed=disbursed, disbursed_fen=100_00 if disbursed else 0)

    loans = [paid("C1", dialled_at + HOUR), paid("C2", dialled_at - HOUR),  # before the call
             paid("C3", dialled_at + HOUR, disbursed=False), paid("C4", dialled_at + HOUR)]
    assert disbursement_counts(dials, loans, ["A", "B", "C"]) == {
        "A": (1, 2), "B": (0, 1), "C": (0, 0)}


def test_the_report_judges_variants_on_disbursement():
    facts = simulated_campaign(400, timedelta(days=3))
    dialled = sorted({(f.customer_id, f.variant) for f in facts})
    every = {"A": 20, "B": 6}  # B's customers are paid out over three times as often as A's
    loans = [loan(customer, DAY, variant=name, disbursed_fen=20_000_00)
             for name in every
             for customer in [c for c, v in dialled if v == name][::every[name]]]
    counts = disbursement_counts(facts, loans, ["A", "B"])
    assert counts["A"][1] == counts["B"][1] == 200 and counts["B"][0] > 2 * counts["A"][0]
    page = render_html(campaign(), facts, GENERATED, loans=loans)
    verdict = Page(page.split('<section id="funnel"')[0]).all_text
    assert f"{DISBURSED_METRIC}: B converts better than A" in verdict
    conversion = next(t for t in Page(page).tables if t[0][0] == "指标 (metric)")
    rows = [row for row in conversion if row[0] == DISBURSED_METRIC]
    assert [row[1:4] for row in rows] == [["A", "200", str(counts["A"][0])],
                                          ["B", "200", str(counts["B"][0])]]
    assert 'id="loans"' in page


def test_a_campaign_without_loan_outcomes_keeps_its_report():
    facts = simulated_campaign(40, timedelta(days=1))
    page = render_html(campaign(), facts, GENERATED, loans=[])
    assert page == render_html(campaign(), facts, GENERATED)
    assert 'id="loans"' not in page and "已放款" not in page


def test_the_funnel_to_disbursement(staffed):
    """Loan events written through the repository for a campaign's customers: the funnel per
    variant, channel and branch, and the report's A/B verdict and tables on disbursement."""
    config = CampaignConfig(window_start="00:00", window_end="00:00",
                            variants={"A": 0.5, "B": 0.5})
    customers = [f"C{n:04d}" for n in range(1, 9)]
    with session_scope(staffed) as session:
        campaigns.create_campaign(session, "loans", "放款漏斗", "simulated", config, T0,
                                  actor=Actor.command_line())
        campaigns.add_targets(session, "loans", customers, T0)
        campaigns.command(session, "loans", "start", Actor.command_line(), T0)
        calls = iter(f"call-{n}" for n in range(100))
        claimed = campaigns.claim_due(session, "loans", 20, T0 + HOUR, "dialer-1",
                                      lambda: next(calls))
    with session_scope(staffed) as session:
        for job in claimed.jobs:
            done = (AttemptOutcome("transferred", {k: v for k, v in TRANSFERRED.items()
                                                   if k != "outcome"})
                    if job.customer_id in ("C0001", "C0002") else AttemptOutcome("no_answer", {}))
            campaigns.finish_attempt(session, job.attempt_id, "dialer-1", done, T0 + HOUR)
        variants = dict(campaigns.targets_with_variants(session, "loans"))
    reported = [
        event(S.APPLIED, 2 * HOUR, app="L1"), event(S.APPROVED, DAY, app="L1"),
        event(S.DISBURSED, 2 * DAY, app="L1", amount_fen=5_000_000, branch="JT"),
        event(S.APPLIED, 3 * HOUR, app="L2", customer="C0002"),
        event(S.AUTO_APPROVED, 3 * HOUR, app="L2", customer="C0002"),
        event(S.DISBURSED, DAY, app="L2", customer="C0002", amount_fen=3_000_050),
        event(S.APPLIED, 2 * HOUR, app="L3", customer="C0003"),
        event(S.DECLINED, DAY, app="L3", customer="C0003"),
        event(S.APPLIED, 2 * HOUR, app="L4", customer="C0004"),
        event(S.APPROVED, DAY, app="L4", customer="C0004"),
        event(S.WITHDRAWN, 2 * DAY, app="L4", customer="C0004"),
        event(S.APPLIED, -DAY, app="L5", customer="C0005"),  # before the campaign: not its
        event(S.APPLIED, 2 * HOUR, app="L9", customer="C0009"),  # not in the campaign
        event(S.AUTO_APPROVED, 2 * HOUR, app="L9", customer="C0009"),
        event(S.DISBURSED, DAY, app="L9", customer="C0009", amount_fen=1_000_000),
    ]
    with session_scope(staffed) as session:
        done = record_events(session, reported, now=LATER, sources=["test"] * len(reported),
                             wheres=[str(i) for i in range(len(reported))], all_or_nothing=True)
    assert len(done.recorded) == len(reported)

    with session_scope(staffed) as session:
        loans = loan_facts(session, "loans")
        facts = attempt_facts(session, "loans")
        assert loan_facts(session, "no-such-campaign") == []
    assert sorted(f.application_id for f in loans) == ["L1", "L2", "L3", "L4"]
    found = loan_funnel(contacts(ChannelFacts(calls=tuple(facts))), loans)
    assert found.total.customers == 8
    assert found.total.stages == {"contacted": 8, "applied": 4, "approved": 3, "disbursed": 2,
                                  "declined": 1, "withdrawn": 1}
    assert found.total.disbursed_fen == 8_000_050
    assert list(found.by_channel) == ["call"]
    assert found.by_branch["JT"].stages["disbursed"] == 1  # C0001: booked at 金堂 (JT)
    assert found.by_branch["SL"].stages["disbursed"] == 1  # C0002 (双流区): her nearest, SL
    for name in ("A", "B"):
        mine = [c for c in customers if variants[c] == name]
        paid = [c for c in mine if c in ("C0001", "C0002")]
        assert found.by_variant[name].customers == len(mine)
        assert found.by_variant[name].stages["disbursed"] == len(paid)
        assert disbursement_counts(facts, loans, ["A", "B"])[name] == (len(paid), len(mine))

    page = render_html(campaign(), facts, GENERATED, loans=loans)
    verdict = Page(page.split('<section id="funnel"')[0]).all_text
    assert f"{DISBURSED_METRIC}: Not enough data" in verdict
    tables = Page(page)
    assert tables.table("loans-variants")[-1] == [
        "合计 (all)", "8", "8 (100.0%)", "4 (50.0%)", "3 (37.5%)", "2 (25.0%)", "1 (12.5%)",
        "1 (12.5%)", "80,000.50"]
    assert tables.table("loans-channels")[1][0] == "外呼 (call)"
    assert [row[0] for row in tables.table("loans-branches")[1:]] == sorted(
        found.by_branch) + ["合计 (all)"]
    assert "C0001" not in page and "13800138001" not in page
