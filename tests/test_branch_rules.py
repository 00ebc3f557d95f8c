"""The branch network's rules: distances, claim -> verify deadlines, scorecards and suspension,
and which branch and which account manager a lead goes to."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta, timezone

import pytest

from branches.deadlines import (
    DeadlinePolicy,
    LeadTimes,
    Overdue,
    claim_due,
    claimed_on_time,
    overdue,
    verified_on_time,
    verify_due,
)
from branches.geo import EARTH_RADIUS_KM, BranchDistance, Point, by_distance, distance_km
from branches.lead_routing import Assignment, ManagerAssignment, choose_branch, choose_manager
from branches.scorecard import (
    LeadFact,
    Scorecard,
    ScorecardPolicy,
    scorecard,
    scorecards,
    suspended,
    suspensions,
)
from core.vocabulary import FINAL_LEAD_OUTCOMES, LeadOutcome, RerouteReason
from persistence.branches import nearest_branch

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
BEIJING = timezone(timedelta(hours=8))
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
TICK = timedelta(microseconds=1)
DEADLINES = DeadlinePolicy()  # claim within 2 days, verify within 2 days of the claim
POLICY = ScorecardPolicy(window_days=30, min_claim_rate=0.8, min_verify_rate=0.8, min_judged=5)

CHENGDU = Point(30.67, 104.07)
JINTANG = Point(30.86, 104.41)
XINDU = Point(30.82, 104.16)


def at(days: float) -> datetime:
    """T0 plus ``days``."""
    return T0 + timedelta(days=days)


def lead(
    assigned: float = 0, claimed: float | None = None, verified: float | None = None,
    closed: float | None = None, rerouted: float | None = None,
) -> LeadTimes:
    """A lead's times at its branch, in days after T0."""
    return LeadTimes(**{
        name: None if days is None else at(days)
        for name, days in (("assigned_at", assigned), ("claimed_at", claimed),
                           ("verified_at", verified), ("closed_at", closed),
                           ("rerouted_at", rerouted))
    })


# --- geo -------------------------------------------------------------------------------------


def test_chengdu_to_jintang_is_about_38_km():
    assert distance_km(CHENGDU, JINTANG) == pytest.approx(38.75, abs=0.3)


ONE_DEGREE_KM = math.pi * EARTH_RADIUS_KM / 180  # 111.195 km


@pytest.mark.parametrize(("a", "b", "km"), [
    pytest.param(CHENGDU, CHENGDU, 0.0, id="same place"),
    pytest.param(Point(30, 104), Point(31, 104), ONE_DEGREE_KM, id="one degree of latitude"),
    pytest.param(Point(0, 0), Point(0, 1), ONE_DEGREE_KM, id="one degree of longitude at equator"),
    pytest.param(Point(60, 10), Point(60, 11), ONE_DEGREE_KM / 2, id="half as long at 60N"),
    pytest.param(Point(0, 179.5), Point(0, -179.5), ONE_DEGREE_KM, id="across the antimeridian"),
    pytest.param(Point(90, 0), Point(-90, 0), math.pi * EARTH_RADIUS_KM, id="pole to pole"),
    pytest.param(Point(0, 0), Point(0, 180), math.pi * EARTH_RADIUS_KM, id="antipodes"),
    pytest.param(Point(90, 0), Point(90, 120), 0.0, id="longitude means nothing at the pole"),
])
def test_distances(a, b, km):
    assert distance_km(a, b) == pytest.approx(km, rel=1e-4, abs=1e-6)
    assert distance_km(b, a) == pytest.approx(distance_km(a, b), abs=1e-9)


@pytest.mark.parametrize(("lat", "lon", "complaint"), [
    (90.01, 0, "lat must be between -90 and 90"),
    (-91, 0, "lat must be between -90 and 90"),
    (0, 180.5, "lon must be between -180 and 180"),
    (0, -181, "lon must be between -180 and 180"),
    (float("nan"), 0, "lat must be between"),
    (0, float("inf"), "lon must be between"),
    (True, 0, "lat must be a number"),
    ("30.67", 104.07, "lat must be a number"),
    (30.67, None, "lon must be a number"),
])
def test_points_off_the_globe_are_refused(lat, lon, complaint):
    with pytest.raises(ValueError, match=f"Point.{complaint}"):
        Point(lat, lon)


