"""How many new calls the dialer starts now: pure, no I/O and no clock.

Model: each call in flight becomes a live customer wanting an agent with probability ``rate``
(the transfer rate, a Bayesian blend of a prior and what the campaign has seen so far). We
accept up to ``max_wait_per_free_agent`` waiting customers per free agent, minus those already
queued; calls in flight are expected to fill ``in_flight * rate`` of that headroom, and each new
call ``rate`` more. Never above ``max_concurrency`` calls in flight; ungated, that is the only rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIN_RATE = 0.01  # a rate of 0 would allow infinitely many calls
_EPSILON = 1e-9  # so that e.g. 0.6 / 0.2 counts as 3, not 2.9999999999999996


def _check_count(owner: str, **counts: int) -> None:
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{owner}.{name} must be an int >= 0, got {value!r}")


@dataclass(frozen=True)
class Capacity:
    """The agent side right now."""

    agents_online: int
    agents_busy: int  # online agents holding a claimed/connected ticket
    queue_waiting: int  # live tickets waiting for an agent

    def __post_init__(self) -> None:
        _check_count(
            "Capacity", agents_online=self.agents_online, agents_busy=self.agents_busy,
            queue_waiting=self.queue_waiting,
        )

    @property
    def agents_free(self) -> int:
        """Online agents not holding a ticket (0 if counts read at different moments disagree)."""
        return max(0, self.agents_online - self.agents_busy)


@dataclass(frozen=True)
class PacingPolicy:
    """How aggressively a campaign dials."""

    max_concurrency: int
    agent_gated: bool = True
    transfer_rate_prior: float = 0.2  # expected share of answered calls that transfer, before data
    prior_weight: int = 20  # pseudo-calls the prior counts for
    max_wait_per_free_agent: float = 1.0  # live customers we accept to have waiting per free agent

    def __post_init__(self) -> None:
        _check_count(
            "PacingPolicy", max_concurrency=self.max_concurrency, prior_weight=self.prior_weight
        )
        if not 0.0 <= self.transfer_rate_prior <= 1.0:
            raise ValueError(
                "PacingPolicy.transfer_rate_prior must be in [0, 1], "
                f"got {self.transfer_rate_prior!r}"
            )
        if not self.max_wait_per_free_agent >= 0.0:
            raise ValueError(
                "PacingPolicy.max_wait_per_free_agent must be >= 0, "
                f"got {self.max_wait_per_free_agent!r}"
            )


@dataclass(frozen=True)
class PacingDecision:
    """How many calls to start, and why (shown in ``campaign start`` progress)."""

    start: int  # how many new calls to start now (>= 0)
    reason: str


def transfer_rate(policy: PacingPolicy, calls_completed: int, transfers: int) -> float:
    """The transfer rate: the prior counted as ``prior_weight`` calls, plus the observed calls.
    With no prior weight and no calls yet, the prior itself."""
    _check_count("transfer_rate", calls_completed=calls_completed, transfers=transfers)
    if transfers > calls_completed:
        raise ValueError(
            f"transfers ({transfers}) cannot exceed calls_completed ({calls_completed})"
        )
    calls = policy.prior_weight + calls_completed
    if calls == 0:
        return policy.transfer_rate_prior
    return (policy.transfer_rate_prior * policy.prior_weight + transfers) / calls


def _agents(count: int) -> str:
    return f"{count} agent{'' if count == 1 else 's'}"


def calls_to_start(
    policy: PacingPolicy, in_flight: int, capacity: Capacity, rate: float
) -> PacingDecision:
    """How many new calls to start now (see the module docstring for the model)."""
    _check_count("calls_to_start", in_flight=in_flight)
    if math.isnan(rate):
        raise ValueError("rate must be a number, got NaN")
    room = max(0, policy.max_concurrency - in_flight)
    if room == 0:
        return PacingDecision(0, f"at concurrency limit {policy.max_concurrency}")
    if not policy.agent_gated:
        return PacingDecision(room, f"not agent-gated: {room} under concurrency limit")
    if capacity.agents_online == 0:
        return PacingDecision(0, "no agent online: holding")
    free = capacity.agents_free
    if free == 0:
        return PacingDecision(0, "no agent free: holding")
    headroom = free * policy.max_wait_per_free_agent - capacity.queue_waiting
    if headroom <= 0:
        waiting = capacity.queue_waiting
        return PacingDecision(
            0, f"queue backed up: {waiting} waiting for {_agents(free)} free: holding"
        )
    rate = min(1.0, max(MIN_RATE, rate))
    wanted = max(0, math.floor((headroom - in_flight * rate) / rate + _EPSILON))
    if wanted == 0:
        return PacingDecision(
            0, f"{_agents(free)} free, {in_flight} calls in flight expected to fill them: holding"
        )
    if wanted > room:
        return PacingDecision(
            room, f"{_agents(free)} free, capped by concurrency limit {policy.max_concurrency}"
        )
    return PacingDecision(wanted, f"{_agents(free)} free")
