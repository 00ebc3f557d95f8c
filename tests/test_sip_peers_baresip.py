"""The baresip test phone (tests/sip_peers/baresip.py) with real baresip processes on loopback."""

from __future__ import annotations

import os
import socket
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.sip_peers.baresip import SAMPLE_RATE, BaresipPhone, write_wav_mono

pytestmark = pytest.mark.usefixtures("baresip")

TONE_HZ = 440.0
TONE_S = 1.0
TONE_AMPLITUDE = 0.5 * 32767  # RMS of the pure tone: amplitude / sqrt(2) ~ 11585


def read_samples(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SAMPLE_RATE)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def loud_span(samples: np.ndarray, threshold: float = 1000.0) -> tuple[float, float]:
    """First and last 20 ms frame (in seconds) whose RMS exceeds ``threshold``."""
    frame = SAMPLE_RATE // 50
    starts = range(0, len(samples) - frame + 1, frame)
    loud = [i for i in starts if rms(samples[i : i + frame]) > threshold]
    assert loud, f"no audio above RMS {threshold} in {len(samples) / SAMPLE_RATE:.2f} s"
    return loud[0] / SAMPLE_RATE, (loud[-1] + frame) / SAMPLE_RATE


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (it would only linger if nobody waited for it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def processes_using(config_dir: Path) -> list[int]:
    """Pids whose command line mentions ``config_dir`` (i.e. baresip started for that phone)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(config_dir).encode() in cmdline and pid_alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def tone_wav(tmp_path) -> Path:
    t = np.arange(int(SAMPLE_RATE * TONE_S)) / SAMPLE_RATE
    return write_wav_mono(tmp_path / "tone.wav", TONE_AMPLITUDE * np.sin(2 * np.pi * TONE_HZ * t))


@pytest.fixture
def phones(tmp_path) -> Iterator[list[BaresipPhone]]:
    """Collects phones made by a test and stops them all afterwards."""
    made: list[BaresipPhone] = []
    yield made
    for phone in made:
        phone.stop()


@pytest.fixture
def make_phone(tmp_path, phones):
    def make(name: str, **kwargs) -> BaresipPhone:
        phone = BaresipPhone(tmp_path / "phones", name, **kwargs)
        phones.append(phone)
        phone.start()
        return phone

    return make


def connect(caller: BaresipPhone, callee: BaresipPhone) -> None:
    caller.dial(callee.uri)
    callee.wait_event("CALL_INCOMING", peeruri=caller.uri)
    caller.wait_event("CALL_ESTABLISHED", peeruri=callee.uri)
    callee.wait_event("CALL_ESTABLISHED", peeruri=caller.uri)


def test_call_carries_callee_wav_to_caller(make_phone, tone_wav):
    caller = make_phone("customer")  # no WAV: its mic is silence
    callee = make_phone("agent", play_wav=tone_wav)
    assert caller.uri == f"sip:customer@127.0.0.1:{caller.sip_port}"

    caller.dial(callee.uri)
    incoming = callee.wait_event("CALL_INCOMING")
    assert incoming["peeruri"] == caller.uri
    established = caller.wait_event("CALL_ESTABLISHED")
    callee.wait_event("CALL_ESTABLISHED")
    time.sleep(2.0)
    caller.hangup()
    closed = caller.wait_event("CALL_CLOSED")
    callee.wait_event("CALL_CLOSED")
    call_s = closed["received_at"] - established["received_at"]

    [heard] = caller.received_audio()
    samples = read_samples(heard)
    duration = len(samples) / SAMPLE_RATE
    assert abs(duration - call_s) < 0.4, (duration, call_s, caller.log_tail())
    start, end = loud_span(samples)
    assert start < 0.3 and abs((end - start) - TONE_S) < 0.1, (start, end)
    tone = samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
    assert rms(tone) > 0.8 * TONE_AMPLITUDE / np.sqrt(2)
    assert abs(dominant_hz(tone) - TONE_HZ) < 5
    assert rms(samples[int((end + 0.1) * SAMPLE_RATE) :]) < 50  # the silence after the WAV

    # The other direction: the caller's mic is silence, and the callee recorded it.
    [callee_heard] = callee.received_audio()
    assert len(read_samples(callee_heard)) > SAMPLE_RATE
    assert rms(read_samples(callee_heard)) < 50
    [callee_sent] = callee.sent_audio()
    assert abs(dominant_hz(read_samples(callee_sent)[: SAMPLE_RATE // 2]) - TONE_HZ) < 5


def test_stop_leaves_no_baresip_process(make_phone):
    a = make_phone("a")
    b = make_phone("b")
    connect(a, b)  # stop() must also work in the middle of a call
    pids = [a.pid, b.pid]
    assert all(pid_alive(pid) for pid in pids)
    b.stop()
    a.wait_event("CALL_CLOSED", timeout_s=5)
    a.stop()
    a.stop()  # idempotent
    assert not any(pid_alive(pid) for pid in pids)
    assert processes_using(a.config_dir) == processes_using(b.config_dir) == []
    assert not a.running and not b.running
    for phone in (a, b):  # the recordings are complete WAV files after stop()
        for path in phone.received_audio() + phone.sent_audio():
            read_samples(path)


def test_start_failure_raises_with_log_tail(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        phone = BaresipPhone(tmp_path, "clash", sip_port=busy.getsockname()[1])
        with pytest.raises(RuntimeError, match="Address already in use") as failure:
            phone.start()
    assert "baresip clash" in str(failure.value)
    assert not phone.running
    phone.stop()
