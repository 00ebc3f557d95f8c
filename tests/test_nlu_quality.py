"""NLU quality of the trained model on the held-out split (``nlu_data/test``, never trained on)."""

from __future__ import annotations

import pytest

from core.settings import PROJECT_ROOT
from offercall.nlu_eval import Example, evaluate, render_markdown, score
from offercall.short_answer_eval import (
    MEANS,
    ShortAnswer,
    ShortAnswerError,
    evaluate_short_answers,
    load_short_answers,
    read,
)
from offercall.short_answer_eval import render_markdown as render_short_answers

pytestmark = pytest.mark.model
MINIMUM_ACCURACY = 0.90


@pytest.fixture(scope="module")
def summary(bot_stack):
    return evaluate(bot_stack.settings.rasa_url, bot_stack.settings.rasa_token)


def test_held_out_split_is_never_trained_on():
    import yaml

    def examples(path):
        block = yaml.safe_load(path.read_text())["nlu"][0]["examples"]
        return {line.lstrip("- ").strip() for line in block.splitlines() if line.strip()}

    for test_file in (PROJECT_ROOT / "nlu_data" / "test").glob("*.yml"):
        train_file = PROJECT_ROOT / "nlu_data" / "train" / "intents" / test_file.name
        assert not examples(test_file) & examples(train_file), test_file.name


def test_intent_accuracy_on_held_out_examples(summary):
    print("\n" + render_markdown(summary, "pytest tests/test_nlu_quality.py -s"))
    assert summary.examples >= 21 * 14
    assert summary.accuracy >= MINIMUM_ACCURACY


def test_opt_out_is_almost_never_missed(summary):
    # a missed opt-out means calling someone who asked never to be called again
    assert summary.recall("opt_out") >= MINIMUM_ACCURACY


def test_every_contract_intent_is_recognised_most_of_the_time(summary):
    weak = {s.intent: round(s.recall, 2) for s in summary.intents if s.recall < 0.75}
    assert not weak


def test_the_scores_are_those_of_a_classification_report():
    examples = [Example("是的", "affirm", frozenset()), Example("不是", "deny", frozenset()),
                Example("五万", "ask_amount", frozenset({("amount", 0, 2)})),
                Example("对", "affirm", frozenset())]
    parses = [{"intent": {"name": "affirm"}},
              {"intent": {"name": "affirm"}},
              {"intent": {"name": "ask_amount"},
               "entities": [{"entity": "amount", "start": 0, "end": 2, "extractor": "DIETClassifier"},
                            {"entity": "amount", "start": 0, "end": 1, "extractor": "RegexEntityExtractor"}]},
              {"intent": {"name": "affirm"}}]
    summary = score(examples, parses)
    assert summary.accuracy == 0.75 and summary.examples == 4
    affirm = next(s for s in summary.intents if s.intent == "affirm")
    deny = next(s for s in summary.intents if s.intent == "deny")
    assert (affirm.precision, affirm.recall) == (2 / 3, 1.0)
    assert (deny.recall, deny.confused_with) == (0.0, {"affirm": 1})
    assert summary.entity_f1 == {"amount (DIETClassifier)": 1.0, "amount (RegexEntityExtractor)": 0.0}


def test_the_macro_f1_averages_the_intents_the_customers_said():
    examples = [Example("是的", "affirm", frozenset()), Example("嗯嗯嗯", "affirm", frozenset())]
    parses = [{"intent": {"name": "affirm"}}, {"intent": {"name": "nlu_fallback"}}]
    summary = score(examples, parses)
    assert summary.macro_f1 == 2 / 3  # affirm: precision 1, recall 1/2; nlu_fallback was never said


@pytest.fixture(scope="module")
def short_answers(bot_stack):
    return evaluate_short_answers(bot_stack.settings.rasa_url, bot_stack.settings.rasa_token)


def test_the_short_answer_split_is_never_trained_on_nor_in_the_repair_tables():
    from tests.test_amd import nlu_examples
    from voice.repair import CANONICAL_ANSWERS

    trained = set(nlu_examples(PROJECT_ROOT / "nlu_data" / "train"))
    ruled = {variant for variants in CANONICAL_ANSWERS.values() for variant in variants}
    answers = load_short_answers()
    assert len(answers) >= 60 and {a.meaning for a in answers} == {"yes", "no", "later", "human", "stop", "repeat"}
    assert [a.text for a in answers if a.text in trained or a.text in ruled] == []


def test_short_answers_are_read_in_the_context_of_the_question(short_answers):
    print("\n" + "\n".join(render_short_answers(short_answers)))
    assert short_answers.call.accuracy >= 0.93
    assert short_answers.chat.accuracy >= 0.90
    # a yes taken for a no, a no for a yes, "call me later" for a yes, or a missed opt-out: the bot
    # does the opposite of what the customer asked
    for reading in (short_answers.chat, short_answers.call):
        opposites = [(a.text, a.meaning, intent) for a, intent in reading.wrong_actions
                     if {a.meaning, meaning_of(intent)} in ({"yes", "no"}, {"later", "yes"})
                     or a.meaning == "stop"]
        assert opposites == []


def meaning_of(intent: str) -> str | None:
    return next((meaning for meaning, intents in MEANS.items() if intent in intents), None)


def test_a_broken_short_answer_file_is_named_with_what_is_wrong(tmp_path):
    bad = tmp_path / "short.yml"
    bad.write_text("identity:\n  maybe: [也许]\n", encoding="utf-8")
    with pytest.raises(ShortAnswerError, match="identity.maybe"):
        load_short_answers(bad)
    bad.write_text("weather:\n  yes: [晴]\n", encoding="utf-8")
    with pytest.raises(ShortAnswerError, match="'weather' is not a question kind"):
        load_short_answers(bad)
    bad.write_text("identity: [: oops\n", encoding="utf-8")
    with pytest.raises(ShortAnswerError, match="cannot read"):
        load_short_answers(bad)


def test_a_yes_to_the_transfer_question_may_be_a_request_for_the_human():
    yes = ShortAnswer("那就办吧", "yes_no", "yes")
    reading = read([yes, ShortAnswer("好", "identity", "yes"), ShortAnswer("晚点", "yes_no", "later")],
                   ["request_handoff", "request_handoff", "nlu_fallback"])
    assert reading.right == 1 and reading.accuracy == pytest.approx(1 / 3)
    assert [(a.text, i) for a, i in reading.wrong_actions] == [("好", "request_handoff")]
    assert [(a.text, i) for a, i in reading.not_understood] == [("晚点", "nlu_fallback")]
