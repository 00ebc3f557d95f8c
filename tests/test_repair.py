"""Transcript repair: spaces removed, homophones fixed, short answers made canonical."""

from __future__ import annotations

import json

import pytest

from voice.repair import answer_grammar, constrained_answer, normalise, repair


def test_vosk_spaces_between_chinese_words_are_removed():
    assert normalise("你好 我 想 办理 贷款") == "你好我想办理贷款"
    assert normalise("  我 要   贷款  ") == "我要贷款"
    assert normalise("ok 好 的") == "ok 好的"


@pytest.mark.parametrize("heard,expected", [
    ("是 的", "是的"),
    ("事 的", "是的"),        # same sound, wrong characters
    ("对", "是的"),
    ("不是", "不是"),
    ("不 用 了", "不用了"),
    ("转 人 工", "转人工"),
    ("转 人 公", "转人工"),
    ("别 再 打 了", "不要再打了"),
])
def test_short_answers_become_canonical(heard, expected):
    assert repair(heard).text == expected


def test_domain_words_heard_as_homophones_are_corrected_inside_sentences():
    fixed = repair("你们 的 代款 立率 是 多少")
    assert fixed.text == "你们的贷款利率是多少" and fixed.rule == "homophone"


def test_long_sentences_are_not_forced_into_a_short_answer():
    fixed = repair("我 想 问 一下 这个 钱 什么 时候 能 到账")
    assert fixed.text == "我想问一下这个钱什么时候能到账" and fixed.rule == "none"


def test_expected_answers_are_used_only_when_unsure():
    heard = "诗 得 呀"  # a garbled yes
    assert repair(heard, expect="identity").text == "诗得呀"
    unsure = repair(heard, expect="identity", unsure=True)
    assert unsure.text == "是的" and unsure.rule == "expected"


def test_the_raw_text_is_kept():
    fixed = repair("事 的")
    assert fixed.raw == "事 的" and fixed.changed


def test_empty_transcripts_stay_empty():
    assert repair("   ").text == ""


@pytest.mark.parametrize("heard", ["我不要贷款", "我不想申请", "我没在忙", "不是的我要办"])
def test_a_negation_is_never_repaired_into_its_opposite(heard):
    repaired = repair(heard, expect="yes_no", unsure=True).text
    assert repaired not in {"是的", "我要申请", "我在忙"}


def test_negated_answers_still_match_negated_canonical_forms():
    assert repair("不用不用了").text == "不用了"
    assert repair("布是我", expect="identity", unsure=True).text == "不是"


def test_a_polite_refusal_misheard_is_recovered_when_unsure():
    """不用了，谢谢 heard as 不能 谢谢 (seen in a real Vosk run): the NLU guessed ask_amount at
    0.62, so the expected answers of the yes/no question decide."""
    assert repair("不能 谢谢", expect="yes_no").text == "不能谢谢"
    assert repair("不能 谢谢", expect="yes_no", unsure=True).text == "不用了"


def test_a_constrained_decode_counts_only_as_an_exact_confident_expected_phrase():
    assert constrained_answer("是 我", [1.0, 0.97], "identity") == "是我"
    assert constrained_answer("不 是 我", [1.0, 1.0, 1.0], "identity") == "不是我"
    assert constrained_answer("转 人工", [1.0, 1.0], "yes_no") == "转人工"
    assert constrained_answer("我 [unk]", [1.0, 1.0], "identity") is None  # something else was said
    assert constrained_answer("你 说 什", [1.0, 1.0, 1.0], "identity") is None  # words, no phrase
    assert constrained_answer("是 我", [1.0, 0.6], "identity") is None  # not sure enough
    assert constrained_answer("转 人工", [1.0, 1.0], "identity") is None  # not expected here
    assert constrained_answer("是 我", [1.0, 1.0], None) is None
    assert constrained_answer("", [], "identity") is None


def test_the_grammar_has_every_expected_phrase_spelled_by_character_and_room_for_anything_else():
    grammar = json.loads(answer_grammar("identity"))
    assert "是 我" in grammar and "不 是 本 人" in grammar and grammar[-1] == "[unk]"
    assert "转 人 工" not in grammar  # the identity question does not expect a transfer
    assert answer_grammar(None) is None and answer_grammar("free_text") is None


def test_a_short_answer_misheard_is_replaced_by_what_the_constrained_decode_heard():
    fixed = repair("吃 完", expect="identity", constrained="是我")
    assert (fixed.text, fixed.rule, fixed.raw) == ("是的", "grammar", "吃 完")
    assert repair("对趣闻", expect="identity", constrained="对是我").text == "是的"


def test_a_clear_free_transcript_wins_over_the_constrained_decode():
    assert repair("不是", expect="identity", constrained="是我").text == "不是"
    # a sentence is not an answer of another length, however the constrained decode heard it
    assert repair("我想问一下利息", expect="yes_no", constrained="是我").text == "我想问一下利息"


def test_the_constrained_decode_never_turns_a_negation_into_its_opposite():
    fixed = repair("不 完", expect="identity", constrained="是我")
    assert fixed.text == "不完" and fixed.rule == "none"
