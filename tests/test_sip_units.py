"""The SIP transport's pure parts: what a SIP failure means for the campaign, the settings,
the glitch counter, the agent's briefing, and the transfer written onto the ticket."""

from __future__ import annotations

import pytest

from core.clock import utcnow
from handoff import tickets
from offercall.sip_calls import briefing_sentence
from outbound.call_facts import dial_outcome
from outbound.retry import FINAL, RETRYABLE
from persistence import handoffs
from persistence.engine import session_scope
from voice.events import CallResult
from voice.transports.sip.config import SipConfig, SipConfigError, TrunkConfig
from voice.transports.sip.legs import UnderrunCounter
from voice.transports.sip.outcomes import OUTCOMES, failure_status


@pytest.mark.parametrize(("code", "status"), [
    (486, "busy"), (600, "busy"), (603, "declined"), (480, "no_answer"), (408, "no_answer"),
    (487, "no_answer"), (404, "invalid_number"), (484, "invalid_number"), (604, "invalid_number"),
    (500, "unreachable"), (503, "unreachable"), (502, "unreachable"), (0, "unreachable"),
    (403, "failed"), (407, "failed"), (488, "failed"), (415, "failed"),
])
def test_each_sip_failure_maps_to_a_call_outcome(code: int, status: str) -> None:
    assert failure_status(code) == status


@pytest.mark.parametrize("status", sorted(OUTCOMES))
def test_every_sip_outcome_tells_the_dialer_whether_to_try_again(status: str) -> None:
    outcome = dial_outcome(CallResult(call_id="c", customer_id="C1", outcome=status, ended_by="network",
                                      duration_ms=0, transcript=[]))
    assert outcome in RETRYABLE | FINAL
    assert (outcome in FINAL) == (status == "invalid_number"), "only a wrong number stops the retries"


def test_a_number_becomes_the_trunks_request_uri() -> None:
    trunk = TrunkConfig(dial_uri="sip:{number}@pbx.bank.local;user=phone")
    assert trunk.uri_for("13800138000") == "sip:13800138000@pbx.bank.local;user=phone"
    assert trunk.uri_for("+8613800138000") == "sip:+8613800138000@pbx.bank.local;user=phone"
    with pytest.raises(SipConfigError):
        trunk.uri_for("138-0013")
    with pytest.raises(SipConfigError):
        trunk.uri_for("")


def test_bad_sip_settings_fail_at_start_up_with_the_setting_named() -> None:
    with pytest.raises(SipConfigError, match="dial URI"):
        TrunkConfig(dial_uri="sip:pbx.bank.local")
    with pytest.raises(SipConfigError, match="transfer mode"):
        TrunkConfig(transfer_mode="warm")
    with pytest.raises(SipConfigError, match="codecs"):
        SipConfig(codecs=("G729",))
    with pytest.raises(SipConfigError, match="OFFERCALL_SIP_PORT"):
        SipConfig.from_environ({"OFFERCALL_SIP_PORT": "five"})
    with pytest.raises(SipConfigError, match="4 calls per process"):
        SipConfig(max_calls=8)


def test_sip_settings_are_read_from_the_environment() -> None:
    config = SipConfig.from_environ({
        "OFFERCALL_SIP_HOST": "10.0.0.5", "OFFERCALL_SIP_PORT": "5070", "OFFERCALL_SIP_CODECS": "pcma, pcmu",
        "OFFERCALL_SIP_PROXY": "sip:trunk.example:5060", "OFFERCALL_SIP_USERNAME": "bank",
        "OFFERCALL_SIP_PASSWORD": "s3cret", "OFFERCALL_SIP_TRANSFER": "bridge",
        "OFFERCALL_SIP_AGENT_URI": "sip:queue@pbx", "OFFERCALL_SIP_RING_TIMEOUT_S": "25",
    })
    assert (config.host, config.port, config.codecs) == ("10.0.0.5", 5070, ("PCMA", "PCMU"))
    trunk = config.trunk
    assert (trunk.proxy, trunk.username, trunk.transfer_mode, trunk.agent_uri) == (
        "sip:trunk.example:5060", "bank", "bridge", "sip:queue@pbx")
    assert trunk.ring_timeout_s == 25.0
    assert trunk.uri_for("13800138000") == "sip:13800138000@10.0.0.5"
    assert "s3cret" not in repr(config), "the trunk password stays out of logs"


def test_the_inbound_backlog_is_summarised_by_its_worst_and_its_95th_percentile() -> None:
    from collections import Counter

    from voice.transports.sip.transport import backlog_summary

    waits = Counter({1: 90, 2: 6, 30: 4})  # a stall of 600 ms in 4 % of the frames
    assert backlog_summary(waits) == {"max_inbound_backlog_frames": 30, "p95_inbound_backlog_frames": 2}
    assert backlog_summary(Counter()) == {"max_inbound_backlog_frames": 0, "p95_inbound_backlog_frames": 0}


def test_short_gaps_in_the_bots_audio_count_as_glitches_but_pauses_do_not() -> None:
    counter = UnderrunCounter()
    for had_audio in [False] * 10 + [True] * 5:  # silence before the bot first speaks
        counter.feed(had_audio)
    assert counter.glitches == 0
    for had_audio in [False, False] + [True] * 3:  # audio came 40 ms late
        counter.feed(had_audio)
    assert (counter.glitches, counter.glitch_frames) == (1, 2)
    for had_audio in [False] * 20 + [True]:  # a pause between sentences
        counter.feed(had_audio)
    assert counter.glitches == 1
    assert counter.frames == 41


def test_the_agent_hears_who_is_coming_which_offer_and_why(staffed) -> None:
    from persistence import store

    with session_scope(staffed) as session:
        offer = store.get_customer_offer(session, "C0001")
        assert offer is not None
        ticket_id = handoffs.create_ticket(session, conversation_id="call-1", customer_id="C0001",
                                    offer_id=offer.offer_id, channel="voice", reason="accepted_offer",
                                    transcript=[], intents=[], now=utcnow())
        ticket = tickets.get_ticket(session, ticket_id)
    assert ticket is not None
    sentence = briefing_sentence(ticket, "accepted_offer")
    assert ticket.masked_name in sentence and ticket.full_name not in sentence
    assert f"{ticket.product}" in sentence and "万元" in sentence
    assert "有意向办理" in sentence and f"工单号{ticket_id}" in sentence
    assert "有一位客户" in briefing_sentence(None, "customer_requested")
