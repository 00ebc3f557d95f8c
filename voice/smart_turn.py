"""End of turn from the sound of the customer's voice: Smart Turn v3.

Smart Turn v3 (BSD-2-Clause, (c) Daily, github.com/pipecat-ai/smart-turn; the 8 MB ONNX file
``smart-turn-v3.2-cpu.onnx`` comes out of the pipecat-ai wheel, see
``scripts/fetch_turn_models.sh``) is a Whisper-encoder classifier trained on 23 languages,
Chinese among them: given the last 8 s of a speaker's audio it says how likely the speaker has
finished their turn (intonation, a trailing 然后…, a cut-off word) rather than paused.

It takes Whisper's log-mel features of 16 kHz audio. They are computed here in numpy
(:func:`log_mel`), the same computation as the reference (``transformers``'
``WhisperFeatureExtractor(chunk_length=8)`` with ``do_normalize=True``, as
``pipecat/audio/turn/smart_turn/local_smart_turn_v3.py`` calls it), without its dependencies:
checked against it on a real clip (tests/test_smart_turn.py keeps the reference's numbers).

Public interface (also used by ``benchmarks/bench_turn_taking.py``):

- ``SmartTurn.load(path=DEFAULT_MODEL)``: the model, one per process (cached per path), one
  onnxruntime session on one thread, safe to call from several threads. Raises
  :class:`voice.errors.VadModelError` when the file is missing or unreadable.
- ``smart_turn.predict(pcm, sample_rate)`` -> :class:`TurnPrediction`: ``pcm`` is the
  customer's 16-bit PCM (its last 8 s are used; any rate, resampled to 16 kHz);
  ``probability`` that the turn is complete, ``complete`` (above 0.5), ``inference_ms`` (the
  features and the model, wall time). Blocking (about 29 ms on one core of this 2-core
  machine: the model 26, the features 1.7, resampling 1.2): run it off the event loop.
- :func:`log_mel`: the features alone, for checks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import resample
from voice.vad import MODEL_DIR, onnx_session

DEFAULT_MODEL = MODEL_DIR / "smart-turn-v3.2-cpu.onnx"
SAMPLE_RATE = 16000
"""The model's input rate."""
SECONDS = 8
"""The model hears the last 8 s of the turn (shorter audio is padded with silence before)."""
N_FFT, HOP, N_MELS = 400, 160, 80
"""Whisper's features: 25 ms windows every 10 ms, 80 mel bands (slaney), up to 8 kHz."""


def _hertz_to_mel(hertz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    mels = 3.0 * hertz / 200.0
    above = hertz >= 1000.0
    mels[above] = 15.0 + np.log(hertz[above] / 1000.0) * (27.0 / np.log(6.4))
    return mels


def _mel_to_hertz(mels: np.ndarray) -> np.ndarray:
    hertz = 200.0 * mels / 3.0
    above = mels >= 15.0
    hertz[above] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[above] - 15.0))
    return hertz


def mel_filters() -> np.ndarray:
    """Whisper's 80 slaney-normalised triangular mel filters over the 201 FFT bins,
    shape (201, 80)."""
    edges = _mel_to_hertz(np.linspace(*_hertz_to_mel(np.array([0.0, SAMPLE_RATE / 2])), N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE // 2, N_FFT // 2 + 1)
    slopes = edges[None, :] - bins[:, None]
    widths = np.diff(edges)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    filters = np.maximum(0.0, np.minimum(down, up))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[None, :]


_FILTERS = mel_filters()
_WINDOW = np.hanning(N_FFT + 1)[:-1]  # periodic Hann


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper's normalised log-mel features of exactly 8 s of 16 kHz float audio, as
    ``WhisperFeatureExtractor(chunk_length=8)(audio, do_normalize=True)`` computes them without
    torch: shape (80, 800), float32."""
    if audio.shape != (SAMPLE_RATE * SECONDS,):
        raise ValueError(f"need {SECONDS} s of {SAMPLE_RATE} Hz audio, got {audio.shape} samples")
    audio = audio.astype(np.float32)
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)  # do_normalize
    padded = np.pad(audio.astype(np.float64), N_FFT // 2, mode="reflect")  # centred frames
    count = 1 + (padded.size - N_FFT) // HOP
    framed = np.lib.stride_tricks.as_strided(
        padded, shape=(count, N_FFT), strides=(padded.strides[0] * HOP, padded.strides[0]))
    power = np.abs(np.fft.rfft(framed * _WINDOW, n=N_FFT)) ** 2  # (frames, 201)
    mel = np.maximum(1e-10, power @ _FILTERS).T  # (80, frames)
    spec = np.log10(mel)[:, :-1]
    spec = np.maximum(spec, spec.max() - 8.0)
    return ((spec + 4.0) / 4.0).astype(np.float32)


def last_seconds(pcm: bytes, sample_rate: int) -> np.ndarray:
    """The last 8 s of 16-bit PCM at ``sample_rate`` as 16 kHz float samples in [-1, 1],
    padded with silence in front when shorter."""
    tail = pcm[-(sample_rate * SECONDS * 2):]
    tail = tail[len(tail) % 2:]
    audio = np.frombuffer(resample(tail, sample_rate, SAMPLE_RATE), "<i2").astype(np.float32) / 32768
    audio = audio[-SAMPLE_RATE * SECONDS:]
    return np.pad(audio, (SAMPLE_RATE * SECONDS - audio.size, 0))


@dataclass(frozen=True)
class TurnPrediction:
    """What Smart Turn heard at the end of the customer's audio."""

    probability: float
    """How likely the customer has finished their turn (0 to 1)."""
    inference_ms: float
    """Wall time of the features and the model."""

    @property
    def complete(self) -> bool:
        """The model's own call: complete above 0.5."""
        return self.probability > 0.5


class SmartTurn:
    """The Smart Turn v3 model: one onnxruntime session per process, shared by every call."""

    _loaded: dict[Path, SmartTurn] = {}
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._session = onnx_session(path, "Smart Turn")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> SmartTurn:
        """The process's model for ``path``, loaded once."""
        resolved = Path(path).expanduser().resolve()
        with cls._lock:
            if resolved not in cls._loaded:
                cls._loaded[resolved] = cls(resolved)
            return cls._loaded[resolved]

    def predict(self, pcm: bytes, sample_rate: int) -> TurnPrediction:
        """How likely the turn is complete, from the last 8 s of ``pcm`` (16-bit, mono)."""
        started = time.perf_counter()
        probability = self.probability(last_seconds(pcm, sample_rate))
        return TurnPrediction(probability, (time.perf_counter() - started) * 1000)

    def probability(self, audio16k: np.ndarray) -> float:
        """The model's probability for exactly 8 s of 16 kHz float audio."""
        features = log_mel(audio16k)[None, :, :]
        (out,) = self._session.run(None, {"input_features": features})  # type: ignore[attr-defined]
        return float(np.asarray(out).reshape(-1)[0])
