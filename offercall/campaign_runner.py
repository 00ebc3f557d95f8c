"""Running campaigns: the dialer wired to the voice layer, the bot and the handoff queue, with
live progress; the demo campaign; status and reports.
"""


from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.engine import Engine
from tqdm import tqdm

from bot.actions import texts
from core.clock import utcnow
from core.settings import Settings
from core.vocabulary import CampaignStatus
from offercall.call_placing import CallPlacing
from outbound import campaigns
from outbound.arm_results import arm_results
from outbound.channel_funnel_data import channel_facts
from outbound.dialer import DialerStatus
from outbound.lifecycle import CampaignCommand
from outbound.loan_funnel_data import loan_facts
from outbound.report import CampaignSummary, write_report
from outbound.report_data import attempt_facts, lead_facts
from outbound.simulated_network import Personas
from outbound.whitelist import ImportReport, import_whitelist_file
from persistence.audit import Actor
from persistence.engine import open_database, session_scope
from persistence.schema import Customer
from voice.transports.sip import SipStack, TrunkConfig

SET_RUNNING_FROM = {
    CampaignStatus.DRAFT: CampaignCommand.START,
    CampaignStatus.PAUSED: CampaignCommand.RESUME,
}
"""How ``campaign start`` makes a campaign run: it starts a draft and resumes a paused one;
a running one goes on being dialled (after a restart); a stopped or done one is refused."""

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEMO_WHITELIST = PROJECT_ROOT / "data" / "demo_whitelist.csv"
DEMO_PERSONAS = PROJECT_ROOT / "data" / "demo_personas.yml"
DEMO_AGENTS = ("jt_zhang", "sl_wang", "pd_li", "dy_chen", "cd_zhou")
DEMO_CONFIG = {
    # so the demo runs whenever someone tries it, and can be run again at once
    "window_start": "00:00", "window_end": "23:59:59", "min_gap_s": 0,
    "max_attempts_per_week": 50, "retry_backoff_s": [5, 10], "max_attempts": 3,
    "max_concurrency": 3, "lease_s": 30,
}


def open_engine(settings: Settings) -> Engine:
    """The database (its schema checked: ``offercall migrate`` makes it)."""
    return open_database(settings)


# ------------------------------------------------------------------ import / create
def import_into(engine: Engine, path: Path, campaign_id: str | None, progress: bool = True
                ) -> tuple[ImportReport, int, list[str]]:
    """Loads a whitelist file; with a campaign, adds its good rows as the campaign's targets."""
    report = import_whitelist_file(engine, path, progress=progress)
    added, unknown = 0, []
    if campaign_id is not None:
        with session_scope(engine) as session:
            added, unknown = campaigns.add_targets(
                session, campaign_id, report.loaded_customer_ids, utcnow())
    return report, added, unknown


def create(engine: Engine, campaign_id: str, name: str, transport: str,
           config: campaigns.CampaignConfig, customer_ids: list[str], actor: Actor | None = None,
           *, dial_lines: int = Settings.dial_lines) -> tuple[int, list[str]]:
    """A new campaign in one transaction with its targets; returns (targets, unknown ids).
    Refused (:class:`CampaignError`) unless this installation can run it: its transport, its
    script variants, no more calls at once than ``dial_lines``."""
    campaigns.check_against(config, transport=transport, known_variants=tuple(texts.script_variants()),
                            dial_lines=dial_lines)
    with session_scope(engine) as session:
        now = utcnow()
        campaigns.create_campaign(session, campaign_id, name, transport, config, now,
                                  actor=actor or Actor.command_line())
        return campaigns.add_targets(session, campaign_id, customer_ids, now)


def all_customer_ids(engine: Engine, segment: str | None = None) -> list[str]:
    """Every customer (of a segment), in id order."""
    with session_scope(engine) as session:
        query = select(Customer.customer_id).order_by(Customer.customer_id)
        if segment:
            query = query.where(Customer.segment == segment)
        return list(session.execute(query).scalars())


