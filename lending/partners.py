"""The partner systems allowed to submit applicants: who they are, the key they sign with, where
their results go, what they offer and by which rules. Read once at start-up from the file
``OFFERCALL_PARTNERS`` names (YAML, or JSON, which YAML reads too); a file that cannot be used
stops the start (:class:`lending.errors.PartnerConfigError`), never a request mid-way.

::

    partners:
      yibao:                                   # the partner's id: 1-32 of a-z 0-9 _ -
        name: 医保服务平台
        secret_env: OFFERCALL_PARTNER_YIBAO_KEY  # or ``secret: …`` in the file (32+ characters)
        callback_url: https://partner.example/offercall/results
        product: 医保贷                         # the offer an admitted applicant gets
        offer: {rate_min: 3.85, rate_max: 6.5, term_months: 12, valid_days: 30}
        segment: 医保客户                       # a new customer's segment
        campaigns: [yibao-dec]                  # campaigns its applicants may join
        default_campaign: yibao-dec             # … the one they join when the request names none
        window_s: 300                           # how far its clock may be from ours
        rules: {max_amount_yuan: 300000}        # overrides of lending.intake_rules.AdmissionPolicy

A partner's key never appears in a ``repr`` or a log line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from lending.errors import PartnerConfigError
from lending.intake_rules import AdmissionPolicy
from lending.signatures import DEFAULT_WINDOW_S

_PARTNER_ID = re.compile(r"[a-z0-9_-]{1,32}")
MIN_SECRET = 32
"""Characters a partner's key has at least."""
_FIELDS = ("name", "secret", "secret_env", "callback_url", "product", "offer", "segment",
           "campaigns", "default_campaign", "window_s", "rules")
_OFFER_FIELDS = ("rate_min", "rate_max", "term_months", "valid_days")


@dataclass(frozen=True)
class OfferTerms:
    """The offer an admitted applicant gets (its amount is the decision's)."""

    product: str = "医保贷"
    rate_min: Decimal = Decimal("3.85")
    rate_max: Decimal = Decimal("6.5")
    term_months: int = 12
    valid_days: int = 30
    """How long the offer stands, from the admission."""


@dataclass(frozen=True)
class Partner:
    """One partner system."""

    id: str
    name: str
    secret: str = field(repr=False)
    """The key both sides sign with (HMAC-SHA256, ``lending.signatures``)."""
    callback_url: str = ""
    offer: OfferTerms = OfferTerms()
    segment: str = "医保客户"
    campaigns: tuple[str, ...] = ()
    default_campaign: str | None = None
    window_s: int = DEFAULT_WINDOW_S
    policy: AdmissionPolicy = AdmissionPolicy()

    def campaign_for(self, asked: str | None) -> str | None:
        """The campaign an admitted applicant joins: the one asked for (which must be one of
        the partner's: ``ValueError`` otherwise), else the partner's default."""
        if asked is None:
            return self.default_campaign
        if asked not in self.campaigns:
            allowed = ", ".join(self.campaigns) or "none"
            raise ValueError(f"campaign {asked!r} is not one of this partner's ({allowed})")
        return asked


class Partners(Mapping[str, Partner]):
    """The partners by id (none: the intake API refuses everyone)."""

    def __init__(self, partners: Mapping[str, Partner] | None = None) -> None:
        self._partners = dict(partners or {})

    def __getitem__(self, partner_id: str) -> Partner:
        return self._partners[partner_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._partners)

    def __len__(self) -> int:
        return len(self._partners)

    def __repr__(self) -> str:
        return f"Partners({', '.join(self._partners) or 'none'})"


def _text(raw: Mapping[str, Any], key: str, default: str | None = None, most: int = 100) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key} must be non-empty text")
    if len(value.strip()) > most:
        raise ValueError(f"{key} must be at most {most} characters")
    return value.strip()


