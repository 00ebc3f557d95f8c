"""One-click calls (一键外呼): who may ask for one and when it is refused (no phone, the
do-not-contact list, outside the calling window, someone else's lead, a call in progress);
workers taking requests and closing stale ones; and a real call between two baresip phones,
the manager's and the customer's, bridged by PJSIP and recorded on two channels."""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from branches import click_calls, leads
from branches.click_calls import ClickCallPolicy, ClickCallStatus
from core.staff_phones import valid_phone
from core.vocabulary import LeadStatus
from offercall.click_calls import ClickCallPlacer
from offercall.worker import Worker
from persistence.engine import session_scope
from persistence.schema import ClickCall, DoNotContact
from tests.conftest import QUEUE_NOW
from tests.sip_peers.baresip import SAMPLE_RATE, BaresipPhone, write_wav_mono
from tests.test_campaign_api import add_staff
from tests.test_leads_api import (
    HOUR,
    SQLITE,
    Clock,
    act,
    app_client,
    bearer,
    get_json,
    open_lead,
    post_json,
    staff,
)
from voice.transports.sip import TrunkConfig

T0 = QUEUE_NOW  # 10:00 in Shanghai
POLICY = ClickCallPolicy()  # 09:00-20:00 Asia/Shanghai


@pytest.fixture
def branch_db(staffed) -> Engine:
    """The staffed database (jt_mgr: 金堂's branch manager, mgr, jt ...) plus 金堂's account
    managers jt_am and jt_am2."""
    add_staff(staffed, [("jt_am", "account_manager", "JT"), ("jt_am2", "account_manager", "JT")])
    return staffed


def set_phone(engine: Engine, username: str, phone: str | None) -> None:
    act(engine, click_calls.set_phone, staff(engine, username).account_id, phone)


def claimed_lead(engine: Engine, customer_id: str) -> leads.Lead:
    """A lead of 金堂 (JT) for the customer, given to jt_am and claimed."""
    lead = open_lead(engine, customer_id)
    owner = staff(engine, "jt_am")
    assert lead.branch_id == "JT", lead
    if lead.manager_id != owner.account_id:
        act(engine, leads.assign_manager, lead.id, owner.account_id, staff(engine, "jt_mgr"), T0)
    return act(engine, leads.claim, lead.id, owner, T0)


def click_call_rows(engine: Engine) -> int:
    with session_scope(engine) as session:
        return session.execute(select(func.count()).select_from(ClickCall)).scalar()


def test_staff_phones_are_numbers_or_sip_uris():
    assert valid_phone(" 138-0013 8000 ") == "13800138000"
    assert valid_phone("+8613800138000") == "+8613800138000"
    assert valid_phone("sip:1001@pbx.bank.local") == "sip:1001@pbx.bank.local"
    for bad in ("", "分机 1001", "12", "http://x", "sip:a b@c"):
        with pytest.raises(ValueError):
            valid_phone(bad)


