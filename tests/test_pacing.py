"""Pacing: the transfer-rate estimate and how many calls to start for the agents free now."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from outbound.pacing import Capacity, PacingDecision, PacingPolicy, calls_to_start, transfer_rate

GATED = PacingPolicy(max_concurrency=20)


# --- transfer_rate ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "policy, completed, transfers, expected",
    [
        (GATED, 0, 0, 0.2),  # no data: the prior
        (GATED, 20, 20, (0.2 * 20 + 20) / 40),  # 20 real calls weigh as much as the prior
        (GATED, 20, 0, 4 / 40),
        (GATED, 1000, 100, (4 + 100) / 1020),  # data dominates
        (PacingPolicy(5, prior_weight=0), 10, 3, 0.3),  # no prior: observed only
        (PacingPolicy(5, prior_weight=0, transfer_rate_prior=0.4), 0, 0, 0.4),
        (PacingPolicy(5, transfer_rate_prior=0.0), 0, 0, 0.0),
    ],
)
def test_transfer_rate_blends_prior_and_observed(policy, completed, transfers, expected):
    assert transfer_rate(policy, completed, transfers) == pytest.approx(expected)


@pytest.mark.parametrize("completed, transfers", [(3, 4), (-1, 0), (5, -1)])
def test_transfer_rate_rejects_impossible_counts(completed, transfers):
    with pytest.raises(ValueError):
        transfer_rate(GATED, completed, transfers)


@given(completed=st.integers(0, 10_000), data=st.data())
def test_transfer_rate_lies_between_prior_and_observed(completed, data):
    transfers = data.draw(st.integers(0, completed))
    rate = transfer_rate(GATED, completed, transfers)
    observed = transfers / completed if completed else GATED.transfer_rate_prior
    low, high = sorted((GATED.transfer_rate_prior, observed))
    assert low - 1e-12 <= rate <= high + 1e-12


# --- calls_to_start -----------------------------------------------------------------------


def gated(max_concurrency: int = 20, **fields) -> PacingPolicy:
    return PacingPolicy(max_concurrency=max_concurrency, **fields)


UNGATED = PacingPolicy(max_concurrency=5, agent_gated=False)

CASES = {
    # name: (policy, in_flight, (online, busy, queued), rate, start, reason contains)
    "no agent online": (gated(), 0, (0, 0, 0), 0.2, 0, "no agent online: holding"),
    "all agents busy": (gated(), 0, (3, 3, 0), 0.2, 0, "no agent free: holding"),
    "busy read above online": (gated(), 0, (2, 3, 0), 0.2, 0, "no agent free: holding"),
    "queue backed up": (gated(), 0, (4, 2, 2), 0.2, 0, "queue backed up: 2 waiting"),
    "queue over backed up": (gated(), 0, (4, 2, 5), 0.2, 0, "queue backed up: 5 waiting"),
    "two free, empty queue": (gated(), 0, (5, 3, 0), 0.2, 10, "2 agents free"),
    "one free": (gated(), 0, (1, 0, 0), 0.5, 2, "1 agent free"),
    "one queued uses a free agent": (gated(), 0, (3, 0, 1), 0.2, 10, "3 agents free"),
    "in flight already fill the agent": (gated(), 5, (1, 0, 0), 0.2, 0, "expected to fill"),
    "in flight partly fill": (gated(), 3, (1, 0, 0), 0.2, 2, "1 agent free"),
    "concurrency cap binds": (gated(4), 0, (5, 0, 0), 0.2, 4, "capped by concurrency limit 4"),
    "cap binds with calls in flight": (gated(4), 1, (5, 0, 0), 0.2, 3, "concurrency limit 4"),
    "at concurrency limit": (gated(4), 4, (9, 0, 0), 0.2, 0, "at concurrency limit 4"),
    "above concurrency limit": (gated(4), 6, (9, 0, 0), 0.2, 0, "at concurrency limit 4"),
    "zero concurrency": (gated(0), 0, (9, 0, 0), 0.2, 0, "at concurrency limit 0"),
    "rate zero clamped to 1%": (gated(1000), 0, (1, 0, 0), 0.0, 100, "1 agent free"),
    "negative rate clamped": (gated(1000), 0, (1, 0, 0), -3.0, 100, "1 agent free"),
    "rate one": (gated(), 1, (2, 0, 0), 1.0, 1, "2 agents free"),
    "rate above one clamped": (gated(), 0, (2, 0, 0), 7.0, 2, "2 agents free"),
    "two waiting per agent": (gated(max_wait_per_free_agent=2.0), 0, (1, 0, 1), 0.5, 2, "1 agent"),
    "no waiting accepted": (gated(max_wait_per_free_agent=0.0), 0, (3, 0, 0), 0.2, 0, "backed up"),
    "half waiting per agent": (gated(max_wait_per_free_agent=0.5), 0, (1, 0, 0), 0.25, 2, "free"),
    "not gated, no agents": (UNGATED, 2, (0, 0, 0), 0.2, 3, "not agent-gated"),
    "not gated, queue backed up": (UNGATED, 0, (1, 1, 50), 0.2, 5, "not agent-gated"),
    "not gated, at limit": (UNGATED, 5, (0, 0, 0), 0.2, 0, "at concurrency limit 5"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_calls_to_start(name):
    policy, in_flight, (online, busy, queued), rate, start, reason = CASES[name]
    decision = calls_to_start(policy, in_flight, Capacity(online, busy, queued), rate)
    assert decision.start == start
    assert reason in decision.reason


def test_float_division_does_not_lose_a_call():
    # (1 - 3 * 0.2) / 0.2 is 1.9999999999999996 in floating point; it means 2.
    decision = calls_to_start(gated(), 3, Capacity(1, 0, 0), 0.2)
    assert decision == PacingDecision(2, "1 agent free")


@pytest.mark.parametrize(
    "fields",
    [
        {"max_concurrency": -1},
        {"max_concurrency": 2.5},
        {"transfer_rate_prior": 1.5},
        {"transfer_rate_prior": -0.1},
        {"prior_weight": -1},
        {"max_wait_per_free_agent": -1.0},
        {"max_wait_per_free_agent": math.nan},
    ],
)
def test_bad_pacing_policies_are_rejected(fields):
    with pytest.raises(ValueError):
        PacingPolicy(**({"max_concurrency": 4} | fields))


@pytest.mark.parametrize("counts", [(-1, 0, 0), (1, -1, 0), (1, 0, -1), (1.5, 0, 0)])
def test_bad_capacity_is_rejected(counts):
    with pytest.raises(ValueError):
        Capacity(*counts)


def test_bad_in_flight_or_rate_is_rejected():
    with pytest.raises(ValueError):
        calls_to_start(GATED, -1, Capacity(1, 0, 0), 0.2)
    with pytest.raises(ValueError, match="NaN"):
        calls_to_start(GATED, 0, Capacity(1, 0, 0), math.nan)


policies = st.builds(
    PacingPolicy,
    max_concurrency=st.integers(0, 50),
    agent_gated=st.booleans(),
    max_wait_per_free_agent=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
)
capacities = st.builds(Capacity, st.integers(0, 20), st.integers(0, 20), st.integers(0, 20))
rates = st.floats(0.0, 1.0)


@settings(max_examples=500)
@given(policy=policies, in_flight=st.integers(0, 60), capacity=capacities, rate=rates)
def test_never_above_the_concurrency_limit_and_never_negative(policy, in_flight, capacity, rate):
    decision = calls_to_start(policy, in_flight, capacity, rate)
    assert 0 <= decision.start <= max(0, policy.max_concurrency - in_flight)
    assert decision.reason
    if policy.agent_gated and capacity.agents_online <= capacity.agents_busy:
        assert decision.start == 0


@settings(max_examples=500)
@given(policy=policies, in_flight=st.integers(0, 60), capacity=capacities, rate=rates)
def test_expected_live_customers_stay_within_the_accepted_wait(policy, in_flight, capacity, rate):
    decision = calls_to_start(policy, in_flight, capacity, rate)
    if policy.agent_gated and decision.start:
        clamped = max(rate, 0.01)
        expected = (in_flight + decision.start) * clamped + capacity.queue_waiting
        accepted = capacity.agents_free * policy.max_wait_per_free_agent
        assert expected <= accepted + 1e-6


@settings(max_examples=500)
@given(policy=policies, in_flight=st.integers(0, 60), capacity=capacities, rate=rates)
def test_more_free_agents_or_a_lower_rate_never_start_fewer_calls(
    policy, in_flight, capacity, rate
):
    decision = calls_to_start(policy, in_flight, capacity, rate)
    more_agents = Capacity(capacity.agents_online + 1, capacity.agents_busy, capacity.queue_waiting)
    assert calls_to_start(policy, in_flight, more_agents, rate).start >= decision.start
    assert calls_to_start(policy, in_flight, capacity, rate / 2).start >= decision.start
