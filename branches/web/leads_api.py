"""The leads API for branch managers and account managers::

    GET  /api/leads?status=open|closed|all&branch=   the leads within reach, by what is due
    GET  /api/leads/{id}                             a lead, its history and its branch periods
    POST /api/leads/{id}/claim                       the branch takes it
    POST /api/leads/{id}/steps   {"outcome", "note"} contacted, visited, verified; or applied,
                                                     declined, unreachable (closes it)
    POST /api/leads/{id}/notes   {"note"}            a note on its history
    POST /api/leads/{id}/assign  {"manager_id"}      given to an account manager of its branch
    GET  /api/leads/{id}/contact                     the customer's full name and phone (audited)
    GET  /api/branches/{id}/scorecard                on-time rates, conversion, suspension
    GET  /api/branches/{id}/managers                 who a lead may be given to, with their load

Who sees what (``core.access`` and ``branches.leads.can_see``): a branch manager their
branch's leads; an account manager only the leads given to them; an administrator every
lead (``?branch=`` one branch's). Without a session: 401; a role without the permission, or
a lead or branch out of reach: 403; an unknown lead or branch: 404; a lead not in a state for
the change: 409; an account it cannot be given to: 422 (``LeadError.status``, with its
reason). A refused change writes nothing: each runs in one transaction, which the refusal
rolls back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from branches import leads
from branches.deadlines import DeadlinePolicy
from branches.leads import MANAGER_ROLES, OPEN, Lead, LeadError
from branches.policies import LeadPolicies
from branches.scorecard import suspended
from branches.web.lead_views import (
    Names,
    StatusFilter,
    account_ids,
    by_due,
    event_json,
    lead_json,
    parse_manager,
    parse_note,
    parse_reroute,
    parse_status,
    parse_step,
    period_json,
    scorecard_json,
)
from core.access import BRANCH_SCOPED, Permission, Staff, allows, reaches
from core.vocabulary import Role
from handoff.api import HANDOFF
from handoff.staff_api import json_body, json_error, require_staff, staff_of
from persistence.schema import Agent, Branch, BranchLead

log = logging.getLogger(__name__)
T = TypeVar("T")

LEAD_ID = r"{lead_id:\d{1,9}}"
"""A lead id in a path (longer is no lead: PostgreSQL's integer would overflow)."""
BRANCH_ID = r"{branch_id:[A-Za-z0-9_-]{1,32}}"
NO_STORE = {"Cache-Control": "no-store"}


LEAD_POLICIES = web.AppKey("lead_policies", LeadPolicies)


def add_lead_routes(app: web.Application, policies: LeadPolicies | None = None) -> None:
    """The leads API, judging deadlines and scorecards by ``policies`` (the settings')."""
    app[LEAD_POLICIES] = policies or LeadPolicies()
    app.router.add_get("/api/leads", list_leads)
    app.router.add_get(f"/api/leads/{LEAD_ID}", show_lead)
    app.router.add_post(f"/api/leads/{LEAD_ID}/claim", claim_lead)
    app.router.add_post(f"/api/leads/{LEAD_ID}/steps", record_step)
    app.router.add_post(f"/api/leads/{LEAD_ID}/notes", add_note)
    app.router.add_post(f"/api/leads/{LEAD_ID}/assign", assign_lead)
    app.router.add_post(f"/api/leads/{LEAD_ID}/reroute", reroute_lead)
    app.router.add_get(f"/api/leads/{LEAD_ID}/contact", show_contact)
    app.router.add_get(f"/api/branches/{BRANCH_ID}/scorecard", branch_scorecard)
    app.router.add_get(f"/api/branches/{BRANCH_ID}/managers", branch_managers)


# ------------------------------------------------------------------ database work
async def read(request: web.Request, work: Callable[[Session, datetime], T]) -> T:
    """``work(session, now)`` in a transaction of its own off the event loop, on the handoff
    service's database and clock (reads: the agents' feed is not woken)."""
    return await request.app[HANDOFF].read(work)


async def write(request: web.Request, work: Callable[[Session, datetime], T]) -> T:
    """``work`` in one committed transaction; a ``LeadError`` rolls it back."""
    return await request.app[HANDOFF].run(work)


async def _answer(done: Awaitable[dict[str, Any]], *,
                  headers: dict[str, str] | None = None) -> web.Response:
    """The JSON of what ``done`` gives, or a ``LeadError`` as its status and reason."""
    try:
        return web.json_response(await done, headers=headers)
    except LeadError as exc:
        return json_error(exc.status, str(exc))


def _names(session: Session, ids: set[int]) -> Names:
    accounts = dict(session.execute(
        select(Agent.id, Agent.display_name).where(Agent.id.in_(sorted(ids)))).all()) if ids else {}
    return Names(accounts, _branch_names(session))


def _branch_names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Branch.id, Branch.name).order_by(Branch.id)).all())


def _policies(request: web.Request) -> LeadPolicies:
    return request.app[LEAD_POLICIES]


