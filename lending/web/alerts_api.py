"""The post-loan alerts API for account managers and branch managers::

    GET  /api/alerts?status=open|acknowledged|all&branch=   the alerts within reach, open
                                                            escalated ones first
    POST /api/alerts/{id}/acknowledge  {"note"}             acknowledged, with the note
    POST /api/alerts/{id}/assign       {"manager_id"}       given to an account manager of
                                                            its branch (a branch manager)

Who sees what (``lending.alerts.can_see``): an account manager the alerts of their own
customers; a branch manager their branch's; an administrator all (``?branch=`` one
branch's). Without a session: 401; a role without the permission, or an alert or branch out
of reach: 403; an unknown alert or branch: 404; acknowledged already: 409; an account it
cannot be given to: 422 (``AlertError.status``, with its reason). A refused change writes
nothing: each runs in one transaction, which the refusal rolls back.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.access import Permission, Staff, reaches
from handoff.api import HANDOFF
from handoff.staff_api import json_body, json_error, require_staff, staff_of
from lending import alerts
from lending.alerts import Alert
from lending.errors import AlertError
from lending.web.alert_views import (
    Names,
    account_ids,
    alert_json,
    parse_manager,
    parse_note,
    parse_status,
)
from persistence.schema import Agent, Branch

ALERT_ID = r"{alert_id:\d{1,9}}"
"""An alert id in a path (longer is no alert: PostgreSQL's integer would overflow)."""


def add_alert_routes(app: web.Application) -> None:
    """The alerts API."""
    app.router.add_get("/api/alerts", list_alerts)
    app.router.add_post(f"/api/alerts/{ALERT_ID}/acknowledge", acknowledge_alert)
    app.router.add_post(f"/api/alerts/{ALERT_ID}/assign", assign_alert)


async def _answer(done: Awaitable[dict[str, Any]]) -> web.Response:
    """The JSON of what ``done`` gives, or an ``AlertError`` as its status and reason."""
    try:
        return web.json_response(await done)
    except AlertError as exc:
        return json_error(exc.status, str(exc))


async def _staff(request: web.Request, permission: Permission) -> Staff:
    return staff_of(await require_staff(request, permission))


def _branch_names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Branch.id, Branch.name).order_by(Branch.id)).all())


def _names(session: Session, found: list[Alert]) -> Names:
    ids = sorted(account_ids(found))
    accounts = dict(session.execute(select(Agent.id, Agent.display_name)
                                    .where(Agent.id.in_(ids))).all()) if ids else {}
    return Names(accounts, _branch_names(session))


def _one(session: Session, alert: Alert) -> dict[str, Any]:
    return alert_json(alert, _names(session, [alert]))


async def list_alerts(request: web.Request) -> web.Response:
    """The alerts this person may see, with the server's ``now`` (the page's countdowns), the
    counts of open, escalated and overdue ones, and the branches they may pick from."""
    staff = await _staff(request, Permission.WORK_ALERTS)
    try:
        wanted = parse_status(request.query.get("status"))
    except ValueError as exc:
        return json_error(400, str(exc))
    branch = request.query.get("branch") or None
    if branch is not None and not reaches(staff, branch):
        return json_error(403, f"branch {branch} is outside this account's branch")

    def work(session: Session, now: datetime) -> dict[str, Any]:
        branches = _branch_names(session)
        if branch is not None and branch not in branches:
            raise AlertError(404, f"no branch {branch!r}")
        found = alerts.alerts_for(session, staff, now, status=wanted, branch=branch)
        names = _names(session, found)
        open_ = [alert for alert in found if alert.is_open]
        return {
            "now": now.isoformat(), "status": str(wanted), "branch": branch,
            "alerts": [alert_json(alert, names) for alert in found],
            "counts": {"shown": len(found), "open": len(open_),
                       "escalated": sum(alert.escalated_at is not None for alert in open_),
                       "overdue": sum(alert.overdue for alert in open_)},
            "branches": [{"id": branch_id, "name": name} for branch_id, name in branches.items()
                         if reaches(staff, branch_id)],
        }

    return await _answer(request.app[HANDOFF].read(work))


def _alert_id(request: web.Request) -> int:
    return int(request.match_info["alert_id"])


async def acknowledge_alert(request: web.Request) -> web.Response:
    """Acknowledges the alert with a note (required), stored and audited before the answer."""
    staff = await _staff(request, Permission.WORK_ALERTS)
    alert_id = _alert_id(request)
    try:
        note = parse_note(await json_body(request))
    except ValueError as exc:
        return json_error(400, str(exc))
    return await _answer(request.app[HANDOFF].run(lambda session, now: _one(
        session, alerts.acknowledge(session, alert_id, staff, note, now))))


async def assign_alert(request: web.Request) -> web.Response:
    """A branch manager gives an open alert of their branch to one of its account managers."""
    staff = await _staff(request, Permission.MANAGE_BRANCH_ALERTS)
    alert_id = _alert_id(request)
    try:
        manager_id = parse_manager(await json_body(request))
    except ValueError as exc:
        return json_error(400, str(exc))
    return await _answer(request.app[HANDOFF].run(lambda session, now: _one(
        session, alerts.assign(session, alert_id, manager_id, staff, now))))
