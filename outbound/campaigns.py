"""Campaigns in the database: their settings, their targets, and the dial attempts.

Every step of a dial is a short transaction, committed before anything is said or done:

1. ``claim_due`` takes due targets (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, a conditional
   update on SQLite, so two dialers never take the same one), re-checks the compliance rules
   on fresh facts, and for a dial writes the attempt (numbered, with the offer version it
   will quote and a lease) before the call is placed;
2. ``renew_leases`` keeps the dialer's attempts alive while their calls run;
3. ``finish_attempt`` records the outcome and schedules the target's next attempt (or ends it);
4. ``recover_expired`` closes attempts whose dialer died (its lease ran out) as interrupted
   and gives their targets back, so no customer is lost and no attempt is dialled twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from core.vocabulary import AuditAction, CampaignStatus
from outbound import lifecycle, retry
from outbound.compliance import CallingWindow, ContactPolicy, DialFacts, decide_dial
from outbound.contact_plans import CALLS_ONLY, ContactPlan, PlanError
from outbound.pacing import PacingPolicy
from persistence import audit, store
from persistence.audit import Actor
from persistence.claims import claim_rows
from persistence.schema import CallAttempt, Campaign, CampaignTarget, Customer, Offer

STATUSES = tuple(CampaignStatus)


class CampaignError(ValueError):
    """A campaign command that cannot be carried out (unknown campaign, bad settings)."""


class CampaignNotFound(CampaignError):
    """No campaign has this id."""


class CampaignExists(CampaignError):
    """A new campaign's id is taken."""


class CampaignRefused(CampaignError):
    """The campaign's status does not allow this (a lifecycle command, a change of settings)."""



TRANSPORTS = ("simulated", "sip")
"""How a campaign reaches customers: the simulated phone network, or real phones over SIP."""