def test_branches_nearest_first():
    branches = {"chengdu": CHENGDU, "jintang": JINTANG, "xindu": XINDU}
    near_jintang = by_distance(Point(30.85, 104.43), branches)
    assert [d.branch_id for d in near_jintang] == ["jintang", "xindu", "chengdu"]
    assert near_jintang[0] == BranchDistance("jintang", pytest.approx(2.3, abs=0.2))
    assert dict(near_jintang)["chengdu"] == pytest.approx(39.8, abs=0.5)


def test_equally_distant_branches_go_by_id():
    # east and west of the customer, the same distance
    branches = {"west-b": Point(30, 103.9), "east-a": Point(30, 104.1), "far": Point(31, 104)}
    assert [d.branch_id for d in by_distance(Point(30, 104), branches)] == [
        "east-a", "west-b", "far"]


def test_no_branches_no_distances():
    assert by_distance(CHENGDU, {}) == []


# --- deadlines: the policy --------------------------------------------------------------------


def test_default_deadlines_are_two_days_each():
    assert DEADLINES == DeadlinePolicy(claim_within=2 * DAY, verify_within=2 * DAY)
    assert DeadlinePolicy.from_days(3, 1) == DeadlinePolicy(claim_within=3 * DAY, verify_within=DAY)


@pytest.mark.parametrize("days", [0, -1, 1.5, True, "2", None])
@pytest.mark.parametrize("field", ["claim_days", "verify_days"])
def test_deadline_days_must_be_positive_whole_days(field, days):
    arguments = {"claim_days": 2, "verify_days": 2, field: days}
    with pytest.raises(ValueError, match=f"DeadlinePolicy {field} must be whole days >= 1"):
        DeadlinePolicy.from_days(**arguments)


@pytest.mark.parametrize("value", [timedelta(0), -DAY, 2, None])
@pytest.mark.parametrize("field", ["claim_within", "verify_within"])
def test_deadlines_must_be_positive_timedeltas(field, value):
    with pytest.raises(ValueError, match=f"DeadlinePolicy.{field} must be a positive timedelta"):
        DeadlinePolicy(**{field: value})


# --- deadlines: what is due, and when ---------------------------------------------------------


def test_claim_is_due_two_days_after_assignment_and_verification_two_days_after_the_claim():
    times = lead(claimed=1.5)
    assert claim_due(times, DEADLINES) == at(2)
    assert verify_due(times, DEADLINES) == at(3.5)
    assert verify_due(lead(), DEADLINES) is None  # nothing to verify before the claim


CLAIM, VERIFY = RerouteReason.CLAIM_OVERDUE, RerouteReason.VERIFY_OVERDUE


@pytest.mark.parametrize(("times", "now", "missed", "due"), [
    pytest.param(lead(), at(1), None, None, id="fresh"),
    pytest.param(lead(), at(2), None, None, id="unclaimed at the very instant due"),
    pytest.param(lead(), at(2) + TICK, CLAIM, at(2), id="unclaimed just after due"),
    pytest.param(lead(), at(30), CLAIM, at(2), id="unclaimed for a month"),
    pytest.param(lead(claimed=2), at(3), None, None, id="claimed at the last instant"),
    pytest.param(lead(claimed=1), at(3), None, None, id="verification due this instant"),
    pytest.param(lead(claimed=1), at(3) + TICK, VERIFY, at(3), id="not verified just after due"),
    pytest.param(lead(claimed=2.5), at(3), None, None, id="claimed late: now the verification"),
    pytest.param(lead(claimed=2.5), at(4.5) + TICK, VERIFY, at(4.5), id="late claim, late check"),
    pytest.param(lead(claimed=1, verified=2), at(30), None, None, id="verified: nothing due"),
    pytest.param(lead(claimed=1, verified=4), at(30), None, None, id="verified late: done"),
    pytest.param(lead(closed=1), at(30), None, None, id="closed unclaimed"),
    pytest.param(lead(claimed=1, closed=2), at(30), None, None, id="closed unverified"),
    pytest.param(lead(rerouted=2.5), at(30), None, None, id="already taken away"),
    pytest.param(lead(claimed=2.5), at(2.25), CLAIM, at(2), id="a claim later than now: not yet"),
    pytest.param(lead(rerouted=5), at(4), CLAIM, at(2), id="a reroute later than now: not yet"),
])
def test_overdue(times, now, missed, due):
    result = overdue(times, DEADLINES, now)
    assert (None if result is None else (result.missed, result.due)) == (
        None if missed is None else (missed, due))


