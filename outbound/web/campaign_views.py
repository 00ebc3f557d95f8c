"""What the campaign API shows: campaigns, counters, funnels, contact plans, audit entries and
the attempts export, as JSON and CSV (pure).

No view carries a customer's full name or phone number: the export's rows are masked when
they are read (:class:`ExportRow` holds only the masked forms).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, tzinfo
from typing import Any

from outbound.campaigns import CampaignInfo, CampaignProgress
from outbound.contact_plans import CHANNELS, MAX_STEPS, MAX_WAIT, STOP_REASONS, ContactPlan
from outbound.funnel import FunnelCounts
from outbound.report import CampaignSummary
from outbound.sms_rules import TEMPLATES
from persistence.audit import AuditRecord

FUNNEL_FLAGS = ("answered", "right_person", "disclosure_played", "offer_heard",
                "hung_up_mid_offer", "interested", "transferred")
"""The funnel facts a call records about itself (``CallAttempt.facts``)."""
CSV_ENCODING = "utf-8-sig"  # with a BOM, so Excel on Chinese Windows reads UTF-8 correctly


def _iso(moment: datetime | None, zone: tzinfo | None = None) -> str | None:
    if moment is None:
        return None
    return (moment.astimezone(zone) if zone else moment).isoformat()


def counters_json(progress: CampaignProgress) -> dict[str, Any]:
    """Targets by status (and in all), finished attempts by outcome, calls in flight."""
    return {
        "targets": {**dict(sorted(progress.targets.items())),
                    "total": sum(progress.targets.values())},
        "outcomes": dict(sorted((str(k), v) for k, v in progress.outcomes.items())),
        "in_flight": progress.in_flight,
        "next_due": _iso(progress.next_due),
    }


def funnel_json(funnels: Mapping[str, FunnelCounts]) -> dict[str, Any]:
    """Per script variant (and ``all``): customers at each stage, attempts, drop-off reasons
    and the share of dialled customers transferred to an agent."""
    return {name: {"customers": counts.customers, "attempts": counts.attempts,
                   "stages": dict(counts.stages), "drop_offs": dict(counts.drop_offs),
                   "transfer_rate": counts.conversion()}
            for name, counts in funnels.items()}


def campaign_json(info: CampaignInfo, progress: CampaignProgress, *,
                  with_settings: bool) -> dict[str, Any]:
    """A campaign with its counters; its settings only for roles that may see them."""
    view = {"id": info.id, "name": info.name, "status": str(info.status),
            "transport": info.transport, "created_at": _iso(info.created_at),
            "product": info.config.product, "segment": info.config.segment,
            "counters": counters_json(progress)}
    if with_settings:
        view["config"] = info.config.to_json()
    return view


PLAN_WAITING = ("planned", "planning")
"""A planned customer waiting for the step at their ``plan_step`` (or being taken it)."""
PLAN_DIALLING = ("pending", "claiming", "dialing")
"""A planned customer whose call step (the one before their ``plan_step``) is being dialled,
with the campaign's retries; they come back to ``planned`` after it."""
ALWAYS_STOP_ON = ("opt_out",)
"""Stop conditions a plan cannot leave out (``ContactPlan`` refuses a plan without them)."""


def plan_options_json() -> dict[str, Any]:
    """What a plan editor offers: the channels, the text message templates (name -> text with
    ``{bank}`` and ``{link}``), the stop conditions and the limits the server checks."""
    return {"channels": list(CHANNELS), "templates": dict(TEMPLATES),
            "stop_on": list(STOP_REASONS), "always_stop_on": list(ALWAYS_STOP_ON),
            "max_steps": MAX_STEPS, "max_wait_hours": MAX_WAIT / timedelta(hours=1)}


def plan_json(info: CampaignInfo, plan: ContactPlan | None,
              positions: Mapping[tuple[int, str], int]) -> dict[str, Any]:
    """A campaign's contact plan (None: calls only) as the server reads it, and where its
    customers stand: per step, those ``waiting`` for it and those whose call it is being
    ``dialling``; ``finished`` those whose plan is over (stopped or every step taken);
    ``elsewhere`` any whose position the plan has no step for (its steps changed while
    paused). ``positions`` is (``plan_step``, target status) -> customers."""
    view: dict[str, Any] = {"id": info.id, "status": str(info.status),
                            "plan": plan.to_json() if plan is not None else None}
    if plan is None:
        return view
    steps = [{"waiting": 0, "dialling": 0} for _ in plan.steps]
    finished = elsewhere = 0
    for (position, status), count in positions.items():
        if status == "done":
            finished += count
        elif status in PLAN_WAITING and 0 <= position < len(steps):
            steps[position]["waiting"] += count
        elif status in PLAN_DIALLING and 1 <= position <= len(steps):
            steps[position - 1]["dialling"] += count
        else:
            elsewhere += count
    return {**view, "positions": steps, "finished": finished, "elsewhere": elsewhere}


def audit_json(records: Iterable[AuditRecord]) -> list[dict[str, Any]]:
    """Audit entries as the pages show them (in the order given)."""
    return [{"id": r.id, "at": _iso(r.at), "actor": r.actor, "actor_role": r.actor_role,
             "action": str(r.action), "detail": r.detail} for r in records]


def report_summary(info: CampaignInfo) -> CampaignSummary:
    """What the HTML report says about the campaign itself."""
    return CampaignSummary(
        id=info.id, name=info.name, status=str(info.status), created_at=info.created_at,
        variants=sorted(info.config.variants), transport=info.transport,
        window=f"{info.config.window_start}–{info.config.window_end} ({info.config.timezone})")


def funnel_flags(facts: Mapping[str, Any]) -> dict[str, bool]:
    """The funnel flags of a call's recorded facts (a voicemail is not an answer)."""
    flags = {name: bool(facts.get(name)) for name in FUNNEL_FLAGS}
    flags["answered"] = flags["answered"] and not facts.get("voicemail")
    return flags


@dataclass(frozen=True)
class ExportRow:
    """One finished attempt as the export shows it: the customer masked."""

    campaign_id: str
    call_id: str
    customer_id: str
    name: str
    """Masked: the surname only."""
    phone: str
    """Masked: 138****5678."""
    region: str
    branch: str | None
    """The customer's nearest branch."""
    variant: str
    attempt_no: int
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    answered: bool
    right_person: bool
    disclosure_played: bool
    offer_heard: bool
    hung_up_mid_offer: bool
    interested: bool
    transferred: bool
    agent_connected: bool
    agent_outcome: str | None


EXPORT_FIELDS = tuple(f.name for f in fields(ExportRow))


def _cell(value: object, zone: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(zone).isoformat()
    return str(value)


def attempts_csv(rows: Iterable[ExportRow], zone: tzinfo) -> bytes:
    """The export as CSV (UTF-8 with BOM; times in ``zone``, ISO 8601; booleans true/false)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_FIELDS)
    writer.writerows([_cell(getattr(row, name), zone) for name in EXPORT_FIELDS] for row in rows)
    return buffer.getvalue().encode(CSV_ENCODING)