@dataclass(frozen=True)
class CampaignConfig:
    """How a campaign calls. Stored as JSON on the campaign; every field has a safe default."""

    window_start: str = "09:00"
    window_end: str = "20:00"
    timezone: str = "Asia/Shanghai"
    holidays: tuple[str, ...] = ()
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)
    max_attempts_per_week: int = 3
    min_gap_s: int = 4 * 3600
    retry_backoff_s: tuple[int, ...] = (1800, 7200, 86400)
    max_attempts: int = 5
    max_concurrency: int = 4
    agent_gated: bool = True
    variants: dict[str, float] = field(default_factory=lambda: {"A": 1.0, "B": 1.0})
    detect_machine: bool = True
    lease_s: int = 60
    speed: float = 1.0
    """Simulated transport only: how much faster than real time the customers talk."""
    product: str | None = None
    """The product whose offers chose the targets (None: any product)."""
    segment: str | None = None
    """The whitelist segment that chose the targets (None: any segment)."""
    plan: dict[str, Any] | None = None
    """The contact plan (``outbound.contact_plans``: steps over SMS, pop-up, call and branch
    lead, and what stops them) as JSON; None: the campaign calls, as campaigns always have."""

    def __post_init__(self) -> None:
        problems = _type_problems(self)
        if problems:
            raise CampaignError(f"bad campaign settings: {'; '.join(problems)}")
        self.window()  # validates hours, weekdays and the time zone
        if self.max_concurrency < 1:
            raise CampaignError("max_concurrency must be at least 1")
        if not self.variants or any(w <= 0 for w in self.variants.values()):
            raise CampaignError("variants need positive weights, e.g. {'A': 1, 'B': 1}")
        try:
            self.retry_policy(), self.contact_policy(), self.pacing_policy()
        except ValueError as exc:
            raise CampaignError(f"bad campaign settings: {exc}") from exc
        if self.plan is not None:
            try:
                self.contact_plan()
            except PlanError as exc:
                raise CampaignError(f"bad contact plan: {exc}") from exc

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignConfig:
        """Reads stored or user-given settings; unknown keys are an error, not ignored."""
        if not isinstance(data, dict):
            raise CampaignError("campaign settings must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CampaignError(f"unknown campaign settings: {', '.join(unknown)}")
        values = dict(data)
        for key in _ITEM_TYPES:
            if key in values:
                if not isinstance(values[key], (list, tuple)):
                    raise CampaignError(
                        f"bad campaign settings: {key} must be a list, got {values[key]!r}")
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise CampaignError(f"bad campaign settings: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """JSON-ready settings."""
        data = asdict(self)
        for key in ("holidays", "weekdays", "retry_backoff_s"):
            data[key] = list(data[key])
        return data

    def window(self) -> CallingWindow:
        """The calling window as the compliance rules take it."""
        try:
            return CallingWindow(
                start=time.fromisoformat(self.window_start), end=time.fromisoformat(self.window_end),
                timezone=self.timezone, holidays=frozenset(date.fromisoformat(d) for d in self.holidays),
                weekdays=frozenset(self.weekdays),
            )
        except ValueError as exc:
            raise CampaignError(f"bad calling window: {exc}") from exc

    def contact_policy(self) -> ContactPolicy:
        """The contact caps."""
        return ContactPolicy(self.max_attempts_per_week, timedelta(seconds=self.min_gap_s))

    def retry_policy(self) -> retry.RetryPolicy:
        """The retry back-off."""
        return retry.RetryPolicy(
            backoff=tuple(timedelta(seconds=s) for s in self.retry_backoff_s),
            max_attempts=self.max_attempts,
        )

    def contact_plan(self) -> ContactPlan:
        """The contact plan (calls only without one)."""
        return CALLS_ONLY if self.plan is None else ContactPlan.from_json(self.plan)

    @property
    def planned(self) -> bool:
        """Whether the campaign reaches customers by a contact plan (its targets wait for each
        step in ``planned``) rather than by calls alone."""
        return self.plan is not None

    def pacing_policy(self) -> PacingPolicy:
        """The pacing limits."""
        return PacingPolicy(max_concurrency=self.max_concurrency, agent_gated=self.agent_gated)


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("window_start", "window_end", "timezone"), (str,)),
    **dict.fromkeys(("max_attempts_per_week", "min_gap_s", "max_attempts", "max_concurrency",
                     "lease_s"), (int,)),
    **dict.fromkeys(("agent_gated", "detect_machine"), (bool,)),
    "speed": (int, float),
    **dict.fromkeys(("product", "segment"), (str, type(None))),
}
_ITEM_TYPES: dict[str, type] = {"holidays": str, "weekdays": int, "retry_backoff_s": int}
_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               type(None): "null"}


def _is(value: object, kinds: tuple[type, ...]) -> bool:
    """isinstance, except that true and false are not numbers."""
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _type_problems(config: CampaignConfig) -> list[str]:
    """What in ``config`` has the wrong type (JSON gives any type anywhere)."""
    problems = [
        f"{name} must be {' or '.join(_TYPE_NAMES[k] for k in kinds)}, got {getattr(config, name)!r}"
        for name, kinds in _FIELD_TYPES.items() if not _is(getattr(config, name), kinds)]
    problems += [f"{name} must hold {_TYPE_NAMES[kind]} items, got {getattr(config, name)!r}"
                 for name, kind in _ITEM_TYPES.items()
                 if not all(_is(item, (kind,)) for item in getattr(config, name))]
    variants = config.variants
    if not isinstance(variants, dict) or not all(
            isinstance(k, str) and _is(w, (int, float)) for k, w in variants.items()):
        problems.append(
            f"variants must map names to weights, e.g. {{'A': 1, 'B': 1}}, got {variants!r}")
    problems += [f"{name} may not be empty" for name in ("product", "segment")
                 if getattr(config, name) is not None and not str(getattr(config, name)).strip()]
    return problems


def check_against(config: CampaignConfig, *, transport: str, known_variants: tuple[str, ...],
                  dial_lines: int) -> None:
    """Raises :class:`CampaignError` unless this installation can run the campaign: a transport
    it has, script variants its bot defines, no more calls at once than its lines (pure)."""
    if transport not in TRANSPORTS:
        raise CampaignError(
            f"transport {transport!r} is not available (have: {', '.join(TRANSPORTS)})")
    unknown = sorted(set(config.variants) - set(known_variants))
    if unknown:
        raise CampaignError(f"unknown script variants {', '.join(unknown)} "
                            f"(the bot defines: {', '.join(known_variants)})")
    if config.max_concurrency > dial_lines:
        raise CampaignError(f"max_concurrency {config.max_concurrency} is more than the "
                            f"{dial_lines} dial lines there are (OFFERCALL_DIAL_LINES)")


@dataclass(frozen=True)
class CampaignInfo:
    """A campaign as commands show it."""

    id: str
    name: str
    status: str
    transport: str
    config: CampaignConfig
    created_at: datetime


@dataclass(frozen=True)
class DialJob:
    """One attempt the dialer must place now (already recorded as ``dialing``)."""

    attempt_id: int
    call_id: str
    campaign_id: str
    customer_id: str
    attempt_no: int
    variant: str


@dataclass(frozen=True)
class ClaimResult:
    """What a claim did: the calls to place, and the targets it held back or ended."""

    jobs: list[DialJob]
    waiting: list[tuple[str, str]]  # (customer_id, reason)
    skipped: list[tuple[str, str]]


def assign_variant(campaign_id: str, customer_id: str, weights: dict[str, float]) -> str:
    """A random-looking but stable script variant for this customer in this campaign."""
    digest = hashlib.sha256(f"{campaign_id}:{customer_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(weights.values())
    for name in sorted(weights):
        point -= weights[name]
        if point < 0:
            return name
    return sorted(weights)[-1]


# ------------------------------------------------------------------ campaigns
def create_campaign(
    session: Session, campaign_id: str, name: str, transport: str, config: CampaignConfig,
    now: datetime, *, actor: Actor,
) -> CampaignInfo:
    """A new campaign in ``draft``, its creation audited; an existing id is an error."""
    if session.get(Campaign, campaign_id) is not None:
        raise CampaignExists(f"campaign {campaign_id!r} already exists")
    row = Campaign(id=campaign_id, name=name, status=CampaignStatus.DRAFT, transport=transport,
                   config=config.to_json(), created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    audit.record(session, actor, AuditAction.CAMPAIGN_CREATED, "campaign", campaign_id, now,
                 name=name, transport=transport, config=config.to_json())
    return _info(row)


def get_campaign(session: Session, campaign_id: str) -> CampaignInfo:
    """The campaign, or CampaignError naming the ones that exist."""
    row = session.get(Campaign, campaign_id, populate_existing=True)
    if row is None:
        known = ", ".join(session.execute(select(Campaign.id)).scalars()) or "none yet"
        raise CampaignNotFound(f"no campaign {campaign_id!r} (campaigns: {known})")
    return _info(row)


def _info(row: Campaign) -> CampaignInfo:
    return CampaignInfo(row.id, row.name, row.status, row.transport,
                        CampaignConfig.from_json(row.config), row.created_at)


def command(session: Session, campaign_id: str, wanted: lifecycle.CampaignCommand | str,
            actor: Actor, now: datetime) -> CampaignStatus:
    """Starts, pauses, resumes or stops a campaign, audited in the same transaction; a
    command its status does not allow is a :class:`CampaignError` and changes nothing."""
    row = session.execute(select(Campaign).where(Campaign.id == campaign_id).with_for_update()
                          ).scalar_one_or_none()
    if row is None:
        get_campaign(session, campaign_id)  # raises, naming the campaigns there are
    before = CampaignStatus(row.status)
    try:
        after = lifecycle.apply(before, wanted)
    except lifecycle.TransitionRefused as exc:
        raise CampaignRefused(f"campaign {campaign_id!r}: {exc}") from None
    row.status, row.updated_at = after, now
    audit.record(session, actor, lifecycle.AUDITED_AS[lifecycle.CampaignCommand(wanted)],
                 "campaign", campaign_id, now, before=str(before), after=str(after))
    return after


EDITABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.PAUSED})
"""The statuses in which a campaign's settings may change (never while it dials)."""
FIXED_SETTINGS = ("product", "segment")
"""Settings that chose the campaign's customers when it was made; they cannot change after."""
_NOT_EDITABLE = {
    CampaignStatus.RUNNING: "it is running: pause it first",
    CampaignStatus.STOPPED: "it was stopped",
    CampaignStatus.DONE: "it is done",
}


def setting_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each key whose value differs, with its value before and after (pure)."""
    return {key: {"before": before.get(key), "after": after.get(key)}
            for key in sorted(set(before) | set(after)) if before.get(key) != after.get(key)}


def _switch_plan(session: Session, campaign_id: str, status: CampaignStatus, *,
                 planned: bool) -> None:
    """A contact plan added to a campaign, or taken away: before it starts only (its
    customers then wait for the plan's steps, or for their dial)."""
    if status != CampaignStatus.DRAFT:
        raise CampaignRefused("a contact plan is added or taken away only before the campaign "
                              "starts; its steps can change while it is paused")
    session.execute(update(CampaignTarget).where(
        CampaignTarget.campaign_id == campaign_id,
        CampaignTarget.status.in_(("pending", "planned")))
        .values(status="planned" if planned else "pending")
        .execution_options(synchronize_session=False))


def change_settings(
    session: Session, campaign_id: str, changes: dict[str, Any], actor: Actor, now: datetime, *,
    name: str | None = None, check: Callable[[CampaignConfig], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Changes a draft or paused campaign's name and settings (``check`` may refuse the new
    settings), audited as ``campaign_changed`` with each changed key's before and after in
    the same transaction. Returns what changed; nothing changed writes nothing."""
    row = session.execute(select(Campaign).where(Campaign.id == campaign_id).with_for_update()
                          ).scalar_one_or_none()
    if row is None:
        get_campaign(session, campaign_id)  # raises, naming the campaigns there are
    status = CampaignStatus(row.status)
    if status not in EDITABLE:
        raise CampaignRefused(
            f"campaign {campaign_id!r} cannot be changed: {_NOT_EDITABLE[status]}")
    fixed = [key for key in FIXED_SETTINGS if key in changes]
    if fixed:
        raise CampaignError(f"{', '.join(fixed)} chose the campaign's customers and cannot change")
    after = CampaignConfig.from_json({**row.config, **changes})
    if check is not None:
        check(after)
    before = CampaignConfig.from_json(row.config)
    if before.planned != after.planned:
        _switch_plan(session, campaign_id, status, planned=after.planned)
    diff = setting_changes(before.to_json(), after.to_json())
    if name is not None and name != row.name:
        diff["name"] = {"before": row.name, "after": name}
    if diff:
        row.name, row.config, row.updated_at = name or row.name, after.to_json(), now
        audit.record(session, actor, AuditAction.CAMPAIGN_CHANGED, "campaign", campaign_id, now,
                     changes=diff)
    return diff


def mark_done(session: Session, campaign_id: str, now: datetime) -> bool:
    """A running campaign whose customers all have final outcomes becomes ``done`` (a
    paused or stopped one keeps its status); True if it changed."""
    changed = session.execute(
        update(Campaign).where(Campaign.id == campaign_id, Campaign.status == CampaignStatus.RUNNING)
        .values(status=CampaignStatus.DONE, updated_at=now))
    return bool(changed.rowcount)


def add_targets(
    session: Session, campaign_id: str, customer_ids: list[str], now: datetime
) -> tuple[int, list[str]]:
    """Adds customers (due at once, each with their variant); returns how many were new and
    the ids that are not known customers. Customers already in the campaign are kept as they are."""
    campaign = get_campaign(session, campaign_id)
    known = set(session.execute(
        select(Customer.customer_id).where(Customer.customer_id.in_(customer_ids))).scalars())
    present = set(session.execute(
        select(CampaignTarget.customer_id).where(CampaignTarget.campaign_id == campaign_id)).scalars())
    added = 0
    for customer_id in dict.fromkeys(customer_ids):
        if customer_id not in known or customer_id in present:
            continue
        session.add(CampaignTarget(
            campaign_id=campaign_id, customer_id=customer_id,
            variant=assign_variant(campaign_id, customer_id, campaign.config.variants),
            status="planned" if campaign.config.planned else "pending", attempts=0,
            next_attempt_at=now, created_at=now, updated_at=now,
        ))
        added += 1
    session.flush()
    return added, [c for c in customer_ids if c not in known]


def targets_with_variants(session: Session, campaign_id: str) -> list[tuple[str, str]]:
    """Every customer of the campaign with their script variant, in the order they joined."""
    get_campaign(session, campaign_id)  # CampaignNotFound for an unknown one
    return [(row.customer_id, row.variant) for row in session.execute(
        select(CampaignTarget.customer_id, CampaignTarget.variant)
        .where(CampaignTarget.campaign_id == campaign_id).order_by(CampaignTarget.id))]


def matching_customers(session: Session, *, product: str | None = None, segment: str | None = None,
                       customer_ids: list[str] | None = None) -> list[str]:
    """A new campaign's customers, in id order: those whose active offer is ``product`` and
    who are in ``segment`` (each when given), among ``customer_ids`` when given. A product no
    offer has, ids of no customer, and nobody matching are :class:`CampaignError`s."""
    if product is not None and session.execute(
            select(Offer.id).where(Offer.product == product).limit(1)).first() is None:
        products = ", ".join(session.execute(
            select(Offer.product).distinct().order_by(Offer.product)).scalars()) or "none yet"
        raise CampaignError(f"unknown product {product!r} (offers are of: {products})")
    query = select(Customer.customer_id).order_by(Customer.customer_id)
    if product is not None:
        query = query.join(Offer, Offer.customer_id == Customer.customer_id).where(
            Offer.product == product, Offer.active.is_(True))
    if segment is not None:
        query = query.where(Customer.segment == segment)
    if customer_ids is not None:
        known = set(session.execute(select(Customer.customer_id).where(
            Customer.customer_id.in_(customer_ids))).scalars())
        unknown = [c for c in dict.fromkeys(customer_ids) if c not in known]
        if unknown:
            raise CampaignError(f"unknown customers: {', '.join(unknown[:10])}"
                                + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""))
        query = query.where(Customer.customer_id.in_(customer_ids))
    found = list(session.execute(query).scalars().unique())
    if not found:
        wanted = [f"{key} {value!r}" for key, value in (("product", product), ("segment", segment))
                  if value is not None]
        raise CampaignError("no customers match" + (f" ({', '.join(wanted)})" if wanted else "")
                            + (" among the customer ids given" if customer_ids is not None else ""))
    return found


# -------------------------------------------------------------------- claims
def _in_a_call(session: Session, campaign_id: str) -> int:
    """The campaign's targets in a call now, whichever dialer holds them. On PostgreSQL the
    campaign's row is locked first, so dialers in several workers claim one after another and
    together never exceed the campaign's concurrency."""
    if session.bind.dialect.name == "postgresql":
        session.execute(select(Campaign.id).where(Campaign.id == campaign_id).with_for_update())
    return _targets_in_a_call(session, campaign_id)


def _targets_in_a_call(session: Session, campaign_id: str) -> int:
    """How many of the campaign's targets are being claimed or dialled (no lock)."""
    return int(session.execute(
        select(func.count()).where(CampaignTarget.campaign_id == campaign_id,
                                   CampaignTarget.status.in_(("claiming", "dialing")))).scalar() or 0)


def _due_targets(session: Session, campaign_id: str, now: datetime, limit: int) -> list[CampaignTarget]:
    query = (
        select(CampaignTarget)
        .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.status == "pending",
               CampaignTarget.next_attempt_at <= now)
        .order_by(CampaignTarget.next_attempt_at, CampaignTarget.id)
        .limit(limit)
    )
    return claim_rows(session, query, CampaignTarget,
                      still_due=lambda _: CampaignTarget.status == "pending",
                      values={"status": "claiming"})


def _previous_attempts(session: Session, customer_id: str) -> tuple[datetime, ...]:
    """Every dial to this customer, in any campaign (the caps are per customer)."""
    return tuple(session.execute(
        select(CallAttempt.started_at).where(CallAttempt.customer_id == customer_id)
        .order_by(CallAttempt.started_at)).scalars())


def dial_facts(session: Session, customer_id: str, now: datetime) -> tuple[DialFacts, store.CustomerOffer | None]:
    """The facts the compliance rules need, read fresh right before a dial."""
    found = store.get_customer_offer(session, customer_id)
    blocked = store.is_do_not_contact(
        session, customer_id=customer_id, phone=found.phone if found else None)
    facts = DialFacts(
        now=now, on_do_not_contact=blocked, consent=bool(found and found.consent),
        offer_valid_until=found.valid_until if found and found.offer_id else None,
        previous_attempts=_previous_attempts(session, customer_id),
    )
    return facts, found


def claim_due(
    session: Session, campaign_id: str, limit: int, now: datetime, dialer_id: str, new_call_id: Any,
    *, max_in_call: int | None = None,
) -> ClaimResult:
    """Takes up to ``limit`` due targets and decides each right before its dial (see the
    module docstring). ``new_call_id()`` names each call. With ``max_in_call`` (the dialers
    pass the campaign's concurrency) it takes no more than leaves that many of the campaign's
    targets in a call, counting every dialer's."""
    result = ClaimResult([], [], [])
    if limit <= 0:
        return result
    campaign = get_campaign(session, campaign_id)
    config = campaign.config
    if max_in_call is not None:
        limit = min(limit, max_in_call - _in_a_call(session, campaign_id))
        if limit <= 0:
            return result
    for target in _due_targets(session, campaign_id, now, limit):
        facts, found = dial_facts(session, target.customer_id, now)
        decision = decide_dial(config.window(), _policy_for(target, config), facts)
        target.updated_at = now
        if decision.verdict == "skip":
            target.status, target.final_reason = "done", decision.reason
            target.next_attempt_at = None
            result.skipped.append((target.customer_id, decision.reason))
            continue
        if decision.verdict == "wait":
            target.status, target.next_attempt_at = "pending", decision.not_before
            result.waiting.append((target.customer_id, decision.reason))
            continue
        target.status, target.attempts = "dialing", target.attempts + 1
        attempt = CallAttempt(
            target_id=target.id, campaign_id=campaign_id, customer_id=target.customer_id,
            attempt_no=target.attempts, call_id=new_call_id(), variant=target.variant,
            offer_id=found.offer_id if found else None,
            offer_version=found.offer_version if found else None,
            offer_terms=_offer_terms(found), status="dialing", dialer=dialer_id,
            lease_until=now + timedelta(seconds=config.lease_s), facts={}, started_at=now,
        )
        session.add(attempt)
        session.flush()
        result.jobs.append(DialJob(attempt.id, attempt.call_id, campaign_id, target.customer_id,
                                   attempt.attempt_no, target.variant))
    return result


def _policy_for(target: CampaignTarget, config: CampaignConfig) -> ContactPolicy:
    """The contact caps for this dial: a callback the customer asked for keeps the weekly cap
    but not the minimum gap (they chose the time)."""
    policy = config.contact_policy()
    if target.last_outcome == "callback":
        return ContactPolicy(policy.max_attempts_per_week, timedelta(0))
    return policy


def _offer_terms(found: store.CustomerOffer | None) -> dict[str, Any] | None:
    if found is None or found.offer_id is None:
        return None
    return {
        "product": found.product, "amount_yuan": found.amount_yuan,
        "rate_min": str(found.rate_min), "rate_max": str(found.rate_max),
        "term_months": found.term_months, "valid_until": found.valid_until.isoformat(),
        "version": found.offer_version,
    }


def renew_leases(session: Session, attempt_ids: list[int], dialer_id: str, until: datetime) -> int:
    """Extends this dialer's running attempts; returns how many are still its own."""
    if not attempt_ids:
        return 0
    return session.execute(
        update(CallAttempt)
        .where(CallAttempt.id.in_(attempt_ids), CallAttempt.dialer == dialer_id,
               CallAttempt.status == "dialing")
        .values(lease_until=until)
        .execution_options(synchronize_session=False)
    ).rowcount


@dataclass(frozen=True)
class AttemptOutcome:
    """How a placed call ended, as the campaign records it."""

    outcome: str  # a retry outcome (see outbound.retry)
    facts: dict[str, Any]
    disclosure_proof: dict[str, Any] | None = None
    handoff_id: int | None = None
    callback_at: datetime | None = None


def finish_attempt(
    session: Session, attempt_id: int, dialer_id: str, done: AttemptOutcome, now: datetime
) -> bool:
    """Records the call's outcome and schedules the target; False if the attempt was no longer
    this dialer's (its lease ran out and it was recovered as interrupted)."""
    changed = session.execute(
        update(CallAttempt)
        .where(CallAttempt.id == attempt_id, CallAttempt.dialer == dialer_id,
               CallAttempt.status == "dialing")
        .values(status="done", outcome=done.outcome, facts=done.facts,
                disclosure_proof=done.disclosure_proof, handoff_id=done.handoff_id,
                callback_at=done.callback_at, ended_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        return False
    attempt = session.get(CallAttempt, attempt_id, populate_existing=True)
    assert attempt is not None
    _schedule(session, attempt.target_id, done.outcome, now, done.callback_at)
    return True


def _schedule(session: Session, target_id: int, outcome: str, now: datetime,
              callback_at: datetime | None) -> None:
    target = session.get(CampaignTarget, target_id, populate_existing=True)
    assert target is not None
    config = get_campaign(session, target.campaign_id).config
    when = retry.next_attempt_at(config.retry_policy(), outcome, target.attempts, now, callback_at)
    target.last_outcome, target.updated_at = outcome, now
    if when is None and config.planned:
        target.status, target.next_attempt_at = "planned", now  # the plan says what comes next
        target.final_reason = outcome if outcome in retry.FINAL else f"attempts used up ({outcome})"
    elif when is None:
        target.status, target.next_attempt_at = "done", None
        target.final_reason = outcome if outcome in retry.FINAL else f"attempts used up ({outcome})"
    else:
        target.status, target.next_attempt_at = "pending", when


def recover_expired(session: Session, now: datetime, campaign_id: str | None = None) -> list[int]:
    """Closes attempts whose dialer stopped renewing them (it crashed or was killed) as
    interrupted, and reschedules their targets as after a dropped call."""
    query = select(CallAttempt).where(CallAttempt.status == "dialing", CallAttempt.lease_until < now)
    if campaign_id is not None:
        query = query.where(CallAttempt.campaign_id == campaign_id)
    recovered = []
    for attempt in session.execute(query.with_for_update(skip_locked=True)
                                   if session.bind.dialect.name == "postgresql" else query).scalars().all():
        changed = session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == attempt.id, CallAttempt.status == "dialing",
                   CallAttempt.lease_until < now)
            .values(status="interrupted", outcome="dropped", ended_at=now,
                    facts={"interrupted": f"dialer {attempt.dialer} stopped renewing its lease"})
            .execution_options(synchronize_session=False)
        ).rowcount
        if changed == 1:
            _schedule(session, attempt.target_id, "dropped", now, None)
            recovered.append(attempt.id)
    return recovered


# ------------------------------------------------------------------ overview
WAITING = ("pending", "claiming", "dialing", "planned", "planning")
"""Target statuses of a customer the campaign is not done with."""
DUE = ("pending", "planned")
"""Target statuses that fall due at ``next_attempt_at``: a dial, or a contact plan's step."""

@dataclass(frozen=True)
class CampaignProgress:
    """Where a campaign stands."""

    targets: dict[str, int]   # by status
    outcomes: dict[str, int]  # finished attempts by outcome
    in_flight: int
    next_due: datetime | None

    @property
    def finished(self) -> bool:
        """True when no target is waiting or being dialled."""
        return not any(self.targets.get(status) for status in WAITING)


def progress(session: Session, campaign_id: str) -> CampaignProgress:
    """Target states, attempt outcomes, calls in flight and the next due time."""
    targets = dict(session.execute(
        select(CampaignTarget.status, func.count()).where(CampaignTarget.campaign_id == campaign_id)
        .group_by(CampaignTarget.status)).all())
    outcomes = dict(session.execute(
        select(CallAttempt.outcome, func.count())
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.status != "dialing")
        .group_by(CallAttempt.outcome)).all())
    in_flight = session.execute(
        select(func.count()).where(CallAttempt.campaign_id == campaign_id,
                                   CallAttempt.status == "dialing")).scalar() or 0
    next_due = session.execute(
        select(CampaignTarget.next_attempt_at)
        .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.status == "pending")
        .order_by(CampaignTarget.next_attempt_at).limit(1)).scalar()
    return CampaignProgress(targets, outcomes, int(in_flight), next_due)


@dataclass(frozen=True)
class Glance:
    """What a dialer checks between rounds, in three index lookups: the status, the next due
    time of whoever is still to be dialled (None: nobody), and how many are in a call now."""

    status: CampaignStatus
    next_due: datetime | None
    being_dialled: int

    @property
    def finished(self) -> bool:
        """Nobody left to dial and no call in flight."""
        return self.next_due is None and self.being_dialled == 0


def glance(session: Session, campaign_id: str) -> Glance:
    """The campaign's status, its next due time and its targets in a call. It reads one entry
    of the due index, not every pending target (a campaign has hundreds of thousands)."""
    status = session.execute(select(Campaign.status).where(Campaign.id == campaign_id)).scalar()
    if status is None:
        get_campaign(session, campaign_id)  # raises, naming the campaigns there are
    next_due = min((due for due in (session.execute(
        select(CampaignTarget.next_attempt_at)
        .where(CampaignTarget.campaign_id == campaign_id, CampaignTarget.status == status)
        .order_by(CampaignTarget.next_attempt_at).limit(1)).scalar() for status in DUE)
        if due is not None), default=None)
    return Glance(CampaignStatus(status), next_due, _targets_in_a_call(session, campaign_id))


def running_campaign_ids(session: Session) -> list[str]:
    """The campaigns a scheduler must dial now."""
    return list(session.execute(
        select(Campaign.id).where(Campaign.status == CampaignStatus.RUNNING).order_by(Campaign.created_at)
    ).scalars())