def test_overdue_says_which_deadline_and_when_it_was_due():
    assert overdue(lead(), DEADLINES, at(3)) == Overdue(
        CLAIM, at(2), "分派后 2 天内未认领（时限 2026-12-05 10:00 UTC）")
    assert overdue(lead(claimed=0.5), DEADLINES, at(3)) == Overdue(
        VERIFY, at(2.5), "认领后 2 天内未完成核实（时限 2026-12-05 22:00 UTC）")


def test_due_times_are_told_in_utc_whatever_zone_the_lead_was_stamped_in():
    beijing_evening = datetime(2026, 12, 3, 18, 0, tzinfo=BEIJING)  # 10:00 UTC
    late = overdue(LeadTimes(beijing_evening), DEADLINES, beijing_evening + 3 * DAY)
    assert late is not None and late.reason.endswith("（时限 2026-12-05 10:00 UTC）")


@pytest.mark.parametrize(("claim_within", "said"), [
    (DAY, "1 天"), (7 * DAY, "7 天"), (timedelta(hours=36), "36 小时"),
    (timedelta(hours=1), "1 小时"), (timedelta(minutes=90), "90 分钟"),
    (timedelta(seconds=45), "45 秒"),
])
def test_reasons_say_the_deadline_in_the_largest_whole_unit(claim_within, said):
    policy = DeadlinePolicy(claim_within=claim_within)
    late = overdue(lead(), policy, T0 + claim_within + SECOND)
    assert late is not None and late.reason.startswith(f"分派后 {said}内未认领（")


@pytest.mark.parametrize(("times", "now", "claim", "verify"), [
    pytest.param(lead(), at(1), None, None, id="fresh: not judged"),
    pytest.param(lead(), at(2), None, None, id="unclaimed, due this instant: not judged"),
    pytest.param(lead(), at(2) + TICK, False, None, id="unclaimed past due: late"),
    pytest.param(lead(claimed=0.1), at(0.2), True, None, id="claimed: on time, check not due"),
    pytest.param(lead(claimed=2), at(2), True, None, id="claimed at the last instant"),
    pytest.param(lead(claimed=2.01), at(2.5), False, None, id="claimed late"),
    pytest.param(lead(claimed=2.01), at(30), False, False, id="claimed late, never verified"),
    pytest.param(lead(claimed=1, verified=3), at(30), True, True, id="verified at last instant"),
    pytest.param(lead(claimed=1, verified=3.01), at(30), True, False, id="verified late"),
    pytest.param(lead(claimed=1), at(3) + TICK, True, False, id="unverified past due: late"),
    pytest.param(lead(claimed=1, closed=2), at(30), True, None,
                 id="declined before verification was due: not judged"),
    pytest.param(lead(claimed=1, closed=3.5), at(30), True, False, id="closed unverified, late"),
    pytest.param(lead(rerouted=1), at(30), None, None,
                 id="taken away before due (suspended branch): not held against it"),
    pytest.param(lead(rerouted=2.5), at(30), False, None, id="taken away for a late claim"),
    pytest.param(lead(claimed=1, rerouted=3.5), at(30), True, False,
                 id="taken away for a late verification"),
    pytest.param(lead(closed=5), at(30), False, None, id="closed unclaimed after claim was due"),
    pytest.param(lead(closed=1), at(30), None, None, id="closed unclaimed before it was due"),
    pytest.param(lead(claimed=1.5, verified=2), at(1), None, None,
                 id="steps later than now are not yet taken"),
])
def test_on_time_flags(times, now, claim, verify):
    assert (claimed_on_time(times, DEADLINES, now), verified_on_time(times, DEADLINES, now)) == (
        claim, verify)


