"""The post-loan alert rules (lending.alert_rules, pure): each rule's boundaries, its thresholds
taken from the settings, the months judged across a year's end, and no alert twice for the
same customer, rule and period."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.settings import Settings, SettingsError
from core.vocabulary import AlertRule
from lending.alert_policy import AlertPolicy, alert_policy
from lending.alert_rules import (
    MonthDrop,
    NoSettlement,
    PayerConcentration,
    Settlement,
    Thresholds,
    evaluate,
    judged_months,
    month_drop,
    no_settlement,
    payer_concentration,
    unseen,
    yuan,
)

TODAY = date(2026, 12, 5)  # judges November against October


def paid(on: str, yuan_: int | str, payer: str = "甲公司") -> Settlement:
    return Settlement(date.fromisoformat(on), int(Decimal(str(yuan_)) * 100), payer)


def months(october: int, november: int) -> list[Settlement]:
    """One settlement of each total in October and in November."""
    return [paid("2026-10-15", october), paid("2026-11-15", november)]


# ------------------------------------------------------------------ months
@pytest.mark.parametrize("today, judged", [
    (date(2026, 12, 5), ("2026-11", "2026-10")),
    (date(2026, 12, 1), ("2026-11", "2026-10")),  # the first day: November is over
    (date(2026, 11, 30), ("2026-10", "2026-09")),  # November is not over yet
    (date(2027, 1, 1), ("2026-12", "2026-11")),
    (date(2027, 2, 10), ("2027-01", "2026-12")),  # across the year's end
    (date(2028, 3, 1), ("2028-02", "2028-01")),  # a leap February
])
def test_the_month_judged_is_the_last_one_over_and_the_one_before_it(today, judged):
    assert judged_months(today) == judged


# ------------------------------------------------------------------ month-on-month drop
@pytest.mark.parametrize("october, november, threshold, drop", [
    (100_000, 70_000, 30, None),  # exactly the threshold: not beyond it
    (100_000, "69999.99", 30, Decimal("30.0")),  # a fen beyond it
    (100_000, 69_000, 30, Decimal("31.0")),
    (100_000, 0, 30, Decimal("100.0")),  # nothing at all in November (but one settlement needed)
    (100_000, 100_000, 30, None),
    (100_000, 150_000, 30, None),  # a rise
    (100_000, 60_000, 50, None),  # 40 % under a threshold of 50 %
    (100_000, 49_000, 50, Decimal("51.0")),
    (3, 2, 30, Decimal("33.3")),  # small amounts are judged all the same
    (0, 50_000, 30, None),  # no October: nothing to compare with
])
def test_a_month_on_month_drop_beyond_the_threshold_raises(october, november, threshold, drop):
    series = [paid("2026-10-15", october)] if october else []
    if november != 0:
        series.append(paid("2026-11-15", november))
    found = month_drop(series, TODAY, threshold)
    if drop is None:
        assert found is None
    else:
        assert found == MonthDrop("2026-11", "2026-10", int(Decimal(str(november)) * 100),
                                  october * 100, drop, threshold)
        assert found.period == "2026-11" and found.rule == AlertRule.MONTH_DROP


def test_a_drop_counts_every_settlement_of_the_two_months_and_nothing_else():
    series = [
        paid("2026-09-30", 900_000),  # September: not judged
        paid("2026-10-01", 40_000), paid("2026-10-31", 60_000, "乙公司"),  # October: 100,000
        paid("2026-11-01", 30_000), paid("2026-11-30", 30_000),  # November: 60,000
        paid("2026-12-01", 900_000),  # December so far: not over, not judged
    ]
    found = month_drop(series, TODAY, 30)
    assert (found.previous_fen, found.amount_fen, found.drop_pct) == (
        10_000_000, 6_000_000, Decimal("40.0"))


def test_settlements_after_today_are_not_known_yet():
    # As of 30 November, November is not over: October is judged against September.
    series = [paid("2026-09-10", 100_000), paid("2026-10-10", 50_000), paid("2026-11-10", 1)]
    assert month_drop(series, date(2026, 11, 30), 30).month == "2026-10"
    # A record dated later than the day judged is ignored (replaying an earlier day).
    assert month_drop([paid("2026-10-10", 100_000), paid("2026-12-04", 1)], date(2026, 12, 3), 30) \
        .amount_fen == 0


def test_the_drop_is_judged_across_the_years_end():
    series = [paid("2026-11-20", 10_000), paid("2026-12-20", 1_000)]
    found = month_drop(series, date(2027, 1, 2), 30)
    assert (found.month, found.previous_month, found.drop_pct) == (
        "2026-12", "2026-11", Decimal("90.0"))


# ------------------------------------------------------------------ days without settlement
@pytest.mark.parametrize("days_ago, idle_days, days", [
    (11, 10, 10),  # the 10 days before today all without: alert
    (10, 10, None),  # the last one is one of those 10 days
    (1, 10, None),  # yesterday
    (0, 10, None),  # today
    (2, 1, 1),  # a threshold of one day
    (1, 1, None),
    (45, 30, 44),
    (31, 30, 30),
    (30, 30, None),
])
def test_days_without_a_settlement_beyond_the_threshold_raise(days_ago, idle_days, days):
    last_on = TODAY - timedelta(days=days_ago)
    found = no_settlement(last_on, TODAY, idle_days)
    if days is None:
        assert found is None
    else:
        assert found == NoSettlement(last_on, days, idle_days)
        assert found.period == (last_on + timedelta(days=1)).isoformat()  # the spell's first day


def test_no_settlement_at_all_or_one_dated_later_raises_nothing():
    assert no_settlement(None, TODAY, 10) is None
    assert no_settlement(TODAY + timedelta(days=3), TODAY, 10) is None


def test_one_spell_without_settlements_is_one_period_however_long_it_lasts():
    last_on = date(2026, 11, 1)
    periods = {no_settlement(last_on, last_on + timedelta(days=d), 10).period
               for d in range(11, 60)}
    assert periods == {"2026-11-02"}


# ------------------------------------------------------------------ one payer's share
def spread(month: str, shares: dict[str, int]) -> list[Settlement]:
    """A month's settlements: one per payer and amount (yuan), on successive days."""
    return [paid(f"{month}-{day:02d}", amount, payer)
            for day, (payer, amount) in enumerate(shares.items(), start=1)]


