"""A staff member's own phone, as the one-click calls ring it: a number dialled through the
trunk or a SIP URI (pure)."""

from __future__ import annotations

import re

_URI = re.compile(r"^sips?:[^\s<>\"]+$")
_NUMBER = re.compile(r"^\+?\d{3,20}$")


def valid_phone(value: str) -> str:
    """A staff phone as stored: digits (a leading + allowed; spaces and dashes dropped) or a
    ``sip:``/``sips:`` URI. ``ValueError`` for anything else."""
    text = value.strip()
    if _URI.match(text) and len(text) <= 200:
        return text
    digits = re.sub(r"[\s-]", "", text)
    if _NUMBER.match(digits):
        return digits
    raise ValueError(f"a phone must be a number or a sip: URI, got {value!r}")