def parse_settings(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs (values in JSON, else strings) as campaign settings."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise campaigns.CampaignError(f"--set wants key=value, got {pair!r}")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


# ------------------------------------------------------------------ dialling
@dataclass
class CampaignRun:
    """What one ``start`` did."""

    status: DialerStatus
    progress: campaigns.CampaignProgress


class _ProgressLine:
    """A tqdm bar over the campaign's targets with calls in flight and outcomes so far."""

    def __init__(self, engine: Engine, campaign_id: str, out: TextIO | None) -> None:
        with session_scope(engine) as session:
            self.total = sum(campaigns.progress(session, campaign_id).targets.values())
        self.bar = tqdm(total=self.total, unit="customer", desc=campaign_id, file=out,
                        disable=out is None, dynamic_ncols=True)
        self.engine, self.campaign_id = engine, campaign_id
        self._last: tuple[int, str] | None = None

    def update(self, status: DialerStatus) -> None:
        with session_scope(self.engine) as session:
            done = campaigns.progress(session, self.campaign_id).targets.get("done", 0)
        outcomes = " ".join(f"{k}={v}" for k, v in sorted(status.outcomes.items()))
        line = f"in flight {status.in_flight} | {outcomes} | {status.pacing}"
        if (done, line) == self._last:
            return
        self._last = (done, line)
        self.bar.n = done
        self.bar.set_postfix_str(line, refresh=True)

    def close(self) -> None:
        self.bar.close()


async def run_campaign(
    settings: Settings,
    campaign_id: str,
    *,
    personas: Personas | None = None,
    dial_log: Path | None = None,
    simulated_agents: tuple[str, ...] = (),
    out: TextIO | None = sys.stderr,
    idle_horizon: timedelta = timedelta(minutes=10),
    dialer_id: str | None = None,
    sip_stack: SipStack | None = None,
    sip_trunk: TrunkConfig | None = None,
    actor: Actor | None = None,
) -> CampaignRun:
    """Dials the campaign (set to running) until it is finished, paused, or nothing is due
    within ``idle_horizon``; the Rasa and action servers must be up.

    A ``simulated`` campaign calls simulated customers acting out ``personas``, and agents take
    transfers in the console (or as ``simulated_agents``). A ``sip`` campaign dials the
    customers' phones through the SIP trunk of ``OFFERCALL_SIP_*`` (or ``sip_stack`` and
    ``sip_trunk``) and transfers interested customers to the agents' SIP queue."""
    from outbound.simulated_agents import AgentBehaviour, simulated_agent

    engine = open_engine(settings)
    with session_scope(engine) as session:
        campaign = campaigns.get_campaign(session, campaign_id)
        if campaign.transport == "simulated" and personas is None:
            raise campaigns.CampaignError("a simulated campaign needs personas for its customers")
        status = CampaignStatus(campaign.status)
        if status is not CampaignStatus.RUNNING:
            if status not in SET_RUNNING_FROM:
                raise campaigns.CampaignError(f"campaign {campaign_id!r} is {status}: nobody more is dialled")
            campaigns.command(session, campaign_id, SET_RUNNING_FROM[status],
                              actor or Actor.command_line(), utcnow())
    bar = _ProgressLine(engine, campaign_id, out)
    stop_agents = asyncio.Event()
    agent_tasks: list[asyncio.Task[None]] = []
    try:
        async with CallPlacing(settings, engine, personas=personas, dial_log=dial_log,
                               sip_stack=sip_stack, sip_trunk=sip_trunk) as placing:
            agent_tasks = [asyncio.create_task(simulated_agent(placing.service, name, AgentBehaviour(),
                                                               stop_agents))
                           for name in simulated_agents]
            dialer = await placing.dialer(campaign, dialer_id=dialer_id, idle_horizon=idle_horizon,
                                          on_change=bar.update)
            try:
                status = await dialer.run()
            finally:
                stop_agents.set()
                await asyncio.gather(*agent_tasks, return_exceptions=True)
    finally:
        bar.close()
    with session_scope(engine) as session:
        progress = campaigns.progress(session, campaign_id)
    engine.dispose()
    return CampaignRun(status, progress)


# ------------------------------------------------------------------ reporting
def status_text(engine: Engine, campaign_id: str) -> str:
    """A few lines: the campaign, its targets by state, outcomes, and the next due call."""
    with session_scope(engine) as session:
        info = campaigns.get_campaign(session, campaign_id)
        progress = campaigns.progress(session, campaign_id)
    lines = [
        f"campaign {info.id} ({info.name}): {info.status}, transport {info.transport}, "
        f"window {info.config.window_start}-{info.config.window_end} {info.config.timezone}",
        "targets: " + (", ".join(f"{k} {v}" for k, v in sorted(progress.targets.items())) or "none"),
        "attempt outcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(progress.outcomes.items())) or "none yet"),
        f"calls in flight: {progress.in_flight}",
    ]
    if progress.next_due is not None:
        lines.append(f"next due: {progress.next_due.isoformat(timespec='seconds')}")
    return "\n".join(lines)


def write_campaign_report(engine: Engine, campaign_id: str, out_dir: Path) -> dict[str, Path]:
    """The HTML report and CSV exports of a campaign into ``out_dir``."""
    with session_scope(engine) as session:
        info = campaigns.get_campaign(session, campaign_id)
        facts = attempt_facts(session, campaign_id)
        leads = lead_facts(session, campaign_id)
        channels = channel_facts(session, campaign_id)
        arms = arm_results(session, campaign_id)
        loans = loan_facts(session, campaign_id)
    summary = CampaignSummary(
        id=info.id, name=info.name, status=info.status, created_at=info.created_at,
        variants=sorted(info.config.variants), transport=info.transport,
        window=f"{info.config.window_start}–{info.config.window_end} ({info.config.timezone})",
    )
    return write_report(out_dir, summary, facts, utcnow(), leads, channels, arms, loans=loans)


def report_dir(settings: Settings, campaign_id: str) -> Path:
    """Where a campaign's report goes by default."""
    return settings.var_dir / "reports" / campaign_id


def demo_campaign_id(now: datetime) -> str:
    """A fresh id per demo run, so the demo can be run again."""
    return f"demo-{now.strftime('%Y%m%d-%H%M%S')}"


def live_page_url(settings: Settings, campaign_id: str) -> str:
    """The campaign's live status page in the workspace."""
    return f"http://{settings.web_host}:{settings.web_port}/workspace/campaigns/{campaign_id}"


def _quiet(progress: campaigns.CampaignProgress, now: datetime, horizon: timedelta) -> bool:
    """Nobody in a call and nobody due within ``horizon``."""
    if progress.finished:
        return True
    return not progress.in_flight and (progress.next_due is None or progress.next_due > now + horizon)


async def watch_campaign(settings: Settings, engine: Engine, campaign_id: str, *,
                         simulated_agents: tuple[str, ...] = (), out: TextIO | None = sys.stderr,
                         idle_horizon: timedelta = timedelta(minutes=2), poll_s: float = 1.0,
                         ) -> campaigns.CampaignProgress:
    """Follows a campaign that the worker dials, with a progress bar, until nobody is in a call
    or due within ``idle_horizon``; ``simulated_agents`` take its transfers meanwhile."""
    from handoff.service import HandoffService
    from handoff.sla import SlaPolicy
    from outbound.simulated_agents import AgentBehaviour, simulated_agent

    service = HandoffService(engine, SlaPolicy.from_settings(settings))
    await service.start(sweep=False)  # the web server sweeps the queue's time limits
    stop_agents = asyncio.Event()
    agent_tasks = [asyncio.create_task(simulated_agent(service, name, AgentBehaviour(), stop_agents))
                   for name in simulated_agents]
    bar = _ProgressLine(engine, campaign_id, out)
    try:
        while True:
            await asyncio.sleep(poll_s)
            with session_scope(engine) as session:
                progress = campaigns.progress(session, campaign_id)
            bar.update(DialerStatus(in_flight=progress.in_flight, outcomes=dict(progress.outcomes),
                                    pacing="dialled by the worker"))
            if _quiet(progress, utcnow(), idle_horizon):
                return progress
    finally:
        bar.close()
        stop_agents.set()
        await asyncio.gather(*agent_tasks, return_exceptions=True)
        await service.stop()


def run_demo(settings: Settings, out: TextIO = sys.stdout,
             ensure_servers: Callable[[], None] | None = None) -> Path:
    """The README's main job: imports the demo whitelist, creates a campaign with two script
    variants and starts it; the worker dials its simulated customers while simulated agents
    take the transfers, and its live page shows it. Ends by writing the report, once nobody is
    in a call or due within two minutes (booked callbacks stay scheduled). Returns the
    report's path."""
    engine = open_engine(settings)
    campaign_id = demo_campaign_id(utcnow())
    report, _, _ = import_into(engine, DEMO_WHITELIST, None, progress=False)
    print(report.summary().splitlines()[0], file=out)
    config = campaigns.CampaignConfig.from_json(DEMO_CONFIG)
    added, _ = create(engine, campaign_id, "演示：预授信外呼 (demo)", "simulated", config,
                      [c for c in report.loaded_customer_ids], dial_lines=settings.dial_lines)
    print(f"campaign {campaign_id}: {added} customers, variants A/B, "
          f"{config.max_concurrency} calls at a time", file=out)
    if ensure_servers is not None:
        ensure_servers()
    with session_scope(engine) as session:
        campaigns.command(session, campaign_id, CampaignCommand.START, Actor.command_line(), utcnow())
    print(f"\nLive page: {live_page_url(settings, campaign_id)}\n"
          f"  (log in as hq_campaigns / demo-manager-pass; every demo login is in data/agents_sample.csv)\n",
          file=out, flush=True)
    asyncio.run(watch_campaign(settings, engine, campaign_id, simulated_agents=DEMO_AGENTS))
    print(status_text(engine, campaign_id), file=out)
    paths = write_campaign_report(engine, campaign_id, report_dir(settings, campaign_id))
    engine.dispose()
    return paths["html"]
