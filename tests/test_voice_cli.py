"""``offercall transcribe``, ``understand`` and ``call`` as a user runs them: real Vosk, the
real trained model, no server for the first two, and clear errors for bad audio."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from offercall.voice_calls import VoiceRuntime
from voice.audio import MULAW_8K, decode, wav_bytes, write_wav
from voice.transports.simulated import SayText, prepare_turns

pytestmark = pytest.mark.model


def offercall(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "offercall", *args], env=env, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def wavs(bot_stack, tmp_path_factory):
    """Customer utterances as 8 kHz telephone WAVs, plus broken files."""
    folder = tmp_path_factory.mktemp("wavs")
    runtime = VoiceRuntime(bot_stack.settings)
    texts = {"yes": "是的，是我本人", "rate": "你们的利息是多少", "human": "帮我转人工"}
    turns = asyncio.run(prepare_turns([SayText(t) for t in texts.values()], runtime.speaker))
    files = {}
    for name, turn in zip(texts, turns):
        files[name] = write_wav(folder / f"{name}.wav", decode(turn.audio, MULAW_8K.encoding), 8000)
    files["corrupt"] = folder / "corrupt.wav"
    files["corrupt"].write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    files["empty"] = folder / "empty.wav"
    files["empty"].write_bytes(wav_bytes(b"", 8000))
    files["odd_rate"] = folder / "odd_rate.wav"
    files["odd_rate"].write_bytes(wav_bytes(b"\x00\x01" * 4000, 12345))
    return files


def test_transcribe_prints_the_text_without_vosk_spaces(wavs, bot_stack):
    done = offercall(["transcribe", str(wavs["rate"])], bot_stack.env)
    assert done.returncode == 0, done.stderr
    text = done.stdout.strip()
    assert " " not in text and "利息" in text


@pytest.mark.parametrize("name,message", [
    ("corrupt", "WAV"), ("empty", "no audio"), ("odd_rate", "sample rate"),
])
def test_transcribe_refuses_bad_audio_clearly(wavs, bot_stack, name, message):
    done = offercall(["transcribe", str(wavs[name])], bot_stack.env)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_transcribe_without_the_model_says_where_to_get_it(wavs, bot_stack, tmp_path):
    env = {**bot_stack.env, "VOSK_MODEL_PATH": str(tmp_path / "nowhere")}
    done = offercall(["transcribe", str(wavs["yes"])], env)
    assert done.returncode == 2 and "VOSK_MODEL_PATH" in done.stderr


def test_understand_prints_one_json_line_per_file_and_reports_bad_ones(wavs, bot_stack):
    files = [str(wavs["yes"]), str(wavs["rate"]), str(wavs["human"]), str(wavs["corrupt"])]
    done = offercall(["understand", *files], bot_stack.env)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["file"] for line in lines] == files
    intents = [line.get("intent") for line in lines]
    assert intents[:3] == ["affirm", "ask_interest_rate", "request_handoff"]
    assert all(line["confidence"] > 0.5 for line in lines[:3])
    assert {"text", "repaired"} <= set(lines[0])
    assert "error" in lines[3]
    assert done.returncode == 2  # one file could not be read


def test_call_to_an_unknown_customer_is_refused_before_dialling(bot_stack):
    done = offercall(["call", "--customer", "NOBODY", "--say", "是的"], bot_stack.env)
    assert done.returncode == 2 and "unknown customer" in done.stderr


def test_call_with_a_bad_script_line_names_the_line(bot_stack, tmp_path):
    script = tmp_path / "script.txt"
    script.write_text("是的\n[press x]\n", encoding="utf-8")
    done = offercall(["call", "--customer", "C0001", "--script", str(script)], bot_stack.env)
    assert done.returncode == 2 and "line 2" in done.stderr
