"""Post-loan alert rules (贷后预警) over one customer's settlements. Pure: no clock, no I/O.

Every rule judges the series *as of* ``today`` (the bank's local date): a settlement dated
after it is not known yet, so the same series gives what was known on any day. A month is
judged only once it is over: the *judged month* is the calendar month before ``today``'s, and
it is compared with the month before that.

- :func:`month_drop` — the judged month's total fell from the month before by *more than*
  ``drop_pct`` % (exactly the threshold is no alert). No alert without a month before to
  compare with (its total is zero).
- :func:`no_settlement` — no settlement on any of the ``idle_days`` days before today (the
  last one was ``idle_days + 1`` days ago or earlier). No alert for a customer without any
  settlement: nothing says they should have one.
- :func:`payer_concentration` — one payer's share of the judged month is *above*
  ``payer_share_pct`` % when, the month before, no payer's share was (a sudden concentration;
  one that was there already is no news). Both months need ``payer_min_count`` settlements at
  least: a share of two payments says little.

Each finding names its rule, its figures and its *period* (the judged month, or the first
day without a settlement). A customer has at most one alert per rule and period
(:func:`unseen`), so judging the same series again raises nothing new, and a spell without
settlements is one alert however long it lasts. Amounts are whole fen (1/100 yuan); shares
and drops are compared exactly, in integers, and only shown rounded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from core.vocabulary import AlertRule

RULE_NAMES = {
    AlertRule.MONTH_DROP: "结算额环比下降",
    AlertRule.NO_SETTLEMENT: "连续无结算",
    AlertRule.PAYER_CONCENTRATION: "付款方集中",
}
"""Each rule as the managers' page names it."""


@dataclass(frozen=True)
class Settlement:
    """One settlement: its local date, amount in fen (above 0) and who paid it."""

    on: date
    amount_fen: int
    payer: str

    def __post_init__(self) -> None:
        if isinstance(self.amount_fen, bool) or not isinstance(self.amount_fen, int) \
                or self.amount_fen <= 0:
            raise ValueError(f"a settlement's amount is whole fen above 0, got {self.amount_fen!r}")


@dataclass(frozen=True)
class Thresholds:
    """Each rule's threshold, as a deployment sets them (``lending.alert_policy``)."""

    drop_pct: int = 30
    """A month-on-month drop beyond this % raises an alert."""
    idle_days: int = 10
    """No settlement on any of this many days before today raises an alert."""
    payer_share_pct: int = 60
    """One payer's share of a month above this %, from at or below it, raises an alert."""
    payer_min_count: int = 3
    """… judged only when both months have at least this many settlements."""

    def __post_init__(self) -> None:
        ranges = {"drop_pct": (1, 99), "idle_days": (1, 3650), "payer_share_pct": (1, 99),
                  "payer_min_count": (1, 10_000)}
        for field in fields(self):
            value = getattr(self, field.name)
            low, high = ranges[field.name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"Thresholds.{field.name} must be a whole number from {low} "
                                 f"to {high}, got {value!r}")


# ------------------------------------------------------------------ months and figures
def month_key(year: int, month: int) -> str:
    """``2026-11``."""
    return f"{year:04d}-{month:02d}"


def judged_months(today: date) -> tuple[str, str]:
    """The month judged on ``today`` (the last one that is over) and the month before it."""
    last = today.replace(day=1) - timedelta(days=1)
    before = last.replace(day=1) - timedelta(days=1)
    return month_key(last.year, last.month), month_key(before.year, before.month)


def _of_month(settlements: Iterable[Settlement], month: str, today: date) -> list[Settlement]:
    return [s for s in settlements if s.on <= today and month_key(s.on.year, s.on.month) == month]


def _total(settlements: Iterable[Settlement]) -> int:
    return sum(s.amount_fen for s in settlements)


def _pct(part: int, whole: int) -> Decimal:
    """``part / whole`` in %, rounded to 0.1 for showing (comparisons are made in integers)."""
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def yuan(fen: int) -> str:
    """``12,000.50 元``."""
    return f"{Decimal(fen) / 100:,.2f} 元"


def _top_payer(settlements: Sequence[Settlement]) -> tuple[str, int]:
    """The payer with the largest total and that total (a tie goes to the first by name)."""
    by_payer: dict[str, int] = defaultdict(int)
    for s in settlements:
        by_payer[s.payer] += s.amount_fen
    payer = min(by_payer, key=lambda name: (-by_payer[name], name))
    return payer, by_payer[payer]


# ------------------------------------------------------------------ findings
@dataclass(frozen=True)
class MonthDrop:
    """The judged month's total fell by more than the threshold."""

    rule: ClassVar[AlertRule] = AlertRule.MONTH_DROP
    month: str
    previous_month: str
    amount_fen: int
    previous_fen: int
    drop_pct: Decimal
    threshold_pct: int

    @property
    def period(self) -> str:
        return self.month

    def summary(self) -> str:
        return (f"{self.month} 结算额 {yuan(self.amount_fen)}，较 {self.previous_month}"
                f"（{yuan(self.previous_fen)}）下降 {self.drop_pct}%（阈值 {self.threshold_pct}%）")

    def figures(self) -> dict[str, Any]:
        return {"month": self.month, "previous_month": self.previous_month,
                "amount_fen": self.amount_fen, "previous_fen": self.previous_fen,
                "drop_pct": str(self.drop_pct), "threshold_pct": self.threshold_pct}