def _whole(raw: Mapping[str, Any], key: str, default: int, least: int, most: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise ValueError(f"{key} must be a whole number from {least} to {most}, got {value!r}")
    return value


def _rate(raw: Mapping[str, Any], key: str, default: Decimal) -> Decimal:
    value = raw.get(key, default)
    try:
        rate = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        rate = None
    if rate is None or not Decimal(0) < rate <= Decimal(36) \
            or rate != rate.quantize(Decimal("0.01")):
        raise ValueError(f"offer.{key} must be a percentage above 0, at most 36, with at most "
                         f"two decimals; got {value!r}")
    return rate


def _offer(raw: Any, product: str) -> OfferTerms:
    if raw is None:
        return OfferTerms(product=product)
    if not isinstance(raw, Mapping):
        raise ValueError("offer must be a mapping of " + ", ".join(_OFFER_FIELDS))
    unknown = sorted(set(raw) - set(_OFFER_FIELDS))
    if unknown:
        raise ValueError(f"offer has unknown fields: {', '.join(unknown)}")
    base = OfferTerms()
    low, high = _rate(raw, "rate_min", base.rate_min), _rate(raw, "rate_max", base.rate_max)
    if low > high:
        raise ValueError("offer.rate_min must not be above offer.rate_max")
    return OfferTerms(product, low, high, _whole(raw, "term_months", base.term_months, 1, 360),
                      _whole(raw, "valid_days", base.valid_days, 1, 365))


def _secret(raw: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    if ("secret" in raw) == ("secret_env" in raw):
        raise ValueError("give the key as exactly one of secret or secret_env")
    if "secret_env" in raw:
        name = raw["secret_env"]
        if not isinstance(name, str) or not environ.get(name):
            raise ValueError(f"secret_env names {name!r}, which is not set in the environment")
        secret = environ[name]
    else:
        secret = raw["secret"]
        if not isinstance(secret, str):
            raise ValueError("secret must be text")
    if len(secret) < MIN_SECRET or any(c.isspace() for c in secret):
        raise ValueError(f"the key must be at least {MIN_SECRET} characters without spaces")
    return secret


def _callback_url(raw: Mapping[str, Any]) -> str:
    url = _text(raw, "callback_url", most=500)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"callback_url must be an http(s) URL, got {url!r}")
    return url


def _campaigns(raw: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    listed = raw.get("campaigns", [])
    if not isinstance(listed, list) or not all(isinstance(c, str) and c.strip() for c in listed):
        raise ValueError("campaigns must be a list of campaign ids")
    default = raw.get("default_campaign")
    if default is not None and (not isinstance(default, str) or not default.strip()):
        raise ValueError("default_campaign must be a campaign id")
    campaigns = tuple(dict.fromkeys(c.strip() for c in listed))
    if default is not None and default.strip() not in campaigns:
        campaigns = (*campaigns, default.strip())
    return campaigns, default.strip() if default else None


def _partner(partner_id: str, raw: Any, environ: Mapping[str, str]) -> Partner:
    if not _PARTNER_ID.fullmatch(partner_id):
        raise ValueError("a partner's id is 1-32 of a-z 0-9 _ -")
    if not isinstance(raw, Mapping):
        raise ValueError("must be a mapping of " + ", ".join(_FIELDS))
    unknown = sorted(set(raw) - set(_FIELDS))
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(unknown)}")
    rules = raw.get("rules", {})
    if not isinstance(rules, Mapping):
        raise ValueError("rules must be a mapping")
    campaigns, default = _campaigns(raw)
    product = _text(raw, "product", "医保贷")
    return Partner(
        id=partner_id, name=_text(raw, "name"), secret=_secret(raw, environ),
        callback_url=_callback_url(raw), offer=_offer(raw.get("offer"), product),
        segment=_text(raw, "segment", "医保客户"), campaigns=campaigns, default_campaign=default,
        window_s=_whole(raw, "window_s", DEFAULT_WINDOW_S, 10, 3600),
        policy=AdmissionPolicy.from_mapping(rules),
    )


def parse_partners(raw: Any, environ: Mapping[str, str] | None = None) -> Partners:
    """The partners in a parsed file (``{"partners": {id: {...}}}``); keys named by
    ``secret_env`` are read from ``environ`` (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    if not isinstance(raw, Mapping) or set(raw) != {"partners"} or not isinstance(
            raw["partners"], Mapping):
        raise PartnerConfigError("the partners' file must hold one mapping, partners: {id: {...}}")
    partners = {}
    for partner_id, entry in raw["partners"].items():
        try:
            partners[str(partner_id)] = _partner(str(partner_id), entry, env)
        except ValueError as exc:
            raise PartnerConfigError(f"partner {partner_id}: {exc}") from None
    return Partners(partners)


def load_partners(path: Path | None, environ: Mapping[str, str] | None = None) -> Partners:
    """The partners in the file at ``path`` (none: no partners)."""
    if path is None:
        return Partners()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PartnerConfigError(
            f"OFFERCALL_PARTNERS: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:  # its message quotes the line, which may hold a key: not shown
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise PartnerConfigError(f"OFFERCALL_PARTNERS: {path} is not YAML or JSON{where}") from None
    try:
        return parse_partners(raw, environ)
    except PartnerConfigError as exc:
        raise PartnerConfigError(f"OFFERCALL_PARTNERS ({path}): {exc}") from None
