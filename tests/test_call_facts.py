"""What a finished call means for the campaign: retry outcome, funnel facts, disclosure proof."""

from __future__ import annotations

from dataclasses import replace

from outbound.call_facts import dial_outcome, disclosure_proof, funnel_facts
from voice.events import CallResult, TranscriptEntry


def bot(prompt: str | None, start: float, end: float | None, completed: bool = True) -> TranscriptEntry:
    return TranscriptEntry("bot", f"<{prompt}>", start, end_ms=end, prompt=prompt, completed=completed)


def customer(text: str, start: float, intent: str | None = None) -> TranscriptEntry:
    return TranscriptEntry("customer", text, start, end_ms=start + 800, intent=intent)


def result(outcome: str, transcript: list[TranscriptEntry], *, ended_by: str = "bot",
           directives: list[dict] | None = None, handoff_id: int | None = None) -> CallResult:
    return CallResult("call-1", "C1", outcome, ended_by, 60000.0, transcript, handoff_id=handoff_id,
                      recording_path="var/recordings/call-1.wav", directives=directives or [])


CONFIRMED = [bot("opening", 0, 5000), customer("是我", 6000, "affirm"),
             bot("disclosure", 7500, 14000), bot("offer", 14250, 30000)]


def test_a_transfer_reaches_every_stage_up_to_transferred():
    transfer = {"directive": "transfer", "handoff_id": 9}
    call = result("transferred", [*CONFIRMED, customer("我要申请", 31000, "request_handoff")],
                  directives=[transfer], handoff_id=9)
    facts = funnel_facts(call)
    assert dial_outcome(call) == "transferred"
    assert {k for k, v in facts.items() if v is True} == {
        "answered", "right_person", "disclosure_played", "offer_heard", "interested", "transferred"}


def test_hanging_up_during_the_offer_is_a_drop_off_and_the_offer_was_not_heard():
    cut = [*CONFIRMED[:3], bot("offer", 14250, 18000, completed=False)]
    facts = funnel_facts(result("hung_up", cut, ended_by="customer"))
    assert facts["hung_up_mid_offer"] and not facts["offer_heard"]
    assert dial_outcome(result("hung_up", cut, ended_by="customer")) == "dropped"


def test_an_offer_cut_off_by_a_question_was_not_heard_until_it_is_told_again_in_full():
    cut = bot("offer", 14250, 20000, completed=False)
    interrupted = [*CONFIRMED[:3], replace(cut, interrupted=True), customer("利息多少", 19500, "ask_interest_rate")]
    facts = funnel_facts(result("not_interested", interrupted))
    assert not facts["offer_heard"] and facts["offer_interrupted"] and not facts["hung_up_mid_offer"]
    told_again = [*interrupted, bot("offer", 22000, 38000)]
    assert funnel_facts(result("not_interested", told_again))["offer_heard"]


def test_a_disclosure_cut_off_and_told_again_before_the_offer_still_came_first():
    cut = replace(bot("disclosure", 7500, 9000, completed=False), interrupted=True,
                  played_text="感谢您的确认。")
    calls = [*CONFIRMED[:2], cut, customer("你是机器人吗", 8800, "ask_is_robot"),
             bot(None, 10500, 13000), bot("disclosure", 13250, 19750), bot("offer", 20000, 36000)]
    proof = disclosure_proof(result("not_interested", calls))
    assert proof["disclosure_before_offer"]
    assert proof["disclosure"]["start_ms"] == 13250 and proof["disclosure"]["completed"]
    assert proof["cut_off"] == [{"prompt": "disclosure", "text": "<disclosure>", "start_ms": 7500,
                                 "end_ms": 9000, "completed": False, "played_text": "感谢您的确认。"}]
    assert funnel_facts(result("not_interested", calls))["disclosure_played"]


def test_an_offer_that_began_before_the_disclosure_was_heard_in_full_is_no_proof():
    cut = bot("disclosure", 7500, 9000, completed=False)
    early = [*CONFIRMED[:2], cut, bot("offer", 9250, 12000, completed=False),
             bot("disclosure", 13000, 19500), bot("offer", 19750, 36000)]
    proof = disclosure_proof(result("not_interested", early))
    assert not proof["disclosure_before_offer"]
    assert [c["prompt"] for c in proof["cut_off"]] == ["disclosure", "offer"]


def test_the_proof_shows_the_disclosure_played_in_full_before_the_offer():
    proof = disclosure_proof(result("not_interested", CONFIRMED))
    assert proof["disclosure_before_offer"]
    assert proof["disclosure"]["end_ms"] == 14000 and proof["offer"]["start_ms"] == 14250
    assert proof["recording"] == "var/recordings/call-1.wav"
    cut = [*CONFIRMED[:2], bot("disclosure", 7500, 9000, completed=False)]
    assert not disclosure_proof(result("hung_up", cut, ended_by="customer"))["disclosure_before_offer"]
    assert disclosure_proof(result("wrong_person", CONFIRMED[:2])) is None


def test_outcomes_map_to_what_the_dialer_does_next():
    assert dial_outcome(result("voicemail", [])) == "voicemail"
    assert dial_outcome(result("no_answer", [])) == "no_answer"
    assert dial_outcome(result("error", [])) == "failed"
    # a callback promised by the queue belongs to the agents, not to the dialer
    assert dial_outcome(result("callback", [], handoff_id=3)) == "transferred"
    assert dial_outcome(result("callback", [])) == "callback"
    blocked = result("ended", [], directives=[{"directive": "hangup", "reason": "do_not_contact"}])
    assert dial_outcome(blocked) == "do_not_contact"
    assert not funnel_facts(result("busy", []))["answered"]
