"""Posting each application's result to its partner, signed, until the partner acknowledges it.

The result is written (``pending``, due at once) in the transaction that decides the
application, so it is durable before the intake API answers; a sender posts it afterwards.
A sender *takes* a due result before posting it: ``sending``, with a lease and its own name,
by a conditional update (``SKIP LOCKED`` first on PostgreSQL), so of two processes exactly
one posts it. Then it records the answer: a 2xx is ``delivered`` (never posted again); any
other answer, a timeout or a dropped connection puts it back to ``pending``, due after the
back-off (``lending.callback_schedule``), or ``abandoned`` once that gives up. A sender
that dies mid-post leaves its lease to run out; another sender takes the result again. All of
it is in the database, so a restart loses nothing.

Each post is ``POST <callback_url>`` with the result as JSON and the signature headers of
``lending.signatures`` (HMAC-SHA256 with the partner's key over the timestamp, a fresh nonce,
the method, the path and the body's SHA-256), and ``X-Offercall-Partner``,
``X-Offercall-Application`` and ``X-Offercall-Attempt``. The body is the same on every attempt;
the partner keeps it once by ``partner_application_id`` (a lease run out can mean a second
post of a result the partner already has).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from yarl import URL

from core.clock import utcnow
from core.vocabulary import StrEnum
from lending.callback_schedule import RetryPolicy, acknowledged
from lending.partners import Partners
from lending.signatures import signed_headers
from persistence.engine import in_transaction
from persistence.schema import PartnerCallback

log = logging.getLogger(__name__)

PARTNER_HEADER = "X-Offercall-Partner"
APPLICATION_HEADER = "X-Offercall-Application"
ATTEMPT_HEADER = "X-Offercall-Attempt"
_ERROR_TEXT = 300
DEFAULT_RETRY = RetryPolicy()
"""Characters of an error or answer kept with the result."""


class CallbackStatus(StrEnum):
    """Where a result's posting stands::

        pending -> sending -> delivered
                   sending -> pending (failed: due again after the back-off) | abandoned
    """

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    ABANDONED = "abandoned"


@dataclass(frozen=True)
class DueCallback:
    """A result a sender took, to post now (its ``attempt``-th post)."""

    id: int
    application_id: int
    partner_id: str
    body: str
    attempt: int
    created_at: datetime


@dataclass(frozen=True)
class CallbackState:
    """Where an application's result stands, for the status API and the command line."""

    status: CallbackStatus
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status: int | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        stamp = {name: moment.isoformat() if moment else None for name, moment in (
            ("next_attempt_at", self.next_attempt_at), ("delivered_at", self.delivered_at))}
        return {"status": str(self.status), "attempts": self.attempts, **stamp,
                "last_status": self.last_status}


def default_sender_id() -> str:
    """This process's name in the results it takes."""
    return f"{socket.gethostname()}:{os.getpid()}"


