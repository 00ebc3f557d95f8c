"""Calls through a SIP trunk played by sipp: digest authentication, and every way a call can
fail to connect, down to what the campaign does next (retry later, or never again)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from offercall.campaign_runner import create, run_campaign
from outbound.campaigns import CampaignConfig
from outbound.whitelist import import_whitelist_file
from persistence.engine import session_scope
from persistence.schema import CallAttempt
from tests.sip_peers.sipp import SippPeer
from voice.transports.sip import SipTransport, TrunkConfig

pytestmark = pytest.mark.usefixtures("sipp")


def trunk_to(peer: SippPeer, **options) -> TrunkConfig:
    return TrunkConfig(dial_uri=f"sip:{{number}}@127.0.0.1:{peer.port}", **options)


async def test_the_trunk_challenges_and_the_call_goes_through_with_the_right_password(
        sip_stack, tmp_path: Path) -> None:
    with SippPeer(tmp_path, "auth_answer", auth=("bank", "s3cret"), callee="13800138000") as trunk:
        good = trunk_to(trunk, username="bank", password="s3cret")
        transport = SipTransport(sip_stack, "13800138000", trunk=good)
        answer = await transport.connect()
        await transport.hangup("ended")
        assert answer.answered, trunk.diagnostics()
    flow = trunk.flow()
    assert flow[:2] == ["<INVITE", ">407"], flow
    assert flow.count("<INVITE") == 2 and ">200" in flow, flow


async def test_a_wrong_password_is_a_failed_call_not_a_customer_outcome(sip_stack, tmp_path) -> None:
    with SippPeer(tmp_path, "auth_answer", auth=("bank", "s3cret"), callee="13800138000") as trunk:
        bad = trunk_to(trunk, username="bank", password="wrong")
        answer = await SipTransport(sip_stack, "13800138000", trunk=bad).connect()
    assert (answer.status, answer.detail["sip_code"]) == ("failed", 403)


@pytest.mark.parametrize(("scenario", "status", "code"), [
    ("busy", "busy", 486), ("decline", "declined", 603), ("unavailable", "no_answer", 480),
    ("not_found", "invalid_number", 404),
])
async def test_each_refusal_from_the_network_is_its_call_outcome(sip_stack, tmp_path, scenario, status, code):
    with SippPeer(tmp_path, scenario, ring_ms=300) as trunk:
        answer = await SipTransport(sip_stack, "13800138000", trunk=trunk_to(trunk)).connect()
    assert (answer.status, answer.detail["sip_code"]) == (status, code)
    assert answer.detail["timings_ms"]["provisional"] < answer.detail["timings_ms"]["ended"]


async def test_ringing_past_the_timeout_is_cancelled_and_counts_as_no_answer(sip_stack, tmp_path) -> None:
    with SippPeer(tmp_path, "no_answer") as trunk:
        answer = await SipTransport(sip_stack, "13800138000", trunk=trunk_to(trunk, ring_timeout_s=1.5)).connect()
    flow = trunk.flow()  # (complete once sipp has stopped)
    assert answer.status == "no_answer"
    assert "<CANCEL" in flow and ">487" in flow, flow


HEADER = "customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,term_months,valid_until,consent\n"
FAST = {"window_start": "00:00", "window_end": "23:59:59", "min_gap_s": 0, "max_attempts_per_week": 50,
        "retry_backoff_s": [1], "max_attempts": 2, "max_concurrency": 2,
        "agent_gated": False}  # the agents are on the PBX, not signed in to the console


@pytest.mark.model
@pytest.mark.parametrize(("scenario", "outcomes"), [
    ("busy", ["busy", "busy"]),  # tried again after the back-off, then the attempts are used up
    ("decline", ["declined", "declined"]),
    ("not_found", ["invalid_number"]),  # a number that does not exist is not dialled again
])
async def test_a_sip_campaign_retries_busy_and_declined_customers_but_not_wrong_numbers(
        bot_stack, sip_stack, tmp_path, scenario, outcomes) -> None:
    prefix = {"busy": "SB", "decline": "SD", "not_found": "SN"}[scenario]
    block = f"13{ord(prefix[1]):03d}"
    rows = "".join(f"{prefix}{i},客户{i},{block}{i:06d},金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1\n"
                   for i in (1, 2))
    (tmp_path / "list.csv").write_text(HEADER + rows, encoding="utf-8")
    assert not import_whitelist_file(bot_stack.engine, tmp_path / "list.csv").errors
    campaign_id = f"sip-{scenario}"
    create(bot_stack.engine, campaign_id, "SIP failures", "sip", CampaignConfig.from_json(FAST),
           [f"{prefix}1", f"{prefix}2"])
    with SippPeer(tmp_path, scenario) as trunk:
        await run_campaign(bot_stack.settings, campaign_id, sip_stack=sip_stack, sip_trunk=trunk_to(trunk),
                           out=None, idle_horizon=timedelta(seconds=30))
    invites = trunk.received("INVITE")
    with session_scope(bot_stack.engine) as session:
        attempts = session.execute(select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
                                   .order_by(CallAttempt.customer_id, CallAttempt.attempt_no)).scalars().all()
        by_customer = {c: [a.outcome for a in attempts if a.customer_id == c] for c in (f"{prefix}1", f"{prefix}2")}
    assert by_customer == {f"{prefix}1": outcomes, f"{prefix}2": outcomes}
    assert len(invites) == 2 * len(outcomes), "each attempt is one INVITE: none lost, none doubled"


async def test_calls_in_flight_at_once_each_carry_audio_and_free_their_lines(sip_stack, tmp_path) -> None:
    import asyncio

    import numpy as np

    from tests.sip_peers.baresip import write_wav_mono
    from voice.audio import decode
    from voice.events import AudioIn

    t = np.arange(8000) / 8000
    wav = write_wav_mono(tmp_path / "tone.wav", (0.3 * 32767 * np.sin(2 * np.pi * 500 * t)).astype("<i2"))
    with SippPeer(tmp_path, "answer_stream", wav=wav) as trunk:
        transports = [SipTransport(sip_stack, f"1380013800{i}", trunk=trunk_to(trunk)) for i in range(4)]
        answers = await asyncio.gather(*(t.connect() for t in transports))
        assert all(a.answered for a in answers), answers
        assert sip_stack.calls_in_flight() == sip_stack.max_calls == 4, "pacing sees the lines in use"
        one_too_many = await SipTransport(sip_stack, "13800138009", trunk=trunk_to(trunk)).connect()
        assert one_too_many.status == "failed" and "Too many" in one_too_many.detail["error"]

        async def listen(transport: SipTransport) -> bytes:
            audio = b""
            async for event in transport.events():
                if isinstance(event, AudioIn):
                    audio += event.data
            return audio

        listening = [asyncio.create_task(listen(t)) for t in transports]
        await asyncio.sleep(2)
        await asyncio.gather(*(t.hangup("ended") for t in transports))
        heard = await asyncio.gather(*listening)
    for audio in heard:
        samples = np.frombuffer(decode(audio, "mulaw"), dtype="<i2")
        assert len(samples) >= 8000 and np.abs(samples).max() > 5000
    for _ in range(50):
        if sip_stack.calls_in_flight() == 0:
            break
        await asyncio.sleep(0.05)
    assert sip_stack.calls_in_flight() == 0, "every line was freed"


async def test_an_announcement_before_the_failure_is_early_media_not_the_customer(sip_stack, tmp_path) -> None:
    import numpy as np

    from tests.sip_peers.baresip import write_wav_mono

    t = np.arange(8000 * 3) / 8000
    announcement = write_wav_mono(tmp_path / "announcement.wav",
                                  (0.3 * 32767 * np.sin(2 * np.pi * 450 * t)).astype("<i2"))
    with SippPeer(tmp_path, "early_media", wav=announcement, ring_ms=2000) as trunk:
        transport = SipTransport(sip_stack, "13800138000", trunk=trunk_to(trunk))
        answer = await transport.connect()
    assert (answer.status, answer.detail["sip_code"]) == ("no_answer", 480)
    assert answer.detail["provisional_code"] == 183
    assert answer.detail["early_media_ms"] >= 1000, "the announcement was heard as early media"
    assert [e async for e in transport.events()] == [], "and never reached the bot as the customer's voice"
