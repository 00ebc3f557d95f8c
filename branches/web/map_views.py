"""The marketing map's points and JSON, pure: where a customer is drawn, in what status, and
the strict reading of the map API's request values. Imports no aiohttp and no SQLAlchemy
(``branches.web.map_api`` reads the database and passes the rows in).

Where a point goes: the county the customer's address names (``branches.regions``), else the
county of their region field, at that county's point in data/divisions_cn.csv (its seat of
government, or the area centroid where no seat is known; the same ``point`` the bundled
counties.geojson carries). Several customers of one county would sit on one pixel, so each
is moved by a small offset derived from the customer id alone (``spread``): the same
customer lands on the same spot on every load, in every process and for every viewer, and no
randomness or other customer moves it. The offset is at most ``MAX_SPREAD_KM`` (1.5 km, about
nine pixels with the branch's area filling the map): enough to pull a county's points apart,
small enough that a point stays inside its county wherever the county's point is further than
that from its border (every county data/branches.csv's branches serve is 2.4 km or more; a
dense city district's seat can be closer, and the tooltip and panel name the county anyway).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from branches.geo import EARTH_RADIUS_KM, Point
from branches.leads import Lead
from branches.regions import Division, resolve_address, resolve_region
from branches.web.lead_views import Names, missed_deadline

MAX_SPREAD_KM = 1.5
"""The furthest a customer's point is moved from their county's point."""
CUSTOMER = "customer"
"""The status of a customer in the branch's area with no lead: someone to market to."""
CUSTOMER_ID = re.compile(r"[^\s/\\]{1,64}")
"""A customer id as the whitelist keeps it: up to 64 characters, no spaces or slashes."""
BRANCH = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180


def parse_customer_id(value: str) -> str:
    """The path's customer id, or ``ValueError`` saying why it cannot be one."""
    if not CUSTOMER_ID.fullmatch(value) or not value.isprintable():
        raise ValueError(f"not a customer id: {value[:80]!r} (1-64 characters, no spaces "
                         "or slashes)")
    return value


def parse_branch(value: str | None) -> str | None:
    """``?branch=`` (None: missing or empty), or ``ValueError``."""
    if not value:
        return None
    if not BRANCH.fullmatch(value):
        raise ValueError(f"not a branch id: {value[:80]!r}")
    return value


# ------------------------------------------------------------------ where
@dataclass(frozen=True)
class Located:
    """The county a customer is drawn in, and what told us."""

    division: Division
    by: str  # "address" or "region"


def locate(address: str | None, region: str | None) -> Located | None:
    """The county of the customer's address, else of their region field; None if neither
    names one (the map lists such customers as unplaced)."""
    if address and (division := resolve_address(address)) is not None:
        return Located(division, "address")
    if region and (division := resolve_region(region)) is not None:
        return Located(division, "region")
    return None


def area_json(regions: Iterable[str]) -> list[dict[str, str]]:
    """The counties of a branch's area (its regions that name one), by adcode: the map
    tints them."""
    found = {d.adcode: d for region in regions if (d := resolve_region(region)) is not None}
    return [{"adcode": code, "name": d.county, "city": d.city} for code, d in sorted(found.items())]


