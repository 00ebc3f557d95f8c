"""The bank's branches and how far each is from the customers' regions (county or district):
loading them, and the branch nearest a region, which leads and tickets are routed to first."""

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
    session.add_all(Branch(id=branch_id, name=name) for branch_id, name in names.items())
    session.flush()
    return len(rows)
