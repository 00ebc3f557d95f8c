"""Partner applications in the database: taking one, deciding it, and making the admitted
applicant a customer with an offer, a branch lead and, when asked, a campaign's target.

:func:`submit` does it all in the caller's transaction (the API's, which also remembers the
request's nonce), so the application, its decision, the customer, the lead and the result to
post back are written together or not at all, before the API answers.

Idempotent by the partner's application id: ``(partner_id, partner_application_id)`` is
unique and inserted with ``ON CONFLICT DO NOTHING``, so of two submissions of one application
(a retry after a lost answer, two at once) one decides it and the other answers the same
application; nothing after the insert happens twice, so there is never a second lead or
result. The same id with other data is refused (409): the partner must use a new id.

Who the applicant is: the customer the request names (``customer_id``, which must exist and
have the applicant's phone: 422 otherwise), else the one customer with the applicant's phone
and name, else a new customer (``PI`` and the application's number) made only if admitted. A
refused applicant makes no customer; the application keeps their data masked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from branches.leads import LeadError, branch_distances, open_lead
from branches.policies import LeadPolicies
from core.masking import mask_name
from core.vocabulary import CampaignStatus, LeadSource
from lending.errors import ApplicationRefused
from lending.intake_input import ORG_KIND_TEXT, Application
from lending.intake_rules import ApplicationStatus, Decision, IntakeFacts, Reason, decide
from lending.partner_callbacks import CallbackState, queue_result, state_of
from lending.partners import Partner
from outbound.campaigns import add_targets
from persistence import store
from persistence.branches import branch_names
from persistence.schema import Campaign, Customer, Offer, PartnerApplication

log = logging.getLogger(__name__)

JOINABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.RUNNING, CampaignStatus.PAUSED})
"""The campaigns an admitted applicant may join (not stopped or done ones)."""
DEFAULT_LEAD_POLICIES = LeadPolicies()


@dataclass(frozen=True)
class ApplicationView:
    """An application as the partner and the command line see it."""

    id: int
    partner_id: str
    partner_application_id: str
    status: ApplicationStatus
    reasons: tuple[Reason, ...]
    requested_amount_yuan: int
    amount_yuan: int | None
    customer_id: str | None
    lead_id: int | None
    branch_id: str | None
    branch_name: str | None
    campaign_id: str | None
    received_at: datetime
    callback: CallbackState | None

    def result_json(self) -> dict[str, Any]:
        """The result posted to the partner (and part of the status API's answer)."""
        return {
            "application_id": self.id, "partner_application_id": self.partner_application_id,
            "status": str(self.status), "amount_yuan": self.amount_yuan,
            "reasons": [reason.to_json() for reason in self.reasons],
            "branch": ({"id": self.branch_id, "name": self.branch_name}
                       if self.branch_id else None),
            "campaign_id": self.campaign_id, "decided_at": self.received_at.isoformat(),
        }

    def to_json(self) -> dict[str, Any]:
        """The status API's answer: the result and where its posting stands."""
        return {**self.result_json(), "requested_amount_yuan": self.requested_amount_yuan,
                "callback": self.callback.to_json() if self.callback else None}


@dataclass(frozen=True)
class Submission:
    """What :func:`submit` did: the application, and whether it was there already."""

    application: ApplicationView
    duplicate: bool


def source_ref(partner_id: str, partner_application_id: str) -> str:
    """The branch lead's ``source_ref`` of an application."""
    return f"partner:{partner_id}/{partner_application_id}"


def _view(session: Session, row: PartnerApplication) -> ApplicationView:
    names = branch_names(session) if row.branch_id else {}
    return ApplicationView(
        id=row.id, partner_id=row.partner_id, partner_application_id=row.partner_application_id,
        status=ApplicationStatus(row.status),
        reasons=tuple(Reason(r["code"], r["message"]) for r in row.reasons),
        requested_amount_yuan=row.requested_amount_yuan, amount_yuan=row.amount_yuan,
        customer_id=row.customer_id, lead_id=row.lead_id, branch_id=row.branch_id,
        branch_name=names.get(row.branch_id), campaign_id=row.campaign_id,
        received_at=row.received_at, callback=state_of(session, row.id))


def get_application(session: Session, partner_id: str,
                    application_id: int) -> ApplicationView | None:
    """The partner's application by offercall's id (None: none, or another partner's)."""
    row = session.get(PartnerApplication, application_id)
    return _view(session, row) if row is not None and row.partner_id == partner_id else None


def recent_applications(session: Session, partner_id: str | None = None,
                        limit: int = 20) -> list[ApplicationView]:
    """The newest applications (of one partner, when named), newest first."""
    query = select(PartnerApplication).order_by(PartnerApplication.id.desc()).limit(limit)
    if partner_id is not None:
        query = query.where(PartnerApplication.partner_id == partner_id)
    return [_view(session, row) for row in session.execute(query).scalars()]


def _stored(session: Session, partner_id: str, ref: str) -> PartnerApplication | None:
    return session.execute(
        select(PartnerApplication).where(PartnerApplication.partner_id == partner_id,
                                         PartnerApplication.partner_application_id == ref)
        .execution_options(populate_existing=True)).scalar_one_or_none()


def _same_or_refused(row: PartnerApplication, application: Application) -> None:
    if row.digest != application.digest():
        raise ApplicationRefused(
            409, "application_id_reused",
            f"application_id {application.partner_application_id!r} was submitted before with "
            f"other data (offercall application {row.id}); use a new application_id")


def _known_customer(session: Session, application: Application) -> Customer | None:
    """The customer the applicant is, if we know them (see the module docstring)."""
    applicant = application.applicant
    if application.customer_id is not None:
        row = session.get(Customer, application.customer_id)
        if row is None:
            raise ApplicationRefused(422, "unknown_customer",
                                     f"no customer {application.customer_id!r}")
        if row.phone != applicant.phone:
            raise ApplicationRefused(
                422, "customer_mismatch",
                f"customer {application.customer_id!r} has another phone on record than "
                "applicant.phone: check customer_id, or leave it out")
        return row
    found = list(session.execute(select(Customer).where(
        Customer.phone == applicant.phone, Customer.name == applicant.name).limit(2)).scalars())
    return found[0] if len(found) == 1 else None


def facts_of(session: Session, application: Application,
             customer: Customer | None) -> IntakeFacts:
    """What the rules need from the database: the do-not-contact list, and how near a branch
    is to where the lead would be routed (the known customer's region, else the
    organisation's)."""
    phone = application.applicant.phone
    blocked = store.is_do_not_contact(
        session, customer_id=customer.customer_id if customer else None, phone=phone)
    where = customer if customer is not None else Customer(
        region=application.organisation.region, address=application.organisation.address)
    distances = branch_distances(session, where)
    return IntakeFacts(do_not_contact=blocked,
                       branch_km=min(distances.values()) if distances else None)


def _insert(session: Session, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT (partner, partner application id) DO NOTHING; True when inserted."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(PartnerApplication).values(**values).on_conflict_do_nothing(
        index_elements=["partner_id", "partner_application_id"])
    return session.execute(statement).rowcount == 1


def _customer(session: Session, known: Customer | None, application: Application,
              partner: Partner, application_id: int, now: datetime) -> str:
    """The admitted applicant's customer row, made or brought up to date; their id."""
    applicant, organisation = application.applicant, application.organisation
    if known is not None:
        known.consent, known.org_name = True, organisation.name
        known.org_address = organisation.address or known.org_address
        known.updated_at = now
        session.flush()
        return known.customer_id
    customer_id = f"PI{application_id:08d}"
    session.add(Customer(
        customer_id=customer_id, name=applicant.name, masked_name=mask_name(applicant.name),
        phone=applicant.phone, region=organisation.region, segment=partner.segment,
        consent=True, address=organisation.address, org_name=organisation.name,
        org_address=organisation.address, created_at=now, updated_at=now))
    session.flush()
    return customer_id


def _offer(session: Session, customer_id: str, partner: Partner, amount_yuan: int,
           today: date, now: datetime) -> None:
    """The customer's active offer becomes the partner's product at the admitted amount (a new
    version when the terms change, as a whitelist import does)."""
    terms = partner.offer
    wanted = (terms.product, amount_yuan, terms.rate_min, terms.rate_max, terms.term_months,
              today + timedelta(days=terms.valid_days))
    current = session.execute(select(Offer).where(
        Offer.customer_id == customer_id, Offer.active.is_(True))).scalar_one_or_none()
    if current is not None:
        if (current.product, current.amount_yuan, current.rate_min, current.rate_max,
                current.term_months, current.valid_until) == wanted:
            return
        current.active = False
    session.add(Offer(customer_id=customer_id, product=wanted[0], amount_yuan=wanted[1],
                      rate_min=wanted[2], rate_max=wanted[3], term_months=wanted[4],
                      valid_until=wanted[5], version=current.version + 1 if current else 1,
                      active=True, created_at=now))
    session.flush()


def _join(session: Session, campaign_id: str | None, customer_id: str,
          now: datetime) -> str | None:
    """Adds the customer to the campaign when it takes customers still; the campaign joined."""
    if campaign_id is None:
        return None
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.status not in JOINABLE:
        log.warning("lending.intake.campaign_not_joined campaign=%s why=%s", campaign_id,
                    "missing" if campaign is None else campaign.status)
        return None
    add_targets(session, campaign_id, [customer_id], now)
    return campaign_id


def _lead_note(partner: Partner, application: Application, decision: Decision) -> str:
    organisation = application.organisation
    return (f"合作方{partner.name}转介：{ORG_KIND_TEXT[organisation.kind]}“{organisation.name}”，"
            f"申请{application.requested_amount_yuan:,}元，准入额度{decision.amount_yuan:,}元"
            f"（合作方申请编号 {application.partner_application_id}）")


def submit(session: Session, partner: Partner, application: Application, now: datetime,
           today: date, *, campaign_id: str | None = None,
           lead_policies: LeadPolicies = DEFAULT_LEAD_POLICIES) -> Submission:
    """Takes, decides and (when admitted) carries out one application, in the caller's
    transaction (see the module docstring). ``today`` is the bank's local date;
    ``campaign_id`` the campaign an admitted applicant joins (the partner's choice, already
    checked). :class:`ApplicationRefused` for a reused id with other data (409), a customer
    that is unknown or not the applicant (422), or a lead the branches refuse after all (409:
    the do-not-contact list changed this instant); the caller's transaction must then roll
    back, so nothing is written."""
    ref = application.partner_application_id
    existing = _stored(session, partner.id, ref)
    if existing is not None:
        _same_or_refused(existing, application)
        return Submission(_view(session, existing), duplicate=True)
    known = _known_customer(session, application)
    decision = decide(application, facts_of(session, application, known), partner.policy,
                      now, today)
    if not _insert(session, {
            "partner_id": partner.id, "partner_application_id": ref,
            "digest": application.digest(), "status": decision.status,
            "reasons": [reason.to_json() for reason in decision.reasons],
            "applicant": application.masked(),
            "requested_amount_yuan": application.requested_amount_yuan,
            "amount_yuan": decision.amount_yuan, "received_at": now}):
        row = _stored(session, partner.id, ref)  # the same application, submitted at once
        assert row is not None
        _same_or_refused(row, application)
        return Submission(_view(session, row), duplicate=True)
    row = _stored(session, partner.id, ref)
    assert row is not None
    if decision.admitted:
        customer_id = _customer(session, known, application, partner, row.id, now)
        _offer(session, customer_id, partner, decision.amount_yuan or 0, today, now)
        try:
            lead = open_lead(session, customer_id, LeadSource.PARTNER_INTAKE,
                             source_ref(partner.id, ref), now, deadlines=lead_policies.deadlines,
                             scorecard_policy=lead_policies.scorecard,
                             actor=f"partner:{partner.id}",
                             note=_lead_note(partner, application, decision))
        except LeadError as exc:  # the list or the branches changed since the facts were read
            raise ApplicationRefused(409, "lead_refused", f"the applicant cannot be made a "
                                                          f"branch lead now: {exc}") from None
        joined = _join(session, campaign_id, customer_id, now)
        session.execute(update(PartnerApplication).where(PartnerApplication.id == row.id).values(
            customer_id=customer_id, lead_id=lead.id, branch_id=lead.branch_id,
            campaign_id=joined).execution_options(synchronize_session=False))
        row = _stored(session, partner.id, ref)
        assert row is not None
    view = _view(session, row)
    queue_result(session, row.id, partner.id,
                 json.dumps(view.result_json(), ensure_ascii=False), now)
    log.info("lending.intake.decided application_id=%s partner=%s status=%s reasons=%s "
             "lead_id=%s", row.id, partner.id, decision.status,
             ",".join(reason.code for reason in decision.reasons) or "-", row.lead_id)
    return Submission(_view(session, row), duplicate=False)
