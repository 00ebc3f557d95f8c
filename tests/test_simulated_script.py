"""The simulated customer's script format, and how it answers: waiting, greeting, voicemail."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from voice.audio import MULAW_8K, decode, float_to_pcm, frames, rms_dbfs
from voice.events import AudioIn
from voice.transports.simulated import (
    Greet,
    HangUp,
    Press,
    Say,
    SayText,
    SayWav,
    Silence,
    SimulatedCustomer,
    beep_audio,
    parse_script,
    prepare_turns,
    voicemail_greeting_text,
)
from voice.tts import Speaker, TtsEngine


def test_every_kind_of_turn_is_read():
    script = parse_script([
        "# a comment", "", "是的，我是", "turn2.wav", "[silence 2.5]", "[press 1]", "[press #]",
        "[barge 1.5] 不需要", "[barge 2] [press 1]", "[hangup]",
    ])
    assert script == [
        SayText("是的，我是"), SayWav(Path("turn2.wav")), Silence(2500.0), Press("1"), Press("#"),
        SayText("不需要", barge_in_ms=1500.0), Press("1", barge_in_ms=2000.0), HangUp(),
    ]


@pytest.mark.parametrize("line", ["[press x]", "[silence]", "[dance 3]", "[barge 2]"])
def test_unreadable_lines_are_named(line):
    with pytest.raises(ValueError, match="script line 2"):
        parse_script(["是的", line])


def test_a_greeting_is_the_first_turn():
    assert parse_script(["# answers with hello", "[greet] 喂，你好", "是我"]) == [
        Greet(SayText("喂，你好")), SayText("是我"),
    ]
    assert parse_script(["[greet] hello.wav"]) == [Greet(SayWav(Path("hello.wav")))]


def test_a_greeting_later_in_the_script_is_refused():
    with pytest.raises(ValueError, match=r"script line 2: \[greet\] must be the first turn"):
        parse_script(["是的", "[greet] 喂"])
    with pytest.raises(ValueError, match="script line 1: cannot read"):
        parse_script(["[greet]"])


class BuzzEngine(TtsEngine):
    """Says any text as a 300 Hz buzz, 200 ms per character."""

    name = "buzz"
    voice = "buzz"
    sample_rate = 24000

    def synthesize(self, text: str) -> bytes:
        t = np.arange(len(text) * self.sample_rate // 5) / self.sample_rate
        return float_to_pcm(0.3 * np.sin(2 * np.pi * 300 * t))


async def test_the_greeting_is_synthesised_and_taken_by_the_customer():
    turns = await prepare_turns(parse_script(["[greet] 喂，你好", "是我"]), Speaker(BuzzEngine()))
    assert isinstance(turns[0], Greet) and isinstance(turns[0].speech, Say)
    assert turns[0].speech.label == "喂，你好" and len(turns[0].speech.audio) == 4 * 1600
    customer = SimulatedCustomer(turns)
    assert customer.greeting == turns[0].speech and customer.turns == turns[1:]


def test_a_customer_without_a_greeting_is_as_before():
    customer = SimulatedCustomer([Silence(100.0)])
    assert customer.greeting is None and customer.answer == "answered"


def test_greeting_mistakes_are_refused():
    hello = Say(b"\xff" * 160, "hello")
    with pytest.raises(ValueError, match="two greetings"):
        SimulatedCustomer([Greet(hello)], greeting=hello)
    with pytest.raises(ValueError, match="prepare"):
        SimulatedCustomer([Greet(SayText("喂"))])
    with pytest.raises(ValueError, match="first turn"):
        SimulatedCustomer([Silence(100.0), Greet(hello)])
    with pytest.raises(ValueError, match="voicemail needs its greeting"):
        SimulatedCustomer([], answer="voicemail")


def test_the_voicemail_prompt_is_one_a_carrier_plays():
    assert voicemail_greeting_text() == "您好，您拨打的电话暂时无法接听，请在提示音后留言。"


async def _first_words_after_a_stalled_bot(wall_gap_ms: float) -> tuple[float, float]:
    """A bot says one clause, stalls 150 ms of wall clock (3 s of call audio at speed 20)
    synthesising the next, then says it; when the customer first spoke, and when the bot
    finished, on the wall clock."""
    customer = SimulatedCustomer([Say(beep_audio(MULAW_8K, ms=300), "是我")], speed=20.0,
                                 bot_turn_gap_ms=1200.0, wall_gap_ms=wall_gap_ms)
    await customer.connect()
    spoke_at: list[float] = []

    async def listen() -> None:
        async for event in customer.events():
            if isinstance(event, AudioIn) and rms_dbfs(decode(event.data, "mulaw")) > -30:
                spoke_at.append(time.monotonic())
                return

    listener = asyncio.create_task(listen())
    clause = list(frames(beep_audio(MULAW_8K, ms=400), MULAW_8K))
    for frame in clause:
        await customer.send_audio(frame)
    await asyncio.sleep(0.15)
    for frame in clause:
        await customer.send_audio(frame)
    finished = time.monotonic()
    await asyncio.wait_for(listener, 10)
    await customer.hangup("ended")
    return spoke_at[0], finished


async def test_a_fast_customer_waits_out_a_bot_that_pauses_mid_turn_on_the_wall_clock():
    spoke, bot_finished = await _first_words_after_a_stalled_bot(wall_gap_ms=500.0)
    assert spoke - bot_finished >= 0.45
    hasty, bot_finished = await _first_words_after_a_stalled_bot(wall_gap_ms=0.0)
    assert hasty < bot_finished  # without it: talks over the bot's second clause
