"""A partner's application as the intake API takes it, read and checked field by field. Pure.

The body is a JSON object (``lending.web.intake_api``)::

    {
      "application_id": "YB-20261204-0001",      the partner's id of it: 1-64 of A-Z a-z 0-9 . _ : -
      "customer_id": "C0002",                    optional: the bank's customer id, when known
      "campaign_id": "yibao-dec",                optional: one of the partner's campaigns to join
      "requested_amount_yuan": 200000,           whole yuan
      "applicant": {"name": "李秀英", "phone": "13900139002", "id_number": "51012219880506123X"},
      "organisation": {"name": "棠湖社区诊所", "kind": "clinic" | "pharmacy",
                       "region": "双流区", "address": "…", "insurance_code": "H51011600123",
                       "operating_since": "2018-03-01"},
      "consent": {"given": true, "signed_at": "2026-12-01T10:00:00+08:00",
                  "expires_at": "2027-12-01T00:00:00+08:00", "reference": "SQ-8812"},
      "settlement": [{"month": "2026-11", "amount_yuan": 86000.5}, …]
    }

``settlement`` is the organisation's monthly medical-insurance settlements (医保结算), at most
36 months, each month once; it may be empty (the admission rules then refuse it). Every
problem is reported with the field's dotted path (``settlement[2].month``), all at once:
:class:`lending.errors.ApplicationInvalid`. Unknown fields are problems too, so a partner's
misspelt field is not silently ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from core.masking import mask_id_number, mask_name, mask_phone
from core.vocabulary import StrEnum
from lending.errors import ApplicationInvalid

T = TypeVar("T")

MAX_REQUESTED_YUAN = 100_000_000
MAX_SETTLEMENT_MONTHS = 36
MAX_MONTHLY_SETTLEMENT_YUAN = Decimal(1_000_000_000)
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_CUSTOMER_ID = re.compile(r"\S{1,64}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_INSURANCE_CODE = re.compile(r"[A-Z0-9]{6,32}")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
FIELDS = ("application_id", "customer_id", "campaign_id", "requested_amount_yuan", "applicant",
          "organisation", "consent", "settlement")


class OrgKind(StrEnum):
    """The medical-insurance organisations 医保贷 serves (their contact is the applicant)."""

    CLINIC = "clinic"
    """诊所: a clinic designated for medical-insurance settlement."""
    PHARMACY = "pharmacy"
    """药店: a designated retail pharmacy."""


ORG_KIND_TEXT = {OrgKind.CLINIC: "诊所", OrgKind.PHARMACY: "药店"}


@dataclass(frozen=True)
class Applicant:
    """The person applying: the organisation's contact (法人 or 负责人)."""

    name: str
    phone: str
    id_number: str
    birth_date: date
    """From the ID number (its digits 7-14)."""

    def __repr__(self) -> str:  # never the full name, phone or ID number in a log or traceback
        return (f"Applicant(name={mask_name(self.name)!r}, phone={mask_phone(self.phone)!r}, "
                f"id_number={mask_id_number(self.id_number)!r})")


@dataclass(frozen=True)
class Organisation:
    """The clinic or pharmacy."""

    name: str
    kind: OrgKind
    region: str
    """Its county or district (金堂县, 双流区): where its branch is looked for."""
    address: str | None
    insurance_code: str
    """Its designated-institution code with the medical-insurance bureau (定点医药机构编码)."""
    operating_since: date
    """Since when it has been a designated institution."""


@dataclass(frozen=True)
class Consent:
    """The applicant's authorisation (授权) for the bank to receive their data and contact them."""

    given: bool
    signed_at: datetime | None
    expires_at: datetime | None
    reference: str | None
    """The partner's id of the signed authorisation, for an audit."""


@dataclass(frozen=True)
class MonthlySettlement:
    """One month's medical-insurance settlements of the organisation."""

    month: date
    """The first day of the month."""
    amount_fen: int
    """The month's total in fen (1/100 yuan), exact."""


