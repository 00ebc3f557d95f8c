"""A loan outcome as the loan system reports it, and reading one from its fields (a JSON object
of the API or a row of the daily file). Pure.

Fields (the API's JSON keys and the file's header are the same)::

    event_id        the loan system's id of this report, 1-64 of A-Z a-z 0-9 . _ : -
                    (the same id again is the same report: recorded once)
    customer_id     the whitelist's customer id
    application_id  the loan system's id of the application, 1-64 of A-Z a-z 0-9 . _ : -
    status          applied | auto_approved | approved | disbursed | declined | withdrawn
    occurred_at     when it happened: ISO 8601 with its offset, 2026-12-04T10:30:00+08:00
                    (the file may leave the offset out: China time then)
    amount_yuan     optional: yuan with at most two decimals (applied: asked for; approved:
                    granted; disbursed: paid out, required)
    branch_id       optional: the branch that books the loan
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal, InvalidOperation

from core.vocabulary import LoanStatus

REQUIRED_FIELDS = ("event_id", "customer_id", "application_id", "status", "occurred_at")
OPTIONAL_FIELDS = ("amount_yuan", "branch_id")
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
MAX_AMOUNT_YUAN = Decimal(100_000_000)
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CUSTOMER = re.compile(r"\S.{0,63}", re.S)
_BRANCH = re.compile(r"[A-Za-z0-9._-]{1,32}")


@dataclass(frozen=True)
class LoanEvent:
    """One report of the loan system about one application."""

    event_id: str
    customer_id: str
    application_id: str
    status: LoanStatus
    occurred_at: datetime
    amount_fen: int | None = None
    """The amount in fen (分, hundredths of a yuan): exact."""
    branch_id: str | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.utcoffset() is None:
            raise ValueError("occurred_at must say its time zone")
        if self.amount_fen is not None and self.amount_fen <= 0:
            raise ValueError("amount_yuan must be above 0")
        if self.status == LoanStatus.DISBURSED and self.amount_fen is None:
            raise ValueError("a disbursed event needs amount_yuan (what was paid out)")

    def same_report(self, other: LoanEvent) -> bool:
        """Whether ``other`` says the same thing, whatever its event id."""
        return (self.customer_id, self.application_id, self.status, self.occurred_at,
                self.amount_fen, self.branch_id) == (
            other.customer_id, other.application_id, other.status, other.occurred_at,
            other.amount_fen, other.branch_id)

    def to_json(self) -> dict[str, object]:
        """The event's fields as the API takes them."""
        return {"event_id": self.event_id, "customer_id": self.customer_id,
                "application_id": self.application_id, "status": str(self.status),
                "occurred_at": self.occurred_at.isoformat(),
                "amount_yuan": None if self.amount_fen is None else yuan_text(self.amount_fen),
                "branch_id": self.branch_id}


def yuan_text(fen: int) -> str:
    """Fen as yuan text: 5000000 -> "50000", 5000050 -> "50000.50"."""
    yuan, cents = divmod(fen, 100)
    return f"{yuan}.{cents:02d}" if cents else str(yuan)


def _text(name: str, value: object, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text")
    text = value.strip()
    if not text:
        raise ValueError(f"{name} is empty")
    if not pattern.fullmatch(text):
        raise ValueError(f"{name} {text[:70]!r} must be {what}")
    return text


def parse_amount(value: object) -> int | None:
    """Yuan (a number or its text, at most two decimals, thousands commas allowed) as fen;
    None when empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("amount_yuan must be a number of yuan")
    raw = value.strip().replace(",", "") if isinstance(value, str) else str(value)
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"amount_yuan {raw[:30]!r} is not a number") from None
    if not amount.is_finite() or amount <= 0 or amount > MAX_AMOUNT_YUAN:
        raise ValueError(f"amount_yuan must be above 0 and at most {MAX_AMOUNT_YUAN}, got {raw}")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"amount_yuan has at most two decimals (fen), got {raw}")
    return int(fen)


def parse_time(value: object, naive_zone: tzinfo | None) -> datetime:
    """ISO 8601; without an offset it is in ``naive_zone``, or refused when that is None."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("occurred_at is empty" if not value else "occurred_at must be text")
    raw = value.strip()
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"occurred_at {raw[:40]!r} is not an ISO 8601 time "
                         "(2026-12-04T10:30:00+08:00)") from None
    if moment.utcoffset() is None:
        if naive_zone is None:
            raise ValueError(f"occurred_at {raw!r} has no offset (+08:00)")
        moment = moment.replace(tzinfo=naive_zone)
    return moment


def parse_event(fields: Mapping[str, object], *, naive_zone: tzinfo | None = None) -> LoanEvent:
    """The event in ``fields``; raises ValueError saying what is wrong (the first problem)."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown field{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(name[:40] for name in unknown)} (known: {', '.join(FIELDS)})")
    missing = [name for name in REQUIRED_FIELDS if fields.get(name) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    status_text = fields["status"]
    if not isinstance(status_text, str) or status_text.strip() not in set(LoanStatus):
        raise ValueError(f"status {str(status_text)[:40]!r} is not one of "
                         f"{', '.join(str(s) for s in LoanStatus)}")
    branch = fields.get("branch_id")
    return LoanEvent(
        event_id=_text("event_id", fields["event_id"], _ID, "1-64 of A-Z a-z 0-9 . _ : -"),
        customer_id=_text("customer_id", fields["customer_id"], _CUSTOMER, "at most 64 characters"),
        application_id=_text("application_id", fields["application_id"], _ID,
                             "1-64 of A-Z a-z 0-9 . _ : -"),
        status=LoanStatus(status_text.strip()),
        occurred_at=parse_time(fields["occurred_at"], naive_zone),
        amount_fen=parse_amount(fields.get("amount_yuan")),
        branch_id=(_text("branch_id", branch, _BRANCH, "1-32 of A-Z a-z 0-9 . _ -")
                   if branch not in (None, "") else None),
    )