@pytest.mark.parametrize(("times", "complaint"), [
    (dict(claimed=-1), "claimed_at .* is before assigned_at"),
    (dict(claimed=2, verified=1), "verified_at .* is before claimed_at"),
    (dict(verified=1), "verified_at without claimed_at"),
    (dict(claimed=1, verified=2, closed=1.5), "closed_at .* is before verified_at"),
    (dict(claimed=3, rerouted=2.5), "rerouted_at .* is before claimed_at"),
    (dict(closed=3, rerouted=2.5), "both closed_at and rerouted_at"),
])
def test_steps_out_of_order_are_refused(times, complaint):
    with pytest.raises(ValueError, match=complaint):
        lead(**times)


# --- naive datetimes -------------------------------------------------------------------------

NAIVE = datetime(2026, 12, 3, 10, 0)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(LeadTimes)])
def test_naive_lead_times_are_refused(field):
    aware = {"assigned_at": T0, "claimed_at": at(1), "verified_at": at(2), "closed_at": at(3)}
    if field == "rerouted_at":
        del aware["closed_at"]
    with pytest.raises(ValueError, match=f"LeadTimes.{field} must be a timezone-aware datetime"):
        LeadTimes(**{**aware, field: NAIVE})


@pytest.mark.parametrize("judge", [
    pytest.param(lambda now: overdue(lead(), DEADLINES, now), id="overdue"),
    pytest.param(lambda now: claimed_on_time(lead(), DEADLINES, now), id="claimed_on_time"),
    pytest.param(lambda now: verified_on_time(lead(), DEADLINES, now), id="verified_on_time"),
    pytest.param(lambda now: lead().as_of(now), id="as_of"),
    pytest.param(lambda now: scorecard("B1", [], now, DEADLINES, POLICY), id="scorecard"),
    pytest.param(lambda now: choose_manager({1: 0}, {1: now}), id="choose_manager"),
])
def test_naive_now_is_refused(judge):
    with pytest.raises(ValueError, match="must be a timezone-aware datetime"):
        judge(NAIVE)


# --- scorecards ------------------------------------------------------------------------------


def fact(outcome: LeadOutcome | None = None, **times) -> LeadFact:
    return LeadFact(lead(**times), outcome)


def on_time(day: float, outcome: LeadOutcome | None = None) -> LeadFact:
    """Assigned on ``day``, claimed half a day later and verified a day after that."""
    closed = None if outcome not in FINAL_LEAD_OUTCOMES else day + 2
    return fact(outcome, assigned=day, claimed=day + 0.5, verified=day + 1.5, closed=closed)


def never_claimed(day: float) -> LeadFact:
    """Assigned on ``day``, never claimed, taken away for it half a day after it was due."""
    return fact(assigned=day, rerouted=day + 2.5)


def claimed_never_verified(day: float) -> LeadFact:
    """Claimed on time, taken away half a day after the verification was due."""
    return fact(assigned=day, claimed=day + 1, rerouted=day + 3.5)


def card(facts: list[LeadFact], now: datetime, policy: ScorecardPolicy = POLICY) -> Scorecard:
    return scorecard("B1", facts, now, DEADLINES, policy)


def test_a_scorecard_counts_every_step():
    facts = [
        on_time(0, LeadOutcome.APPLIED), on_time(1, LeadOutcome.APPLIED),
        on_time(2, LeadOutcome.DECLINED), on_time(3, LeadOutcome.UNREACHABLE),
        on_time(4, LeadOutcome.VERIFIED),  # verified, no final outcome yet
        never_claimed(5), claimed_never_verified(6),
        # applied before the verification was due: that verification is not judged
        fact(LeadOutcome.APPLIED, assigned=7, claimed=7.5, closed=8),
        fact(assigned=9.5),  # still inside its claim deadline
    ]
    result = card(facts, at(10))
    assert result == Scorecard(
        branch_id="B1", window_end=at(10), window_days=30, leads=9,
        claims_judged=8, claims_on_time=7, verifications_judged=6, verifications_on_time=5,
        finished=5, applied=3, rerouted_away=2,
    )
    assert (result.claimed_on_time_rate, result.verified_on_time_rate, result.conversion_rate) == (
        pytest.approx(7 / 8), pytest.approx(5 / 6), pytest.approx(3 / 5))
    assert result.window_start == at(-20)