@SQLITE
async def test_only_the_leads_own_manager_with_a_phone_may_call_and_compliance_refuses(
        aiohttp_client, tmp_path, branch_db, db_url):
    clock = Clock(T0 + HOUR)
    client = await app_client(aiohttp_client, tmp_path, db_url, clock)
    who = bearer(branch_db, ["jt_am", "jt_am2", "jt_mgr", "mgr", "jt"])
    lead = open_lead(branch_db, "C0001")  # 金堂县: JT, given to jt_am
    path = f"/api/leads/{lead.id}/call"

    assert (await client.post(path)).status == 401
    assert (await client.post(path, headers={"Authorization": "Bearer forged"})).status == 401
    for outsider in ("mgr", "jt"):  # head office's campaign manager, a call-centre agent
        await post_json(client, path, who[outsider], status=403)
    await post_json(client, "/api/leads/999999/call", who["jt_am"], status=404)

    refused = await post_json(client, path, who["jt_am"], status=422)
    assert (refused["reason"], "未登记本人电话" in refused["error"]) == ("no_phone", True)
    set_phone(branch_db, "jt_am", "13900000001")
    set_phone(branch_db, "jt_am2", "13900000002")
    refused = await post_json(client, path, who["jt_am2"], status=403)  # jt_am's lead
    assert "not within this account's reach" in refused["error"]
    refused = await post_json(client, path, who["jt_am"], status=409)
    assert refused["reason"] == "not_claimed"
    act(branch_db, leads.claim, lead.id, staff(branch_db, "jt_am"), T0)

    clock.now = T0 - 3 * HOUR  # 07:00 in Shanghai
    refused = await post_json(client, path, who["jt_am"], status=422)
    assert refused["reason"] == "outside_window"
    assert "09:00" in refused["error"] and "Asia/Shanghai" in refused["error"], refused
    clock.now = T0 + 11 * HOUR  # 21:00
    await post_json(client, path, who["jt_am"], status=422)
    clock.now = T0 + HOUR

    opted_out = claimed_lead(branch_db, "C0007")
    with session_scope(branch_db) as session:
        session.add(DoNotContact(customer_id="C0007", utterance="别再打了", source="voice",
                                 created_at=T0))
    refused = await post_json(client, f"/api/leads/{opted_out.id}/call", who["jt_am"], status=409)
    assert refused["reason"] == "do_not_contact"
    assert click_call_rows(branch_db) == 0, "a refused request writes nothing"

    asked = await post_json(client, path, who["jt_am"], status=202)
    assert (asked["status"], asked["live"], asked["lead_id"]) == ("requested", True, lead.id)
    assert asked["customer"] == {"id": "C0001", "phone": "138****8001"}
    again = await post_json(client, path, who["jt_am"], status=409)
    assert again["reason"] == "in_progress"
    set_phone(branch_db, "jt_mgr", "sip:jt_mgr@127.0.0.1")  # the branch manager: same lead
    assert (await post_json(client, path, who["jt_mgr"], status=409))["reason"] == "in_progress"
    assert click_call_rows(branch_db) == 1

    shown = await get_json(client, f"/api/click-calls/{asked['id']}", who["jt_am"])
    assert shown == asked
    assert "13800138001" not in str(shown)
    await get_json(client, f"/api/click-calls/{asked['id']}", who["jt_mgr"])
    await get_json(client, f"/api/click-calls/{asked['id']}", who["jt_am2"], status=403)
    await get_json(client, "/api/click-calls/999999", who["jt_am"], status=404)
    assert (await client.get(f"/api/click-calls/{asked['id']}")).status == 401


def request(engine: Engine, lead_id: int, username: str, now) -> click_calls.ClickCallView:
    return act(engine, click_calls.request_call, lead_id, staff(engine, username), now, POLICY)


async def test_one_worker_takes_a_request_and_stale_calls_are_closed_on_the_lead(branch_db):
    set_phone(branch_db, "jt_am", "13900000001")
    lead = claimed_lead(branch_db, "C0001")
    asked = request(branch_db, lead.id, "jt_am", T0 + HOUR)

    now = T0 + HOUR
    taken = act(branch_db, click_calls.claim_next, "w1", now, POLICY)
    assert taken is not None and taken.call_id == asked.id
    assert (taken.manager_phone, taken.customer_phone) == ("13900000001", "13800138001")
    assert "13800138001" not in repr(taken)
    assert act(branch_db, click_calls.claim_next, "w2", now, POLICY) is None  # taken once

    # w1 stops: once its lease lapses the call is closed and the lead is free again
    assert act(branch_db, click_calls.expire, now + POLICY.lease / 2, POLICY) == []
    assert act(branch_db, click_calls.expire, now + 2 * POLICY.lease, POLICY) == [asked.id]
    assert not act(branch_db, click_calls.advance, asked.id, "w1", ClickCallStatus.BRIDGED,
                   now, POLICY)
    again = request(branch_db, lead.id, "jt_am", now + 3 * POLICY.lease)
    # ... and a request no worker takes is closed too
    assert act(branch_db, click_calls.expire, now + 3 * POLICY.lease + POLICY.request_ttl * 2,
               POLICY) == [again.id]
    with session_scope(branch_db) as session:
        rows = session.execute(select(ClickCall).order_by(ClickCall.id)).scalars().all()
        assert [(r.status, r.failure, r.live_lead_id) for r in rows] == [
            ("failed", "interrupted", None), ("failed", "not_placed", None)]
        history = leads.events_of(session, lead.id)
    notes = [e for e in history if e.detail.get("click_call")]
    assert [e.reason for e in notes] == ["一键外呼：未接通（通话中断）",
                                         "一键外呼：未接通（外呼线路繁忙，未能发起）"]
    assert notes[0].actor == f"account_manager:{staff(branch_db, 'jt_am').account_id}"


# ------------------------------------------------------------------ a real call
MANAGER_HZ, CUSTOMER_HZ = 600.0, 1000.0


def tone(path: Path, hz: float, seconds: float = 8.0) -> Path:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return write_wav_mono(path, 0.3 * 32767 * np.sin(2 * np.pi * hz * t))


