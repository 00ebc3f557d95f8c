"""The call log API, on SQLite and real PostgreSQL: finding calls by a masked phone, the
transcript masked unless a role that may sees it in full (audited), the recording with Range
requests, branch managers kept to their branch, and call ids that try to leave the folder."""

from __future__ import annotations

import io
import random
import re
import wave
from datetime import timedelta
from pathlib import Path

import pytest

from core.access import Permission
from core.masking import mask_phone
from core.vocabulary import AuditAction
from offercall.web.app import init_app
from outbound.call_log import phone_patterns
from persistence import audit, store
from persistence.engine import session_scope
from persistence.schema import CallAttempt, Campaign
from tests.conftest import QUEUE_NOW
from tests.stack import stack_settings
from tests.test_whitelist_api import add_admin, every_role, expected, login
from voice.events import TranscriptEntry
from voice.recording import CallRecorder

PHONE, ID_NUMBER = "13800138001", "110101199003074512"  # C0001 张伟, 金堂县 (branch JT)


def _attempt(call_id: str, customer: str, minutes_ago: int, outcome: str,
             variant: str) -> CallAttempt:
    started = QUEUE_NOW - timedelta(minutes=minutes_ago)
    return CallAttempt(target_id=minutes_ago, campaign_id="spring", customer_id=customer,
                       attempt_no=1, call_id=call_id, variant=variant, status="done",
                       outcome=outcome, dialer="d1",
                       lease_until=started, facts={}, started_at=started, ended_at=started)


def _call(call_id: str, customer: str, minutes_ago: int, outcome: str,
          recordings: Path) -> store.CallRecord:
    started = QUEUE_NOW - timedelta(minutes=minutes_ago)
    return store.CallRecord(
        call_id=call_id, customer_id=customer, transport="simulated", outcome=outcome,
        ended_by="bot", duration_ms=18_800, handoff_id=None,
        recording_path=str(recordings / f"{call_id}.wav"),
        transcript_path=str(recordings / f"{call_id}.json"), error=None, started_at=started,
        ended_at=started + timedelta(seconds=19))


def _record(call_id: str, recordings: Path, said: str) -> None:
    """A real two-channel recording and transcript, as a call session writes them."""
    recorder = CallRecorder(call_id, recordings, 8000)
    recorder.add_customer(b"\x10\x00" * 8000)
    recorder.add_bot(b"\x20\x00" * 4000, at_ms=0)
    recorder.save([
        TranscriptEntry("bot", "您好，请问是张**先生本人吗？", 0.0, 2000.0, prompt="opening",
                        completed=True),
        TranscriptEntry("customer", said, 2500.0, 5200.0, intent="request_handoff",
                        intent_confidence=0.91, asr_confidence=0.8),
        TranscriptEntry("event", "transfer", 5300.0, kind="transfer"),
    ], {"customer_id": "C0001", "outcome": "transferred"})


def seed_calls(engine, recordings: Path) -> None:
    """call-jt-1: C0001's campaign call, recorded (2 h ago); call-jt-2: C0007's dial nobody
    answered (1 h ago); call-sl-1: C0002's call outside any campaign (双流, branch SL, 30 min)."""
    recordings.mkdir(parents=True, exist_ok=True)
    with session_scope(engine) as session:
        session.add(Campaign(id="spring", name="春季预授信", status="running",
                             transport="simulated", config={}, created_at=QUEUE_NOW,
                             updated_at=QUEUE_NOW))
        session.add_all([_attempt("call-jt-1", "C0001", 120, "transferred", "B"),
                         _attempt("call-jt-2", "C0007", 60, "no_answer", "A")])
        store.record_call(session, _call("call-jt-1", "C0001", 120, "transferred", recordings))
        store.record_call(session, _call("call-sl-1", "C0002", 30, "not_interested", recordings))
    _record("call-jt-1", recordings, f"我要申请，电话{PHONE}，身份证{ID_NUMBER}")
    _record("call-sl-1", recordings, "不需要")


