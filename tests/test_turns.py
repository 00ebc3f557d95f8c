"""Turn-taking rules: speech start/end, backchannels, barge-in, silence and key presses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice.turns import (
    BargeIn,
    MaxDurationReached,
    SilenceTimedOut,
    SpeechDetector,
    SpeechEnded,
    SpeechStarted,
    TurnConfig,
    TurnTaker,
    dtmf_message,
    interrupts_bot,
    is_backchannel,
    silence_timed_out,
)

CONFIG = TurnConfig(min_speech_ms=100, endpoint_silence_ms=600, backchannel_max_ms=800)
LOUD, QUIET = True, False  # voiced and unvoiced frames (voice.vad decides which)


def run(frames: list[bool]) -> list[object]:
    detector = SpeechDetector(CONFIG)
    changes = []
    for index, voiced in enumerate(frames):
        change = detector.feed(voiced, index * 20, 20)
        if change is not None:
            changes.append(change)
    return changes


def test_an_utterance_starts_after_the_minimum_and_ends_after_trailing_silence():
    changes = run([QUIET] * 10 + [LOUD] * 50 + [QUIET] * 40)
    assert changes == [SpeechStarted(200), SpeechEnded(started_ms=200, at_ms=1200)]
    assert changes[1].speech_ms == 1000


def test_a_click_shorter_than_the_minimum_is_not_speech():
    assert run([QUIET] * 5 + [LOUD] * 4 + [QUIET] * 50) == []


def test_a_pause_shorter_than_the_endpoint_does_not_split_the_utterance():
    changes = run([LOUD] * 20 + [QUIET] * 25 + [LOUD] * 20 + [QUIET] * 40)
    assert len(changes) == 2 and changes[1] == SpeechEnded(0, 1300)


@given(st.lists(st.booleans(), max_size=300))
def test_starts_and_ends_always_alternate(voiced):
    changes = run([LOUD if v else QUIET for v in voiced])
    kinds = [type(c) for c in changes]
    assert kinds == [SpeechStarted, SpeechEnded] * (len(kinds) // 2) + [SpeechStarted] * (len(kinds) % 2)


def test_backchannels_are_recognised_with_spaces_and_punctuation():
    for text in ["嗯", "嗯 嗯", "对对", "好的。", "啊", "是", "对对和", "好的好的", "对队伍"]:
        assert is_backchannel(text), text
    for text in ["不需要", "我不是", "转人工", "嗯我想问一下利息", "", "好的我要申请", "不是", "对不起", "不要"]:
        assert not is_backchannel(text), text


def test_only_real_speech_interrupts_the_bot():
    assert not interrupts_bot(300, "嗯", CONFIG)
    assert not interrupts_bot(500, "", CONFIG)
    assert interrupts_bot(400, "不要", CONFIG)
    assert interrupts_bot(900, "嗯", CONFIG)  # long speech always takes the turn


def test_silence_times_out_only_while_waiting():
    assert not silence_timed_out(None, 10_000, CONFIG)
    assert not silence_timed_out(1000, 1000 + CONFIG.silence_timeout_ms - 20, CONFIG)
    assert silence_timed_out(1000, 1000 + CONFIG.silence_timeout_ms, CONFIG)


def test_keys_map_to_yes_no_and_a_human():
    assert dtmf_message("1") == "/affirm"
    assert dtmf_message("2") == "/deny"
    assert dtmf_message("0") == "/request_handoff"
    assert dtmf_message("5") is None and dtmf_message("#") is None


# --- the turn-taking state machine, frame by frame -----------------------------------------


def run_frames(taker: TurnTaker, frames: list[bool], bot_speaking=False, start_ms=0.0):
    """Feeds 20 ms frames, voiced or not; returns (media time, event) for every event."""
    seen = []
    for i, voiced in enumerate(frames):
        at = start_ms + i * 20
        speaking = bot_speaking(at) if callable(bot_speaking) else bot_speaking
        seen += [(at, event) for event in taker.frame(at, voiced, 20, bot_speaking=speaking)]
    return seen


def test_an_utterance_starts_and_ends_with_when_and_whether_the_bot_was_talking():
    taker = TurnTaker(TurnConfig())
    seen = run_frames(taker, [QUIET] * 5 + [LOUD] * 30 + [QUIET] * 40, bot_speaking=True)
    kinds = [type(event).__name__ for _, event in seen]
    assert kinds == ["SpeechStarted", "SpeechEnded"]
    ended = seen[1][1]
    assert (ended.started_ms, ended.at_ms, ended.over_bot) == (100, 700, True)


def test_long_speech_over_the_bot_barges_in_once_and_short_speech_does_not():
    config = TurnConfig(backchannel_max_ms=800)
    long = run_frames(TurnTaker(config), [LOUD] * 80 + [QUIET] * 40, bot_speaking=True)
    barges = [(at, e) for at, e in long if isinstance(e, BargeIn)]
    assert len(barges) == 1 and barges[0][1].at_ms == 800  # 800 ms of speech, from 0
    short = run_frames(TurnTaker(config), [LOUD] * 30 + [QUIET] * 40, bot_speaking=True)
    assert not any(isinstance(e, BargeIn) for _, e in short)
    quiet_bot = run_frames(TurnTaker(config), [LOUD] * 80 + [QUIET] * 40, bot_speaking=False)
    assert not any(isinstance(e, BargeIn) for _, e in quiet_bot)


def test_silence_times_out_once_after_the_bot_finished_and_speech_resets_it():
    config = TurnConfig(silence_timeout_ms=1000)
    taker = TurnTaker(config)
    assert run_frames(taker, [QUIET] * 100) == [], "the bot has not asked anything yet"
    taker.bot_finished(2000)
    seen = run_frames(taker, [QUIET] * 150, start_ms=2000)
    assert [(at + 20, type(e)) for at, e in seen] == [(3000, SilenceTimedOut)]
    taker.bot_finished(5000)
    seen = run_frames(taker, [QUIET] * 10 + [LOUD] * 10 + [QUIET] * 100, start_ms=5000)
    assert not any(isinstance(e, SilenceTimedOut) for _, e in seen), "the customer answered"


@pytest.mark.parametrize("interruption", ["answered", "bot_started"])
def test_a_key_press_or_a_new_bot_turn_stops_the_silence_timer(interruption):
    taker = TurnTaker(TurnConfig(silence_timeout_ms=1000))
    taker.bot_finished(0)
    getattr(taker, interruption)()
    assert run_frames(taker, [QUIET] * 200) == []


def test_an_answer_that_needs_no_reply_keeps_the_bot_waiting_but_not_while_it_speaks():
    taker = TurnTaker(TurnConfig(silence_timeout_ms=1000))
    taker.still_waiting(500, bot_speaking=True)
    assert taker.waiting_since_ms is None
    taker.still_waiting(500, bot_speaking=False)
    assert [at + 20 for at, e in run_frames(taker, [QUIET] * 100, start_ms=500)] == [1500]


def test_the_maximum_duration_is_reached_once():
    taker = TurnTaker(TurnConfig(max_call_ms=1000))
    seen = run_frames(taker, [QUIET] * 200)
    assert [(at + 20, type(e)) for at, e in seen] == [(1000, MaxDurationReached)]


def test_a_pause_can_be_given_its_own_endpoint_which_the_next_voiced_frame_forgets():
    detector = SpeechDetector(CONFIG)  # 600 ms of silence ends an utterance
    changes = [detector.feed(v, i * 20, 20) for i, v in enumerate([LOUD] * 10 + [QUIET] * 10)]
    assert detector.speaking and detector.silence_ms == 200 and changes[4] == SpeechStarted(0)
    detector.end_after(260)
    ends = [detector.feed(QUIET, 400 + i * 20, 20) for i in range(3)]
    assert ends == [None, None, SpeechEnded(0, 200)] and detector.silence_ms == 0
    # the next utterance: a pause given 200 ms, then more speech, then the configured 600 ms
    seen = [detector.feed(v, 1000 + i * 20, 20) for i, v in enumerate([LOUD] * 10 + [QUIET] * 5)]
    detector.end_after(200)
    seen += [detector.feed(v, 1300 + i * 20, 20) for i, v in enumerate([LOUD] + [QUIET] * 30)]
    assert [c for c in seen if c is not None] == [SpeechStarted(1000), SpeechEnded(1000, 1320)]
    assert seen[-1] == SpeechEnded(1000, 1320), "600 ms after the last voiced frame, not 200"
