"""When to try a customer again after a call attempt ended: pure, no I/O and no clock.

The returned time is only a lower bound: the dialer passes it through ``decide_dial`` /
``next_window_start`` (outbound.compliance) so it lands inside the calling window and caps.

A booked callback (outcome "callback" with the customer's time) may use one attempt beyond
``max_attempts``: the customer asked for it. A callback without a time is an ordinary retry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from core.vocabulary import DialOutcome

RETRYABLE: frozenset[DialOutcome] = frozenset({
    DialOutcome.NO_ANSWER, DialOutcome.BUSY, DialOutcome.DECLINED, DialOutcome.DROPPED,
    DialOutcome.VOICEMAIL, DialOutcome.FAILED, DialOutcome.UNREACHABLE, DialOutcome.NO_RESPONSE,
})
FINAL: frozenset[DialOutcome] = frozenset({
    DialOutcome.TRANSFERRED, DialOutcome.NOT_INTERESTED, DialOutcome.OPT_OUT,
    DialOutcome.WRONG_PERSON, DialOutcome.ALREADY_HAS_LOAN, DialOutcome.ENDED,
    DialOutcome.DO_NOT_CONTACT, DialOutcome.INVALID_NUMBER,
})
CALLBACK = DialOutcome.CALLBACK
OUTCOMES: frozenset[DialOutcome] = frozenset(DialOutcome)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff after attempt 1, 2, 3...; the last delay repeats until ``max_attempts``.

    ``jitter`` spreads each delay by up to +/- that fraction, deterministically from the
    attempt (same inputs, same time), so retries of a batch do not all fire at once.
    """

    backoff: tuple[timedelta, ...] = (timedelta(minutes=30), timedelta(hours=2), timedelta(days=1))
    max_attempts: int = 5
    jitter: float = 0.0  # optional fraction; deterministic when 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "backoff", tuple(self.backoff))
        if not self.backoff:
            raise ValueError("RetryPolicy.backoff needs at least one delay")
        for delay in self.backoff:
            if not isinstance(delay, timedelta) or delay <= timedelta(0):
                raise ValueError(f"RetryPolicy.backoff delays must be positive, got {delay!r}")
        attempts = self.max_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {attempts!r}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"RetryPolicy.jitter must be in [0, 1), got {self.jitter!r}")

    def delay_after(self, attempt: int) -> timedelta:
        """The backoff after attempt number ``attempt`` (1-based), before jitter."""
        return self.backoff[min(attempt, len(self.backoff)) - 1]


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


def _jittered(policy: RetryPolicy, delay: timedelta, seed: str) -> timedelta:
    """``delay`` spread by up to +/- ``policy.jitter``, the same for the same ``seed``."""
    if policy.jitter == 0:
        return delay
    spread = random.Random(seed).uniform(-policy.jitter, policy.jitter)
    return delay * (1 + spread)


def next_attempt_at(
    policy: RetryPolicy,
    outcome: str,
    attempts_made: int,
    ended_at: datetime,
    callback_at: datetime | None = None,
) -> datetime | None:
    """When to attempt again after an attempt that ended at ``ended_at`` with ``outcome``;
    ``attempts_made`` counts that attempt too. None: no further attempt.

    - final outcomes: None.
    - retryable outcomes: ``ended_at`` + backoff, None once ``attempts_made >= max_attempts``.
    - "callback" with ``callback_at``: that time (never before ``ended_at``), allowed up to
      ``max_attempts + 1`` attempts; without ``callback_at``: the first backoff, usual limit.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown call outcome {outcome!r} (known: {', '.join(sorted(OUTCOMES))})")
    if isinstance(attempts_made, bool) or not isinstance(attempts_made, int) or attempts_made < 1:
        raise ValueError(f"attempts_made counts the attempt that just ended, got {attempts_made!r}")
    _require_aware(ended_at, "ended_at")
    if outcome in FINAL:
        return None
    if outcome == CALLBACK and callback_at is not None:
        _require_aware(callback_at, "callback_at")
        if attempts_made > policy.max_attempts:
            return None
        return ended_at if _utc(callback_at) < _utc(ended_at) else callback_at
    if attempts_made >= policy.max_attempts:
        return None
    attempt = 1 if outcome == CALLBACK else attempts_made
    seed = f"{ended_at.isoformat()}|{attempts_made}"
    delay = _jittered(policy, policy.delay_after(attempt), seed)
    return (_utc(ended_at) + delay).astimezone(ended_at.tzinfo)  # real time, not wall clock
