"""Where branches and customers are, and how far apart: pure great-circle geometry.

Distances are haversine distances on a sphere of the WGS-84 mean radius: within 0.5 % of the
ellipsoidal distance, far closer than "which branch is nearer" needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

EARTH_RADIUS_KM = 6371.0088
"""The WGS-84 ellipsoid's mean radius (IUGG R1), in km."""


def _coordinate(field: str, value: object, limit: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"Point.{field} must be a number of degrees, got {value!r}")
    if not (math.isfinite(value) and -limit <= value <= limit):
        raise ValueError(f"Point.{field} must be between -{limit:g} and {limit:g}, got {value!r}")


@dataclass(frozen=True)
class Point:
    """A place, in decimal degrees (WGS-84, as GPS and most map providers outside China give;
    convert GCJ-02 map coordinates first)."""

    lat: float  # north positive, -90 .. 90
    lon: float  # east positive, -180 .. 180

    def __post_init__(self) -> None:
        _coordinate("lat", self.lat, 90)
        _coordinate("lon", self.lon, 180)


class BranchDistance(NamedTuple):
    """A branch and how far it is, in km (a plain ``(branch_id, km)`` pair as well)."""

    branch_id: str
    km: float


def distance_km(a: Point, b: Point) -> float:
    """The great-circle distance between ``a`` and ``b`` in km (haversine)."""
    lat_a, lat_b = math.radians(a.lat), math.radians(b.lat)
    half_dlat = (lat_b - lat_a) / 2
    half_dlon = math.radians(b.lon - a.lon) / 2
    h = math.sin(half_dlat) ** 2 + math.cos(lat_a) * math.cos(lat_b) * math.sin(half_dlon) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def by_distance(point: Point, branches: Mapping[str, Point]) -> list[BranchDistance]:
    """Every branch (branch_id -> where it is) with its distance from ``point``, nearest first;
    equally distant branches by branch_id.

    ``dict(by_distance(...))`` is the branch_id -> km table ``lead_routing.choose_branch`` takes.
    """
    return sorted(
        (BranchDistance(branch_id, distance_km(point, at)) for branch_id, at in branches.items()),
        key=lambda d: (d.km, d.branch_id),
    )
