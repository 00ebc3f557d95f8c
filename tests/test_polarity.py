"""A short answer's polarity read from its words: a yes that says no, or a no that does not,
is asked again rather than acted on."""

from __future__ import annotations

import pytest

from bot.polarity import negative, polarity_conflict
from core.nlu_examples import nlu_examples


@pytest.mark.parametrize("said", ["不是", "不用了", "没兴趣", "别打了", "甭了", "冇", "唔使", "否", "免了",
                                  "算咯", "打错咯", "补用", "部是", "莫得"])
def test_negations_and_how_a_recogniser_mishears_them_say_no(said):
    assert negative(said)


@pytest.mark.parametrize("said", ["是的", "正是", "可以", "要得", "没问题", "没问提", "没错", "不错", "没毛病", "好嘞"])
def test_answers_without_a_negation_or_with_one_that_says_yes_do_not(said):
    assert not negative(said)


def test_a_short_answer_classified_against_its_polarity_is_a_conflict():
    assert polarity_conflict("正是", "deny") and polarity_conflict("可以", "not_interested")
    assert polarity_conflict("不是", "affirm") and polarity_conflict("不要了", "affirm")
    assert not polarity_conflict("没错是我", "affirm") and not polarity_conflict("算了吧", "deny")


def test_only_short_yes_and_no_answers_are_checked():
    assert not polarity_conflict("我现在不太想贷款", "affirm")  # long enough for the classifier
    assert not polarity_conflict("他换号了", "wrong_person")  # says "not me" without a negation
    assert not polarity_conflict("不方便", "busy_callback") and not polarity_conflict("", "affirm")


def test_no_training_or_held_out_example_conflicts_with_its_own_intent():
    conflicts = [(example.intent, example.text) for example in nlu_examples()
                 if polarity_conflict(example.text, example.intent)]
    assert conflicts == []
