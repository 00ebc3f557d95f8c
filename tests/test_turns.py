"""Turn-taking rules: speech start/end, backchannels, barge-in, silence and key presses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voice.turns import (
    SpeechDetector,
    SpeechEnded,
    SpeechStarted,
    TurnConfig,
    dtmf_message,
    interrupts_bot,
    is_backchannel,
    silence_timed_out,
)

CONFIG = TurnConfig(min_speech_ms=100, endpoint_silence_ms=600, backchannel_max_ms=800)
LOUD, QUIET = -20.0, -70.0


def run(levels: list[float]) -> list[object]:
    detector = SpeechDetector(CONFIG)
    changes = []
    for index, level in enumerate(levels):
        change = detector.feed(level, index * 20, 20)
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
