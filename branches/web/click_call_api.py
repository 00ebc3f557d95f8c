"""One-click calls (一键外呼) from the leads pages::

    POST /api/leads/{id}/call      ring my phone, then the lead's customer, and join us (202)
    GET  /api/click-calls/{id}     where that call is (the customer's number masked)

Only someone who may work the lead (``Permission.WORK_LEADS`` and ``leads.can_see``: an account
manager their own leads) may ask. Without a session: 401; out of reach: 403; no such lead or
call: 404; the lead not claimed or closed, the customer on the do-not-contact list, or a call
for the lead in progress: 409; no phone on the caller's account, or outside the calling window:
422. Refusals carry ``reason`` (``branches.click_calls.Refusal``) beside ``error``. A dialer
worker places the call (``offercall.click_calls``); the page polls its state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from branches import click_calls
from branches.click_calls import ClickCallError, ClickCallPolicy, ClickCallView
from core.access import Permission, Staff
from handoff.api import HANDOFF
from handoff.staff_api import json_error, require_staff, staff_of

CLICK_CALL_POLICY = web.AppKey("click_call_policy", ClickCallPolicy)
LEAD_ID = r"{lead_id:\d{1,9}}"
CALL_ID = r"{call_id:\d{1,9}}"


def add_click_call_routes(app: web.Application, policy: ClickCallPolicy | None = None) -> None:
    """The one-click call API, refusing calls outside ``policy``'s window."""
    app[CLICK_CALL_POLICY] = policy or ClickCallPolicy()
    app.router.add_post(f"/api/leads/{LEAD_ID}/call", request_call)
    app.router.add_get(f"/api/click-calls/{CALL_ID}", show_call)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def call_json(call: ClickCallView) -> dict[str, Any]:
    """A one-click call as the page shows it."""
    return {
        "id": call.id, "lead_id": call.lead_id, "status": str(call.status), "live": call.live,
        "customer": {"id": call.customer_id, "phone": call.masked_phone},
        "manager_id": call.manager_id, "requested_at": _iso(call.requested_at),
        "manager_answered_at": _iso(call.manager_answered_at),
        "customer_answered_at": _iso(call.customer_answered_at), "ended_at": _iso(call.ended_at),
        "duration_s": round(call.duration_ms / 1000, 1) if call.duration_ms is not None else None,
        "ended_by": call.ended_by, "recorded": bool(call.recording_path), "failure": call.failure,
    }


def _error(exc: ClickCallError) -> web.Response:
    extra = {"reason": str(exc.reason)} if exc.reason else {}
    return json_error(exc.status, str(exc), **extra)


async def _staff(request: web.Request) -> Staff:
    return staff_of(await require_staff(request, Permission.WORK_LEADS))


async def request_call(request: web.Request) -> web.Response:
    """Asks for the call; 202 with its id and state, which a worker then moves on."""
    staff = await _staff(request)
    lead_id = int(request.match_info["lead_id"])
    policy = request.app[CLICK_CALL_POLICY]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return call_json(click_calls.request_call(session, lead_id, staff, now, policy))

    try:
        answer = await request.app[HANDOFF].run(work)
    except ClickCallError as exc:
        return _error(exc)
    return web.json_response(answer, status=202,
                             headers={"Location": f"/api/click-calls/{answer['id']}"})


async def show_call(request: web.Request) -> web.Response:
    """The call's state, for whoever may see its lead."""
    staff = await _staff(request)
    call_id = int(request.match_info["call_id"])

    def work(session: Session, now: datetime) -> dict[str, Any]:
        return call_json(click_calls.get_call(session, call_id, staff, now))

    try:
        return web.json_response(await request.app[HANDOFF].read(work),
                                 headers={"Cache-Control": "no-store"})
    except ClickCallError as exc:
        return _error(exc)
