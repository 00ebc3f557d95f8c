"""The dialer worker (``offercall worker``): the always-on scheduler.

Every second it looks for campaigns that are running and gives each one a dialer, which
dials whoever is due inside the campaign's windows (first attempts, retries and booked
callbacks) until the campaign is paused, stopped or finished. Callbacks booked in chat are
handed to the campaign that reached the customer. A pause is seen by the campaign's dialer
within a second: it places no more calls and lets those in flight end. Once a minute it makes
branch leads of the customers nobody could serve (an abandoned handoff, a campaign target
never reached, a callback no campaign can make) and moves leads past their claim or
verification deadline to the next branch. Once a minute too it escalates post-loan alerts
left unacknowledged past their deadline to the branch managers, and once a day (the bank's
local day) it judges every customer's settlements by the alert rules.

Nothing lives only in memory: the database holds every target's next due time and every
call's lease, so a worker that is killed and started again (by ``offercall run``'s
supervisor) carries on where it was. Calls it had in flight are closed as interrupted when
their leases lapse, and no target is ever held by two dialers.

``GET /health`` on ``OFFERCALL_WORKER_PORT`` answers once the voice is warm, with what the
worker is dialling; ``GET /metrics`` there serves its Prometheus metrics (calls in flight and
placed, outcomes, voice turn latency, SIP lines and late frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.engine import Engine

from branches.click_calls import ClickCallPolicy
from branches.lead_sources import collect_leads
from branches.leads import sweep_overdue
from branches.policies import LeadPolicies, lead_policies
from core.clock import utcnow
from core.settings import Settings
from lending.alert_policy import AlertPolicy, alert_policy
from lending.alerts import escalate_overdue, raise_alerts
from offercall.call_placing import CallPlacing
from offercall.click_calls import ClickCallPlacer
from offercall.metrics import add_metrics_route
from offercall.worker_metrics import Lines, worker_registry
from outbound import campaigns
from outbound.chat_callbacks import adopt_chat_callbacks
from outbound.dialer import Dialer, DialerStatus, default_dialer_id
from outbound.simulated_network import load_personas
from persistence.engine import in_transaction, open_database
from persistence.errors import DATABASE_AWAY
from voice.transports.sip import SipConfig, SipStack

log = logging.getLogger(__name__)

RETRY_CRASHED_DIALER_S = 5.0


class Placing(Protocol):
    """Makes a campaign's dialer (:class:`CallPlacing` in production)."""

    async def dialer(self, campaign: campaigns.CampaignInfo, **options: Any) -> Dialer: ...


@dataclass
class _Running:
    dialer: Dialer
    task: asyncio.Task[DialerStatus]


