"""Targeting a draft campaign with response prediction: every customer gets an A/B arm, and each
``model`` customer the channel, hour and script variant the model scores best for them
(``outbound.plan_choice``), from their profile and contact history before now.

Only a draft is targeted, so nobody is contacted under one arm and then moved to the other;
targeting it again (say with a newer model) replaces the earlier choice. The customers are
scored in batches, each written in its own transaction, with progress; the audit trail keeps
who targeted, with which model and what came of it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.vocabulary import AuditAction
from outbound import contact_history
from outbound.campaigns import CampaignRefused, assign_variant, get_campaign
from outbound.plan_choice import arm_of, best, candidates, plan_channels
from outbound.response_features import History, Profile
from outbound.response_model import ResponseModel
from persistence import audit
from persistence.engine import session_scope
from persistence.schema import CampaignTarget


@dataclass
class TargetingSummary:
    """What targeting did to a campaign's customers."""

    customers: int = 0
    arms: Counter = field(default_factory=Counter)
    channels: Counter = field(default_factory=Counter)
    hours: Counter = field(default_factory=Counter)
    variants: Counter = field(default_factory=Counter)
    score_total: float = 0.0

    @property
    def mean_score(self) -> float | None:
        chosen = self.arms["model"]
        return self.score_total / chosen if chosen else None

    def to_json(self) -> dict[str, object]:
        return {"customers": self.customers, "arms": dict(self.arms),
                "channels": dict(self.channels), "hours": {str(h): n for h, n in
                                                           sorted(self.hours.items())},
                "variants": dict(self.variants), "mean_score": self.mean_score}


def _draft(session: Session, campaign_id: str):
    campaign = get_campaign(session, campaign_id)
    if campaign.status != "draft":
        raise CampaignRefused(f"campaign {campaign_id} is {campaign.status}: only a draft is "
                              "targeted, so no customer changes arm once contacted")
    return campaign


def target_campaign(engine: Engine, campaign_id: str, model: ResponseModel, *,
                    model_share: float, actor: audit.Actor, now: datetime,
                    progress: Callable[[int, int], None] = lambda done, total: None,
                    batch: int = 5000) -> TargetingSummary:
    """Puts each customer of draft ``campaign_id`` in an arm and chooses for the ``model``
    share; returns the summary (also in the audit trail)."""
    with session_scope(engine) as session:
        campaign = _draft(session, campaign_id)
        config = campaign.config
        options = candidates(plan_channels(config.contact_plan()) or ("call",),
                             list(config.variants))
        rows = session.execute(select(CampaignTarget.id, CampaignTarget.customer_id)
                               .where(CampaignTarget.campaign_id == campaign_id)
                               .order_by(CampaignTarget.id)).all()
        ids = [customer_id for _, customer_id in rows]
        known = contact_history.profiles(session, ids)
        earlier: dict[str, list] = {}
        for contact in contact_history.contacts(session, config.timezone, before=now,
                                                customer_ids=ids):
            earlier.setdefault(contact.customer_id, []).append(contact)
    summary = TargetingSummary()
    progress(0, len(rows))
    for start in range(0, len(rows), batch):
        part = rows[start:start + batch]
        arms = {target_id: arm_of(campaign_id, customer_id, model_share)
                for target_id, customer_id in part}
        chosen = [(t, c) for t, c in part if arms[t] == "model"]
        profiles = [known.get(c) or Profile(c, "", "") for _, c in chosen]
        histories = [History.of(earlier.get(c, []), now) for _, c in chosen]
        scores = model.score_all(profiles, histories, options) if chosen else []
        updates = [{"id": target_id, "arm": arms[target_id], "choice": None, "updated_at": now,
                    "variant": assign_variant(campaign_id, customer_id, config.variants)}
                   for target_id, customer_id in part]  # the campaign's own variant, unless…
        by_target = {u["id"]: u for u in updates}
        for (target_id, _), row in zip(chosen, scores):
            choice = best(list(row), options)
            by_target[target_id].update(choice=choice.to_json(), variant=choice.variant)
            summary.channels[choice.channel] += 1
            summary.hours[choice.hour] += 1
            summary.variants[choice.variant] += 1
            summary.score_total += choice.score
        summary.arms.update(arms.values())
        summary.customers += len(part)
        with session_scope(engine) as session:
            _draft(session, campaign_id)
            session.bulk_update_mappings(CampaignTarget, updates)
        progress(summary.customers, len(rows))
    with session_scope(engine) as session:
        audit.record(session, actor, AuditAction.CAMPAIGN_TARGETED, "campaign", campaign_id,
                     now, model_share=model_share, model_trained_at=model.trained_at,
                     model_source=model.source, **summary.to_json())
    return summary