def power_at(samples: np.ndarray, hz: float) -> float:
    """The share of the signal's energy within 30 Hz of ``hz``."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples)))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    return float(spectrum[np.abs(freqs - hz) < 30].sum() / max(spectrum.sum(), 1e-9))


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


def mono(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


class _NoCampaigns:
    async def dialer(self, campaign, **options):  # pragma: no cover - no campaign runs here
        raise AssertionError("no campaign runs in this test")


@SQLITE
@pytest.mark.usefixtures("baresip")
async def test_a_one_click_call_rings_the_manager_then_the_customer_and_records_both(
        aiohttp_client, tmp_path, branch_db, db_url, sip_stack):
    clock = Clock(T0 + HOUR)
    client = await app_client(aiohttp_client, tmp_path, db_url, clock)
    who = bearer(branch_db, ["jt_am"])
    lead = claimed_lead(branch_db, "C0001")
    recordings = tmp_path / "recordings"
    with BaresipPhone(tmp_path / "phones", "manager", answer_delay_s=1.0,
                      play_wav=tone(tmp_path / "manager.wav", MANAGER_HZ)) as manager, \
            BaresipPhone(tmp_path / "phones", "13800138001", answer_delay_s=0.5,  # C0001's number
                         play_wav=tone(tmp_path / "customer.wav", CUSTOMER_HZ)) as customer:
        set_phone(branch_db, "jt_am", manager.uri)  # the manager's own phone, a SIP URI
        trunk = TrunkConfig(dial_uri=f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                            ring_timeout_s=10)  # the customer's number goes through the trunk
        placer = ClickCallPlacer(branch_db, sip_stack, recordings, trunk=trunk, worker_id="w1",
                                 clock=clock, policy=POLICY)
        worker = Worker(branch_db, _NoCampaigns(), clock=clock, click_calls=placer)
        asked = await post_json(client, f"/api/leads/{lead.id}/call", who["jt_am"], status=202)
        state = f"/api/click-calls/{asked['id']}"

        await worker.tick()  # the worker takes the request and dials
        ringing = await asyncio.to_thread(manager.wait_event, "CALL_INCOMING", 10)
        await asyncio.to_thread(customer.wait_event, "CALL_ESTABLISHED", 15)
        customer_rang = customer.events_of("CALL_INCOMING")[0]
        # the customer's phone rang only once the manager had answered (after ringing 1 s)
        assert customer_rang["received_at"] - ringing["received_at"] >= 1.0
        assert customer_rang["peeruri"].startswith("sip:offercall@")  # the bank's line
        await asyncio.sleep(2.5)  # they talk
        await asyncio.to_thread(customer.hangup)
        await asyncio.to_thread(manager.wait_event, "CALL_CLOSED", 5)  # the bridge ended it too
        deadline = time.monotonic() + 10
        while (shown := await get_json(client, state, who["jt_am"]))["live"]:
            assert time.monotonic() < deadline, shown
            await worker.tick()
            await asyncio.sleep(0.1)
        manager_heard = mono(manager.received_audio()[-1])
        customer_heard = mono(customer.received_audio()[-1])

    assert (shown["status"], shown["ended_by"], shown["failure"], shown["recorded"]) == (
        "ended", "customer", None, True), shown
    assert 2.0 <= shown["duration_s"] <= 5.0, shown
    assert shown["manager_answered_at"] and shown["customer_answered_at"]

    # audio went both ways through the bridge: each phone heard the other's tone
    last_second = slice(-SAMPLE_RATE - SAMPLE_RATE // 2, -SAMPLE_RATE // 2)
    assert abs(dominant_hz(manager_heard[last_second]) - CUSTOMER_HZ) < 10
    assert abs(dominant_hz(customer_heard[last_second]) - MANAGER_HZ) < 10

    # the recording: the customer on the left, the manager on the right
    with wave.open(str(recordings / f"click-{asked['id']}.wav"), "rb") as w:
        assert (w.getnchannels(), w.getframerate()) == (2, SAMPLE_RATE)
        stereo = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = stereo[:, 0].astype(np.float64), stereo[:, 1].astype(np.float64)
    assert 2.0 <= len(left) / SAMPLE_RATE <= 5.0
    assert rms(left) > 3000 and rms(right) > 3000, (rms(left), rms(right))
    assert power_at(left, CUSTOMER_HZ) > 0.8 and power_at(left, MANAGER_HZ) < 0.05
    assert power_at(right, MANAGER_HZ) > 0.8 and power_at(right, CUSTOMER_HZ) < 0.05
    assert (recordings / f"click-{asked['id']}.json").exists()

    # the lead: contacted by the call, and the call on its history
    view = await get_json(client, f"/api/leads/{lead.id}", who["jt_am"])
    assert view["status"] == LeadStatus.CONTACTED
    kinds = [(e["kind"], e["reason"]) for e in view["events"]]
    assert kinds[-2][0] == "contacted"
    assert kinds[-1][0] == "note" and kinds[-1][1].startswith(
        "一键外呼：已接通，通话 "), kinds
    assert kinds[-1][1].endswith("，客户先挂断")
    with session_scope(branch_db) as session:
        [event] = [e for e in leads.events_of(session, lead.id) if e.detail.get("click_call")]
    assert event.detail["recording"] == str(recordings / f"click-{asked['id']}.wav")
    assert event.detail["duration_ms"] == pytest.approx(shown["duration_s"] * 1000, abs=100)


@SQLITE
@pytest.mark.usefixtures("baresip")
async def test_a_manager_who_does_not_answer_and_a_busy_customer_are_failures_on_the_lead(
        tmp_path, branch_db, sip_stack):
    clock = Clock(T0 + HOUR)
    lead = claimed_lead(branch_db, "C0001")
    with BaresipPhone(tmp_path / "phones", "manager", auto_answer=False) as manager, \
            BaresipPhone(tmp_path / "phones", "13800138001", auto_answer=False) as customer:
        set_phone(branch_db, "jt_am", manager.uri)
        trunk = TrunkConfig(dial_uri=f"sip:{{number}}@127.0.0.1:{customer.sip_port}",
                            ring_timeout_s=1.5)
        placer = ClickCallPlacer(branch_db, sip_stack, tmp_path / "recordings", trunk=trunk,
                                 worker_id="w1", clock=clock, policy=POLICY)

        async def call() -> ClickCall:
            asked = request(branch_db, lead.id, "jt_am", clock.now)
            taken = act(branch_db, click_calls.claim_next, "w1", clock.now, POLICY)
            assert taken is not None and taken.call_id == asked.id
            await asyncio.wait_for(placer.place(taken), 15)
            with session_scope(branch_db) as session:
                row = session.get(ClickCall, asked.id)
                session.expunge(row)
                return row

        unanswered = await call()  # the manager's phone rings out: the customer is never dialled
        assert (unanswered.status, unanswered.failure) == ("failed", "manager_no_answer")
        assert customer.events_of("CALL_INCOMING") == []
        manager.wait_event("CALL_INCOMING", 1)  # that call's ringing, seen

        async def answer_then_reject() -> None:  # the manager answers; the customer is busy
            await asyncio.to_thread(manager.wait_event, "CALL_INCOMING", 10)
            await asyncio.to_thread(manager.answer)
            await asyncio.to_thread(customer.wait_event, "CALL_INCOMING", 10)
            await asyncio.to_thread(customer.hangup)  # rejects the ringing call: 486

        script = asyncio.create_task(answer_then_reject())
        busy = await call()
        await script
        assert (busy.status, busy.failure, busy.customer_answered_at) == (
            "failed", "customer_busy", None)
        assert busy.manager_answered_at is not None
        assert busy.detail["customer"]["sip_code"] == 486
        await asyncio.to_thread(manager.wait_event, "CALL_CLOSED", 5)  # the manager's leg ended

    with session_scope(branch_db) as session:
        history = leads.events_of(session, lead.id)
        assert session.get(leads.BranchLead, lead.id).status == LeadStatus.CLAIMED  # not contacted
    assert [e.reason for e in history if e.detail.get("click_call")] == [
        "一键外呼：未接通（客户经理手机无人接听）",
        "一键外呼：未接通（客户占线）"]


def test_the_account_sheet_gives_managers_their_own_phone(engine, tmp_path):
    from handoff.agents import AccountError, load_agents_csv
    from persistence.schema import Agent

    sheet = tmp_path / "staff.csv"
    header = "username,display_name,role,branch_id,products,languages,password,phone\n"
    sheet.write_text(header + "am1,吴经理,account_manager,JT,*,mandarin,pass-word-123, 139-8000 1010 \n"
                     "am2,李经理,account_manager,JT,*,mandarin,pass-word-123,\n", encoding="utf-8")
    with session_scope(engine) as session:
        load_agents_csv(session, sheet, QUEUE_NOW)
        phones = dict(session.execute(select(Agent.username, Agent.phone)).all())
    assert (phones["am1"], phones["am2"]) == ("13980001010", None)
    sheet.write_text(header + "am1,吴经理,account_manager,JT,*,mandarin,,call me\n", encoding="utf-8")
    with pytest.raises(AccountError, match="staff.csv:2: a phone must be"), session_scope(engine) as session:
        load_agents_csv(session, sheet, QUEUE_NOW)