@dataclass
class Worker:
    """Gives every running campaign a dialer (see the module docstring)."""

    engine: Engine
    placing: Placing
    clock: Callable[[], datetime] = utcnow
    poll_s: float = 1.0
    dialer_poll_s: float = 0.5
    worker_id: str = field(default_factory=default_dialer_id)
    _running: dict[str, _Running] = field(default_factory=dict)
    _crashed_at: dict[str, float] = field(default_factory=dict)
    _halt: asyncio.Event = field(default_factory=asyncio.Event)
    adopted: int = 0
    leads_every_s: float = 60.0
    """How often the branch leads are collected and their deadlines swept."""
    lead_policies: LeadPolicies = field(default_factory=LeadPolicies)
    """The deadlines and scorecard rules the branch leads are judged by."""
    _leads_at: float | None = None
    click_calls: ClickCallPlacer | None = None
    """Places the one-click calls account managers ask for on their leads (needs SIP)."""
    leads_opened: int = 0
    leads_rerouted: int = 0
    alert_policy: AlertPolicy | None = None
    """Post-loan alerts' rules and deadline; None: the worker leaves alerts alone."""
    alerts_every_s: float = 60.0
    """How often overdue alerts are escalated (the rules judge once a local day)."""
    _alerts_at: float | None = None
    _alerts_judged_on: date | None = None
    alerts_raised: int = 0
    alerts_escalated: int = 0

    async def _db(self, work):
        return await in_transaction(self.engine, work)

    async def run(self, stop: asyncio.Event) -> None:
        """Schedules until ``stop`` is set, then lets the calls in flight end. While the
        database is away (a restart, a failover) it keeps looking every poll; a crash would
        cut off the calls in flight."""
        try:
            while not stop.is_set():
                try:
                    await self.tick()
                except DATABASE_AWAY:  # calls in flight go on meanwhile
                    log.exception("worker.database_unavailable")
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.poll_s)
        finally:
            self._halt.set()
            if self.click_calls is not None:
                await self.click_calls.stop()
            await asyncio.gather(*(r.task for r in self._running.values()), return_exceptions=True)

    async def tick(self) -> None:
        """One look: chat callbacks handed over, dialers started for running campaigns, ended
        dialers reaped."""
        now = self.clock()
        adopted = await self._db(lambda s: adopt_chat_callbacks(s, now))
        for item in adopted:
            log.info("worker.chat_callback", extra={"callback": item.callback_id, "campaign": item.campaign_id})
        self.adopted += len(adopted)
        await self._branch_leads(now)
        await self._post_loan_alerts(now)
        await self._click_calls()
        self._reap()
        running = await self._db(campaigns.running_campaign_ids)
        loop_time = asyncio.get_running_loop().time()
        for campaign_id in running:
            crashed = self._crashed_at.get(campaign_id)
            if campaign_id in self._running or (
                    crashed is not None and loop_time - crashed < RETRY_CRASHED_DIALER_S):
                continue
            await self._start(campaign_id)

    async def _branch_leads(self, now: datetime) -> None:
        """Every ``leads_every_s``: customers the bot and the campaigns could not serve become
        branch leads, and leads past their claim or verification deadline go to the next
        branch. A failure is logged and tried again next time; dialling goes on."""
        loop_time = asyncio.get_running_loop().time()
        if self._leads_at is not None and loop_time - self._leads_at < self.leads_every_s:
            return
        self._leads_at = loop_time
        try:
            deadlines, scorecard = self.lead_policies.deadlines, self.lead_policies.scorecard
            opened, rerouted = await self._db(lambda s: (
                collect_leads(s, now, deadlines=deadlines, scorecard_policy=scorecard),
                sweep_overdue(s, now, deadlines, scorecard)))
        except Exception:
            log.exception("worker.branch_leads_failed")
            return
        self.leads_opened += len(opened)
        self.leads_rerouted += len(rerouted)
        for reroute in rerouted:
            log.info("worker.lead_rerouted lead=%s from=%s to=%s why=%s", reroute.lead_id,
                     reroute.from_branch, reroute.to_branch, reroute.reason)

    async def _post_loan_alerts(self, now: datetime) -> None:
        """Every ``alerts_every_s``: alerts past their deadline go to their branch managers;
        on the first pass of each local day, the rules judge every customer's settlements
        (new records are judged as they arrive). A failure is logged and tried again next
        time; dialling goes on."""
        policy = self.alert_policy
        loop_time = asyncio.get_running_loop().time()
        if policy is None or (self._alerts_at is not None
                              and loop_time - self._alerts_at < self.alerts_every_s):
            return
        self._alerts_at = loop_time
        today = policy.today(now)
        judge = today != self._alerts_judged_on
        try:
            raised, escalated = await self._db(lambda s: (
                raise_alerts(s, now, policy) if judge else [], escalate_overdue(s, now)))
        except Exception:
            log.exception("worker.post_loan_alerts_failed")
            return
        if judge:
            self._alerts_judged_on = today
        self.alerts_raised += len(raised)
        self.alerts_escalated += len(escalated)

    async def _click_calls(self) -> None:
        """Takes the one-click calls there are lines for; a failure is logged, dialling goes on."""
        if self.click_calls is None:
            return
        try:
            await self.click_calls.tick()
        except Exception:
            log.exception("worker.click_calls_failed")

    async def _start(self, campaign_id: str) -> None:
        try:
            campaign = await self._db(lambda s: campaigns.get_campaign(s, campaign_id))
            dialer = await self.placing.dialer(
                campaign, dialer_id=self.worker_id, idle_horizon=None,
                halt=self._halt, clock=self.clock, poll_s=self.dialer_poll_s)
        except Exception:
            log.exception("worker.dialer_not_started", extra={"campaign": campaign_id})
            self._crashed_at[campaign_id] = asyncio.get_running_loop().time()
            return
        log.info("worker.dialling", extra={"campaign": campaign_id})
        self._running[campaign_id] = _Running(dialer, asyncio.create_task(dialer.run(), name=campaign_id))

    def _reap(self) -> None:
        for campaign_id, running in list(self._running.items()):
            if not running.task.done():
                continue
            del self._running[campaign_id]
            error = None if running.task.cancelled() else running.task.exception()
            if error is not None:
                log.error("worker.dialer_crashed", exc_info=error, extra={"campaign": campaign_id})
                self._crashed_at[campaign_id] = asyncio.get_running_loop().time()

    def dialers(self) -> dict[str, Dialer]:
        """The dialers running now, by campaign."""
        return {campaign_id: running.dialer for campaign_id, running in self._running.items()}

    def health(self) -> dict[str, Any]:
        """What the worker is doing, for ``GET /health``."""
        return {
            "status": "ok", "worker": self.worker_id, "chat_callbacks_adopted": self.adopted,
            "leads_opened": self.leads_opened, "leads_rerouted": self.leads_rerouted,
            "alerts_raised": self.alerts_raised, "alerts_escalated": self.alerts_escalated,
            "campaigns": {cid: {"in_flight": r.dialer.status.in_flight, "started": r.dialer.status.started,
                                "finished": r.dialer.status.finished, "pacing": r.dialer.status.pacing}
                          for cid, r in self._running.items()},
        }


async def _health_site(
    worker: Worker, settings: Settings, lines: Lines | None = None
) -> web.AppRunner:
    async def health(_: web.Request) -> web.Response:
        return web.json_response(worker.health())

    app = web.Application()
    app.router.add_get("/health", health)
    add_metrics_route(app, worker_registry(worker, lines))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.worker_port).start()
    return runner


async def serve_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Runs the worker until SIGTERM/SIGINT (or ``stop``)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    policies = lead_policies(settings)
    engine = open_database(settings)
    personas = load_personas(settings.personas_path)
    # One SIP stack per process (PJSIP's rule), started on first use: the campaigns' calls and
    # the one-click calls share it.
    sip = SipStack(SipConfig.from_environ())
    try:
        # The web server sweeps the handoff queue's time limits; the worker only joins it.
        async with CallPlacing(settings, engine, personas=personas, sweep=False,
                               sip_stack=sip) as placing:
            worker_id = default_dialer_id()
            click_calls = ClickCallPlacer(engine, sip, settings.recordings_dir, worker_id=worker_id,
                                          policy=ClickCallPolicy.from_settings(settings))
            worker = Worker(engine, placing, lead_policies=policies, worker_id=worker_id,
                            click_calls=click_calls, alert_policy=alert_policy(settings))
            runner = await _health_site(worker, settings, sip)
            try:
                await worker.run(stop)
            finally:
                await runner.cleanup()
    finally:
        await sip.stop()
        engine.dispose()