def _visible(session: Session, staff: Staff, lead_id: int, now: datetime,
             deadlines: DeadlinePolicy) -> Lead:
    """The lead if this person may see it; else 404 (none) or 403 (out of reach)."""
    lead = leads.get_lead(session, lead_id, now, deadlines=deadlines)
    if lead is None:
        raise LeadError(404, f"no lead {lead_id}")
    if not leads.can_see(staff, lead):
        raise LeadError(403, f"lead {lead_id} is not within this account's reach")
    return lead


def _lead_answer(session: Session, lead: Lead) -> dict[str, Any]:
    return lead_json(lead, _names(session, account_ids([lead])))


def _lead_id(request: web.Request) -> int:
    return int(request.match_info["lead_id"])


async def _staff(request: web.Request, permission: Permission) -> Staff:
    return staff_of(await require_staff(request, permission))


# ------------------------------------------------------------------ leads
def _leads_in_reach(session: Session, staff: Staff, branch: str | None, wanted: StatusFilter,
                    now: datetime, deadlines: DeadlinePolicy) -> list[Lead]:
    include_closed = wanted is not StatusFilter.OPEN
    if allows(staff.role, Permission.MANAGE_BRANCH_LEADS):
        if branch is not None:
            branches = [branch]
        elif staff.role in BRANCH_SCOPED:
            branches = [staff.branch_id] if staff.branch_id else []
        else:
            branches = sorted(set(_branch_names(session)) | set(session.execute(
                select(BranchLead.branch_id).distinct()).scalars()))
        found = [lead for branch_id in branches for lead in leads.leads_of_branch(
            session, branch_id, now, deadlines=deadlines, include_closed=include_closed)]
    else:
        found = leads.leads_of_manager(session, staff.account_id, now, deadlines=deadlines,
                                       include_closed=include_closed)
    return by_due(lead for lead in found if wanted.admits(lead) and leads.can_see(staff, lead))


async def list_leads(request: web.Request) -> web.Response:
    """The leads this person may see, open ones by what is due soonest, with the server's
    ``now`` (the page's countdowns) and the branches they may pick from."""
    staff = await _staff(request, Permission.WORK_LEADS)
    try:
        wanted = parse_status(request.query.get("status"))
    except ValueError as exc:
        return json_error(400, str(exc))
    branch = request.query.get("branch") or None
    deadlines = _policies(request).deadlines
    if branch is not None and not reaches(staff, branch):
        return json_error(403, f"branch {branch} is outside this account's branch")

    def work(session: Session, now: datetime) -> dict[str, Any]:
        branch_names = _branch_names(session)
        if branch is not None and branch not in branch_names:
            raise LeadError(404, f"no branch {branch!r}")
        found = _leads_in_reach(session, staff, branch, wanted, now, deadlines)
        names = _names(session, account_ids(found))
        return {
            "now": now.isoformat(), "status": str(wanted), "branch": branch,
            "leads": [lead_json(lead, names) for lead in found],
            "branches": [{"id": branch_id, "name": name}
                         for branch_id, name in branch_names.items() if reaches(staff, branch_id)],
        }

    return await _answer(read(request, work))


async def show_lead(request: web.Request) -> web.Response:
    """The lead, its history (oldest first) and each branch's time with it."""
    staff = await _staff(request, Permission.WORK_LEADS)
    lead_id = _lead_id(request)
    deadlines = _policies(request).deadlines

    def work(session: Session, now: datetime) -> dict[str, Any]:
        lead = _visible(session, staff, lead_id, now, deadlines)
        events = leads.events_of(session, lead_id)
        periods = leads.periods_of(session, lead_id)
        names = _names(session, account_ids([lead], events, periods))
        shown = {**lead_json(lead, names), "now": now.isoformat(),
                 "events": [event_json(event, names) for event in events],
                 "periods": [period_json(period, names) for period in periods]}
        if allows(staff.role, Permission.MANAGE_BRANCH_LEADS):  # where it may be moved to
            shown["reroute_to"] = [{"id": branch_id, "name": name} for branch_id, name
                                   in _branch_names(session).items() if branch_id != lead.branch_id]
        return shown

    return await _answer(read(request, work))


async def claim_lead(request: web.Request) -> web.Response:
    """The branch takes the lead; 409 when it is claimed, closed or moved already."""
    staff = await _staff(request, Permission.WORK_LEADS)
    lead_id = _lead_id(request)
    deadlines = _policies(request).deadlines
    return await _answer(write(request, lambda session, now: _lead_answer(
        session, leads.claim(session, lead_id, staff, now, deadlines=deadlines))))


async def record_step(request: web.Request) -> web.Response:
    """One step of the claimed lead, with an optional note; a final outcome closes it."""
    staff = await _staff(request, Permission.WORK_LEADS)
    lead_id = _lead_id(request)
    try:
        step = parse_step(await json_body(request))
    except ValueError as exc:
        return json_error(400, str(exc))
    deadlines = _policies(request).deadlines
    return await _answer(write(request, lambda session, now: _lead_answer(
        session, leads.record_step(session, lead_id, staff, step.outcome, step.note, now,
                                   deadlines=deadlines))))