# ------------------------------------------------------------------ database
def queue_result(session: Session, application_id: int, partner_id: str, body: str,
                 now: datetime) -> int:
    """Writes an application's result to be posted, due at once; returns its id."""
    row = PartnerCallback(application_id=application_id, partner_id=partner_id, body=body,
                          status=CallbackStatus.PENDING, attempts=0, next_attempt_at=now,
                          created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return row.id


def state_of(session: Session, application_id: int) -> CallbackState | None:
    """Where the application's result stands (None: it has none)."""
    row = session.execute(select(PartnerCallback).where(
        PartnerCallback.application_id == application_id)).scalar_one_or_none()
    if row is None:
        return None
    return CallbackState(CallbackStatus(row.status), row.attempts, row.next_attempt_at,
                         row.delivered_at, row.last_status, row.last_error)


def _due(now: datetime) -> Any:
    return or_((PartnerCallback.status == CallbackStatus.PENDING)
               & (PartnerCallback.next_attempt_at <= now),
               (PartnerCallback.status == CallbackStatus.SENDING)
               & (PartnerCallback.lease_until < now))


def claim_due(session: Session, sender: str, now: datetime, lease: timedelta,
              limit: int = 20) -> list[DueCallback]:
    """Takes up to ``limit`` due results for ``sender`` to post: those pending and due, and
    those whose sender's lease ran out. Each is taken by one sender only (see the module
    docstring); taking one counts its attempt."""
    query = (select(PartnerCallback.id, PartnerCallback.status, PartnerCallback.attempts)
             .where(_due(now)).order_by(PartnerCallback.next_attempt_at, PartnerCallback.id)
             .limit(limit))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    taken = []
    for callback_id, status, attempts in session.execute(query).all():
        won = session.execute(
            update(PartnerCallback)
            .where(PartnerCallback.id == callback_id, PartnerCallback.status == status,
                   PartnerCallback.attempts == attempts, _due(now))
            .values(status=CallbackStatus.SENDING, attempts=attempts + 1, sender=sender,
                    lease_until=now + lease, updated_at=now)
            .execution_options(synchronize_session=False)).rowcount
        if won != 1:
            continue  # another sender took it since it was read
        row = session.get(PartnerCallback, callback_id, populate_existing=True)
        taken.append(DueCallback(row.id, row.application_id, row.partner_id, row.body,
                                 row.attempts, row.created_at))
    return taken


def _held(due: DueCallback, sender: str) -> Any:
    """The result is still this sender's, for this attempt (its lease did not pass to another)."""
    return ((PartnerCallback.id == due.id) & (PartnerCallback.status == CallbackStatus.SENDING)
            & (PartnerCallback.sender == sender) & (PartnerCallback.attempts == due.attempt))


def record_delivered(session: Session, due: DueCallback, sender: str, http_status: int,
                     now: datetime) -> bool:
    """The partner acknowledged the result: it is never posted again. False when the attempt
    was no longer this sender's (its lease ran out and another sender took it)."""
    return session.execute(
        update(PartnerCallback).where(_held(due, sender))
        .values(status=CallbackStatus.DELIVERED, delivered_at=now, last_status=http_status,
                last_error=None, lease_until=None, next_attempt_at=None, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount == 1


def record_failure(session: Session, due: DueCallback, sender: str, http_status: int | None,
                   error: str, now: datetime, policy: RetryPolicy) -> datetime | None:
    """The attempt failed: the result is due again after the back-off (returned), or abandoned
    (None) once the policy gives up."""
    again = policy.next_attempt(due.attempt, due.created_at, now)
    status = CallbackStatus.PENDING if again is not None else CallbackStatus.ABANDONED
    values: dict[str, Any] = {"last_status": http_status, "last_error": error[:_ERROR_TEXT],
                              "lease_until": None, "updated_at": now, "next_attempt_at": again,
                              "status": status}
    session.execute(update(PartnerCallback).where(_held(due, sender)).values(**values)
                    .execution_options(synchronize_session=False))
    return again


def earliest_due(session: Session) -> datetime | None:
    """When the next result falls due (a pending one's time, or a lease running out)."""
    pending = session.execute(select(func.min(PartnerCallback.next_attempt_at)).where(
        PartnerCallback.status == CallbackStatus.PENDING)).scalar()
    leased = session.execute(select(func.min(PartnerCallback.lease_until)).where(
        PartnerCallback.status == CallbackStatus.SENDING)).scalar()
    return min((t for t in (pending, leased) if t is not None), default=None)


def retry_abandoned(session: Session, application_id: int, now: datetime) -> bool:
    """Posts an abandoned result again (an operator's command): pending, due at once, with a
    fresh give-up period. False when the result is not abandoned."""
    return session.execute(
        update(PartnerCallback)
        .where(PartnerCallback.application_id == application_id,
               PartnerCallback.status == CallbackStatus.ABANDONED)
        .values(status=CallbackStatus.PENDING, next_attempt_at=now, created_at=now,
                attempts=0, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount == 1


# ------------------------------------------------------------------- posting
class CallbackSender:
    """Posts the due results of every partner (see the module docstring). Several may run, in
    one process or many; each result is posted by one at a time."""

    def __init__(self, engine: Engine, partners: Partners, *, policy: RetryPolicy = DEFAULT_RETRY,
                 clock: Callable[[], datetime] = utcnow, sender_id: str | None = None,
                 http: aiohttp.ClientSession | None = None, batch: int = 20,
                 poll_s: float = 30.0) -> None:
        self.engine = engine
        self.partners = partners
        self.policy = policy
        self.clock = clock
        self.sender_id = sender_id or default_sender_id()
        self.http = http
        """The HTTP client (None: the sender opens its own in :meth:`run`)."""
        self.batch = batch
        self.poll_s = poll_s
        """The longest it sleeps when nothing is due (a result written by another process is
        seen within this; one written here wakes it at once: :meth:`wake`)."""
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.failed = 0

    def wake(self) -> None:
        """A new result was written: post it now rather than at the next poll."""
        self._wake.set()

    async def send_due(self) -> int:
        """Takes the due results (a batch) and posts them at once; returns how many it took."""
        now = self.clock()
        lease = timedelta(seconds=self.policy.lease_s)
        due = await in_transaction(
            self.engine, lambda s: claim_due(s, self.sender_id, now, lease, self.batch))
        results = await asyncio.gather(*(self._post(item) for item in due), return_exceptions=True)
        for item, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):  # the database failed: its lease will lapse
                log.error("lending.callback.unrecorded application_id=%s attempt=%s",
                          item.application_id, item.attempt, exc_info=result)
        return len(due)

    async def _post(self, due: DueCallback) -> None:
        partner = self.partners.get(due.partner_id)
        if partner is None:
            await self._failed(due, None, f"partner {due.partner_id} is not configured")
            return
        url = URL(partner.callback_url)
        body = due.body.encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8", PARTNER_HEADER: partner.id,
            APPLICATION_HEADER: str(due.application_id), ATTEMPT_HEADER: str(due.attempt),
            **signed_headers(partner.secret, "POST", url.raw_path_qs, body,
                             now=self.clock().timestamp(), nonce=secrets.token_urlsafe(24)),
        }
        assert self.http is not None, "run() opens the HTTP client; or give one"
        try:
            async with self.http.post(url, data=body, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=self.policy.timeout_s),
                                      allow_redirects=False) as response:
                answer = (await response.text(errors="replace"))[:_ERROR_TEXT]
                status = response.status
        except asyncio.TimeoutError:  # aiohttp's, a different class from TimeoutError on 3.10
            await self._failed(due, None, f"no answer within {self.policy.timeout_s:g} s")
            return
        except aiohttp.ClientError as exc:
            await self._failed(due, None, f"{type(exc).__name__}: {exc}")
            return
        if not acknowledged(status):
            await self._failed(due, status, f"HTTP {status}: {answer}")
            return
        now = self.clock()
        held = await in_transaction(
            self.engine, lambda s: record_delivered(s, due, self.sender_id, status, now))
        self.delivered += 1
        log.info("lending.callback.delivered application_id=%s partner=%s attempt=%s "
                 "status=%s%s", due.application_id, due.partner_id, due.attempt, status,
                 "" if held else " (its lease had passed to another sender)")

    async def _failed(self, due: DueCallback, status: int | None, error: str) -> None:
        now = self.clock()
        again = await in_transaction(self.engine, lambda s: record_failure(
            s, due, self.sender_id, status, error, now, self.policy))
        self.failed += 1
        if again is None:
            log.warning("lending.callback.abandoned application_id=%s partner=%s attempt=%s "
                        "error=%s", due.application_id, due.partner_id, due.attempt, error)
        else:
            log.info("lending.callback.failed application_id=%s partner=%s attempt=%s "
                     "next=%s error=%s", due.application_id, due.partner_id, due.attempt,
                     again.isoformat(), error)

    def start(self) -> None:
        """Starts posting in the background (:meth:`run`) until :meth:`stop`."""
        self._task = asyncio.create_task(self.run(), name="partner-callbacks")

    async def stop(self) -> None:
        """Stops posting once the results being posted now are recorded."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _pause(self, seconds: float) -> None:
        """Until ``seconds`` have passed or :meth:`wake` or :meth:`stop` is called. (A timer
        rather than a task waiting on an event: ``aiohttp.web.run_app`` waits at shutdown for
        every task started after start-up, before the app's cleanup could stop it.)"""
        if self._wake.is_set():
            return
        timer = asyncio.get_running_loop().call_later(max(0.0, seconds), self._wake.set)
        try:
            await self._wake.wait()
        finally:
            timer.cancel()

    async def run(self) -> None:
        """Posts due results until :meth:`stop`: sleeps until the next is due (at most
        ``poll_s``) or a new one is written here. A failing database is logged and tried
        again after ``poll_s``; what was taken and not recorded is taken again when its lease
        runs out."""
        own = self.http is None
        if own:
            self.http = aiohttp.ClientSession()
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    if await self.send_due() >= self.batch:
                        continue  # more may be due
                    upcoming = await in_transaction(self.engine, earliest_due)
                except Exception:
                    log.exception("lending.callback.round_failed")
                    await self._pause(self.poll_s)
                    continue
                wait = self.poll_s
                if upcoming is not None:
                    wait = min(wait, (upcoming - self.clock()).total_seconds())
                await self._pause(wait)
        finally:
            if own and self.http is not None:
                await self.http.close()
                self.http = None