EVEN = {"甲": 100, "乙": 100, "丙": 100}  # the top payer has 33.3 %


@pytest.mark.parametrize("october, november, share, expected", [
    (EVEN, {"甲": 700, "乙": 200, "丙": 100}, 60, ("甲", Decimal("70.0"), Decimal("33.3"))),
    (EVEN, {"甲": 600, "乙": 300, "丙": 100}, 60, None),  # exactly 60 %: not above
    (EVEN, {"甲": 60001, "乙": 30000, "丙": 9999}, 60, ("甲", Decimal("60.0"), Decimal("33.3"))),
    (EVEN, {"甲": 700, "乙": 200, "丙": 100}, 80, None),  # 70 % under a threshold of 80 %
    ({"甲": 600, "乙": 300, "丙": 100}, {"乙": 700, "甲": 200, "丙": 100}, 60,
     ("乙", Decimal("70.0"), Decimal("60.0"))),  # October exactly at the threshold: at or below
    # concentrated in another payer already
    ({"甲": 610, "乙": 290, "丙": 100}, {"乙": 700, "甲": 200, "丙": 100}, 60, None),
    (EVEN, {"丁": 500, "戊": 500, "甲": 0}, 60, None),  # two payers at 50 %
])
def test_a_sudden_concentration_in_one_payer_raises(october, november, share, expected):
    series = spread("2026-10", october) + spread(
        "2026-11", {payer: amount for payer, amount in november.items() if amount})
    # the zero payer above is left out: November then has only two settlements
    found = payer_concentration(series, TODAY, share, min_count=2)
    if expected is None:
        assert found is None
    else:
        payer, now_share, before_share = expected
        assert (found.payer, found.share_pct, found.previous_share_pct) == (
            payer, now_share, before_share)
        assert found.period == "2026-11" and found.threshold_pct == share
        assert found.total_fen == sum(november.values()) * 100