def test_a_branch_with_nothing_judged_has_no_rates():
    result = card([fact(assigned=9)], at(10))
    assert result.leads == 1
    assert (result.claimed_on_time_rate, result.verified_on_time_rate, result.conversion_rate) == (
        None, None, None)
    assert suspended(result, POLICY) is None


@pytest.mark.parametrize(("age", "counted"), [
    pytest.param(timedelta(0), True, id="assigned this instant"),
    pytest.param(30 * DAY - TICK, True, id="just under 30 days old"),
    pytest.param(30 * DAY, False, id="exactly 30 days old: aged out"),
    pytest.param(31 * DAY, False, id="older"),
    pytest.param(-TICK, False, id="assigned after now"),
])
def test_the_rolling_window_edge(age, counted):
    now = at(40)
    late = LeadFact(LeadTimes(now - age))
    assert card([late], now).leads == int(counted)


@pytest.mark.parametrize(("on_time_claims", "judged", "min_rate", "is_suspended"), [
    (8, 10, 0.8, False),  # exactly at the threshold is good enough
    (7, 10, 0.8, True),
    (79, 100, 0.8, True),
    (3, 4, 0.75, False),
    (2, 3, 0.6667, True),
    (2, 3, 0.6666, False),
    (0, 5, 0.0, False),  # a threshold of 0 never suspends
    (9, 10, 1.0, True),
    (10, 10, 1.0, False),
])
def test_claim_rate_threshold_boundary(on_time_claims, judged, min_rate, is_suspended):
    facts = [on_time(d / 10) for d in range(on_time_claims)]
    facts += [never_claimed(d / 10) for d in range(judged - on_time_claims)]
    policy = dataclasses.replace(POLICY, min_claim_rate=min_rate, min_judged=1)
    assert (suspended(card(facts, at(10), policy), policy) is not None) == is_suspended


@pytest.mark.parametrize(("on_time_checks", "judged", "is_suspended"), [
    (8, 10, False), (7, 10, True), (4, 5, False), (3, 5, True),
])
def test_verification_rate_threshold_boundary(on_time_checks, judged, is_suspended):
    facts = [on_time(d / 10) for d in range(on_time_checks)]
    facts += [claimed_never_verified(d / 10) for d in range(judged - on_time_checks)]
    result = card(facts, at(10))
    assert result.claimed_on_time_rate == 1.0
    reason = suspended(result, POLICY)
    assert (reason is not None) == is_suspended
    if is_suspended:
        assert reason.startswith("按时核实率")


@pytest.mark.parametrize(("late", "is_suspended"), [
    pytest.param(4, False, id="4 judged, all late: too little data"),
    pytest.param(5, True, id="5 judged, all late: suspended"),
])
def test_too_little_data_never_suspends(late, is_suspended):
    result = card([never_claimed(d) for d in range(late)], at(10))
    assert (suspended(result, POLICY) is not None) == is_suspended


def test_too_few_verifications_judged_do_not_suspend_on_verification():
    # 20 claims judged, but only 4 verifications, all late: too little data on verifications
    facts = [claimed_never_verified(d) for d in range(4)]
    facts += [fact(assigned=d / 10, claimed=d / 10 + 0.1, closed=d / 10 + 0.2) for d in range(16)]
    result = card(facts, at(10))
    assert (result.claims_judged, result.verifications_judged) == (20, 4)
    assert suspended(result, POLICY) is None


def test_a_suspension_says_which_rate_over_how_many_leads():
    facts = [on_time(d) for d in range(7)] + [never_claimed(d) for d in range(3)]
    assert suspended(card(facts, at(10)), POLICY) == (
        "按时认领率 70%（近 30 天考核 10 条，按时 7 条），低于最低要求 80%"
    )
    facts = [on_time(d) for d in range(2)] + [claimed_never_verified(d) for d in range(4)]
    facts += [never_claimed(d) for d in range(2)]
    assert suspended(card(facts, at(10)), POLICY) == (
        "按时认领率 75%（近 30 天考核 8 条，按时 6 条），低于最低要求 80%；"
        "按时核实率 33.3%（近 30 天考核 6 条，按时 2 条），低于最低要求 80%"
    )