@dataclass(frozen=True)
class Application:
    """A partner's application as read (see the module docstring)."""

    partner_application_id: str
    applicant: Applicant
    organisation: Organisation
    consent: Consent
    settlements: tuple[MonthlySettlement, ...]
    """Newest month first."""
    requested_amount_yuan: int
    customer_id: str | None = None
    campaign_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The application in the API's shape (what it was read from, normalised)."""
        return {
            "application_id": self.partner_application_id, "customer_id": self.customer_id,
            "campaign_id": self.campaign_id, "requested_amount_yuan": self.requested_amount_yuan,
            "applicant": {"name": self.applicant.name, "phone": self.applicant.phone,
                          "id_number": self.applicant.id_number},
            "organisation": {"name": self.organisation.name, "kind": str(self.organisation.kind),
                             "region": self.organisation.region,
                             "address": self.organisation.address,
                             "insurance_code": self.organisation.insurance_code,
                             "operating_since": self.organisation.operating_since.isoformat()},
            "consent": {"given": self.consent.given, "signed_at": _iso(self.consent.signed_at),
                        "expires_at": _iso(self.consent.expires_at),
                        "reference": self.consent.reference},
            "settlement": [{"month": s.month.strftime("%Y-%m"), "amount_fen": s.amount_fen}
                           for s in self.settlements],
        }

    def digest(self) -> str:
        """SHA-256 of :meth:`to_json`: the same application, however its JSON was spaced or
        ordered, has the same digest; any other data another."""
        canonical = json.dumps(self.to_json(), ensure_ascii=False, sort_keys=True,
                               separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def masked(self) -> dict[str, Any]:
        """What is kept of the application: personal data masked, settlements summed up."""
        return {
            "name": mask_name(self.applicant.name), "phone": mask_phone(self.applicant.phone),
            "id_number": mask_id_number(self.applicant.id_number),
            "birth_year": self.applicant.birth_date.year,
            "organisation": self.organisation.name, "kind": str(self.organisation.kind),
            "region": self.organisation.region, "insurance_code": self.organisation.insurance_code,
            "operating_since": self.organisation.operating_since.isoformat(),
            "consent_reference": self.consent.reference,
            "consent_signed_at": _iso(self.consent.signed_at),
            "consent_expires_at": _iso(self.consent.expires_at),
            "settlement_months": len(self.settlements),
            "settlement_total_fen": sum(s.amount_fen for s in self.settlements),
            "customer_id": self.customer_id, "campaign_id": self.campaign_id,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# ------------------------------------------------------------------- reading
class _Problems:
    """Collects every bad field of a body instead of stopping at the first."""

    def __init__(self) -> None:
        self.found: list[tuple[str, str]] = []

    def check(self, where: str, read: Callable[[], T]) -> T | None:
        """``read()``, or None with its ``ValueError`` noted against ``where``."""
        try:
            return read()
        except ValueError as exc:
            self.found.append((where, str(exc)))
            return None

    def add(self, where: str, reason: str) -> None:
        self.found.append((where, reason))


def _object(body: Mapping[str, Any], key: str, where: str, problems: _Problems,
            allowed: tuple[str, ...]) -> Mapping[str, Any] | None:
    value = body.get(key)
    if not isinstance(value, Mapping):
        problems.add(where, "is missing" if value is None else "must be a JSON object")
        return None
    for unknown in sorted(set(value) - set(allowed)):
        problems.add(f"{where}.{unknown}", "is not a field of it")
    return value


def _text(value: Any, *, most: int, optional: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip() and optional):
        if optional:
            return None
        raise ValueError("is missing")
    if not isinstance(value, str):
        raise ValueError("must be text")
    value = value.strip()
    if not value:
        raise ValueError("is empty")
    if len(value) > most:
        raise ValueError(f"is longer than {most} characters")
    return value


def _pattern(value: Any, pattern: re.Pattern[str], what: str, *,
             optional: bool = False) -> str | None:
    text = _text(value, most=200, optional=optional)
    if text is None:
        return None
    if not pattern.fullmatch(text):
        raise ValueError(f"must be {what}")
    return text


def phone_number(value: Any) -> str:
    """A mainland mobile number (``+86`` and spaces or dashes dropped)."""
    text = _text(value, most=20)
    digits = re.sub(r"[\s\-()]", "", text or "")
    digits = re.sub(r"^\+?86(?=1[0-9]{10}$)", "", digits)
    if not _MOBILE.fullmatch(digits):
        raise ValueError("must be a mainland mobile number (11 digits starting 13-19)")
    return digits


def id_number_birth_date(value: Any) -> tuple[str, date]:
    """A mainland resident ID number (18 characters, ISO 7064 check character) and the birth
    date in it."""
    text = _text(value, most=18)
    number = (text or "").upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        raise ValueError("must be an 18-character resident ID number")
    check = _ID_CHECK[sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS, strict=True)) % 11]
    if number[17] != check:
        raise ValueError("has a wrong check character (mistyped?)")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError("holds no valid birth date") from None
    return number, born


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise ValueError("must be a date, YYYY-MM-DD")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be a date, YYYY-MM-DD") from None


