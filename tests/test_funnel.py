"""The campaign funnel: customers (not attempts) per stage, honest counting, drop-off reasons,
regions and branches, and time to first claim."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from outbound.funnel import (
    ALL,
    DROP_OFF_REASONS,
    NO_BRANCH,
    STAGES,
    AttemptFacts,
    FunnelCounts,
    by_branch,
    by_region,
    drop_off_reason,
    funnel,
    median,
    most_informative,
    percentile,
    time_to_first_claim,
)

T0 = datetime(2024, 5, 6, 9, 0, tzinfo=timezone(timedelta(hours=8)))
ANSWERED_TO_OFFER = dict(answered=True, right_person=True, disclosure_played=True, offer_heard=True)
TRANSFERRED = dict(ANSWERED_TO_OFFER, interested=True, transferred=True, outcome="transferred")


def attempt(customer: str = "C1", no: int = 1, **overrides) -> AttemptFacts:
    """An unanswered first attempt of customer C1 with variant A in region 四川, unless told
    otherwise; attempt n starts n hours after T0."""
    fields = dict(
        campaign_id="K1", customer_id=customer, variant="A", attempt_no=no, region="四川",
        branch=None, started_at=T0 + timedelta(hours=no), ended_at=None, outcome="no_answer",
    )
    return AttemptFacts(**{**fields, **overrides})


def test_a_customer_dialled_three_times_and_answering_once_counts_once():
    facts = [
        attempt(no=1, outcome="no_answer"),
        attempt(no=2, outcome="busy"),
        attempt(no=3, outcome="not_interested", **ANSWERED_TO_OFFER),
    ]
    counts = funnel(facts)[ALL]
    assert counts.attempts == 3
    assert counts.stages["dialed"] == 1
    assert counts.stages["answered"] == 1
    assert counts.stages["offer_heard"] == 1
    assert counts.stages["interested"] == 0
    assert counts.attempt_stages["dialed"] == 3
    assert counts.attempt_stages["answered"] == 1


def test_customers_answering_twice_count_once_and_attempts_count_every_dial():
    facts = [
        attempt("C1", 1, outcome="callback", answered=True, right_person=True),
        attempt("C1", 2, **TRANSFERRED),
        attempt("C2", 1),
        attempt("C3", 1, outcome="voicemail"),
    ]
    counts = funnel(facts)[ALL]
    assert counts.customers == 3
    assert counts.attempts == 4
    assert counts.stages["answered"] == 1
    assert counts.attempt_stages["answered"] == 2
    assert counts.stages["transferred"] == 1
    assert counts.conversion() == pytest.approx(1 / 3)
    assert counts.conversion("answered", "transferred") == 1.0


def test_stages_are_counted_independently_not_assumed_monotonic():
    # A record that says "interested" without "offer_heard" (e.g. the customer asked for an
    # agent during the opening) counts where it says, and nowhere else.
    facts = [attempt("C1", outcome="transferred", answered=True, right_person=True,
                     interested=True, transferred=True)]
    stages = funnel(facts)[ALL].stages
    assert stages["offer_heard"] == 0
    assert stages["disclosure_played"] == 0
    assert stages["interested"] == 1
    assert stages["transferred"] == 1


def test_applied_means_an_agent_recorded_an_application():
    facts = [
        attempt("C1", **TRANSFERRED, agent_connected=True, agent_outcome="applied"),
        attempt("C2", **TRANSFERRED, agent_connected=True, agent_outcome="follow_up"),
        attempt("C3", **TRANSFERRED),
    ]
    stages = funnel(facts)[ALL].stages
    assert (stages["transferred"], stages["agent_connected"], stages["applied"]) == (3, 2, 1)


def test_funnel_is_keyed_by_variant_plus_all():
    facts = [attempt("C1", variant="B", **TRANSFERRED), attempt("C2", variant="A"),
             attempt("C3", variant="A", **TRANSFERRED)]
    result = funnel(facts)
    assert list(result) == ["A", "B", ALL]
    assert result["A"].stages["dialed"] == 2
    assert result["A"].stages["transferred"] == 1
    assert result["B"].conversion() == 1.0
    assert result[ALL].stages["transferred"] == 2
    assert set(result["A"].stages) == set(STAGES)


def test_the_same_customer_id_in_two_campaigns_is_two_customers():
    facts = [attempt("C1", campaign_id="K1"), attempt("C1", campaign_id="K2")]
    assert funnel(facts)[ALL].customers == 2


def test_a_variant_may_not_be_called_all():
    with pytest.raises(ValueError, match="all"):
        funnel([attempt(variant=ALL)])


def test_an_empty_campaign_has_zero_counts_and_no_conversion():
    result = funnel([])
    assert list(result) == [ALL]
    assert result[ALL].customers == 0
    assert result[ALL].conversion() is None
    assert FunnelCounts().conversion("answered", "applied") is None


def test_conversion_rejects_unknown_stages():
    with pytest.raises(ValueError, match="unknown stage"):
        FunnelCounts().conversion("dialed", "signed")


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        attempt(started_at=datetime(2024, 5, 6, 9, 0))


@pytest.mark.parametrize(("outcome", "reason"), [
    ("not_interested", "not_interested"),
    ("already_has_loan", "already_has_loan"),
    ("opt_out", "opt_out"),
    ("do_not_contact", "opt_out"),
    ("callback", "busy_callback"),
    ("wrong_person", "wrong_person"),
    ("voicemail", "voicemail"),
    ("no_answer", "no_answer"),
    ("busy", "no_answer"),
    ("ended", "other"),
    ("no_response", "other"),
    ("dropped", "other"),
    ("failed", "other"),
])
def test_drop_off_reason_follows_the_outcome(outcome, reason):
    assert drop_off_reason([attempt(outcome=outcome)]) == reason


def test_a_hang_up_during_the_offer_is_its_own_reason_unless_the_customer_said_more():
    hung_up = dict(ANSWERED_TO_OFFER, offer_heard=False, hung_up_mid_offer=True)
    assert drop_off_reason([attempt(outcome="dropped", **hung_up)]) == "hung_up_mid_offer"
    assert drop_off_reason([attempt(outcome="opt_out", **hung_up)]) == "opt_out"


def test_drop_off_comes_from_the_latest_answered_attempt_not_the_latest():
    facts = [
        attempt(no=1, outcome="callback", answered=True),
        attempt(no=2, outcome="no_answer"),
        attempt(no=3, outcome="busy"),
    ]
    assert most_informative(facts).attempt_no == 1
    assert drop_off_reason(facts) == "busy_callback"
    # ... and from the latest when none was answered, whatever order the records come in
    assert drop_off_reason([attempt(no=2, outcome="voicemail"), attempt(no=1)]) == "voicemail"


def test_transferred_customers_have_no_drop_off_and_the_rest_exactly_one():
    facts = [
        attempt("C1", 1, outcome="callback", answered=True),
        attempt("C1", 2, **TRANSFERRED),
        attempt("C2", 1, outcome="not_interested", answered=True),
        attempt("C3", 1, outcome="no_answer"),
        attempt("C3", 2, outcome="wrong_person", answered=True),
        attempt("C4", 1, outcome="busy"),
    ]
    counts = funnel(facts)[ALL]
    assert drop_off_reason(facts[:2]) is None
    assert sum(counts.drop_offs.values()) == counts.customers - counts.stages["transferred"] == 3
    assert {reason: n for reason, n in counts.drop_offs.items() if n} == {
        "not_interested": 1, "wrong_person": 1, "no_answer": 1}
    assert list(counts.drop_offs) == list(DROP_OFF_REASONS)


def test_by_region_counts_customers_per_region():
    facts = [
        attempt("C1", 1, region="四川"),
        attempt("C1", 2, region="四川", **TRANSFERRED, agent_outcome="applied"),
        attempt("C2", 1, region="四川", outcome="not_interested", answered=True),
        attempt("C3", 1, region="重庆"),
    ]
    regions = by_region(facts)
    assert list(regions) == sorted(["四川", "重庆"])
    sichuan = regions["四川"]
    assert (sichuan.dialed, sichuan.answered, sichuan.transferred, sichuan.applied) == (2, 2, 1, 1)
    assert sichuan.rate("transferred") == 0.5
    assert regions["重庆"].dialed == 1
    assert regions["重庆"].answered == 0


def test_by_branch_prefers_the_branch_the_handoff_went_to():
    facts = [
        attempt("C1", 1, branch="CD"),
        attempt("C1", 2, branch="JT", **TRANSFERRED),
        attempt("C1", 3, branch="CD", outcome="callback", answered=True),
        attempt("C2", 1, branch=None),
        attempt("C3", 1, branch="CD"),
        attempt("C3", 2, branch=None),
    ]
    branches = by_branch(facts)
    assert {name: s.dialed for name, s in branches.items()} == {"JT": 1, NO_BRANCH: 1, "CD": 1}
    assert branches["JT"].transferred == 1


def test_time_to_first_claim_lists_claimed_attempts_and_summarises_them():
    facts = [attempt("C1", first_claim_s=30.0), attempt("C2", first_claim_s=10.0),
             attempt("C3"), attempt("C4", first_claim_s=20.0), attempt("C5", first_claim_s=100.0)]
    seconds = time_to_first_claim(facts)
    assert seconds == [10.0, 20.0, 30.0, 100.0]
    assert median(seconds) == 25.0
    assert percentile(seconds, 90) == pytest.approx(79.0)  # numpy.percentile's default
    assert percentile([7.0], 90) == 7.0
    assert median([]) is None
    with pytest.raises(ValueError):
        percentile(seconds, 101)
