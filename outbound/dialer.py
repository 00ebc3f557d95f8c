"""The dialer: places a campaign's calls within its limits until nothing is due.

One loop per dialer process. Each round it recovers attempts whose dialer died, asks the
pacing rule how many calls to start given the calls in flight and the agents' capacity,
claims that many due targets (the claim re-checks compliance and records the attempt), and
starts each call as a task. A heartbeat renews the leases of the calls in flight. Several
dialers can share a campaign: the database hands each target to one of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from core.clock import utcnow
from core.vocabulary import DialOutcome
from handoff import routing
from handoff.agents import all_accounts
from outbound import campaigns, lifecycle, metrics
from outbound.call_facts import dial_outcome, disclosure_proof, funnel_facts
from outbound.pacing import Capacity, PacingDecision, calls_to_start, transfer_rate
from outbound.plan_runner import PlanRunner
from persistence import store
from persistence.engine import in_transaction
from persistence.errors import DATABASE_AWAY
from persistence.schema import Handoff
from voice.events import CallResult

log = logging.getLogger(__name__)

CallPlacer = Callable[[campaigns.DialJob], Awaitable[CallResult]]


def default_dialer_id() -> str:
    """host:pid, so a restarted dialer is a new one (its old leases simply expire)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def agent_capacity(session, now: datetime) -> Capacity:
    """Agents online, those busy with a customer, and live customers waiting for one."""
    online = {a.id for a in all_accounts(session, now) if a.online and a.role == "agent"}
    holders = set(session.execute(
        select(Handoff.claimed_by).where(Handoff.status.in_(("claimed", "connected")))).scalars())
    waiting = session.execute(
        select(func.count()).where(Handoff.status.in_(tuple(routing.CLAIMABLE)),
                                   Handoff.kind == "live")).scalar() or 0
    return Capacity(agents_online=len(online), agents_busy=len(online & holders),
                    queue_waiting=int(waiting))


@dataclass
class DialerStatus:
    """What the dialer is doing, for live progress lines."""

    in_flight: int = 0
    started: int = 0
    finished: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    pacing: str = ""
    recovered: int = 0


NOT_ANSWERED = frozenset({DialOutcome.NO_ANSWER, DialOutcome.BUSY, DialOutcome.DECLINED,
                          DialOutcome.UNREACHABLE, DialOutcome.INVALID_NUMBER})