def _unit_pair(customer_id: str) -> tuple[float, float]:
    """Two numbers in [0, 1) from the id's SHA-256 (stable everywhere, unlike ``hash``)."""
    digest = hashlib.sha256(customer_id.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") / 2**64, int.from_bytes(digest[8:16], "big") / 2**64)


def spread(point: Point, customer_id: str) -> Point:
    """``point`` moved by the customer's own offset: a direction and a distance of up to
    ``MAX_SPREAD_KM`` (uniform over the disc), in km on the ground (the longitude step is
    widened by 1/cos(latitude))."""
    turn, share = _unit_pair(customer_id)
    km = MAX_SPREAD_KM * math.sqrt(share)
    angle = 2 * math.pi * turn
    dlat = km * math.sin(angle) / _KM_PER_DEGREE
    dlon = km * math.cos(angle) / (_KM_PER_DEGREE * math.cos(math.radians(point.lat)))
    return Point(round(point.lat + dlat, 6), round(point.lon + dlon, 6))


# ------------------------------------------------------------------ what
@dataclass(frozen=True)
class Subject:
    """A customer the map may show, masked, with the lead this viewer sees them by (None: a
    customer of the branch's area with no lead)."""

    customer_id: str
    masked_name: str
    masked_phone: str
    region: str
    address: str | None
    lead: Lead | None


def representative(found: Iterable[Lead]) -> dict[str, Lead]:
    """Customer id -> the one lead their point shows: an open lead first, else the one closed
    last (a customer may have had several)."""
    def key(lead: Lead) -> tuple:
        return (lead.is_open, (lead.closed_at or lead.updated_at).timestamp(), lead.id)

    chosen: dict[str, Lead] = {}
    for lead in found:
        held = chosen.get(lead.customer_id)
        if held is None or key(lead) > key(held):
            chosen[lead.customer_id] = lead
    return chosen


def status_of(lead: Lead | None) -> str:
    return str(lead.status) if lead is not None else CUSTOMER


def _county(located: Located) -> dict[str, str]:
    return {"adcode": located.division.adcode, "name": located.division.county,
            "city": located.division.city}


def point_json(subject: Subject, names: Names) -> dict[str, Any] | None:
    """One point of the map, or None when the customer cannot be placed."""
    located = locate(subject.address, subject.region)
    if located is None:
        return None
    at = spread(located.division.point, subject.customer_id)
    lead = subject.lead
    missed = missed_deadline(lead) if lead is not None else None
    return {
        "customer_id": subject.customer_id,
        "name": subject.masked_name,
        "phone": subject.masked_phone,
        "status": status_of(lead),
        "overdue": missed is not None,
        "missed": str(missed) if missed else None,
        "outcome": str(lead.outcome) if lead is not None and lead.outcome else None,
        "lead_id": lead.id if lead is not None else None,
        "product": lead.product if lead is not None else None,
        "amount_yuan": lead.amount_yuan if lead is not None else None,
        "manager": names.account(lead.manager_id) if lead is not None else None,
        "county": _county(located),
        "located_by": located.by,
        "lon": at.lon,
        "lat": at.lat,
    }


def unplaced_json(subject: Subject) -> dict[str, Any]:
    """A customer neither whose address nor region names a county."""
    return {"customer_id": subject.customer_id, "name": subject.masked_name,
            "status": status_of(subject.lead), "region": subject.region}


# ------------------------------------------------------------------ the panel
@dataclass(frozen=True)
class OfferTerms:
    product: str
    amount_yuan: int
    rate_min: float
    rate_max: float
    term_months: int
    valid_until: date


@dataclass(frozen=True)
class CallRecord:
    """One dial of the customer by a campaign."""

    campaign_id: str
    attempt_no: int
    status: str  # dialing | done | interrupted
    outcome: str | None
    started_at: datetime
    ended_at: datetime | None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def offer_json(offer: OfferTerms | None) -> dict[str, Any] | None:
    if offer is None:
        return None
    return {"product": offer.product, "amount_yuan": offer.amount_yuan,
            "rate_min": offer.rate_min, "rate_max": offer.rate_max,
            "term_months": offer.term_months, "valid_until": offer.valid_until.isoformat()}


def history_json(events: Iterable[tuple[int, Mapping[str, Any]]],
                 calls: Iterable[CallRecord]) -> list[dict[str, Any]]:
    """The customer's lead events (``(lead_id, event_json)``) and campaign calls, oldest
    first, each saying which it is."""
    rows: list[dict[str, Any]] = [
        {"source": "lead", "lead_id": lead_id, **event} for lead_id, event in events]
    rows += [{"source": "call", "at": _iso(call.started_at), "kind": "call",
              "campaign_id": call.campaign_id, "attempt_no": call.attempt_no,
              "status": call.status, "outcome": call.outcome, "ended_at": _iso(call.ended_at)}
             for call in calls]
    return sorted(rows, key=lambda row: (datetime.fromisoformat(row["at"]), row["source"]))


def lead_summary_json(lead: Lead, names: Names) -> dict[str, Any]:
    missed = missed_deadline(lead)
    return {"id": lead.id, "url": f"/workspace/leads/{lead.id}", "status": str(lead.status),
            "outcome": str(lead.outcome) if lead.outcome else None, "is_open": lead.is_open,
            "overdue": missed is not None, "missed": str(missed) if missed else None,
            "branch": names.branch(lead.branch_id), "manager": names.account(lead.manager_id),
            "source": str(lead.source), "assigned_at": _iso(lead.assigned_at)}
