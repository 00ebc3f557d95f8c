"""Who 医保贷 admits: the admission rules for a partner's applicant, and the amount offered.
Pure: the caller gives the application, the facts only the database knows, the policy and
the time.

The applicant is the contact of a clinic or pharmacy designated for medical-insurance
settlement; the bank lends on the organisation's settlement flow. Every rule is judged and
every failure reported (a partner shows its applicant all the reasons at once):

==========================  ==============================================================
code                        refused when
==========================  ==============================================================
consent_missing             the applicant did not authorise the bank
consent_not_yet_valid       the authorisation is signed in the future (beyond clock skew)
consent_stale               it was signed more than ``consent_max_age_days`` ago
consent_expired             it has expired
age_out_of_range            the applicant is younger than ``min_age`` or older than ``max_age``
org_kind_not_served         the organisation is not of ``org_kinds``
operating_too_short         designated for less than ``min_operating_months``
region_not_served           no branch within ``max_branch_km`` of the organisation's region
settlement_history_short    fewer than ``min_settlement_months`` consecutive months
settlement_stale            the newest month is more than ``max_settlement_lag_months`` old
settlement_too_low          the monthly average is below ``min_monthly_settlement_yuan``
amount_below_minimum        the amount asked for is below ``min_amount_yuan``
limit_below_minimum         the settlement-based limit is below ``min_amount_yuan``
do_not_contact              the applicant is on the do-not-contact list
==========================  ==============================================================

The limit is ``settlement_multiple`` × the average of the newest consecutive months (at most
12), capped at ``max_amount_yuan`` and rounded down to ``amount_step_yuan``. An admitted
applicant is offered what they asked for, at most the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from core.vocabulary import StrEnum
from lending.intake_input import ORG_KIND_TEXT, Application, MonthlySettlement, OrgKind

AVERAGE_MONTHS = 12
"""The limit averages at most the newest this many consecutive months."""
CLOCK_SKEW = timedelta(minutes=5)
"""A consent signed this little in the future is taken (the partner's clock runs ahead)."""


class ApplicationStatus(StrEnum):
    """What became of an application."""

    ADMITTED = "admitted"
    """Admitted: the applicant is a branch lead with an offer."""
    REFUSED = "refused"
    """Refused, with the reasons."""


@dataclass(frozen=True)
class AdmissionPolicy:
    """The thresholds of the rules (a partner's ``rules`` in the partners' file override them)."""

    min_age: int = 22
    max_age: int = 60
    org_kinds: frozenset[OrgKind] = frozenset(OrgKind)
    consent_max_age_days: int = 30
    min_operating_months: int = 12
    max_branch_km: int = 100
    """A branch must be this near, to verify the applicant in person."""
    min_settlement_months: int = 6
    max_settlement_lag_months: int = 2
    """The newest month may be this many months before the current one (the settlement
    system closes a month some weeks after it ends)."""
    min_monthly_settlement_yuan: int = 20_000
    settlement_multiple: Decimal = Decimal(3)
    min_amount_yuan: int = 10_000
    max_amount_yuan: int = 500_000
    amount_step_yuan: int = 1_000

    def __post_init__(self) -> None:
        problems = []
        if not 18 <= self.min_age <= self.max_age <= 80:
            problems.append("ages must satisfy 18 <= min_age <= max_age <= 80")
        if not self.org_kinds:
            problems.append("org_kinds must name at least one kind")
        for name in ("consent_max_age_days", "min_settlement_months", "amount_step_yuan",
                     "min_amount_yuan", "max_branch_km"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("min_operating_months", "max_settlement_lag_months",
                     "min_monthly_settlement_yuan"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must not be negative")
        if self.min_settlement_months > 36:
            problems.append("min_settlement_months must be at most 36")
        if not Decimal(0) < self.settlement_multiple <= Decimal(24):
            problems.append("settlement_multiple must be above 0 and at most 24")
        if self.max_amount_yuan < self.min_amount_yuan:
            problems.append("max_amount_yuan must be at least min_amount_yuan")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> AdmissionPolicy:
        """A policy from the partners' file: the defaults with ``raw``'s overrides, cast
        strictly (a count is an integer, never ``"12"`` or ``true``); ``ValueError`` names the
        bad key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown rules: {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "org_kinds":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError("org_kinds must be a list of kinds")
                try:
                    values[key] = frozenset(OrgKind(v) for v in value)
                except ValueError:
                    raise ValueError(f"org_kinds must be of {', '.join(OrgKind)}") from None
            elif key == "settlement_multiple":
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    raise ValueError("settlement_multiple must be a number")
                values[key] = Decimal(str(value))
            else:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{key} must be a whole number, got {value!r}")
                values[key] = value
        return cls(**values)


@dataclass(frozen=True)
class IntakeFacts:
    """What only the database knows about the applicant."""

    do_not_contact: bool
    """The applicant (their customer id or phone) is on the do-not-contact list."""
    branch_km: float | None
    """How far the nearest branch is from where the lead would go (the region's row in the
    distance table, or straight-line from a county we know to the branches' sites); None: no
    branch is known to serve it."""


@dataclass(frozen=True)
class Reason:
    """Why an application was refused: a stable code and what to tell the applicant."""

    code: str
    message: str
    """In Chinese, as the partner shows it to its applicant."""

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Decision:
    """The admission decision."""

    status: ApplicationStatus
    reasons: tuple[Reason, ...] = ()
    amount_yuan: int | None = None
    """The amount offered (admitted only)."""
    limit_yuan: int | None = None
    """The settlement-based limit (when there was enough settlement data to compute it)."""
    average_fen: int | None = None
    """The monthly settlement average the limit is from."""

    @property
    def admitted(self) -> bool:
        return self.status == ApplicationStatus.ADMITTED


def age_on(born: date, day: date) -> int:
    """Whole years from ``born`` to ``day`` (a 29 February birthday comes on 1 March)."""
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def months_between(earlier: date, later: date) -> int:
    """Calendar months from ``earlier``'s month to ``later``'s (2026-09 → 2026-11: 2)."""
    return (later.year - earlier.year) * 12 + later.month - earlier.month


def consecutive_run(settlements: tuple[MonthlySettlement, ...]) -> tuple[MonthlySettlement, ...]:
    """The newest months without a gap between them, newest first (``settlements`` are
    newest first, each month once)."""
    run: list[MonthlySettlement] = []
    for item in settlements:
        if run and months_between(item.month, run[-1].month) != 1:
            break
        run.append(item)
    return tuple(run)


def settlement_limit(run: tuple[MonthlySettlement, ...],
                     policy: AdmissionPolicy) -> tuple[int, int]:
    """The limit in yuan and the monthly average in fen it is from (see the module docstring)."""
    window = run[:AVERAGE_MONTHS]
    average_fen = sum(item.amount_fen for item in window) // len(window)
    raw = Decimal(average_fen) / 100 * policy.settlement_multiple
    step = policy.amount_step_yuan
    limit = int((raw / step).to_integral_value(rounding=ROUND_FLOOR)) * step
    return min(limit, policy.max_amount_yuan // step * step), average_fen


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.0f}"


def _consent_reasons(application: Application, policy: AdmissionPolicy,
                     now: datetime) -> list[Reason]:
    consent = application.consent
    if not consent.given or consent.signed_at is None or consent.expires_at is None:
        return [Reason("consent_missing", "申请人未授权本行获取其数据并与其联系")]
    if consent.signed_at > now + CLOCK_SKEW:
        return [Reason("consent_not_yet_valid", "授权签署时间晚于当前时间，请核对授权记录")]
    reasons = []
    if consent.expires_at <= now:
        reasons.append(Reason("consent_expired", "申请人的授权已过期，请重新签署授权"))
    if now - consent.signed_at > timedelta(days=policy.consent_max_age_days):
        reasons.append(Reason("consent_stale", f"授权签署已超过{policy.consent_max_age_days}天，"
                                               "请重新签署授权"))
    return reasons


def _settlement_reasons(run: tuple[MonthlySettlement, ...], policy: AdmissionPolicy,
                        today: date) -> tuple[list[Reason], tuple[int, int] | None]:
    """The settlement rules' failures, and the limit with its average when there is enough
    history to compute it."""
    reasons = []
    if len(run) < policy.min_settlement_months:
        reasons.append(Reason(
            "settlement_history_short",
            f"医保结算数据不足：需最近连续{policy.min_settlement_months}个月，现有{len(run)}个月"))
    if run and months_between(run[0].month, today) > policy.max_settlement_lag_months:
        reasons.append(Reason(
            "settlement_stale",
            f"最近一期医保结算数据为{run[0].month:%Y-%m}，已超过"
            f"{policy.max_settlement_lag_months}个月，请更新数据"))
    if not run:
        return reasons, None
    limit, average_fen = settlement_limit(run, policy)
    if average_fen < policy.min_monthly_settlement_yuan * 100:
        reasons.append(Reason(
            "settlement_too_low",
            f"月均医保结算金额{_yuan(average_fen)}元，低于准入标准"
            f"{policy.min_monthly_settlement_yuan:,}元"))
    return reasons, (limit, average_fen)


def decide(application: Application, facts: IntakeFacts, policy: AdmissionPolicy,
           now: datetime, today: date) -> Decision:
    """The admission decision at ``now`` (aware), ``today`` being the bank's local date."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    reasons = _consent_reasons(application, policy, now)
    age = age_on(application.applicant.birth_date, today)
    if not policy.min_age <= age <= policy.max_age:
        reasons.append(Reason("age_out_of_range", f"申请人年龄须在{policy.min_age}至"
                                                  f"{policy.max_age}周岁之间（现{age}周岁）"))
    organisation = application.organisation
    if organisation.kind not in policy.org_kinds:
        served = "、".join(ORG_KIND_TEXT[kind] for kind in sorted(policy.org_kinds))
        reasons.append(Reason("org_kind_not_served",
                              f"机构类型（{ORG_KIND_TEXT[organisation.kind]}）不在准入范围（{served}）"))
    operating = months_between(organisation.operating_since, today) - (
        today.day < organisation.operating_since.day)
    if operating < policy.min_operating_months:
        reasons.append(Reason("operating_too_short",
                              f"机构成为医保定点不足{policy.min_operating_months}个月"))
    if facts.branch_km is None:
        reasons.append(Reason("region_not_served",
                              f"机构所在地区（{organisation.region}）暂无本行服务网点"))
    elif facts.branch_km > policy.max_branch_km:
        reasons.append(Reason("region_not_served",
                              f"机构所在地区（{organisation.region}）距最近网点约"
                              f"{facts.branch_km:.0f}公里，超出{policy.max_branch_km}公里服务范围"))
    run = consecutive_run(application.settlements)
    settlement_reasons, limit = _settlement_reasons(run, policy, today)
    reasons += settlement_reasons
    if application.requested_amount_yuan < policy.min_amount_yuan:
        reasons.append(Reason("amount_below_minimum",
                              f"申请金额低于最低{policy.min_amount_yuan:,}元"))
    if limit is not None and limit[0] < policy.min_amount_yuan:
        reasons.append(Reason("limit_below_minimum",
                              f"按医保结算流水测算额度为{limit[0]:,}元，低于最低"
                              f"{policy.min_amount_yuan:,}元"))
    if facts.do_not_contact:
        reasons.append(Reason("do_not_contact", "申请人已登记拒绝本行联系"))
    limit_yuan, average_fen = limit if limit is not None else (None, None)
    if reasons:
        return Decision(ApplicationStatus.REFUSED, tuple(reasons), None, limit_yuan, average_fen)
    assert limit_yuan is not None
    offered = min(application.requested_amount_yuan, limit_yuan)
    return Decision(ApplicationStatus.ADMITTED, (), offered, limit_yuan, average_fen)