class Dialer:
    """Dials one campaign. ``run()`` returns when the campaign is finished, is no longer
    running (paused, stopped), has nothing due within ``idle_horizon``, or ``halt`` is set."""

    def __init__(
        self,
        engine: Engine,
        campaign_id: str,
        place_call: CallPlacer,
        *,
        dialer_id: str | None = None,
        new_call_id: Callable[[], str],
        poll_s: float = 0.5,
        idle_horizon: timedelta | None = timedelta(minutes=10),
        halt: asyncio.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_change: Callable[[DialerStatus], None] | None = None,
        lines_in_use: Callable[[], int] | None = None,
        max_lines: int | None = None,
        record_retry_s: float = 20.0,
        plans: PlanRunner | None = None,
    ) -> None:
        self.engine = engine
        self.plans = plans
        """Takes a planned campaign's due steps before each round (None: steps are not taken,
        as for a campaign without a plan)."""
        self.record_retry_s = record_retry_s
        """How long a finished call's outcome is retried while the database is away (its lease
        is renewed meanwhile); after that the lease lapses and recovery closes it as
        interrupted."""
        self.campaign_id = campaign_id
        self.place_call = place_call
        self.dialer_id = dialer_id or default_dialer_id()
        self.new_call_id = new_call_id
        self.poll_s = poll_s
        self.idle_horizon = idle_horizon
        """None: dial until the campaign is finished or stops running (the always-on worker)."""
        self.halt = halt
        """Set it to make ``run()`` place no more calls and return once its calls end."""
        self.clock = clock
        self.on_change = on_change
        self.lines_in_use = lines_in_use
        """Telephone lines busy now, when the network counts them (SIP legs: a bridged transfer
        keeps two after the bot has left); pacing counts whichever is more, lines or calls."""
        self.max_lines = max_lines
        """Lines this process can hold at once; caps the campaign's concurrency."""
        self.status = DialerStatus()
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()

    async def run(self) -> DialerStatus:
        """Dials until done (see the class docstring); waits for calls in flight to end."""
        heartbeat = asyncio.create_task(self._heartbeat(), name=f"{self.dialer_id}:heartbeat")
        try:
            while not (self.halt is not None and self.halt.is_set()):
                self._wake.clear()  # before looking: a call that ends meanwhile wakes the next look
                now = self.clock()
                seen = await self._db(lambda s: self._look(s, now))
                if not lifecycle.dials(seen.status):
                    break
                if seen.next_due is not None and seen.next_due <= now:
                    campaign = await self._db(lambda s: campaigns.get_campaign(s, self.campaign_id))
                    if self.plans is not None and campaign.config.planned:
                        await self.plans.advance(self.campaign_id, now)  # a call step: dial now
                    await self._round(campaign, now, seen.being_dialled)
                elif not self._calls and self._idle(seen):
                    break
                try:
                    await asyncio.wait_for(self._wake.wait(), self._pause_s(seen, now))
                except asyncio.TimeoutError:
                    pass
            if self._calls:
                await asyncio.gather(*self._calls.values(), return_exceptions=True)
        finally:
            heartbeat.cancel()
        await self._db(self._mark_done_if_finished)
        return self.status

    def _pause_s(self, seen: campaigns.Glance, now: datetime) -> float:
        """Until the next look: the poll interval, or less when someone falls due sooner."""
        if seen.next_due is None or seen.next_due <= now:
            return self.poll_s
        return min(self.poll_s, (seen.next_due - now).total_seconds())

    def _look(self, session, now: datetime) -> campaigns.Glance:
        """Recovers this campaign's attempts whose dialer died, then glances at it."""
        recovered = campaigns.recover_expired(session, now, self.campaign_id)
        if recovered:
            self.status.recovered += len(recovered)
            log.warning("dialer.recovered", extra={"attempts": recovered})
        return campaigns.glance(session, self.campaign_id)

    async def _db(self, work):
        return await in_transaction(self.engine, work)

    async def _db_retrying(self, work):
        """``_db``, tried again every half second for ``record_retry_s`` while the database is
        away (a restart, a failover): a finished call's outcome must not be lost to it, or
        recovery would take the call for cut off and dial the customer again."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.record_retry_s
        while True:
            try:
                return await self._db(work)
            except DATABASE_AWAY:
                if loop.time() >= give_up:
                    raise
                log.warning("dialer.database_unavailable; retrying the call's record")
                await asyncio.sleep(0.5)

    async def _round(self, campaign: campaigns.CampaignInfo, now: datetime,
                     campaign_in_flight: int = 0) -> None:
        decision = await self._pace(campaign, now, campaign_in_flight)
        self.status.pacing = decision.reason
        if decision.start <= 0:
            self._changed()
            return
        claimed = await self._db(lambda s: campaigns.claim_due(
            s, self.campaign_id, decision.start, now, self.dialer_id, self.new_call_id,
            max_in_call=campaign.config.max_concurrency))
        for job in claimed.jobs:
            self._calls[job.attempt_id] = asyncio.create_task(self._call(job), name=job.call_id)
            self.status.started += 1
        metrics.CALLS_PLACED.inc(len(claimed.jobs))
        self._changed()

    async def _pace(self, campaign: campaigns.CampaignInfo, now: datetime,
                    campaign_in_flight: int = 0) -> PacingDecision:
        """The calls to start: within this process's lines and, across every dialer sharing the
        campaign (``campaign_in_flight`` targets in a call), its concurrency and agents."""
        policy = campaign.config.pacing_policy()
        capacity = await self._db(lambda s: agent_capacity(s, now))
        answered = sum(n for o, n in self.status.outcomes.items() if o not in NOT_ANSWERED)
        rate = transfer_rate(policy, answered, self.status.outcomes.get("transferred", 0))
        in_flight = len(self._calls)
        if self.lines_in_use is not None:
            in_flight = max(in_flight, self.lines_in_use())
        overall = calls_to_start(policy, max(in_flight, campaign_in_flight), capacity, rate)
        if self.max_lines is None:
            return overall
        mine = calls_to_start(replace(policy, max_concurrency=min(policy.max_concurrency, self.max_lines)),
                              in_flight, capacity, rate)
        return mine if mine.start < overall.start else overall

    async def _call(self, job: campaigns.DialJob) -> None:
        try:
            result = await self.place_call(job)
            done = campaigns.AttemptOutcome(
                outcome=dial_outcome(result), facts=funnel_facts(result),
                disclosure_proof=disclosure_proof(result), handoff_id=result.handoff_id,
                callback_at=await self._db_retrying(lambda s: _callback_due(s, result.call_id)),
            )
        except Exception as exc:  # the call failed to run: record it, retry later
            log.exception("dialer.call_failed", extra={"call_id": job.call_id})
            done = campaigns.AttemptOutcome(outcome=DialOutcome.FAILED, facts={"error": str(exc)[:500]})
        metrics.CALLS_ENDED.labels(str(done.outcome)).inc()
        try:
            kept = await self._db_retrying(lambda s: campaigns.finish_attempt(
                s, job.attempt_id, self.dialer_id, done, self.clock()))
            if not kept:
                log.error("dialer.lease_lost", extra={"call_id": job.call_id})
            self.status.finished += 1
            self.status.outcomes[done.outcome] = self.status.outcomes.get(done.outcome, 0) + 1
        except Exception:  # not recorded: the lease lapses and recovery closes it as interrupted
            log.exception("dialer.record_failed", extra={"call_id": job.call_id})
        finally:
            self._calls.pop(job.attempt_id, None)
            self._changed()
            self._wake.set()

    async def _heartbeat(self) -> None:
        while True:
            campaign = await self._db(lambda s: campaigns.get_campaign(s, self.campaign_id))
            every = max(0.2, campaign.config.lease_s / 3)
            await asyncio.sleep(every)
            ids = list(self._calls)
            until = self.clock() + timedelta(seconds=campaign.config.lease_s)
            await self._db(lambda s: campaigns.renew_leases(s, ids, self.dialer_id, until))

    def _idle(self, seen: campaigns.Glance) -> bool:
        """Nothing more to do: everybody is finished, or (with an idle horizon) nobody is due
        within it. Another dialer's calls in flight may still reschedule targets."""
        if seen.finished:
            return True
        if self.idle_horizon is None or seen.being_dialled:
            return False
        return seen.next_due is None or seen.next_due > self.clock() + self.idle_horizon

    def _mark_done_if_finished(self, session) -> None:
        if campaigns.progress(session, self.campaign_id).finished:
            campaigns.mark_done(session, self.campaign_id, self.clock())

    def _changed(self) -> None:
        self.status.in_flight = len(self._calls)
        if self.on_change is not None:
            self.on_change(self.status)


def _callback_due(session, call_id: str) -> datetime | None:
    booked = [c for c in store.callbacks_for(session, call_id) if c.status == "scheduled"]
    return booked[-1].due_at if booked else None
