"""The bank's branches, where they are, and how far each is from the customers' regions (county
or district): loading them, and the branch nearest a region, which leads and tickets are
routed to first."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from persistence.schema import Branch, RegionBranch


def nearest_branch(region: str, distances: Mapping[str, Mapping[str, float]]) -> str | None:
    """The branch closest to ``region`` (``distances[region][branch_id]`` in km), pure.

    Ties go to the smallest branch_id. Region names are compared after stripping whitespace.
    None for an unknown region or a region without branches.
    """
    wanted = region.strip()
    candidates = [
        (km, branch_id)
        for name, branches in distances.items()
        if name.strip() == wanted
        for branch_id, km in branches.items()
    ]
    return min(candidates)[1] if candidates else None


def distances(session: Session, region: str | None = None) -> dict[str, dict[str, float]]:
    """Region -> branch id -> km, for every region (or only ``region``)."""
    query = select(RegionBranch.region, RegionBranch.branch_id, RegionBranch.distance_km)
    if region is not None:
        query = query.where(RegionBranch.region == region.strip())
    table: dict[str, dict[str, float]] = {}
    for name, branch_id, km in session.execute(query):
        table.setdefault(name, {})[branch_id] = km
    return table


def nearest_branch_of(session: Session, region: str | None) -> str | None:
    """The branch nearest the customer's ``region`` (None when it is unknown)."""
    if not region or not region.strip():
        return None
    return nearest_branch(region, distances(session, region))


def nearest_branches(session: Session) -> dict[str, str]:
    """Region -> its nearest branch, for every region with branches."""
    table = distances(session)
    return {region: branch for region in table if (branch := nearest_branch(region, table))}


def branch_names(session: Session) -> dict[str, str]:
    """Branch id -> name."""
    return dict(session.execute(select(Branch.id, Branch.name)).all())


def load_branches(session: Session, path: Path) -> int:
    """Replace the branch and region -> branch tables with ``path`` (CSV: region, branch_id,
    branch_name, distance_km); returns the number of region-branch rows."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"region", "branch_id", "branch_name", "distance_km"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    sites = {branch.id: {"address": branch.address, "lat": branch.lat, "lon": branch.lon}
             for branch in session.execute(select(Branch)).scalars()}  # kept across a reload
    session.execute(delete(RegionBranch))
    session.execute(delete(Branch))
    names: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        try:
            distance = float(row["distance_km"])
        except ValueError as exc:
            raise ValueError(f"{path}:{line}: distance_km must be a number") from exc
        names[row["branch_id"].strip()] = row["branch_name"].strip()
        session.add(RegionBranch(
            region=row["region"].strip(), branch_id=row["branch_id"].strip(), distance_km=distance,
        ))
    session.add_all(Branch(id=branch_id, name=name, **sites.get(branch_id, {}))
                    for branch_id, name in names.items())
    session.flush()
    return len(rows)


SITE_COLUMNS = ("branch_id", "branch_name", "address", "lat", "lon")


def load_branch_sites(session: Session, path: Path) -> int:
    """Where each branch is (CSV: branch_id, branch_name, address, lat, lon in WGS-84 degrees):
    adds branches the file names and sets every listed branch's site; returns the number of
    branches. A bad row is named and nothing is loaded."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = set(SITE_COLUMNS) - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    sites = []
    for line, row in enumerate(rows, start=2):
        try:
            lat, lon = float(row["lat"]), float(row["lon"])
        except ValueError:
            raise ValueError(f"{path}:{line}: lat and lon must be numbers of degrees") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"{path}:{line}: lat {lat}, lon {lon} is not a place on Earth")
        branch_id, name = row["branch_id"].strip(), row["branch_name"].strip()
        if not branch_id or not name:
            raise ValueError(f"{path}:{line}: branch_id and branch_name are required")
        sites.append((branch_id, name, row["address"].strip() or None, lat, lon))
    for branch_id, name, address, lat, lon in sites:
        branch = session.get(Branch, branch_id) or Branch(id=branch_id)
        branch.name, branch.address, branch.lat, branch.lon = name, address, lat, lon
        session.add(branch)
    session.flush()
    return len(sites)


def branch_sites(session: Session) -> dict[str, tuple[float, float]]:
    """Branch id -> (lat, lon), for the branches whose site is known."""
    return {branch_id: (lat, lon) for branch_id, lat, lon in session.execute(
        select(Branch.id, Branch.lat, Branch.lon).where(Branch.lat.is_not(None), Branch.lon.is_not(None)))}
