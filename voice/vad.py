"""Voice activity: is a 20 ms frame of the customer's audio voiced? Two sources, one interface.

- **energy** (:class:`EnergyVoicing`): the frame is louder than a fixed threshold
  (``TurnConfig.speech_threshold_db``). No model; fooled by line noise, breathing and a TV.
- **Silero VAD** (:class:`SileroVoicing`): the Silero VAD v5 neural model (MIT licence,
  github.com/snakers4/silero-vad; the ONNX file comes out of the pipecat-ai wheel, see
  ``scripts/fetch_turn_models.sh``) gives a speech probability for every 32 ms window (256
  samples at 8 kHz, its native telephone rate), and hysteresis turns the probabilities into
  voiced/unvoiced frames: voiced from ``onset`` up, unvoiced again only below ``offset``.

The rules that turn voiced frames into speech start and end, barge-in and silence timeouts
stay pure, in :mod:`voice.turns`.

Public interface (also used by ``benchmarks/bench_turn_taking.py``):

- ``SileroVad.load(path=DEFAULT_MODEL)``: the model, one per process (cached per path), shared
  by every call; one onnxruntime session on one thread. Raises :class:`VadModelError` when the
  file is missing or unreadable.
- ``SileroVad.stream()`` -> :class:`SileroStream`: one per call, holding the model's
  recurrent state; ``stream.probability(window)`` takes exactly :data:`WINDOW` float32 samples
  at 8 kHz in [-1, 1] and returns the speech probability; ``stream.reset()``.
- :class:`Voicing` (``voiced(frame: bytes) -> bool``, 16-bit PCM frames at the voicing's rate):
  :class:`EnergyVoicing` ``(threshold_db)`` and :class:`SileroVoicing` ``(vad, sample_rate,
  onset=0.5, offset=0.35)``, which also exposes ``probability`` (the last window's),
  ``windows`` and ``inference_s`` (windows run and the time spent in the model).
- ``voicing_for(vad, sample_rate, threshold_db)``: Silero when given a model, else energy.

onnxruntime sessions may be run from several threads at once; each call's stream is used by
one thread at a time (the call session runs it on the call threads, one frame after another).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from voice.audio import StreamResampler, rms_dbfs
from voice.errors import VadModelError

SAMPLE_RATE = 8000
"""Silero VAD runs on 8 kHz audio here: the telephone's own rate."""
WINDOW = 256
"""Samples per inference at 8 kHz (32 ms): the only window size Silero VAD v5 takes at 8 kHz."""
CONTEXT = 32
"""Samples of the previous window the model sees again before each window (v5, 8 kHz)."""
MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "turn"
DEFAULT_MODEL = MODEL_DIR / "silero_vad.onnx"
FETCH_HINT = "run scripts/fetch_turn_models.sh (scripts/setup.sh does) to fetch it"


def onnx_session(path: Path, what: str) -> object:
    """An onnxruntime session for ``path`` on the CPU with one thread (calls run side by side
    on few cores: one model must not take them all). Raises :class:`VadModelError`."""
    if not path.is_file():
        raise VadModelError(f"no {what} model at {path}: {FETCH_HINT}")
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
        raise VadModelError(f"cannot load the {what} model {path}: {exc}; {FETCH_HINT}") from exc


class SileroVad:
    """The Silero VAD model: one onnxruntime session per process, shared by every call."""

    _loaded: dict[Path, SileroVad] = {}
    _lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._session = onnx_session(path, "Silero VAD")

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL) -> SileroVad:
        """The process's model for ``path``, loaded once."""
        resolved = Path(path).expanduser().resolve()
        with cls._lock:
            if resolved not in cls._loaded:
                cls._loaded[resolved] = cls(resolved)
            return cls._loaded[resolved]

    def stream(self) -> SileroStream:
        """A new stream of windows (one per call): its own recurrent state."""
        return SileroStream(self._session)