@pytest.fixture
async def client(aiohttp_client, staffed, db_url, tmp_path):
    add_admin(staffed)
    settings = stack_settings(tmp_path / "var", db_url)
    seed_calls(staffed, settings.recordings_dir)
    return await aiohttp_client(init_app(settings))


async def calls(client, headers, query: str = "") -> list[dict]:
    response = await client.get(f"/api/calls{query}", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["calls"]


async def test_calls_are_found_by_masked_phone_newest_first_and_a_branch_sees_its_own(client):
    mgr, jt_mgr = await login(client, "mgr"), await login(client, "jt_mgr")
    everything = await calls(client, mgr)
    assert [c["call_id"] for c in everything] == ["call-sl-1", "call-jt-2", "call-jt-1"]
    first = everything[2]
    assert first["customer"] == {
        "id": "C0001", "name": "张**", "phone": "138****8001", "region": "金堂县"}
    assert first["campaign"] == {"id": "spring", "name": "春季预授信"}
    assert (first["variant"], first["outcome"], first["duration_s"], first["has_recording"]) == (
        "B", "transferred", 18.8, True)
    unanswered = everything[1]
    assert (unanswered["outcome"], unanswered["duration_s"], unanswered["has_recording"]) == (
        "no_answer", None, False)
    assert everything[0]["campaign"] is None and PHONE not in str(everything)

    for fragment in ("8001", "138****8001", "****8001", "8****80", "C0001"):
        found = await calls(client, mgr, f"?customer={fragment}")
        assert [c["call_id"] for c in found] == ["call-jt-1"], fragment
    for hidden in ("0013", "13800138001", "3800"):  # the masked middle cannot be searched
        assert await calls(client, mgr, f"?customer={hidden}") == [], hidden
    spring = await calls(client, mgr, "?campaign=spring")
    assert [c["call_id"] for c in spring] == ["call-jt-2", "call-jt-1"]
    assert [c["call_id"] for c in await calls(client, mgr, "?limit=1")] == ["call-sl-1"]
    assert (await client.get("/api/calls?limit=0", headers=mgr)).status == 400

    assert [c["call_id"] for c in await calls(client, jt_mgr)] == ["call-jt-2", "call-jt-1"]
    assert await calls(client, jt_mgr, "?customer=9002") == []  # C0002 is 双流's


async def test_the_transcript_is_masked_unless_a_permitted_role_asks_and_is_audited(client,
                                                                                     staffed):
    mgr, jt_mgr = await login(client, "mgr"), await login(client, "jt_mgr")
    masked = await (await client.get("/api/calls/call-jt-1", headers=mgr)).json()
    said = masked["transcript"][1]
    assert said["speaker"] == "customer"
    assert said["intents"] == [{"name": "request_handoff", "confidence": 0.91}]
    assert "138****8001" in said["text"] and "1101**********4512" in said["text"]
    assert PHONE not in str(masked) and ID_NUMBER not in str(masked) and masked["unmasked"] is False
    assert [t["speaker"] for t in masked["transcript"]] == ["bot", "customer", "event"]

    refused = await client.get("/api/calls/call-jt-1?unmasked=1", headers=mgr)
    assert refused.status == 403 and "full phone" in (await refused.json())["error"]
    with session_scope(staffed) as session:
        assert audit.history(session, "customer", "C0001") == []

    full = await (await client.get("/api/calls/call-jt-1?unmasked=1", headers=jt_mgr)).json()
    assert PHONE in full["transcript"][1]["text"] and ID_NUMBER in full["transcript"][1]["text"]
    assert full["customer"]["phone"] == PHONE and full["customer"]["name"] == "张伟"
    with session_scope(staffed) as session:
        (entry,) = audit.history(session, "customer", "C0001")
    assert (entry.action, entry.actor, entry.actor_role) == (
        AuditAction.UNMASKED_VIEWED, "jt_mgr", "branch_manager")
    assert entry.detail["call_id"] == "call-jt-1"

    other_branch = await client.get("/api/calls/call-sl-1?unmasked=1", headers=jt_mgr)
    assert other_branch.status == 403 and "another branch" in (await other_branch.json())["error"]
    with session_scope(staffed) as session:
        assert audit.history(session, "customer", "C0002") == []
    missing = await client.get("/api/calls/call-nope", headers=mgr)
    assert missing.status == 404 and "call-nope" in (await missing.json())["error"]
    unanswered = await (await client.get("/api/calls/call-jt-2", headers=mgr)).json()
    assert unanswered["transcript"] == [] and unanswered["has_recording"] is False


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_recording_plays_with_range_requests_and_only_from_its_folder(client, tmp_path):
    mgr, jt_mgr = await login(client, "mgr"), await login(client, "jt_mgr")
    response = await client.get("/api/calls/call-jt-1/recording", headers=mgr)
    whole = await response.read()
    assert response.status == 200 and response.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(whole)) as audio:
        assert (audio.getnchannels(), audio.getframerate(), audio.getnframes()) == (2, 8000, 8000)

    part = await client.get("/api/calls/call-jt-1/recording",
                            headers={**mgr, "Range": "bytes=100-199"})
    assert part.status == 206 and part.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert await part.read() == whole[100:200]

    assert (await client.get("/api/calls/call-sl-1/recording", headers=jt_mgr)).status == 403
    no_audio = await client.get("/api/calls/call-jt-2/recording", headers=mgr)
    assert no_audio.status == 404 and "no recording" in (await no_audio.json())["error"]
    assert (await client.get("/api/calls/call-nope/recording", headers=mgr)).status == 404

    secret = tmp_path / "var" / "secret.wav"
    secret.write_bytes(b"RIFF-not-for-you")
    for sneaky in ("..%2Fsecret", "..", "call-jt-1.wav", "call%00jt"):
        refused = await client.get(f"/api/calls/{sneaky}/recording", headers=mgr)
        assert refused.status in (400, 404), sneaky
        assert b"not-for-you" not in await refused.read()
    assert (await client.get("/api/calls/call-jt-1.wav/recording", headers=mgr)).status == 400


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_who_may_read_the_call_log_follows_the_role_permissions(client):
    for who, headers in (await every_role(client)).items():
        for path, needs in [
            ("/api/calls", [Permission.VIEW_CALL_LOG]),
            ("/api/calls/call-jt-1", [Permission.VIEW_CALL_LOG]),
            ("/api/calls/call-jt-1?unmasked=1",
             [Permission.VIEW_CALL_LOG, Permission.VIEW_UNMASKED]),
            ("/api/calls/call-jt-1/recording", [Permission.VIEW_CALL_LOG]),
        ]:
            response = await client.get(path, headers=headers)
            assert response.status in expected(who, *needs, allowed=(200,)), (
                who, path, response.status)


def _like(pattern: str, phone: str) -> bool:
    return re.fullmatch(pattern.replace("_", "."), phone) is not None


def test_a_phone_search_matches_exactly_what_the_mask_shows():
    """Every fragment, for many phones: found iff it is part of the masked number, so the
    hidden digits can never be probed."""
    rng = random.Random(7)
    phones = [f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}" for _ in range(40)]
    for phone in phones:
        masked = mask_phone(phone)
        fragments = {masked[i:j] for i in range(11) for j in range(i + 1, 12)}
        fragments |= {phone[i:j] for i in range(11) for j in range(i + 1, 12)}
        for fragment in fragments:
            found = any(_like(p, phone) for p in phone_patterns(fragment))
            assert found == (fragment in masked), (phone, fragment)
    assert phone_patterns("138 **** 8001") == phone_patterns("138****8001") == ["138____8001"]
    assert phone_patterns("abc") == phone_patterns("") == phone_patterns("1" * 12) == []
