"""The chat's metrics (prometheus_client's default registry of the web server process)."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

from bot.client import ActionFailed, RasaUnavailable
from bot.scrape import TURN_BUCKETS

CHANNEL = "chat"

TURN_SECONDS = Histogram(
    "offercall_chat_turn_seconds",
    "A customer's chat message received to the bot's reply sent (via: widget or http)",
    ["channel", "via"], buckets=TURN_BUCKETS,
)
TURN_FAILURES = Counter(
    "offercall_chat_turn_failures",
    "Chat turns answered with an apology or an error instead of the bot's reply",
    ["channel", "via", "reason"],
)
for _via in ("widget", "http"):
    for _reason in ("action_failed", "unavailable"):
        TURN_FAILURES.labels(CHANNEL, _via, _reason)  # present at 0 from the start


def observe_turn(via: str, received: float) -> None:
    """One chat turn answered; ``received``: ``time.perf_counter()`` when the message came in."""
    TURN_SECONDS.labels(CHANNEL, via).observe(time.perf_counter() - received)


def failure_reason(error: RasaUnavailable) -> str:
    """``action_failed`` (the action server failed and nothing could be kept) or ``unavailable``."""
    return "action_failed" if isinstance(error, ActionFailed) else "unavailable"


def count_failure(via: str, error: RasaUnavailable) -> None:
    """One chat turn the bot could not answer."""
    TURN_FAILURES.labels(CHANNEL, via, failure_reason(error)).inc()
