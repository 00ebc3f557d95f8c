"""The call log's rules, pure: which call ids are safe, how a search matches a masked phone,
and what a call and its transcript look like to someone who may or may not see them unmasked.

A search by phone matches what the searcher can see: the masked number (``138****8001``)
or a fragment of it (``8001``, ``****8001``, ``138``). Digits in the hidden middle never
match, so nobody can find a customer's full number by trying digits.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.masking import mask_phone, mask_text

CALL_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
PHONE_DIGITS = 11
HIDDEN = range(3, 7)
"""Positions of a mobile number that masking hides (138****8001)."""
MAX_LIMIT = 200


def valid_call_id(call_id: str) -> bool:
    """Only letters, digits, ``-`` and ``_``: safe as a file name in the recordings folder."""
    return bool(CALL_ID.fullmatch(call_id))


def phone_patterns(fragment: str) -> list[str]:
    """SQL ``LIKE`` patterns for the 11-digit phones whose masked form contains ``fragment``
    (digits and ``*``; spaces and dashes ignored). Empty when nothing could match."""
    wanted = re.sub(r"[\s\-]", "", fragment)
    if not wanted or not re.fullmatch(r"[\d*]+", wanted) or len(wanted) > PHONE_DIGITS:
        return []
    patterns = []
    for offset in range(PHONE_DIGITS - len(wanted) + 1):
        pattern = ["_"] * PHONE_DIGITS
        for position, char in enumerate(wanted, start=offset):
            if (char == "*") != (position in HIDDEN):
                break  # a star where a digit shows, or a digit where the mask hides it
            if char != "*":
                pattern[position] = char
        else:
            patterns.append("".join(pattern))
    return sorted(set(patterns))


def parse_limit(raw: str | None, default: int = 50) -> int:
    """The ``limit`` query parameter: 1 to :data:`MAX_LIMIT`."""
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def parse_flag(raw: str | None) -> bool:
    """A yes/no query parameter: 1/true or 0/false (absent: no)."""
    if raw is None or raw.lower() in {"", "0", "false"}:
        return False
    if raw.lower() in {"1", "true"}:
        return True
    raise ValueError(f"expected 1/true or 0/false, got {raw!r}")


@dataclass(frozen=True)
class LoggedCall:
    """A call as the log lists it: the call itself (if it connected), its campaign attempt
    (if a campaign placed it) and its customer (if on the whitelist)."""

    call_id: str
    customer_id: str
    started_at: datetime
    name: str | None = None
    masked_name: str | None = None
    phone: str | None = None
    region: str | None = None
    campaign_id: str | None = None
    campaign_name: str | None = None
    variant: str | None = None
    attempt_no: int | None = None
    transport: str | None = None
    outcome: str | None = None
    ended_by: str | None = None
    duration_ms: int | None = None
    handoff_id: int | None = None


def call_view(call: LoggedCall, *, has_recording: bool, unmasked: bool = False) -> dict[str, Any]:
    """A call as the pages show it: name and phone masked unless ``unmasked``."""
    name = call.name if unmasked else call.masked_name
    phone = call.phone if unmasked or call.phone is None else mask_phone(call.phone)
    return {
        "call_id": call.call_id,
        "campaign": ({"id": call.campaign_id, "name": call.campaign_name}
                     if call.campaign_id else None),
        "customer": {"id": call.customer_id, "name": name, "phone": phone, "region": call.region},
        "started_at": call.started_at.isoformat(),
        "duration_s": None if call.duration_ms is None else round(call.duration_ms / 1000, 1),
        "outcome": call.outcome,
        "ended_by": call.ended_by,
        "variant": call.variant,
        "attempt_no": call.attempt_no,
        "transport": call.transport,
        "handoff_id": call.handoff_id,
        "has_recording": has_recording,
    }


def _intents(entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    if isinstance(entry.get("intents"), list):
        return [{"name": i.get("name"), "confidence": i.get("confidence")}
                for i in entry["intents"] if isinstance(i, Mapping)]
    if entry.get("intent"):
        return [{"name": entry["intent"], "confidence": entry.get("intent_confidence")}]
    return []


def transcript_turns(entries: Sequence[Mapping[str, Any]], *,
                     unmasked: bool) -> list[dict[str, Any]]:
    """A recorded transcript's turns (speaker, text, intents with confidence, times), with
    phone and ID numbers masked unless ``unmasked``."""
    turns = []
    for entry in entries:
        text = str(entry.get("text", ""))
        turns.append({
            "speaker": entry.get("speaker"),
            "kind": entry.get("kind", "speech"),
            "text": text if unmasked else mask_text(text),
            "intents": _intents(entry),
            "asr_confidence": entry.get("asr_confidence"),
            "start_ms": entry.get("start_ms"),
            "end_ms": entry.get("end_ms"),
            "interrupted": bool(entry.get("interrupted", False)),
        })
    return turns
