"""The turn-taking benchmark's test audio (benchmarks/turn_audio.py): noise mixed at the SNR
asked for, and pauses where the clip says they are. Tones and noise only, no speech synthesis."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.turn_audio import (
    RATE,
    babble_noise,
    insert_pause,
    mix_at_snr,
    pause_inside,
    pink_noise,
    snr_db,
    speech_bounds,
    split_for_pause,
    through_mulaw,
    word_boundary_cut,
)


def tone(seconds: float, hz: float = 440.0, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def padded(speech: np.ndarray, lead: int, tail: int) -> np.ndarray:
    return np.concatenate([np.zeros(lead, np.float32), speech, np.zeros(tail, np.float32)])


@pytest.mark.parametrize("snr", [20.0, 10.0, 5.0, 0.0])
@pytest.mark.parametrize("kind", ["pink", "babble", "white"])
def test_noise_is_mixed_at_the_snr_asked_for_over_the_speech(snr, kind):
    rng = np.random.default_rng(3)
    speech = padded(tone(1.5), RATE, 2 * RATE)  # silence around: the SNR counts the speech only
    segment = [(RATE, RATE + int(1.5 * RATE))]
    noise = {
        "pink": lambda: pink_noise(speech.size, rng),
        "babble": lambda: babble_noise(speech.size, [tone(0.4, hz) for hz in (300, 520, 910)], rng),
        "white": lambda: rng.normal(0, 1, speech.size).astype(np.float32),
    }[kind]()
    mix, scaled = mix_at_snr(speech, noise, snr, segment)
    voice = mix - scaled  # the speech, turned down with the noise if the mix would clip
    assert abs(snr_db(voice, scaled, segment) - snr) < 0.01  # by construction
    # and as the detectors get it, through the line's μ-law: the codec adds little
    line = np.frombuffer(through_mulaw(mix), "<i2").astype(np.float32) / 32767
    assert abs(snr_db(voice, line - voice, segment) - snr) < 0.5


def test_loud_mixes_are_turned_down_whole_keeping_the_snr():
    speech = tone(1.0, level=0.95)
    noise = np.random.default_rng(1).normal(0, 1, speech.size).astype(np.float32)
    mix, scaled = mix_at_snr(speech, noise, 5.0, [(0, speech.size)])
    assert np.max(np.abs(mix)) <= 0.99 + 1e-6
    assert abs(snr_db(mix - scaled, scaled, [(0, speech.size)]) - 5.0) < 0.01


def test_a_pause_is_inserted_exactly_where_it_says():
    first = padded(tone(0.6, 300), 400, 250)  # synthesis leaves silence around each half
    second = padded(tone(0.8, 500), 123, 777)
    pause = int(0.9 * RATE)
    paused = insert_pause(first, second, pause)
    assert paused.pause_start == int(0.6 * RATE) - 1  # a sine's first sample is 0
    assert paused.pause_end - paused.pause_start == pause
    assert paused.samples.size == int(0.6 * RATE) - 1 + pause + int(0.8 * RATE) - 1
    assert not paused.samples[paused.pause_start : paused.pause_end].any()
    assert np.abs(paused.samples[: paused.pause_start]).max() > 0.2
    assert np.abs(paused.samples[paused.pause_end :]).max() > 0.2
    # the speech on either side touches the pause: the gap is the pause, not more
    assert speech_bounds(paused.samples[: paused.pause_start + 40])[1] == paused.pause_start
    assert speech_bounds(paused.samples[paused.pause_end - 40 :])[0] == 40


def test_speech_bounds_find_the_sound_in_silence():
    audio = padded(tone(0.5), 800, 1600)
    start, end = speech_bounds(audio)
    assert (start, end) == (801, 800 + 4000)  # to the sample (a sine starts at 0)
    assert speech_bounds(np.zeros(4000, np.float32)) == (0, 0)


@pytest.mark.parametrize(("text", "first", "second"), [
    ("利息高 不考虑了", "利息高", "不考虑了"),  # the writer's own boundary
    ("我是搞养殖的，能申请吗？", "我是搞养殖的", "能申请吗？"),
])
def test_sentences_are_cut_at_a_written_boundary(text, first, second):
    assert split_for_pause(text) == (first, second)


def test_short_answers_are_not_cut_and_others_keep_every_character():
    assert split_for_pause("是的") is None and split_for_pause("不用了") is None
    cut = split_for_pause("除了利息还有什么费用")
    assert cut is not None and "".join(cut) == "除了利息还有什么费用"
    assert min(len(part) for part in cut) >= 2


def test_a_pause_cut_into_a_sentence_lands_between_the_words_the_recogniser_heard():
    # three "words" of tone with 60 ms gaps; the recogniser's times are a little off
    gap = np.zeros(int(0.06 * RATE), np.float32)
    sentence = np.concatenate([tone(0.5, 300), gap, tone(0.4, 400), gap, tone(0.5, 500)])
    words = [("我想", 0.0, 0.49), ("问一", 0.57, 0.95), ("下子", 1.03, 1.52)]
    cut = word_boundary_cut(sentence, "我想问一下子", words)
    assert int(0.5 * RATE) <= cut <= int(0.56 * RATE)  # inside the first gap, not in a word
    paused = pause_inside(sentence, cut, 800)
    assert (paused.pause_start, paused.pause_end) == (cut, cut + 800)
    assert np.array_equal(paused.samples[:cut], sentence[:cut])
    assert np.array_equal(paused.samples[cut + 800 :], sentence[cut:])
    assert not paused.samples[cut : cut + 800].any()


def test_no_cut_when_the_recogniser_misheard_the_length():
    assert word_boundary_cut(tone(1.0), "我想问一下", [("我", 0.0, 0.2), ("想问", 0.3, 0.6)]) is None
