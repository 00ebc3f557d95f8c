"""Waste removed from Rasa 3.6's turn, installed in the Rasa process by :mod:`bot.channel`.

Rasa checks every action server reply against its response schema with
``jsonschema.validate(reply, schema)``. That function first checks the *schema itself*
against the JSON Schema meta-schema and builds a fresh validator, on every call. Profiled
with py-spy on this machine it was two thirds of Rasa's time per chat turn (about 70 ms of
105). :func:`install` makes Rasa check replies with one validator built once: the same
schema, the same errors, the same message.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import ValidationError
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

_INSTALLED = "_offercall_cached_validator"


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


def install() -> None:
    """Make Rasa's remote actions use :func:`validate_action_reply` (idempotent)."""
    if getattr(RemoteAction, _INSTALLED, False):
        return
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    setattr(RemoteAction, _INSTALLED, True)


__all__ = ["ValidationError", "install", "validate_action_reply"]