@pytest.mark.parametrize("october_count, november_count, alert", [
    (3, 3, True), (2, 3, False), (3, 2, False), (0, 5, False),
])
def test_a_share_is_judged_only_over_enough_settlements_in_both_months(
        october_count, november_count, alert):
    october = [paid(f"2026-10-{d:02d}", 100, f"付款方{d}") for d in range(1, october_count + 1)]
    november = [paid("2026-11-01", 10_000, "大客户")] + [
        paid(f"2026-11-{d:02d}", 100, f"付款方{d}") for d in range(2, november_count + 1)]
    found = payer_concentration(october + november, TODAY, 60, min_count=3)
    assert (found is not None) is alert


def test_a_payer_is_one_payer_across_their_settlements_and_ties_go_by_name():
    october = spread("2026-10", EVEN)
    november = [paid("2026-11-01", 400, "乙"), paid("2026-11-02", 400, "乙"),
                paid("2026-11-03", 100, "甲")]
    assert payer_concentration(october + november, TODAY, 60, 3).payer_fen == 80_000
    tie = [paid("2026-11-01", 100, "B"), paid("2026-11-02", 100, "A"), paid("2026-11-03", 100, "C")]
    four = spread("2026-10", {"甲": 100, "乙": 100, "丙": 100, "丁": 100})  # 25 % each
    assert payer_concentration(four + tie, TODAY, 30, 3).payer == "A"


# ------------------------------------------------------------------ all the rules, once each
def test_evaluate_runs_every_rule_with_the_thresholds_given():
    series = spread("2026-10", {"甲": 40_000, "乙": 30_000, "丙": 30_000}) + [
        paid("2026-11-01", 9_000, "丁"), paid("2026-11-02", 500, "甲"),
        paid("2026-11-03", 500, "乙")]
    found = evaluate(series, TODAY, Thresholds(drop_pct=30, idle_days=10, payer_share_pct=60,
                                               payer_min_count=3))
    assert [f.rule for f in found] == [AlertRule.MONTH_DROP, AlertRule.NO_SETTLEMENT,
                                       AlertRule.PAYER_CONCENTRATION]
    assert evaluate(series, TODAY, Thresholds(drop_pct=95, idle_days=40, payer_share_pct=95)) == []


def test_evaluate_takes_the_latest_date_when_only_recent_months_are_given():
    recent = [paid("2026-11-20", 100)]
    assert evaluate(recent, TODAY, Thresholds(), last_on=date(2026, 11, 28)) == []  # 6 days ago
    [idle] = evaluate([], TODAY, Thresholds(), last_on=date(2026, 11, 1))
    assert isinstance(idle, NoSettlement) and idle.last_on == date(2026, 11, 1)
    # a later date than today's is not known yet, whichever way it comes
    [idle] = evaluate([paid("2026-12-20", 1)], TODAY, Thresholds(), last_on=date(2026, 11, 1))
    assert idle.days == 33


def test_unseen_drops_what_was_raised_before_and_repeats():
    drop = month_drop(months(100_000, 10_000), TODAY, 30)
    idle = no_settlement(date(2026, 11, 15), TODAY, 10)
    assert unseen([drop, idle, drop], []) == [drop, idle]
    assert unseen([drop, idle], [("month_drop", "2026-11")]) == [idle]
    assert unseen([drop, idle], [(AlertRule.MONTH_DROP, "2026-10")]) == [drop, idle]  # other month
    assert unseen([drop, idle], [("no_settlement", "2026-11-16"), ("month_drop", "2026-11")]) == []


