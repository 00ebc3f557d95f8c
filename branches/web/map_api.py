"""The marketing map's API (营销地图), for the page at /workspace/map::

    GET /api/map?branch=ID                    the branch's points: its leads (status, overdue)
                                              and its area's customers with no lead
    GET /api/map/customers/{customer_id}      the panel: address, offer, lead and call history

Who sees what, exactly as the leads API (``branches.leads.can_see``, ``core.access``): a
branch manager their own branch only (its leads, and the whitelist customers of its area who
have no lead yet); an account manager only the leads given to them (no other customers); an
administrator any branch (``?branch=`` missing: the first). Without a session: 401; a role
that works no leads, another branch, or a customer out of reach: 403; an unknown branch or
customer: 404; a malformed branch or customer id: 400.

A branch's area is the regions whose nearest branch it is (``data/branches.csv``, as leads
are routed); its customers with no lead are shown as ``customer`` when they consented and are
not on the do-not-contact list: people the branch may still approach. Points are placed and
spread by ``branches.web.map_views``; names and phones are masked (the full ones only through
the leads API's audited ``/contact``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Iterable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from branches import leads
from branches.deadlines import DeadlinePolicy
from branches.leads import Lead, LeadError
from branches.policies import LeadPolicies
from branches.web.lead_views import Names, account_ids, event_json
from branches.web.leads_api import LEAD_POLICIES, read
from branches.web.map_views import (
    CallRecord,
    OfferTerms,
    Subject,
    area_json,
    history_json,
    lead_summary_json,
    locate,
    offer_json,
    parse_branch,
    parse_customer_id,
    point_json,
    representative,
    status_of,
    unplaced_json,
)
from core.access import BRANCH_SCOPED, Permission, Staff, allows, reaches
from core.masking import mask_phone
from handoff.staff_api import json_error, require_staff, staff_of
from persistence import store
from persistence.branches import nearest_branch_of, nearest_branches
from persistence.schema import Agent, Branch, BranchLead, CallAttempt, Customer, DoNotContact

log = logging.getLogger(__name__)

GATE = Permission.WORK_LEADS
"""What the map needs (as the leads list): branch managers, account managers, admins."""


def add_map_routes(app: web.Application) -> None:
    """Registers the map API on ``app`` (after ``add_lead_routes``: it shares its policies)."""
    app.router.add_get("/api/map", show_map)
    app.router.add_get("/api/map/customers/{customer_id}", show_customer)


# ------------------------------------------------------------------ helpers
async def _answer(done: Awaitable[dict[str, Any]]) -> web.Response:
    try:
        return web.json_response(await done, headers={"Cache-Control": "no-store"})
    except LeadError as exc:
        return json_error(exc.status, str(exc))


def _deadlines(request: web.Request) -> DeadlinePolicy:
    return request.app.get(LEAD_POLICIES, LeadPolicies()).deadlines


def _branch_names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Branch.id, Branch.name).order_by(Branch.id)).all())


def _names(session: Session, ids: set[int], branches: dict[str, str]) -> Names:
    accounts = dict(session.execute(
        select(Agent.id, Agent.display_name).where(Agent.id.in_(sorted(ids)))).all()) if ids else {}
    return Names(accounts, branches)


def _manages(staff: Staff) -> bool:
    """Whether this person sees a whole branch (its leads and its area's customers), not only
    the leads given to them."""
    return allows(staff.role, Permission.MANAGE_BRANCH_LEADS)


def _marketable(session: Session, customers: Iterable[Customer]) -> list[Customer]:
    """Those who consented and are not on the do-not-contact list."""
    dnc_ids, dnc_phones = store.do_not_contact_keys(session)
    return [c for c in customers
            if c.consent and c.customer_id not in dnc_ids and c.phone not in dnc_phones]


def _subject(customer: Customer, lead: Lead | None) -> Subject:
    return Subject(customer.customer_id, customer.masked_name, mask_phone(customer.phone),
                   customer.region, customer.address, lead)


# ------------------------------------------------------------------ the branch's points
def _area_regions(session: Session, branch_id: str) -> list[str]:
    """The regions whose nearest branch this is (where its leads are routed first)."""
    return sorted(region for region, nearest in nearest_branches(session).items()
                  if nearest == branch_id)


AREA_LIMIT = 2000
"""The most area customers one map answer plots: 20,000 took 2.4 s and 7 MB of JSON
(benchmarks/bench_map.py), and a county's points overlap long before that."""


def _area_customers(session: Session, regions: list[str]) -> tuple[list[Customer], int]:
    """The first ``AREA_LIMIT`` customers (by id) of these regions who may be approached
    (consented, not on the do-not-contact list by id or phone) and never had a lead; and how
    many there are in all."""
    if not regions:
        return [], 0
    listed = select(DoNotContact.customer_id).where(DoNotContact.customer_id.is_not(None))
    listed_phones = select(DoNotContact.phone).where(DoNotContact.phone.is_not(None))
    wanted = select(Customer).where(
        Customer.region.in_(regions), Customer.consent.is_(True),
        Customer.customer_id.not_in(select(BranchLead.customer_id)),
        Customer.customer_id.not_in(listed), Customer.phone.not_in(listed_phones))
    total = session.execute(select(func.count()).select_from(wanted.subquery())).scalar_one()
    rows = session.execute(wanted.order_by(Customer.customer_id).limit(AREA_LIMIT)).scalars()
    return list(rows), total


def _subjects(session: Session, staff: Staff, branch_id: str, now: datetime,
              deadlines: DeadlinePolicy) -> tuple[list[Subject], int]:
    """Whom the map shows, and how many area customers there are in all."""
    if _manages(staff):
        found = leads.leads_of_branch(session, branch_id, now, deadlines=deadlines,
                                      include_closed=True)
        area, total = _area_customers(session, _area_regions(session, branch_id))
    else:
        found = [lead for lead in leads.leads_of_manager(
            session, staff.account_id, now, deadlines=deadlines, include_closed=True)
            if lead.branch_id == branch_id]
        area, total = [], 0
    shown = representative(lead for lead in found if leads.can_see(staff, lead))
    customers = {c.customer_id: c for c in session.execute(
        select(Customer).where(Customer.customer_id.in_(sorted(shown)))).scalars()}
    subjects = [_subject(customers[cid], lead) for cid, lead in sorted(shown.items())]
    return subjects + [_subject(customer, None) for customer in area], total


def _default_branch(staff: Staff, branches: dict[str, str]) -> str | None:
    if staff.branch_id is not None or not branches:
        return staff.branch_id
    return next(iter(branches))


async def show_map(request: web.Request) -> web.Response:
    """The points of one branch this person may see, with the branches they may pick from."""
    staff = staff_of(await require_staff(request, GATE))
    try:
        asked = parse_branch(request.query.get("branch"))
    except ValueError as exc:
        return json_error(400, str(exc))
    if asked is not None and not reaches(staff, asked):
        return json_error(403, f"branch {asked} is outside this account's branch")
    deadlines = _deadlines(request)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        branches = _branch_names(session)
        branch_id = asked or _default_branch(staff, branches)
        if branch_id is None or not reaches(staff, branch_id):
            raise LeadError(403, "this account belongs to no branch")
        if branch_id not in branches:
            raise LeadError(404, f"no branch {branch_id!r}")
        subjects, area_total = _subjects(session, staff, branch_id, now, deadlines)
        names = _names(session, account_ids(s.lead for s in subjects if s.lead is not None),
                       branches)
        points, unplaced = [], []
        for subject in subjects:
            point = point_json(subject, names)
            if point is None:
                unplaced.append(unplaced_json(subject))
            else:
                points.append(point)
        return {
            "now": now.isoformat(),
            "branch": names.branch(branch_id),
            "branches": [{"id": b, "name": name} for b, name in branches.items()
                         if reaches(staff, b)],
            "scope": "branch" if _manages(staff) else "mine",
            "area": area_json(_area_regions(session, branch_id)),
            "points": points,
            "unplaced": unplaced,
            "area_customers": {"shown": sum(s.lead is None for s in subjects),
                               "total": area_total, "limit": AREA_LIMIT},
        }

    return await _answer(read(request, work))


# ------------------------------------------------------------------ one customer
def _leads_of_customer(session: Session, customer_id: str, now: datetime,
                       deadlines: DeadlinePolicy) -> list[Lead]:
    ids = session.execute(select(BranchLead.id).where(BranchLead.customer_id == customer_id)
                          .order_by(BranchLead.id)).scalars()
    return [lead for lead_id in ids
            if (lead := leads.get_lead(session, lead_id, now, deadlines=deadlines)) is not None]


def _may_see(session: Session, staff: Staff, customer: Customer, all_leads: list[Lead],
             visible: list[Lead]) -> bool:
    """A customer is in reach through a lead this person sees; one who never had a lead,
    for whoever sees the branch whose area they are in (an administrator: anyone)."""
    if visible:
        return True
    if all_leads or not _manages(staff):
        return False
    if staff.role not in BRANCH_SCOPED:
        return True  # head office
    return (nearest_branch_of(session, customer.region) == staff.branch_id
            and bool(_marketable(session, [customer])))


def _offer(session: Session, customer_id: str) -> OfferTerms | None:
    found = store.get_customer_offer(session, customer_id)
    if found is None or found.product is None:
        return None
    return OfferTerms(found.product, found.amount_yuan, found.rate_min, found.rate_max,
                      found.term_months, found.valid_until)


def _calls(session: Session, customer_id: str) -> list[CallRecord]:
    rows = session.execute(select(CallAttempt).where(CallAttempt.customer_id == customer_id)
                           .order_by(CallAttempt.started_at, CallAttempt.id)).scalars()
    return [CallRecord(row.campaign_id, row.attempt_no, row.status,
                       str(row.outcome) if row.outcome else None, row.started_at, row.ended_at)
            for row in rows]


async def show_customer(request: web.Request) -> web.Response:
    """The detail panel of a customer within reach: masked name and phone, address (and their
    organisation's), the active offer, the leads this person sees with their history, and the
    campaigns' calls, oldest first."""
    staff = staff_of(await require_staff(request, GATE))
    try:
        customer_id = parse_customer_id(request.match_info["customer_id"])
    except ValueError as exc:
        return json_error(400, str(exc))
    deadlines = _deadlines(request)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise LeadError(404, f"no customer {customer_id!r}")
        all_leads = _leads_of_customer(session, customer_id, now, deadlines)
        visible = [lead for lead in all_leads if leads.can_see(staff, lead)]
        if not _may_see(session, staff, customer, all_leads, visible):
            raise LeadError(403, f"customer {customer_id} is not within this account's reach")
        events = [(lead.id, event)
                  for lead in visible for event in leads.events_of(session, lead.id)]
        names = _names(session, account_ids(visible, (event for _, event in events)),
                       _branch_names(session))
        shown = representative(visible).get(customer_id)
        located = locate(customer.address, customer.region)
        return {
            "customer": {"id": customer.customer_id, "name": customer.masked_name,
                         "phone": mask_phone(customer.phone), "region": customer.region,
                         "segment": customer.segment, "address": customer.address,
                         "org_name": customer.org_name, "org_address": customer.org_address},
            "county": ({"adcode": located.division.adcode, "name": located.division.county,
                        "city": located.division.city} if located else None),
            "located_by": located.by if located else None,
            "status": status_of(shown),
            "offer": offer_json(_offer(session, customer_id)),
            "lead_url": f"/workspace/leads/{shown.id}" if shown else None,
            "leads": [lead_summary_json(lead, names) for lead in reversed(visible)],
            "history": history_json(((lead_id, event_json(event, names))
                                     for lead_id, event in events), _calls(session, customer_id)),
        }

    return await _answer(read(request, work))
