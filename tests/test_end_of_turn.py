"""End of turn (voice.end_of_turn): the silence each kind of evidence needs, the hard minimum
and maximum, and the boundaries of every threshold."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voice.end_of_turn import (
    EndOfTurnConfig,
    Reason,
    TurnEvidence,
    end_of_turn,
    ends_unfinished,
    expected_answers,
    is_expected_answer,
    silence_needed,
)

CONFIG = EndOfTurnConfig(min_silence_ms=200, max_silence_ms=1200)  # 200 / 400 / 600 / 1200 ms; Smart Turn 0.3 / 0.7; NLU 0.8
YES_NO = frozenset({"是的", "对", "是", "不是", "不用了", "不方便", "好的", "不需要"})


def evidence(text="", smart_turn=None, nlu=None, expected=YES_NO, words=None) -> TurnEvidence:
    return TurnEvidence(text=text, expected=expected, smart_turn=smart_turn, nlu_confidence=nlu,
                        words_finished=words)


@pytest.mark.parametrize(("case", "needed", "reason"), [
    # a complete short answer ends the turn at the minimum, whatever else is said about it
    (evidence("是的"), 200, Reason.EXPECTED_ANSWER),
    (evidence("不用了。"), 200, Reason.EXPECTED_ANSWER),
    (evidence("不 方便"), 200, Reason.EXPECTED_ANSWER),
    (evidence("是的啊"), 200, Reason.EXPECTED_ANSWER),
    (evidence("是的", smart_turn=0.1), 200, Reason.EXPECTED_ANSWER),
    (evidence("是的", smart_turn=0.1, nlu=0.2), 200, Reason.EXPECTED_ANSWER),
    # … but not when it is the start of more, or not expected by this question
    (evidence("是的，不过"), 1200, Reason.UNFINISHED_WORDS),
    (evidence("是的", expected=frozenset()), 600, Reason.UNSURE),
    (evidence("不用了谢谢"), 600, Reason.UNSURE),
    # Smart Turn
    (evidence("我明天有空", smart_turn=0.7), 400, Reason.COMPLETE),
    (evidence("我明天有空", smart_turn=0.69), 600, Reason.UNSURE),
    (evidence("我明天有空", smart_turn=0.7, nlu=0.8), 200, Reason.COMPLETE_AND_UNDERSTOOD),
    (evidence("我明天有空", smart_turn=0.7, nlu=0.79), 400, Reason.COMPLETE),
    (evidence("我想问一下利息", smart_turn=0.3), 1200, Reason.UNFINISHED),
    (evidence("我想问一下利息", smart_turn=0.31), 600, Reason.UNSURE),
    (evidence("我想问一下利息", smart_turn=0.3, nlu=0.99), 1200, Reason.UNFINISHED),
    (evidence("", smart_turn=0.0), 1200, Reason.UNFINISHED),
    (evidence("", smart_turn=1.0), 400, Reason.COMPLETE),
    # the NLU alone
    (evidence("利息多少", nlu=0.8), 400, Reason.UNDERSTOOD),
    (evidence("利息多少", nlu=0.79), 600, Reason.UNSURE),
    (evidence("利息多少", smart_turn=0.5, nlu=0.9), 400, Reason.UNDERSTOOD),
    # words announcing more wait for the maximum, whatever else is said
    (evidence("我想问一下然后", smart_turn=0.9, nlu=0.9), 1200, Reason.UNFINISHED_WORDS),
    (evidence("不用了，但是", nlu=0.95, words=0.9), 1200, Reason.UNFINISHED_WORDS),
    (evidence("那个"), 1200, Reason.UNFINISHED_WORDS),
    (evidence("我想问一下然后", smart_turn=0.2), 1200, Reason.UNFINISHED_WORDS),
    # the transcript reads finished (voice.words_turn) or not
    (evidence("利率高吗", words=0.6), 200, Reason.WORDS_FINISHED),
    (evidence("利率高吗", words=0.59), 1200, Reason.UNFINISHED_WORDS),
    (evidence("利率高吗", words=0.9, smart_turn=0.9), 200, Reason.WORDS_FINISHED),
    (evidence("利率高吗", words=0.9, smart_turn=0.3), 400, Reason.WORDS_FINISHED_SOUND_UNFINISHED),
    (evidence("你们这利息比", words=0.1, smart_turn=0.9, nlu=0.9), 1200, Reason.UNFINISHED_WORDS),
    (evidence("", smart_turn=0.9), 400, Reason.COMPLETE),  # no words yet: the sound decides
    (evidence("是的", words=0.1), 200, Reason.EXPECTED_ANSWER),
    # nothing known: today's fixed endpoint
    (evidence(), 600, Reason.UNSURE),
    (evidence("", expected=frozenset()), 600, Reason.UNSURE),
])
def test_the_silence_each_kind_of_evidence_needs(case, needed, reason):
    assert silence_needed(case, CONFIG) == (needed, reason)


@pytest.mark.parametrize(("silence_ms", "ended"), [(0, False), (199, False), (200, True), (1500, True)])
def test_a_short_answer_ends_at_the_minimum_and_not_a_millisecond_before(silence_ms, ended):
    assert end_of_turn(silence_ms, evidence("是的"), CONFIG).ended is ended


@pytest.mark.parametrize(("silence_ms", "ended"), [(600, False), (1199, False), (1200, True)])
def test_an_unfinished_sentence_waits_for_the_maximum(silence_ms, ended):
    verdict = end_of_turn(silence_ms, evidence("我想问一下，那个利息的话", smart_turn=0.1), CONFIG)
    assert verdict.ended is ended and verdict.needed_ms == 1200 and verdict.reason == Reason.UNFINISHED


def test_expected_answers_ignore_spaces_punctuation_and_a_trailing_particle():
    assert is_expected_answer("是的。", YES_NO) and is_expected_answer("不 用 了", YES_NO)
    assert is_expected_answer("好的吧", YES_NO) and is_expected_answer("对啊！", YES_NO)
    assert not is_expected_answer("", YES_NO) and not is_expected_answer("。", YES_NO)
    assert not is_expected_answer("是的我想了解一下", YES_NO)
    assert not is_expected_answer("是的", frozenset())


def test_words_announcing_more():
    for text in ["然后", "我想问一下，然后", "不用了但是", "就是", "嗯", "我想"]:
        assert ends_unfinished(text), text
    for text in ["", "是的", "不用了", "然后呢我没问题了", "我没有问题。"]:
        assert not ends_unfinished(text), text


@pytest.mark.parametrize("bad", [
    {"min_silence_ms": 500, "quick_silence_ms": 400},
    {"default_silence_ms": 1500},
    {"min_silence_ms": -1},
    {"unfinished_probability": 0.7},
    {"complete_probability": 1.1},
    {"finished_words": 1.5},
    {"finished_words": -0.1},
])
def test_the_configuration_must_be_ordered(bad):
    with pytest.raises(ValueError):
        EndOfTurnConfig(**bad)


texts = st.sampled_from(["", "是的", "不用了", "是的，不过", "我想问一下然后", "利息多少", "嗯", "好的吧"])
probabilities = st.none() | st.floats(0.0, 1.0)
evidences = st.builds(evidence, texts, probabilities, probabilities, st.just(YES_NO), probabilities)


@given(evidences, st.floats(0, 5000))
def test_no_turn_ends_before_the_minimum_and_every_turn_has_ended_by_the_maximum(case, silence_ms):
    verdict = end_of_turn(silence_ms, case, CONFIG)
    if silence_ms < CONFIG.min_silence_ms:
        assert not verdict.ended
    if silence_ms >= CONFIG.max_silence_ms:
        assert verdict.ended
    assert verdict.ended == (silence_ms >= verdict.needed_ms)


@given(evidences, st.floats(0, 5000), st.floats(0, 5000))
def test_once_ended_a_turn_stays_ended_as_the_silence_goes_on(case, a, b):
    shorter, longer = sorted((a, b))
    assert not end_of_turn(shorter, case, CONFIG).ended or end_of_turn(longer, case, CONFIG).ended


@given(texts, probabilities, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_more_confidence_never_means_a_longer_wait(text, nlu, p, q):
    low, high = sorted((p, q))
    assert (silence_needed(evidence(text, high, nlu), CONFIG)[0]
            <= silence_needed(evidence(text, low, nlu), CONFIG)[0])
    assert (silence_needed(evidence(text, nlu, high), CONFIG)[0]
            <= silence_needed(evidence(text, nlu, low), CONFIG)[0])
    assert (silence_needed(evidence(text, nlu, nlu, words=high), CONFIG)[0]
            <= silence_needed(evidence(text, nlu, nlu, words=low), CONFIG)[0])


def test_the_expected_answers_are_how_customers_say_what_the_question_expects():
    identity = expected_answers("identity")
    assert {"是的", "是我", "不是我", "打错了", "在忙"} <= identity and "不用了" not in identity
    yes_no = expected_answers("yes_no")
    assert {"不用了", "不需要", "转人工", "我要申请", "对"} <= yes_no and "不是我" not in yes_no
    assert expected_answers(None) == frozenset() == expected_answers("amount")
