"""When an application's result is posted to its partner again after a failed attempt. Pure.

Exponential back-off: the n-th failure waits ``base_s × factor^(n-1)``, at most ``cap_s``
(10 s, 20 s, 40 s … an hour by default). A result still not acknowledged ``give_up_after``
its first attempt is abandoned (the partner can still read it with the status API; an
operator can send it again). Only a 2xx answer acknowledges a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """How results are retried, and how long one attempt may take."""

    base_s: float = 10.0
    factor: float = 2.0
    cap_s: float = 3600.0
    give_up_after: timedelta = timedelta(days=3)
    timeout_s: float = 10.0
    """One attempt's time limit (connect, send, answer)."""
    lease_s: float = 60.0
    """How long a sender holds a result it took; past it (the sender died) another takes it.
    Longer than ``timeout_s``, so a slow attempt is never sent twice at once."""

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and self.factor >= 1 and self.cap_s >= self.base_s):
            raise ValueError("back-off needs base_s > 0, factor >= 1 and cap_s >= base_s")
        if not 0 < self.timeout_s < self.lease_s:
            raise ValueError("an attempt's timeout_s must be above 0 and below lease_s")
        if self.give_up_after <= timedelta(0):
            raise ValueError("give_up_after must be positive")

    def delay(self, failures: int) -> timedelta:
        """The wait after the ``failures``-th failure in a row (1: the first)."""
        if failures < 1:
            raise ValueError("failures counts from 1")
        exponent = min(failures - 1, 64)  # the cap is reached long before; no float overflow
        return timedelta(seconds=min(self.cap_s, self.base_s * self.factor ** exponent))

    def next_attempt(self, failures: int, first_at: datetime, now: datetime) -> datetime | None:
        """When to try again after the ``failures``-th failure at ``now`` (the first attempt
        was at ``first_at``), or None: give up."""
        due = now + self.delay(failures)
        return None if due - first_at > self.give_up_after else due


def acknowledged(status: int) -> bool:
    """Whether the partner's answer acknowledges the result: any 2xx."""
    return 200 <= status < 300
