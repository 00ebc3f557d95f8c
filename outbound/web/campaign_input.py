"""What the campaign API accepts: request bodies and query dates read strictly (pure).

Every problem is a :class:`~outbound.campaigns.CampaignError` whose message names the field
and what is wrong with it; the API answers it as a 400. Nothing here touches the database:
the checks that need it (unknown product, unknown customers, a taken id) are made where the
campaign is written, in the same transaction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from outbound.campaigns import CampaignConfig, CampaignError, check_against

CAMPAIGN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A campaign id: it goes into URLs and file names."""
NAME_LENGTH = 200
CREATE_FIELDS = ("id", "name", "transport", "product", "segment", "customer_ids", "config")
CHANGE_FIELDS = ("name", "config")


@dataclass(frozen=True)
class NewCampaign:
    """A checked request to create a campaign."""

    id: str
    name: str
    transport: str
    config: CampaignConfig
    customer_ids: list[str] | None
    """An explicit list of customers (None: every customer matching product and segment)."""


@dataclass(frozen=True)
class SettingsChange:
    """A checked request to change a campaign: its new name and the settings to change."""

    name: str | None
    settings: dict[str, Any]


@dataclass(frozen=True)
class Installation:
    """What the checks need to know of this installation."""

    variants: tuple[str, ...]
    """The script variants the bot defines."""
    dial_lines: int


def _no_unknown_fields(body: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise CampaignError(f"unknown fields: {', '.join(unknown)} (known: {', '.join(known)})")


def _text(body: dict[str, Any], key: str, *, required: bool,
          limit: int = NAME_LENGTH) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"{key} is required and must be text" if required
                            else f"{key} must be text or null")
    if len(value.strip()) > limit:
        raise CampaignError(f"{key} may be at most {limit} characters")
    return value.strip()


def _campaign_id(body: dict[str, Any]) -> str:
    value = body.get("id")
    if not isinstance(value, str) or not CAMPAIGN_ID.fullmatch(value):
        raise CampaignError("id is required: 1 to 64 letters, digits, '.', '_' or '-', "
                            f"starting with a letter or digit (got {value!r})")
    return value


def _customer_ids(body: dict[str, Any]) -> list[str] | None:
    value = body.get("customer_ids")
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(
            isinstance(item, str) and item.strip() for item in value):
        raise CampaignError("customer_ids must be a non-empty list of customer ids")
    return list(dict.fromkeys(item.strip() for item in value))


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    value = body.get("config", {})
    if not isinstance(value, dict):
        raise CampaignError("config must be a JSON object of campaign settings")
    return value


def new_campaign(body: dict[str, Any], installation: Installation) -> NewCampaign:
    """The create request ``{"id", "name", "transport", "product"?, "segment"?,
    "customer_ids"?, "config"?}`` checked, with its settings checked against the
    installation (transport, script variants, dial lines)."""
    _no_unknown_fields(body, CREATE_FIELDS)
    campaign_id, name = _campaign_id(body), _text(body, "name", required=True)
    transport = body.get("transport")
    if not isinstance(transport, str):
        raise CampaignError("transport is required: simulated or sip")
    settings = _settings(body)
    inside = [key for key in ("product", "segment") if key in settings]
    if inside:
        raise CampaignError(f"give {' and '.join(inside)} beside config, not inside it")
    config = CampaignConfig.from_json({
        **settings, "product": _text(body, "product", required=False, limit=100),
        "segment": _text(body, "segment", required=False, limit=100)})
    check_against(config, transport=transport, known_variants=installation.variants,
                  dial_lines=installation.dial_lines)
    assert name is not None
    return NewCampaign(campaign_id, name, transport, config, _customer_ids(body))


def settings_change(body: dict[str, Any]) -> SettingsChange:
    """The change request ``{"name"?, "config"?: {setting: value}}`` checked (the new
    settings are checked against the campaign when they are merged with its own)."""
    _no_unknown_fields(body, CHANGE_FIELDS)
    if not body:
        raise CampaignError("nothing to change: give name or config")
    return SettingsChange(_text(body, "name", required=False), _settings(body))


def _day(text: str | None, key: str) -> date | None:
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CampaignError(f"{key} must be a date like 2026-11-23, got {text!r}") from None


def day_bounds(start: str | None, end: str | None, timezone: str
               ) -> tuple[datetime | None, datetime | None]:
    """The instants from the start of day ``start`` to the end of day ``end`` (inclusive,
    YYYY-MM-DD, in ``timezone``); None for a bound not given."""
    first, last = _day(start, "from"), _day(end, "to")
    if first is not None and last is not None and first > last:
        raise CampaignError(f"from {first} is after to {last}")
    zone = ZoneInfo(timezone)
    return (datetime.combine(first, time(), zone) if first else None,
            datetime.combine(last + timedelta(days=1), time(), zone) if last else None)