def test_leads_inside_their_deadline_count_neither_for_nor_against():
    judged = [on_time(d) for d in range(8)] + [never_claimed(d) for d in range(2)]
    fresh = [fact(assigned=10 + d / 10) for d in range(5)]  # due on day 12 .. 12.4
    facts = judged + fresh
    assert card(facts, at(12)).claimed_on_time_rate == 0.8
    assert suspended(card(facts, at(12)), POLICY) is None
    assert card(facts, at(12) + TICK).claims_judged == 11  # the first fresh lead is now late
    assert suspended(card(facts, at(12) + TICK), POLICY) is not None


def test_a_suspension_lifts_as_late_leads_age_out_of_the_window():
    # 4 late claims on days 0..3, then 8 on-time ones on days 5..12
    facts = [never_claimed(d) for d in range(4)] + [on_time(d) for d in range(5, 13)]
    history = {day: suspended(card(facts, at(day)), POLICY) for day in range(13, 40)}
    assert all(history[day] is not None for day in range(13, 31))  # 8 of 12, then 8 of 11
    assert all(history[day] is None for day in range(31, 40))  # 8 of 10 from day 31 on
    assert suspended(card(facts, at(31) - TICK), POLICY) is not None
    assert card(facts, at(31)).claimed_on_time_rate == 0.8


def test_a_suspension_lifts_as_on_time_leads_come_in():
    policy = dataclasses.replace(POLICY, min_claim_rate=0.7)
    facts = [on_time(d) for d in range(6)] + [never_claimed(d) for d in range(4)]
    assert suspended(card(facts, at(10), policy), policy) is not None  # 6 of 10
    # the branch still gets leads when every branch is suspended; it claims these on time
    for n, day in enumerate((10, 11, 12, 13), start=1):
        facts.append(on_time(day))
        assert suspended(card(facts, at(day + 0.25), policy), policy) is not None  # not judged
        verdict = suspended(card(facts, at(day + 0.5), policy), policy)
        assert (verdict is None) == (n == 4), n  # 10 of 14 = 71.4%


def test_scorecards_and_suspensions_for_the_whole_network():
    facts = {"good": [on_time(d) for d in range(5)], "bad": [never_claimed(d) for d in range(5)],
             "new": []}
    cards = scorecards(facts, at(10), DEADLINES, POLICY)
    assert {b: c.claims_on_time for b, c in cards.items()} == {"good": 5, "bad": 0, "new": 0}
    assert suspensions(cards.values(), POLICY) == {
        "bad": "按时认领率 0%（近 30 天考核 5 条，按时 0 条），低于最低要求 80%"}


def test_a_final_outcome_needs_a_closing_time():
    with pytest.raises(ValueError, match="final outcome applied without closed_at"):
        fact(LeadOutcome.APPLIED, claimed=1)
    assert fact("visited", claimed=1).outcome is LeadOutcome.VISITED
    with pytest.raises(ValueError, match="not a valid LeadOutcome"):
        fact("converted", claimed=1)


@pytest.mark.parametrize(("field", "value"), [
    ("window_days", 0), ("window_days", 7.5), ("window_days", True), ("min_judged", 0),
    ("min_judged", "5"), ("min_claim_rate", 1.01), ("min_claim_rate", -0.1),
    ("min_claim_rate", float("nan")), ("min_verify_rate", "0.8"), ("min_verify_rate", None),
])
def test_scorecard_policy_refuses_nonsense(field, value):
    with pytest.raises(ValueError, match=f"ScorecardPolicy.{field} must be"):
        ScorecardPolicy(**{field: value})


# --- which branch ----------------------------------------------------------------------------

DISTANCES = {"B2": 5.0, "B1": 3.0, "B3": 8.0}
SUSPENDED = "按时认领率 50%（近 30 天考核 10 条，按时 5 条），低于最低要求 80%"


