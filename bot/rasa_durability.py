"""A turn Rasa cannot store is a failed turn, not a forgotten one; installed in the Rasa process
by :mod:`bot.channel`.

Rasa wraps every tracker store in ``FailSafeTrackerStore``. When the database fails (PostgreSQL
restarting, a dropped connection) it logs the error and carries on: a tracker it cannot read
becomes a new, empty conversation (the customer hears the opening again, their history gone),
and one it cannot write is kept in the process's memory only. The customer is answered and the
turn is lost. The fault drill (benchmarks/bench_fault_drill.py) found 4 such turns across one
PostgreSQL restart. :func:`install` makes the wrapper pass such errors on instead: the turn fails,
the input channel answers 500, and the chat and the call apologise, so the customer says it again
and nothing they were told is missing from the store.

It also makes Rasa's PostgreSQL engine test a pooled connection before using it
(``pool_pre_ping``), so connections a restart left dead are replaced instead of failing a turn
each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasa.core import tracker_store
from rasa.core.tracker_store import FailSafeTrackerStore

_INSTALLED = "_offercall_durable"


async def _retrieve(self: FailSafeTrackerStore, sender_id: str) -> Any:
    return await self._tracker_store.retrieve(sender_id)


async def _retrieve_full_tracker(self: FailSafeTrackerStore, sender_id: str) -> Any:
    return await self._tracker_store.retrieve_full_tracker(sender_id)


async def _save(self: FailSafeTrackerStore, tracker: Any) -> None:
    await self._tracker_store.save(tracker)


def _pinging(make_kwargs: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        kwargs = make_kwargs(url)
        if tracker_store.is_postgresql_url(url):
            kwargs["pool_pre_ping"] = True
        return kwargs

    return create_engine_kwargs


def install() -> None:
    """Make Rasa's tracker store fail a turn it cannot read or write (idempotent)."""
    if getattr(FailSafeTrackerStore, _INSTALLED, False):
        return
    FailSafeTrackerStore.retrieve = _retrieve  # type: ignore[method-assign]
    FailSafeTrackerStore.retrieve_full_tracker = _retrieve_full_tracker  # type: ignore[method-assign]
    FailSafeTrackerStore.save = _save  # type: ignore[method-assign]
    tracker_store.create_engine_kwargs = _pinging(tracker_store.create_engine_kwargs)
    setattr(FailSafeTrackerStore, _INSTALLED, True)
