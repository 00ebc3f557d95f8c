"""Waste removed from Rasa 3.6's turn, installed in the Rasa process by :mod:`bot.channel`.

Found by profiling a chat turn with py-spy on this machine (benchmarks/bench_turn.py):

1. **The action reply's schema.** Rasa checks every action server reply against its response
   schema with ``jsonschema.validate(reply, schema)``, which first checks the *schema itself*
   against the JSON Schema meta-schema and builds a fresh validator, on every call: two thirds
   of Rasa's time per turn (about 70 ms of 105). Replies are now checked with one validator
   built once: the same schema, the same errors, the same message.
2. **TED where the rules decide.** Every prediction runs all three policies, in the order of
   config.yml: memoization, rules, TED. When memoization or a rule predicts an action with
   full confidence (1.0), TED's answer cannot be chosen: the ensemble takes the highest
   confidence and, on a tie, the higher priority, and TED's is the lowest. TED's neural
   network then ran for nothing, a quarter of what was left of a turn. It now answers "no
   prediction" (what it answers when it has no model) for that tracker state without running
   the network; wherever the rules and stories do not decide, it runs as before.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.core.policies.memoization import MemoizationPolicy
from rasa.core.policies.policy import PolicyPrediction
from rasa.core.policies.rule_policy import RulePolicy
from rasa.core.policies.ted_policy import TEDPolicy
from rasa.shared.constants import DOCS_BASE_URL

_INSTALLED = "_offercall_speedups"
CERTAIN = 1.0


@lru_cache(maxsize=1)
def _reply_validator() -> Any:
    """The validator for an action server's reply, built (and its schema checked) once."""
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_reply(reply: dict[str, Any]) -> bool:
    """What ``RemoteAction._validate_action_result`` does, without re-checking the schema."""
    error = best_match(_reply_validator().iter_errors(reply))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    return validate_action_reply(result)


class DecidedStates:
    """Which tracker state a policy ahead of TED predicted with full confidence.

    A state is the tracker object and its number of events: the policies of one prediction
    see the same tracker object, and the next prediction sees one more event.
    """

    def __init__(self) -> None:
        self._decided: tuple[int, str, int] | None = None
        self.skipped = 0

    @staticmethod
    def _key(tracker: Any) -> tuple[int, str, int]:
        return id(tracker), tracker.sender_id, len(tracker.events)

    def note(self, tracker: Any, prediction: PolicyPrediction) -> None:
        if prediction.max_confidence >= CERTAIN:
            self._decided = self._key(tracker)

    def forget(self) -> None:
        self._decided = None

    def take(self, tracker: Any) -> bool:
        """True (once) when a policy ahead of TED decided this state."""
        decided, self._decided = self._decided == self._key(tracker), None
        return decided


DECIDED = DecidedStates()


def _noting(predict: Callable[..., PolicyPrediction], first: bool) -> Callable[..., PolicyPrediction]:
    def predict_action_probabilities(self: Any, tracker: Any, domain: Any, *args: Any,
                                     **kwargs: Any) -> PolicyPrediction:
        if first:
            DECIDED.forget()
        prediction = predict(self, tracker, domain, *args, **kwargs)
        DECIDED.note(tracker, prediction)
        return prediction

    return predict_action_probabilities


def _unless_decided(predict: Callable[..., PolicyPrediction]) -> Callable[..., PolicyPrediction]:
    def predict_action_probabilities(self: Any, tracker: Any, domain: Any, *args: Any,
                                     **kwargs: Any) -> PolicyPrediction:
        if DECIDED.take(tracker):
            DECIDED.skipped += 1
            return self._prediction(self._default_predictions(domain))
        return predict(self, tracker, domain, *args, **kwargs)

    return predict_action_probabilities


def install() -> None:
    """Make Rasa check action replies with :func:`validate_action_reply` and skip TED where
    memoization or the rules decide (idempotent)."""
    if getattr(RemoteAction, _INSTALLED, False):
        return
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    MemoizationPolicy.predict_action_probabilities = _noting(  # type: ignore[method-assign]
        MemoizationPolicy.predict_action_probabilities, first=True)
    RulePolicy.predict_action_probabilities = _noting(  # type: ignore[method-assign]
        RulePolicy.predict_action_probabilities, first=False)
    TEDPolicy.predict_action_probabilities = _unless_decided(  # type: ignore[method-assign]
        TEDPolicy.predict_action_probabilities)
    setattr(RemoteAction, _INSTALLED, True)


__all__ = ["DECIDED", "ValidationError", "install", "validate_action_reply"]