@pytest.mark.parametrize(("suspended_branches", "exclude", "branch", "fallback"), [
    pytest.param(set(), set(), "B1", False, id="nearest"),
    pytest.param({"B1"}, set(), "B2", False, id="nearest suspended: next nearest"),
    pytest.param(set(), {"B1"}, "B2", False, id="rerouted away from the nearest: next nearest"),
    pytest.param({"B1"}, {"B2"}, "B3", False, id="one suspended, one already tried"),
    pytest.param({"B3"}, set(), "B1", False, id="a farther branch's suspension changes nothing"),
    pytest.param({"B1", "B2", "B3"}, set(), "B1", True, id="all suspended: nearest anyway"),
    pytest.param({"B2", "B3"}, {"B1"}, "B2", True,
                 id="all left suspended: nearest not already tried"),
    pytest.param(set(), {"B1", "B2", "B3"}, "B1", True, id="all tried: nearest overall"),
    pytest.param({"B1", "B2", "B3"}, {"B1", "B2", "B3"}, "B1", True, id="all suspended and tried"),
    pytest.param(set(), {"B9"}, "B1", False, id="an unknown excluded branch changes nothing"),
])
def test_choose_branch(suspended_branches, exclude, branch, fallback):
    chosen = choose_branch(
        DISTANCES, suspensions={b: SUSPENDED for b in suspended_branches}, exclude=exclude)
    assert chosen is not None
    assert (chosen.branch_id, chosen.distance_km, chosen.fallback) == (
        branch, DISTANCES[branch], fallback)


def test_every_branch_choice_says_why():
    assert choose_branch(DISTANCES) == Assignment("B1", 3.0, "距离最近的支行（3.0 公里）")
    assert choose_branch(DISTANCES, suspensions={"B1": SUSPENDED}, exclude={"B2"}).reason == (
        f"距离最近且正常接单的支行（8.0 公里）；跳过：B1（3.0 公里）暂停派单：{SUSPENDED}；"
        "B2（5.0 公里）此前已从该支行改派"
    )
    assert choose_branch(DISTANCES, suspensions=dict.fromkeys(DISTANCES, SUSPENDED),
                         exclude={"B1"}).reason == (
        f"各支行均暂停派单，仍派给距离最近的支行（5.0 公里），其暂停原因：{SUSPENDED}；"
        "此前已从 B1 改派"
    )
    assert choose_branch(DISTANCES, suspensions=dict.fromkeys(DISTANCES, SUSPENDED)).reason == (
        f"各支行均暂停派单，仍派给距离最近的支行（3.0 公里），其暂停原因：{SUSPENDED}")
    assert choose_branch(DISTANCES, exclude=set(DISTANCES)).reason == (
        "此前已从全部支行（B1、B2、B3）改派，仍派给距离最近的支行（3.0 公里）")


def test_equally_near_branches_go_by_id():
    tied = {"B2": 4.0, "B1": 4.0, "B0": 9.0}
    assert choose_branch(tied).branch_id == "B1"
    assert choose_branch(tied, suspensions={"B1": SUSPENDED}).branch_id == "B2"
    assert choose_branch(tied, exclude={"B1", "B2", "B0"}).branch_id == "B1"


def test_a_branch_whose_scorecard_says_none_is_not_suspended():
    assert choose_branch(DISTANCES, suspensions={"B1": None}).branch_id == "B1"


def test_no_branch_at_all_gives_no_assignment():
    assert choose_branch({}) is None
    assert choose_branch({}, exclude={"B1"}) is None


@pytest.mark.parametrize("km", [-1.0, float("nan"), float("inf"), True, "3", None])
def test_distances_must_be_kilometres(km):
    with pytest.raises(ValueError, match="distance to branch 'B1' must be km >= 0"):
        choose_branch({"B1": km, "B2": 1.0})


def test_exclude_must_be_branch_ids_not_one_string():
    with pytest.raises(TypeError, match="exclude must be a collection of branch ids"):
        choose_branch(DISTANCES, exclude="B1")


@pytest.mark.parametrize("table", [
    {"B1": 3.0, "B2": 5.0},
    {"B2": 1.0, "B1": 5.0},
    {"B2": 4.0, "B1": 4.0, "B3": 4.0},
    {"成都分行": 38.7, "金堂支行": 2.1, "新都支行": 28.0},
])
def test_with_nothing_suspended_a_lead_goes_where_persistence_nearest_branch_says(table):
    assert choose_branch(table).branch_id == nearest_branch("金堂县", {"金堂县": table})


