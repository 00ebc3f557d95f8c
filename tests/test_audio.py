"""Telephone audio: codecs, resampling, framing, WAV reading and its clear errors."""

from __future__ import annotations

import audioop
import math
import struct

import numpy as np
import pytest

from voice.audio import (
    ALAW_8K,
    MULAW_8K,
    PCM_8K,
    PCM_16K,
    AudioFormat,
    StreamConverter,
    StreamResampler,
    convert,
    frames,
    interleave,
    parse_format,
    read_wav,
    resample,
    rms_dbfs,
    telephone_band,
    wav_bytes,
)
from voice.errors import AudioFormatError


def tone(hz: float, ms: int, rate: int, amplitude: float = 0.5) -> bytes:
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * np.pi * hz * t) * amplitude * 32767).astype("<i2").tobytes()


def dominant_hz(pcm: bytes, rate: int) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize("text,expected", [
    ("mulaw/8000", MULAW_8K), ("ulaw", MULAW_8K), ("PCMA/8000", ALAW_8K),
    ("pcm16/16000", PCM_16K), ("l16/8000", PCM_8K), ("pcm16/22050", AudioFormat("pcm16", 22050)),
])
def test_format_names_are_read(text, expected):
    assert parse_format(text) == expected


@pytest.mark.parametrize("text", ["mulaw/16000", "opus/48000", "pcm16/11025", "pcm16/abc"])
def test_unsupported_formats_are_refused_with_a_reason(text):
    with pytest.raises(AudioFormatError):
        parse_format(text)


@pytest.mark.parametrize("fmt", [MULAW_8K, ALAW_8K])
def test_g711_round_trip_keeps_the_signal(fmt):
    pcm = tone(440, 200, 8000)
    back = convert(convert(pcm, PCM_8K, fmt), fmt, PCM_8K)
    assert len(back) == len(pcm)
    error = np.frombuffer(back, "<i2").astype(float) - np.frombuffer(pcm, "<i2").astype(float)
    assert np.sqrt(np.mean(error**2)) < 0.03 * 32767  # companding noise only


@pytest.mark.parametrize("source,target", [(8000, 16000), (22050, 16000), (24000, 8000), (16000, 8000)])
def test_resampling_keeps_pitch_and_duration(source, target):
    pcm = tone(1000, 500, source)
    out = convert(pcm, AudioFormat("pcm16", source), AudioFormat("pcm16", target))
    assert len(out) // 2 == pytest.approx(target // 2, abs=2)
    assert dominant_hz(out, target) == pytest.approx(1000, abs=10)


def test_stream_converter_matches_the_whole_buffer_length_and_pitch():
    pcm = tone(700, 1000, 8000)
    mulaw = convert(pcm, PCM_8K, MULAW_8K)
    converter = StreamConverter(MULAW_8K, PCM_16K)
    out = b"".join(converter.feed(chunk) for chunk in frames(mulaw, MULAW_8K))
    assert abs(len(out) // 2 - 16000) <= 32  # the filter holds back about a millisecond
    assert dominant_hz(out, 16000) == pytest.approx(700, abs=10)


@pytest.mark.parametrize("from_rate,to_rate", [(8000, 16000), (22050, 16000), (24000, 8000)])
def test_streamed_resampling_matches_the_whole_buffer_filter(from_rate, to_rate):
    """Chunk by chunk, the call's resampler gives what the anti-aliased whole-buffer one gives
    (a linear interpolator would not), only a millisecond or so later."""
    pcm = tone(440, 500, from_rate, amplitude=0.3) + tone(3000, 500, from_rate, amplitude=0.3)
    resampler = StreamResampler(from_rate, to_rate)
    chunk = from_rate * 2 // 50
    streamed = np.frombuffer(
        b"".join(resampler.feed(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk)), "<i2"
    ).astype(float)
    whole = np.frombuffer(resample(pcm, from_rate, to_rate), "<i2").astype(float)
    lag = int(np.argmax(np.correlate(streamed[:400], whole[:200], mode="valid")))
    assert lag * 1000 / to_rate < 2.0
    overlap = min(len(streamed) - lag, len(whole))
    assert overlap >= len(whole) - to_rate // 500
    assert np.abs(streamed[lag : lag + overlap] - whole[:overlap]).max() <= 1


def test_stream_converter_keeps_an_odd_trailing_byte_for_the_next_chunk():
    pcm = tone(300, 100, 16000)
    converter = StreamConverter(PCM_16K, PCM_16K)
    out = converter.feed(pcm[:101]) + converter.feed(pcm[101:])
    assert out == pcm


def test_frames_are_20_ms_and_the_last_is_padded():
    data = MULAW_8K.silence(50)
    cut = list(frames(data, MULAW_8K))
    assert [len(f) for f in cut] == [160, 160, 160]
    assert len(list(frames(PCM_16K.silence(40), PCM_16K))) == 2
    assert len(list(frames(data, MULAW_8K, pad=False))) == 2


def test_loudness_tells_speech_level_from_silence():
    assert rms_dbfs(PCM_8K.silence(20)) == -100
    assert -10 < rms_dbfs(tone(440, 20, 8000, 0.5)) < -5


def test_telephone_band_cuts_low_rumble_and_outputs_8k_mulaw():
    rumble = tone(80, 500, 16000)
    voice_band = tone(1000, 500, 16000)
    rumble_out = audioop.ulaw2lin(telephone_band(rumble, 16000), 2)
    voice_out = audioop.ulaw2lin(telephone_band(voice_band, 16000), 2)
    assert len(voice_out) // 2 == pytest.approx(4000, abs=2)
    assert rms_dbfs(voice_out) - rms_dbfs(rumble_out) > 20


def test_wav_files_are_read_in_pcm_and_g711(tmp_path):
    pcm = tone(440, 300, 16000)
    assert read_wav(wav_bytes(pcm, 16000)).sample_rate == 16000
    stereo = wav_bytes(interleave(pcm, pcm), 16000, channels=2)
    assert read_wav(stereo).pcm == pcm
    mulaw = audioop.lin2ulaw(tone(440, 300, 8000), 2)
    header = b"RIFF" + struct.pack("<I", 4 + 26 + 8 + len(mulaw)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHHH", 18, 7, 1, 8000, 8000, 1, 8, 0)
    g711 = header + fmt + b"data" + struct.pack("<I", len(mulaw)) + mulaw
    audio = read_wav(g711)
    assert audio.sample_rate == 8000 and math.isclose(audio.duration_ms, 300, abs_tol=1)


def test_bad_wavs_get_clear_errors(tmp_path):
    with pytest.raises(AudioFormatError, match="no such file"):
        read_wav(tmp_path / "missing.wav")
    with pytest.raises(AudioFormatError, match="not a WAV"):
        read_wav(b"this is not audio at all")
    with pytest.raises(AudioFormatError, match="no audio"):
        read_wav(wav_bytes(b"", 8000))
    with pytest.raises(AudioFormatError, match="sample rate"):
        read_wav(wav_bytes(tone(440, 100, 8000), 12345))
    truncated = wav_bytes(tone(440, 100, 8000), 8000)[:30]
    with pytest.raises(AudioFormatError):
        read_wav(truncated)
