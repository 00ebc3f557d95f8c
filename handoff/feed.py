"""Pushes new ticket events and messages to this process's websockets, whichever process
wrote them.

Every process tails the two append-only logs (``oc_handoff_events``, ``oc_messages``) and
fans new rows out to its subscribers. The logs are the source of truth; what changes between
databases is only what makes the tail look:

- a write in this process calls :meth:`Feed.kick`, so it is pushed at once;
- on PostgreSQL, every append (from any process, or raw SQL) sends a NOTIFY at commit
  (triggers of revision 0007), which a dedicated LISTEN connection turns into a kick
  (:class:`persistence.notify.Listener`); the tail then polls only as a safety net, every
  ``safety_interval_s``. While that connection is down (PostgreSQL restarting), the feed
  polls every ``interval_s`` and reconnects with back-off; the tail catches up from its
  cursor, so nothing is lost;
- on SQLite, which has no NOTIFY, the tail polls every ``interval_s``.

Browsers are never polled: they hold a websocket and receive pushes.

On PostgreSQL, ids come from a sequence and transactions may commit out of order, so a
row with a lower id can appear after a higher one. :class:`LogCursor` keeps the ids it
has not seen yet open for a grace period instead of skipping past them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

from sqlalchemy.engine import Engine

from handoff import messages, tickets
from persistence.engine import session_scope
from persistence.notify import HANDOFF_CHANNEL, Listener, can_listen

log = logging.getLogger(__name__)

Item = Union[tickets.TicketEvent, messages.LoggedMessage]
PAGE = 500  # rows of each log read at a time; a full page with new rows is followed at once


class LogCursor:
    """Where a tail of an append-only log has got to, tolerant of ids that commit late."""

    def __init__(self, start_after: int, grace_s: float = 5.0) -> None:
        self.floor = start_after  # every id at or below is settled
        self._seen: set[int] = set()
        self._gaps: dict[int, float] = {}
        self._grace_s = grace_s

    def accept(self, ids: list[int], now: float) -> list[int]:
        """Of the ids fetched above :attr:`floor`, the ones not delivered before (in order);
        advances the floor past settled ids and past gaps older than the grace period."""
        fresh = [i for i in sorted(set(ids)) if i > self.floor and i not in self._seen]
        self._seen.update(fresh)
        top = max(self._seen, default=self.floor)
        for missing in range(self.floor + 1, top):
            if missing not in self._seen:
                self._gaps.setdefault(missing, now)
        while True:
            following = self.floor + 1
            if following in self._seen:
                self._seen.discard(following)
            elif following in self._gaps and now - self._gaps[following] >= self._grace_s:
                pass  # a rolled-back insert, or one that never came: stop waiting for it
            else:
                break
            self._gaps.pop(following, None)
            self.floor = following
        return fresh


@dataclass
class Subscription:
    """A subscriber's queue; ``wants`` filters what is put in it."""

    wants: Callable[[Item], bool]
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)

    async def get(self) -> Item:
        return await self.queue.get()


class Feed:
    """One per process: tails the logs and fans out to subscriptions.

    ``interval_s`` is the poll without notifications (SQLite, or the LISTEN connection down);
    ``safety_interval_s`` the poll while notifications arrive. ``listen=False`` polls always."""

    def __init__(
        self, engine: Engine, interval_s: float = 0.25, *, safety_interval_s: float = 3.0,
        listen: bool = True,
    ) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._safety_interval_s = max(safety_interval_s, interval_s)
        self._listener = (Listener(engine, HANDOFF_CHANNEL, self.kick)
                          if listen and can_listen(engine) else None)
        self._subscriptions: list[Subscription] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._events: LogCursor | None = None
        self._messages: LogCursor | None = None

    async def start(self) -> None:
        """Starts tailing from the current end of both logs (listening first, on PostgreSQL, so
        no append after the ends are read goes unnoticed)."""
        if self._listener is not None:
            await self._listener.start()
        events_top, messages_top = await asyncio.to_thread(self._tops)
        self._events, self._messages = LogCursor(events_top), LogCursor(messages_top)
        self._task = asyncio.create_task(self._run(), name="handoff-feed")

    async def stop(self) -> None:
        """Stops the tail and closes the LISTEN connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()

    @property
    def listening(self) -> bool:
        """Whether notifications wake the tail now (else it polls every ``interval_s``)."""
        return self._listener is not None and self._listener.listening

    def _tick_s(self) -> float:
        return self._safety_interval_s if self.listening else self._interval_s

    def subscribe(self, wants: Callable[[Item], bool]) -> Subscription:
        """A new subscription to items for which ``wants`` is true."""
        subscription = Subscription(wants)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    def kick(self) -> None:
        """Something was just written: look now instead of at the next tick."""
        self._wake.set()

    def _tops(self) -> tuple[int, int]:
        with session_scope(self._engine) as session:
            return tickets.last_event_id(session), messages.last_message_id(session)

    def _fetch(self) -> tuple[list[tickets.TicketEvent], list[messages.LoggedMessage]]:
        assert self._events is not None and self._messages is not None
        with session_scope(self._engine) as session:
            return (
                tickets.events_after(session, self._events.floor, limit=PAGE),
                messages.messages_after(session, self._messages.floor, limit=PAGE),
            )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # asyncio.wait, not wait_for: Python 3.10's wait_for can swallow a cancellation
            # that races with the event (bpo-42130), which left stop() waiting forever
            woken = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({woken}, timeout=self._tick_s())
            finally:
                woken.cancel()
            self._wake.clear()
            try:
                events, logged = await asyncio.to_thread(self._fetch)
            except Exception:  # a database hiccup: keep the cursor, try again next tick
                log.exception("handoff.feed.fetch_failed")
                await asyncio.sleep(self._interval_s)
                continue
            assert self._events is not None and self._messages is not None
            now = loop.time()
            new_events = set(self._events.accept([e.id for e in events], now))
            new_messages = set(self._messages.accept([m.id for m in logged], now))
            items: list[Item] = [e for e in events if e.id in new_events]
            items += [m for m in logged if m.id in new_messages]
            items.sort(key=lambda item: item.created_at)
            if items and (len(events) >= PAGE or len(logged) >= PAGE):
                self._wake.set()  # a backlog: read on now rather than at the next (slow) poll
            for item in items:
                for subscription in list(self._subscriptions):
                    if subscription.wants(item):
                        subscription.queue.put_nowait(item)