def _moment(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be a time, ISO 8601 with its offset (2026-12-01T10:00:00+08:00)")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be a time, ISO 8601 with its offset "
                         "(2026-12-01T10:00:00+08:00)") from None
    if moment.utcoffset() is None:
        raise ValueError("must say its offset (+08:00)")
    return moment


def _whole_yuan(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number of yuan")
    if not 0 < value <= MAX_REQUESTED_YUAN:
        raise ValueError(f"must be between 1 and {MAX_REQUESTED_YUAN}")
    return value


def _fen(value: Any) -> int:
    """A settlement amount in yuan (a JSON number or numeric text, at most two decimals) as fen."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("must be a number of yuan")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a number of yuan") from None
    if not amount.is_finite() or amount < 0 or amount > MAX_MONTHLY_SETTLEMENT_YUAN:
        raise ValueError(f"must be between 0 and {MAX_MONTHLY_SETTLEMENT_YUAN} yuan")
    fen = amount * 100
    if fen != fen.to_integral_value():
        raise ValueError("has more than two decimals")
    return int(fen)


def _month(value: Any) -> date:
    found = _MONTH.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None or not 1 <= int(found.group(2)) <= 12 or int(found.group(1)) < 1900:
        raise ValueError("must be a month, YYYY-MM")
    return date(int(found.group(1)), int(found.group(2)), 1)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _applicant(body: Mapping[str, Any], problems: _Problems) -> Applicant | None:
    raw = _object(body, "applicant", "applicant", problems, ("name", "phone", "id_number"))
    if raw is None:
        return None
    name = problems.check("applicant.name", lambda: _text(raw.get("name"), most=50))
    phone = problems.check("applicant.phone", lambda: phone_number(raw.get("phone")))
    identity = problems.check("applicant.id_number",
                              lambda: id_number_birth_date(raw.get("id_number")))
    if name is None or phone is None or identity is None:
        return None
    return Applicant(name, phone, identity[0], identity[1])


def _organisation(body: Mapping[str, Any], problems: _Problems) -> Organisation | None:
    raw = _object(body, "organisation", "organisation", problems,
                  ("name", "kind", "region", "address", "insurance_code", "operating_since"))
    if raw is None:
        return None
    name = problems.check("organisation.name", lambda: _text(raw.get("name"), most=100))
    kinds = ", ".join(OrgKind)
    kind = problems.check("organisation.kind", lambda: _kind(raw.get("kind"), kinds))
    region = problems.check("organisation.region", lambda: _text(raw.get("region"), most=100))
    address = problems.check("organisation.address",
                             lambda: _text(raw.get("address"), most=200, optional=True))
    code = problems.check("organisation.insurance_code", lambda: _pattern(
        raw.get("insurance_code"), _INSURANCE_CODE, "6-32 capital letters and digits"))
    since = problems.check("organisation.operating_since",
                           lambda: _date(raw.get("operating_since")))
    if None in (name, kind, region, code, since):
        return None
    return Organisation(name, kind, region, address, code, since)


def _kind(value: Any, kinds: str) -> OrgKind:
    try:
        return OrgKind(value)
    except ValueError:
        raise ValueError(f"must be one of {kinds}") from None


def _consent(body: Mapping[str, Any], problems: _Problems) -> Consent | None:
    raw = _object(body, "consent", "consent", problems,
                  ("given", "signed_at", "expires_at", "reference"))
    if raw is None:
        return None
    given = problems.check("consent.given", lambda: _flag(raw.get("given")))
    reference = problems.check("consent.reference",
                               lambda: _text(raw.get("reference"), most=64, optional=True))
    signed_at = expires_at = None
    if given or raw.get("signed_at") is not None:
        signed_at = problems.check("consent.signed_at", lambda: _moment(raw.get("signed_at")))
    if given or raw.get("expires_at") is not None:
        expires_at = problems.check("consent.expires_at", lambda: _moment(raw.get("expires_at")))
    if signed_at is not None and expires_at is not None and expires_at <= signed_at:
        problems.add("consent.expires_at", "must be after signed_at")
        return None
    if given is None or (given and (signed_at is None or expires_at is None)):
        return None
    return Consent(given, signed_at, expires_at, reference)


def _settlements(body: Mapping[str, Any],
                 problems: _Problems) -> tuple[MonthlySettlement, ...] | None:
    raw = body.get("settlement")
    if not isinstance(raw, list):
        problems.add("settlement", "is missing" if raw is None
                     else "must be a list of {month, amount_yuan}")
        return None
    if len(raw) > MAX_SETTLEMENT_MONTHS:
        problems.add("settlement", f"has more than {MAX_SETTLEMENT_MONTHS} months")
        return None
    months: dict[date, MonthlySettlement] = {}
    fine = True
    for index, item in enumerate(raw):
        where = f"settlement[{index}]"
        if not isinstance(item, Mapping):
            problems.add(where, "must be a JSON object {month, amount_yuan}")
            fine = False
            continue
        for unknown in sorted(set(item) - {"month", "amount_yuan"}):
            problems.add(f"{where}.{unknown}", "is not a field of it")
            fine = False
        month = problems.check(f"{where}.month", lambda item=item: _month(item.get("month")))
        fen = problems.check(f"{where}.amount_yuan",
                             lambda item=item: _fen(item.get("amount_yuan")))
        if month is None or fen is None:
            fine = False
            continue
        if month in months:
            problems.add(f"{where}.month", f"{month:%Y-%m} is listed twice")
            fine = False
            continue
        months[month] = MonthlySettlement(month, fen)
    if not fine:
        return None
    return tuple(sorted(months.values(), key=lambda s: s.month, reverse=True))


def parse_application(body: Any) -> Application:
    """The application in a request's JSON body; :class:`ApplicationInvalid` naming every bad
    field otherwise."""
    if not isinstance(body, Mapping):
        raise ApplicationInvalid([("(body)", "must be a JSON object")])
    problems = _Problems()
    for unknown in sorted(set(body) - set(FIELDS)):
        problems.add(unknown, "is not a field of an application")
    ref = problems.check("application_id", lambda: _pattern(
        body.get("application_id"), _ID, "1-64 of A-Z a-z 0-9 . _ : -"))
    customer_id = problems.check("customer_id", lambda: _pattern(
        body.get("customer_id"), _CUSTOMER_ID, "1-64 characters without spaces", optional=True))
    campaign_id = problems.check("campaign_id", lambda: _pattern(
        body.get("campaign_id"), _CUSTOMER_ID, "1-64 characters without spaces", optional=True))
    amount = problems.check("requested_amount_yuan",
                            lambda: _whole_yuan(body.get("requested_amount_yuan")))
    applicant = _applicant(body, problems)
    organisation = _organisation(body, problems)
    consent = _consent(body, problems)
    settlements = _settlements(body, problems)
    if problems.found:
        raise ApplicationInvalid(problems.found)
    assert ref and amount and applicant and organisation and consent and settlements is not None
    return Application(ref, applicant, organisation, consent, settlements, amount,
                       customer_id, campaign_id)
