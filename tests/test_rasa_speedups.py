"""Rasa checks action server replies with a validator built once, exactly as strictly."""

from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from bot import channel  # noqa: F401  (importing the channel installs the speed-ups in Rasa)
from bot.rasa_speedups import validate_action_reply

GOOD = {
    "events": [{"event": "slot", "name": "stage", "value": "offer", "timestamp": None}],
    "responses": [{"text": "您好，我是银行的智能助理。"}],
}
BAD = [
    {"events": "slot stage=offer"},
    {"events": [{"event": "no_such_event"}]},
    {"events": [{"event": "slot", "value": "offer"}]},  # a slot event without the slot's name
    {"responses": ["您好"]},
]


def test_a_valid_reply_passes_through_rasas_own_check() -> None:
    assert validate_action_reply(GOOD) is True
    assert RemoteAction("action_present_offer", None)._validate_action_result(GOOD) is True


@pytest.mark.parametrize("reply", BAD)
def test_a_malformed_reply_is_refused_as_rasa_refuses_it(reply: dict) -> None:
    schema = RemoteAction.action_response_format_spec()
    with pytest.raises(jsonschema.ValidationError) as stock:
        jsonschema.validate(reply, schema)
    with pytest.raises(jsonschema.ValidationError) as ours:
        RemoteAction("action_present_offer", None)._validate_action_result(reply)
    assert ours.value.message.startswith(stock.value.message)
    assert "Failed to validate Action server response" in ours.value.message