@dataclass(frozen=True)
class NoSettlement:
    """No settlement since ``last_on``: ``days`` whole days before today without one."""

    rule: ClassVar[AlertRule] = AlertRule.NO_SETTLEMENT
    last_on: date
    days: int
    threshold_days: int

    @property
    def since(self) -> date:
        """The first day without a settlement."""
        return self.last_on + timedelta(days=1)

    @property
    def period(self) -> str:
        return self.since.isoformat()

    def summary(self) -> str:
        return (f"自 {self.since.isoformat()} 起连续 {self.days} 天无结算（最近一笔在 "
                f"{self.last_on.isoformat()}，阈值 {self.threshold_days} 天）")

    def figures(self) -> dict[str, Any]:
        return {"last_on": self.last_on.isoformat(), "since": self.since.isoformat(),
                "days": self.days, "threshold_days": self.threshold_days}


@dataclass(frozen=True)
class PayerConcentration:
    """One payer's share of the judged month rose above the threshold."""

    rule: ClassVar[AlertRule] = AlertRule.PAYER_CONCENTRATION
    month: str
    previous_month: str
    payer: str
    payer_fen: int
    total_fen: int
    share_pct: Decimal
    previous_share_pct: Decimal
    """The largest share of any payer in the month before."""
    threshold_pct: int

    @property
    def period(self) -> str:
        return self.month

    def summary(self) -> str:
        return (f"{self.month} 付款方「{self.payer}」占结算额 {self.share_pct}%"
                f"（{yuan(self.payer_fen)} / {yuan(self.total_fen)}），{self.previous_month} "
                f"最大付款方仅占 {self.previous_share_pct}%（阈值 {self.threshold_pct}%）")

    def figures(self) -> dict[str, Any]:
        return {"month": self.month, "previous_month": self.previous_month, "payer": self.payer,
                "payer_fen": self.payer_fen, "total_fen": self.total_fen,
                "share_pct": str(self.share_pct),
                "previous_share_pct": str(self.previous_share_pct),
                "threshold_pct": self.threshold_pct}


Finding = MonthDrop | NoSettlement | PayerConcentration
"""What a rule found."""


# ------------------------------------------------------------------ the rules
def month_drop(settlements: Iterable[Settlement], today: date,
               threshold_pct: int) -> MonthDrop | None:
    """The judged month's drop from the month before, if beyond ``threshold_pct``."""
    settlements = list(settlements)
    month, previous = judged_months(today)
    now_fen = _total(_of_month(settlements, month, today))
    before_fen = _total(_of_month(settlements, previous, today))
    if before_fen == 0 or (before_fen - now_fen) * 100 <= threshold_pct * before_fen:
        return None
    return MonthDrop(month, previous, now_fen, before_fen, _pct(before_fen - now_fen, before_fen),
                     threshold_pct)


def no_settlement(last_on: date | None, today: date, idle_days: int) -> NoSettlement | None:
    """The spell without settlements since ``last_on`` (the latest on or before today), if
    it covers all of the ``idle_days`` days before today."""
    if last_on is None or last_on >= today:
        return None
    days = (today - last_on).days - 1
    return NoSettlement(last_on, days, idle_days) if days >= idle_days else None


def payer_concentration(settlements: Iterable[Settlement], today: date, share_pct: int,
                        min_count: int) -> PayerConcentration | None:
    """The judged month's top payer, if their share rose above ``share_pct`` from a month
    before where no payer's was."""
    settlements = list(settlements)
    month, previous = judged_months(today)
    now, before = _of_month(settlements, month, today), _of_month(settlements, previous, today)
    if len(now) < min_count or len(before) < min_count:
        return None
    payer, payer_fen = _top_payer(now)
    total = _total(now)
    _, before_top = _top_payer(before)
    before_total = _total(before)
    if payer_fen * 100 <= share_pct * total or before_top * 100 > share_pct * before_total:
        return None
    return PayerConcentration(month, previous, payer, payer_fen, total, _pct(payer_fen, total),
                              _pct(before_top, before_total), share_pct)


def evaluate(settlements: Iterable[Settlement], today: date, thresholds: Thresholds, *,
             last_on: date | None = None) -> list[Finding]:
    """Every rule's finding on the series as of ``today``, in the rules' order. ``last_on``:
    the customer's latest settlement date when ``settlements`` hold only recent months (the
    latest of it and the series' own, on or before today, is used)."""
    known = [s for s in settlements if s.on <= today]
    dates = [s.on for s in known] + ([last_on] if last_on is not None and last_on <= today else [])
    found: list[Finding | None] = [
        month_drop(known, today, thresholds.drop_pct),
        no_settlement(max(dates, default=None), today, thresholds.idle_days),
        payer_concentration(known, today, thresholds.payer_share_pct, thresholds.payer_min_count),
    ]
    return [finding for finding in found if finding is not None]


def unseen(findings: Iterable[Finding], seen: Collection[tuple[str, str]]) -> list[Finding]:
    """The findings whose (rule, period) is not in ``seen`` (the customer's alerts so far),
    each (rule, period) once."""
    taken = {(str(rule), period) for rule, period in seen}
    fresh = []
    for finding in findings:
        key = (str(finding.rule), finding.period)
        if key not in taken:
            taken.add(key)
            fresh.append(finding)
    return fresh