async def add_note(request: web.Request) -> web.Response:
    """A note on the lead's history, by whoever may work it."""
    staff = await _staff(request, Permission.WORK_LEADS)
    lead_id = _lead_id(request)
    try:
        note = parse_note(await json_body(request))
    except ValueError as exc:
        return json_error(400, str(exc))
    deadlines = _policies(request).deadlines
    return await _answer(write(request, lambda session, now: _lead_answer(
        session, leads.add_note(session, lead_id, staff, note, now, deadlines=deadlines))))


async def assign_lead(request: web.Request) -> web.Response:
    """The branch manager gives an open lead of their branch to one of its account managers
    (422: not an active account or branch manager of the lead's branch)."""
    staff = await _staff(request, Permission.MANAGE_BRANCH_LEADS)
    lead_id = _lead_id(request)
    try:
        manager_id = parse_manager(await json_body(request))
    except ValueError as exc:
        return json_error(400, str(exc))
    deadlines = _policies(request).deadlines
    return await _answer(write(request, lambda session, now: _lead_answer(
        session, leads.assign_manager(session, lead_id, manager_id, staff, now,
                                      deadlines=deadlines))))


async def reroute_lead(request: web.Request) -> web.Response:
    """Moves an open lead by hand, with the reason, to a chosen branch or the next nearest:
    head office any lead, a branch manager their branch's (``leads.reroute``)."""
    staff = await _staff(request, Permission.MANAGE_BRANCH_LEADS)
    lead_id = _lead_id(request)
    try:
        asked = parse_reroute(await json_body(request))
    except ValueError as exc:
        return json_error(400, str(exc))
    policies = _policies(request)
    return await _answer(write(request, lambda session, now: _lead_answer(
        session, leads.reroute(session, lead_id, staff, asked.reason, now, to_branch=asked.branch,
                               deadlines=policies.deadlines,
                               scorecard_policy=policies.scorecard))))


async def show_contact(request: web.Request) -> web.Response:
    """The customer's full name and phone, for whoever works the lead; the view is in the
    audit trail (``unmasked_viewed``), committed before the answer leaves."""
    staff = await _staff(request, Permission.VIEW_UNMASKED)
    lead_id = _lead_id(request)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        found = leads.contact_details(session, lead_id, staff, now)
        return {"lead_id": found.lead_id, "customer_id": found.customer_id, "name": found.name,
                "phone": found.phone, "region": found.region}

    return await _answer(write(request, work), headers=NO_STORE)


# ------------------------------------------------------------------ branches
def _branch(session: Session, branch_id: str) -> None:
    if session.get(Branch, branch_id) is None:
        raise LeadError(404, f"no branch {branch_id!r}")


async def branch_scorecard(request: web.Request) -> web.Response:
    """The branch's scorecard now (a branch manager: their own branch only)."""
    branch_id = request.match_info["branch_id"]
    await require_staff(request, Permission.MANAGE_BRANCH_LEADS, branch_id=branch_id,
                        branch_scoped=True)

    policies = _policies(request)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        _branch(session, branch_id)
        card = leads.branch_scorecards(session, now, policies.deadlines, policies.scorecard)[branch_id]
        return scorecard_json(card, suspended(card, policies.scorecard), policies.scorecard,
                              Names(branches=_branch_names(session)))

    return await _answer(read(request, work))


async def branch_managers(request: web.Request) -> web.Response:
    """Whom the branch's leads may be given to (its active account managers, then its branch
    managers), each with their open leads."""
    branch_id = request.match_info["branch_id"]
    await require_staff(request, Permission.MANAGE_BRANCH_LEADS, branch_id=branch_id,
                        branch_scoped=True)

    def work(session: Session, now: datetime) -> dict[str, Any]:
        _branch(session, branch_id)
        accounts = session.execute(
            select(Agent).where(Agent.branch_id == branch_id, Agent.active.is_(True),
                                Agent.role.in_(sorted(MANAGER_ROLES)))).scalars().all()
        ids = [account.id for account in accounts]
        load = dict(session.execute(
            select(BranchLead.manager_id, func.count(BranchLead.id))
            .where(BranchLead.manager_id.in_(ids), BranchLead.status.in_(sorted(OPEN)),
                   BranchLead.branch_id == branch_id)
            .group_by(BranchLead.manager_id)).all()) if ids else {}
        accounts.sort(key=lambda a: (a.role != Role.ACCOUNT_MANAGER, a.display_name, a.id))
        return {"branch_id": branch_id, "managers": [
            {"id": a.id, "name": a.display_name, "username": a.username, "role": a.role,
             "open_leads": load.get(a.id, 0)} for a in accounts]}

    return await _answer(read(request, work))
