"""The Rasa client turns the channel's messages into texts and directives."""

from bot.client import Directive, parse_bot_messages


def test_texts_and_directives_are_separated():
    turn = parse_bot_messages([
        {"recipient_id": "c1", "text": "好的，正在为您转接客户经理"},
        {"recipient_id": "c1", "custom": {"directive": "transfer", "handoff_id": 7, "reason": "customer_requested"}},
    ])
    assert turn.texts == ["好的，正在为您转接客户经理"]
    assert turn.directives == [Directive("transfer", {"handoff_id": 7, "reason": "customer_requested"})]
    assert turn.ends_conversation


def test_unknown_custom_payloads_are_not_directives():
    turn = parse_bot_messages([{"custom": {"directive": "dance"}}, {"custom": "x"}, {"text": "你好"}])
    assert turn.directives == [] and turn.texts == ["你好"]
    assert not turn.ends_conversation


def test_dtmf_request_does_not_end_the_conversation():
    turn = parse_bot_messages([{"custom": {"directive": "dtmf_request", "digits": 1}}])
    assert turn.directives[0].name == "dtmf_request"
    assert not turn.ends_conversation


def test_a_prompt_tag_names_the_text_it_follows_and_is_not_a_directive():
    turn = parse_bot_messages([
        {"text": "温馨提示：本次通话由智能语音助手进行"}, {"custom": {"prompt": "disclosure"}},
        {"text": "您已获得五万元额度", "custom": {"prompt": "offer"}},
        {"custom": {"directive": "dtmf_request", "expect": "yes_no"}},
    ])
    assert turn.prompts == ["disclosure", "offer"]
    assert [d.name for d in turn.directives] == ["dtmf_request"]
    assert parse_bot_messages([{"custom": {"prompt": "offer"}}]).prompts == []  # nothing to tag