def test_each_finding_says_its_rule_figures_and_period_in_chinese():
    drop = month_drop(months(100_000, 12_000), TODAY, 30)
    assert drop.summary() == ("2026-11 结算额 12,000.00 元，较 2026-10（100,000.00 元）下降 88.0%"
                              "（阈值 30%）")
    assert drop.figures() == {"month": "2026-11", "previous_month": "2026-10",
                              "amount_fen": 1_200_000, "previous_fen": 10_000_000,
                              "drop_pct": "88.0", "threshold_pct": 30}
    idle = no_settlement(date(2026, 11, 20), TODAY, 10)
    assert idle.summary() == "自 2026-11-21 起连续 14 天无结算（最近一笔在 2026-11-20，阈值 10 天）"
    assert idle.figures()["days"] == 14
    share = PayerConcentration("2026-11", "2026-10", "乙公司", 70_000, 100_000, Decimal("70.0"),
                               Decimal("33.3"), 60)
    assert share.summary() == ("2026-11 付款方「乙公司」占结算额 70.0%（700.00 元 / 1,000.00 元），"
                               "2026-10 最大付款方仅占 33.3%（阈值 60%）")
    assert yuan(123_456_789) == "1,234,567.89 元"


# ------------------------------------------------------------------ thresholds
@pytest.mark.parametrize("bad", [
    {"drop_pct": 0}, {"drop_pct": 100}, {"idle_days": 0}, {"payer_share_pct": 100},
    {"payer_min_count": 0}, {"drop_pct": True}, {"idle_days": 1.5},
])
def test_thresholds_out_of_range_are_refused(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Thresholds(**bad)


@pytest.mark.parametrize("amount", [0, -100, 1.5, True])
def test_a_settlement_is_whole_fen_above_zero(amount):
    with pytest.raises(ValueError):
        Settlement(TODAY, amount, "甲")


def test_the_thresholds_come_from_the_settings():
    settings = Settings.from_environ({
        "OFFERCALL_ALERT_DROP_PCT": "50", "OFFERCALL_ALERT_IDLE_DAYS": "20",
        "OFFERCALL_ALERT_PAYER_SHARE_PCT": "80", "OFFERCALL_ALERT_PAYER_MIN_COUNT": "5",
        "OFFERCALL_ALERT_ACK_HOURS": "24", "OFFERCALL_TIMEZONE": "Asia/Urumqi"})
    policy = alert_policy(settings)
    assert policy.thresholds == Thresholds(50, 20, 80, 5)
    assert policy.ack_within == timedelta(hours=24) and policy.timezone == "Asia/Urumqi"
    assert Settings.from_environ(settings.to_environ()) == settings
    # the rules judge by them: a 40 % drop is under 50 %
    assert evaluate(months(100_000, 60_000), TODAY, policy.thresholds) == []
    assert alert_policy(Settings.from_environ({})) == AlertPolicy()


@pytest.mark.parametrize("name, value", [
    ("OFFERCALL_ALERT_DROP_PCT", "0"), ("OFFERCALL_ALERT_IDLE_DAYS", "-1"),
    ("OFFERCALL_ALERT_PAYER_SHARE_PCT", "100"), ("OFFERCALL_ALERT_PAYER_MIN_COUNT", "0"),
    ("OFFERCALL_ALERT_ACK_HOURS", "0"),
])
def test_a_threshold_out_of_range_in_the_settings_names_its_variable(name, value):
    with pytest.raises(SettingsError, match=name):
        alert_policy(Settings.from_environ({name: value}))


def test_the_day_judged_is_the_banks_local_date():
    from datetime import datetime, timezone

    policy = AlertPolicy()
    assert policy.today(datetime(2026, 11, 30, 16, 30, tzinfo=timezone.utc)) == date(2026, 12, 1)
    assert policy.today(datetime(2026, 11, 30, 15, 59, tzinfo=timezone.utc)) == date(2026, 11, 30)
    with pytest.raises(ValueError, match="aware"):
        policy.today(datetime(2026, 11, 30))