def test_a_customer_in_jintang_goes_to_the_jintang_branch_by_coordinates():
    branches = {"chengdu": CHENGDU, "jintang": JINTANG, "xindu": XINDU}
    chosen = choose_branch(dict(by_distance(Point(30.85, 104.43), branches)))
    assert chosen.branch_id == "jintang" and chosen.reason.startswith("距离最近的支行（2.")


def test_a_lead_late_everywhere_goes_round_the_branches_and_is_never_dropped():
    tried: list[str] = []
    assigned_at, branch = T0, choose_branch(DISTANCES).branch_id
    hops = []
    for _ in range(4):
        late = overdue(LeadTimes(assigned_at), DEADLINES, assigned_at + 2 * DAY + SECOND)
        assert late is not None and late.missed is RerouteReason.CLAIM_OVERDUE
        tried.append(branch)
        nxt = choose_branch(DISTANCES, exclude=set(tried))
        hops.append((branch, nxt.branch_id, nxt.fallback))
        assigned_at, branch = assigned_at + 2 * DAY + SECOND, nxt.branch_id
    assert hops == [("B1", "B2", False), ("B2", "B3", False), ("B3", "B1", True),
                    ("B1", "B1", True)]


def test_a_late_verification_also_moves_the_lead_on():
    times = lead(claimed=1)
    late = overdue(times, DEADLINES, at(3) + SECOND)
    assert late is not None and late.missed is RerouteReason.VERIFY_OVERDUE
    assert choose_branch(DISTANCES, exclude={"B1"}).branch_id == "B2"


# --- which account manager -------------------------------------------------------------------

HOUR = timedelta(hours=1)


@pytest.mark.parametrize(("load", "last", "manager"), [
    pytest.param({1: 3, 2: 1, 3: 2}, {}, 2, id="fewest open leads"),
    pytest.param({1: 2, 2: 1}, {1: None, 2: T0}, 2, id="load beats a long wait"),
    pytest.param({1: 1, 2: 1}, {1: T0, 2: T0 - HOUR}, 2, id="tie: longest since a lead"),
    pytest.param({1: 1, 2: 1}, {1: T0}, 2, id="tie: never assigned first (missing)"),
    pytest.param({1: 1, 2: 1}, {1: None, 2: T0 - 30 * DAY}, 1, id="tie: never assigned first"),
    pytest.param({7: 0, 3: 0}, {}, 3, id="tie, both never assigned: smallest id"),
    pytest.param({7: 0, 3: 0}, {7: T0, 3: T0}, 3, id="tie, same last lead: smallest id"),
    pytest.param({4: 0}, {4: T0}, 4, id="the only manager"),
    pytest.param({1: 0, 2: 0}, {9: T0 - DAY, 1: T0}, 2, id="other branches' managers ignored"),
])
def test_choose_manager(load, last, manager):
    assert choose_manager(load, last).manager_id == manager


def test_every_manager_choice_says_why():
    assert choose_manager({1: 3, 2: 1}, {}) == ManagerAssignment(2, "在办线索最少（1 条）")
    assert choose_manager({1: 1, 2: 1, 3: 4}, {1: T0, 2: T0 - HOUR}).reason == (
        "在办线索最少（1 条），与 1 并列；距上次分派线索最久（2026-12-03 09:00 UTC）")
    assert choose_manager({5: 0, 3: 0, 8: 0}, {5: T0}).reason == (
        "在办线索最少（0 条），与 5、8 并列；从未分派过线索；此项仍与 8 并列：取编号最小者")
    assert choose_manager({2: 0, 1: 0}, {1: T0, 2: T0}).reason == (
        "在办线索最少（0 条），与 2 并列；距上次分派线索最久（2026-12-03 10:00 UTC）；"
        "此项仍与 2 并列：取编号最小者")


def test_a_branch_without_managers_gives_no_manager():
    assert choose_manager({}, {}) is None


@pytest.mark.parametrize("load", [-1, 1.5, True, None])
def test_open_loads_must_be_counts(load):
    with pytest.raises(ValueError, match="open lead count of manager 1"):
        choose_manager({1: load, 2: 0}, {})
