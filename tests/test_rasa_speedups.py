"""What offercall changes in the Rasa process: action server replies checked with a validator
built once, exactly as strictly; TED skipped only where its answer could not be chosen; and a
turn whose tracker cannot be read or stored fails instead of being answered and forgotten."""

from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.policy import PolicyPrediction

from bot import channel  # noqa: F401  (importing the channel installs the speed-ups in Rasa)
from bot.rasa_speedups import _noting, _unless_decided, validate_action_reply

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


class Tracker:
    def __init__(self, sender_id: str, events: int) -> None:
        self.sender_id, self.events = sender_id, [object()] * events


class Policy:
    """Stands in for a policy: predicts the first action with ``confidence``."""

    def __init__(self, confidence: float) -> None:
        self.confidence, self.runs = confidence, 0

    def predict(self, tracker: Tracker, domain: object) -> PolicyPrediction:
        self.runs += 1
        return PolicyPrediction([self.confidence, 0.0], type(self).__name__)

    def _default_predictions(self, domain: object) -> list[float]:
        return [0.0, 0.0]

    def _prediction(self, probabilities: list[float]) -> PolicyPrediction:
        return PolicyPrediction(probabilities, "TED")


def predict_all(memo: Policy, rule: Policy, ted: Policy, tracker: Tracker) -> PolicyPrediction:
    """One prediction as Rasa's graph runs it: memoization, rules, then TED."""
    _noting(Policy.predict, first=True)(memo, tracker, None)
    _noting(Policy.predict, first=False)(rule, tracker, None)
    return _unless_decided(Policy.predict)(ted, tracker, None)


def test_ted_is_not_run_where_a_rule_or_a_story_decides_with_full_confidence() -> None:
    ted = Policy(0.9)
    assert predict_all(Policy(0.0), Policy(1.0), ted, Tracker("c1", 7)).max_confidence == 0.0
    assert predict_all(Policy(1.0), Policy(0.0), ted, Tracker("c1", 9)).max_confidence == 0.0
    assert ted.runs == 0


def test_ted_runs_where_neither_decides_or_the_rules_only_fall_back() -> None:
    ted = Policy(0.9)
    assert predict_all(Policy(0.0), Policy(0.3), ted, Tracker("c1", 7)).max_confidence == 0.9
    assert ted.runs == 1


def test_a_decision_about_one_state_never_skips_ted_for_another() -> None:
    memo, rule, ted = Policy(0.0), Policy(1.0), Policy(0.9)
    decided = Tracker("c1", 7)
    _noting(Policy.predict, first=True)(memo, decided, None)
    _noting(Policy.predict, first=False)(rule, decided, None)
    later = Tracker("c1", 8)
    assert _unless_decided(Policy.predict)(ted, later, None).max_confidence == 0.9
    assert _unless_decided(Policy.predict)(ted, decided, None).max_confidence == 0.9, "used once"


def test_installed_in_rasas_policies() -> None:
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.core.policies.ted_policy import TEDPolicy

    assert "_unless_decided" in TEDPolicy.predict_action_probabilities.__qualname__
    assert "_noting" in RulePolicy.predict_action_probabilities.__qualname__


class BrokenStore:
    """A primary tracker store whose database is down."""

    domain = None
    event_broker = None

    async def retrieve(self, sender_id: str):
        raise ConnectionError("PostgreSQL is restarting")

    async def retrieve_full_tracker(self, sender_id: str):
        raise ConnectionError("PostgreSQL is restarting")

    async def save(self, tracker) -> None:
        raise ConnectionError("PostgreSQL is restarting")


async def test_a_turn_rasa_cannot_read_or_store_fails_instead_of_being_forgotten():
    from rasa.core.tracker_store import FailSafeTrackerStore

    store = FailSafeTrackerStore(BrokenStore())  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await store.retrieve("chat-1")  # stock Rasa: None, a new conversation from scratch
    with pytest.raises(ConnectionError):
        await store.retrieve_full_tracker("chat-1")
    with pytest.raises(ConnectionError):
        await store.save(object())  # stock Rasa: kept in this process's memory only


def test_rasas_postgresql_engine_replaces_connections_a_restart_left_dead():
    from rasa.core import tracker_store

    assert tracker_store.create_engine_kwargs("postgresql://bank@db/offers")["pool_pre_ping"] is True
    assert "pool_pre_ping" not in tracker_store.create_engine_kwargs("sqlite:///var/offercall.db")
