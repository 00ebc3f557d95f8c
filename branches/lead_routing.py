"""Which branch gets a lead, and which of its account managers. Pure, no I/O and no clock.

A lead goes to the nearest branch that is taking leads: not suspended by its scorecard and
not one the lead was already taken away from. A lead is never dropped: when every such
branch is suspended it goes to the nearest of them anyway, and when the lead has already
been through every branch, to the nearest overall. Within the branch it goes to the account
manager with the fewest open leads. Every choice says why, in Chinese as the branch staff
read it in the lead's history (distances and times as the numbers are, not localised).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from branches.deadlines import describe_time, require_aware

_NO_SUSPENSIONS: Mapping[str, str | None] = MappingProxyType({})


@dataclass(frozen=True)
class Assignment:
    """The branch a lead goes to, and why."""

    branch_id: str
    distance_km: float | None  # None: a branch chosen by hand whose distance is not known
    reason: str  # in Chinese, for the lead's history and the branch's view
    fallback: bool = False  # no branch was eligible: suspended or already tried, taken anyway


def _km(km: float) -> str:
    return f"{km:.1f} 公里"


def _ids(ids: Collection[object]) -> str:
    return "、".join(str(i) for i in ids)


def choose_branch(
    distances: Mapping[str, float], *,
    suspensions: Mapping[str, str | None] = _NO_SUSPENSIONS,
    exclude: Collection[str] = frozenset(),
) -> Assignment | None:
    """The branch a lead goes to; None only when there is no branch at all (region unknown).

    ``distances``: branch_id -> km from the customer's region, from
    ``dict(geo.by_distance(point, branches))`` or ``persistence.branches.distances(...)[region]``.
    ``suspensions``: branch_id -> why it takes no new leads (``scorecard.suspensions``; a None
    reason means not suspended). ``exclude``: branches the lead was already rerouted away from.
    Equally distant branches go by branch_id.
    """
    if isinstance(exclude, str):
        raise TypeError(f"exclude must be a collection of branch ids, not the string {exclude!r}")
    for branch_id, km in distances.items():
        if isinstance(km, bool) or not isinstance(km, (int, float)) or not (
            math.isfinite(km) and km >= 0
        ):
            raise ValueError(f"distance to branch {branch_id!r} must be km >= 0, got {km!r}")
    ordered = sorted(distances.items(), key=lambda item: (item[1], item[0]))
    if not ordered:
        return None
    passed: list[str] = []
    for branch_id, km in ordered:
        if branch_id in exclude:
            passed.append(f"{branch_id}（{_km(km)}）此前已从该支行改派")
        elif (why := suspensions.get(branch_id)) is not None:
            passed.append(f"{branch_id}（{_km(km)}）暂停派单：{why}")
        else:
            if not passed:
                return Assignment(branch_id, km, f"距离最近的支行（{_km(km)}）")
            return Assignment(
                branch_id, km,
                f"距离最近且正常接单的支行（{_km(km)}）；跳过：{'；'.join(passed)}",
            )
    open_to_it = [(branch_id, km) for branch_id, km in ordered if branch_id not in exclude]
    if open_to_it:
        branch_id, km = open_to_it[0]
        tried = [b for b, _ in ordered if b in exclude]
        reason = (
            f"各支行均暂停派单，仍派给距离最近的支行（{_km(km)}），"
            f"其暂停原因：{suspensions[branch_id]}"
        )
        if tried:
            reason += f"；此前已从 {_ids(tried)} 改派"
        return Assignment(branch_id, km, reason, fallback=True)
    branch_id, km = ordered[0]
    return Assignment(
        branch_id, km,
        f"此前已从全部支行（{_ids([b for b, _ in ordered])}）改派，"
        f"仍派给距离最近的支行（{_km(km)}）",
        fallback=True,
    )


@dataclass(frozen=True)
class ManagerAssignment:
    """The account manager a lead goes to within its branch, and why."""

    manager_id: int
    reason: str


def choose_manager(
    open_load: Mapping[int, int], last_assigned_at: Mapping[int, datetime | None],
) -> ManagerAssignment | None:
    """The account manager with the fewest open leads; None when the branch has none.

    ``open_load``: manager id -> open leads, for the managers who may take one now.
    ``last_assigned_at``: manager id -> when they were last given a lead (missing or None:
    never). Ties go to the manager longest without a new lead (never assigned first), then
    to the smallest id.
    """
    for manager_id, load in open_load.items():
        if isinstance(load, bool) or not isinstance(load, int) or load < 0:
            raise ValueError(
                f"open lead count of manager {manager_id!r} must be a whole number >= 0, "
                f"got {load!r}"
            )
    for manager_id, at in last_assigned_at.items():
        if at is not None:
            require_aware(f"last_assigned_at[{manager_id!r}]", at)
    if not open_load:
        return None

    def last(manager_id: int) -> datetime | None:
        return last_assigned_at.get(manager_id)

    def key(manager_id: int) -> tuple:
        at = last(manager_id)
        return open_load[manager_id], at is not None, at or 0, manager_id

    ordered = sorted(open_load, key=key)
    best = ordered[0]
    reason = f"在办线索最少（{open_load[best]} 条）"
    same_load = [m for m in ordered[1:] if open_load[m] == open_load[best]]
    if same_load:
        at = last(best)
        reason += f"，与 {_ids(sorted(same_load))} 并列；"
        reason += (
            "从未分派过线索" if at is None
            else f"距上次分派线索最久（{describe_time(at)}）"
        )
        same_wait = [m for m in same_load if last(m) == at]
        if same_wait:
            reason += f"；此项仍与 {_ids(sorted(same_wait))} 并列：取编号最小者"
    return ManagerAssignment(best, reason)