class SileroStream:
    """One call's audio through the model, window after window, keeping its recurrent state
    and the tail of the previous window."""

    def __init__(self, session: object) -> None:
        self._session = session
        self._rate = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forgets everything heard so far."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, CONTEXT), dtype=np.float32)

    def probability(self, window: np.ndarray) -> float:
        """The probability that the next :data:`WINDOW` samples (float32 in [-1, 1], 8 kHz)
        are speech."""
        if window.shape != (WINDOW,):
            raise ValueError(f"Silero VAD takes {WINDOW} samples at 8 kHz, got {window.shape}")
        audio = np.concatenate([self._context, window.astype(np.float32)[None, :]], axis=1)
        out, self._state = self._session.run(  # type: ignore[attr-defined]
            None, {"input": audio, "state": self._state, "sr": self._rate})
        self._context = audio[:, -CONTEXT:]
        return float(out[0, 0])


class Voicing(Protocol):
    """Decides, frame by frame, whether the customer's audio is voiced."""

    def voiced(self, frame: bytes) -> bool:
        """Whether this frame (16-bit PCM) is voiced."""
        ...


class EnergyVoicing:
    """Voiced when louder than ``threshold_db`` (dBFS): the energy detector."""

    def __init__(self, threshold_db: float) -> None:
        self.threshold_db = threshold_db

    def voiced(self, frame: bytes) -> bool:
        return rms_dbfs(frame) > self.threshold_db


SILENT_RESET_WINDOWS = 32
"""After this many windows in a row of digital silence (about 1 s below
:data:`DIGITAL_SILENCE_DBFS`), the model's state is reset, and again after each such second:
after seconds of exact zeros (a simulated line, a trunk that suppresses silence) the carried
state made the model slow to hear speech start again: 是我 was voiced for 140 of its 500 ms on
a test call, and heard as 完. A fresh state hears it whole. Only digital silence resets it:
a fresh state in line noise at 5 dB SNR missed a fifth of the sentences (bench_turn_taking.py),
and resetting in silence never splits speech. Pipecat resets its Silero state every 5 s."""
DIGITAL_SILENCE_DBFS = -70.0
"""A window quieter than this is digital silence, not a line's noise floor."""
_SILENT_POWER = 10 ** (DIGITAL_SILENCE_DBFS / 10)


class SileroVoicing:
    """Voiced by Silero VAD with hysteresis, for 16-bit PCM frames of any length at
    ``sample_rate`` (resampled to 8 kHz when it is another rate).

    A frame's answer is that of the last complete 32 ms window (at most one window behind);
    until the first window it is unvoiced. The model's state is reset after each second of
    digital silence (:data:`SILENT_RESET_WINDOWS`)."""

    def __init__(self, vad: SileroVad, sample_rate: int = SAMPLE_RATE, *,
                 onset: float = 0.5, offset: float = 0.35) -> None:
        if not 0.0 <= offset <= onset <= 1.0:
            raise ValueError(f"need 0 <= offset <= onset <= 1, got onset {onset}, offset {offset}")
        self.onset, self.offset = onset, offset
        self._stream = vad.stream()
        self._resampler = (
            StreamResampler(sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else None)
        self._pending = np.zeros(0, dtype=np.float32)
        self._voiced = False
        self._silent_windows = 0
        self.probability = 0.0
        """The last window's speech probability."""
        self.windows = 0
        """Windows run through the model so far."""
        self.inference_s = 0.0
        """Time spent in the model so far (seconds)."""

    def voiced(self, frame: bytes) -> bool:
        pcm = self._resampler.feed(frame) if self._resampler is not None else frame
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            started = time.perf_counter()
            self.probability = self._stream.probability(window)
            self.inference_s += time.perf_counter() - started
            self.windows += 1
            if self.probability >= self.onset:
                self._voiced = True
            elif self.probability < self.offset:
                self._voiced = False
            silent = float(np.mean(window * window)) < _SILENT_POWER
            self._silent_windows = self._silent_windows + 1 if silent else 0
            if self._silent_windows >= SILENT_RESET_WINDOWS:
                self._stream.reset()
                self._silent_windows = 0
        return self._voiced


def voicing_for(vad: SileroVad | None, sample_rate: int, threshold_db: float) -> Voicing:
    """One call's voicing: Silero VAD when the process has the model, else energy."""
    if vad is None:
        return EnergyVoicing(threshold_db)
    return SileroVoicing(vad, sample_rate)
