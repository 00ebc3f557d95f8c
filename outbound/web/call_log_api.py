"""The call log API: find a call, read its transcript, play its recording.

- ``GET /api/calls?customer=&campaign=&limit=`` -> calls newest first, masked. ``customer``
  is a customer id or a fragment of the masked phone (``8001``, ``138****8001``).
- ``GET /api/calls/{call_id}`` -> the call and its transcript, phone and ID numbers masked;
  with ``?unmasked=1`` (roles with ``VIEW_UNMASKED``) in full, and the view is audited
  (``UNMASKED_VIEWED``) in the same transaction, before the answer leaves.
- ``GET /api/calls/{call_id}/recording`` -> the two-channel WAV (left customer, right bot),
  with Range requests for seeking.

All need ``VIEW_CALL_LOG``; a branch manager sees only the calls of customers whose nearest
branch is theirs.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from core.access import BRANCH_SCOPED, Permission, Staff, allows, reaches
from core.vocabulary import AuditAction
from handoff import messages
from handoff.agents import AgentAccount
from handoff.api import HANDOFF
from handoff.staff_api import json_error, require_staff, staff_of
from outbound.call_log import (
    LoggedCall,
    call_view,
    parse_flag,
    parse_limit,
    transcript_turns,
    valid_call_id,
)
from outbound.call_records import find_call, search_calls
from persistence import audit, branches
from persistence.audit import Actor

log = logging.getLogger(__name__)

RECORDINGS = web.AppKey("call_recordings", Path)
"""Where the calls' ``<call_id>.wav`` and ``<call_id>.json`` are (``Settings.recordings_dir``)."""
MAX_QUERY = 64


class _OutOfReach(Exception):
    """The call belongs to a customer outside this account's branch."""


def add_call_log_routes(app: web.Application) -> None:
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/calls/{call_id}", show_call)
    app.router.add_get("/api/calls/{call_id}/recording", call_recording)


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _call_id(request: web.Request) -> str:
    call_id = request.match_info["call_id"]
    if not valid_call_id(call_id):
        raise _bad_request("a call id has only letters, digits, - and _")
    return call_id


def _has_recording(directory: Path, call_id: str) -> bool:
    return valid_call_id(call_id) and (directory / f"{call_id}.wav").is_file()


def _branch_regions(session: Session, staff: Staff) -> list[str] | None:
    """The regions whose customers this person may see (None: all of them)."""
    if staff.role not in BRANCH_SCOPED:
        return None
    nearest = branches.nearest_branches(session)
    return [region for region, branch in nearest.items() if reaches(staff, branch)]


def _reachable(session: Session, staff: Staff, call_id: str) -> LoggedCall | None:
    """The call, None if there is none, :class:`_OutOfReach` if it is another branch's."""
    call = find_call(session, call_id)
    if call is not None and not reaches(staff, branches.nearest_branch_of(session, call.region)):
        raise _OutOfReach(call_id)
    return call


def _not_found(call_id: str) -> web.Response:
    return json_error(404, f"no call {call_id!r}")


def _out_of_reach() -> web.Response:
    return json_error(403, "this call's customer belongs to another branch")


async def list_calls(request: web.Request) -> web.Response:
    account = await require_staff(request, Permission.VIEW_CALL_LOG)
    customer = request.query.get("customer", "").strip()[:MAX_QUERY] or None
    campaign = request.query.get("campaign", "").strip()[:MAX_QUERY] or None
    try:
        limit = parse_limit(request.query.get("limit"))
    except ValueError as exc:
        return json_error(400, str(exc))
    staff, directory = staff_of(account), request.app[RECORDINGS]

    def work(session: Session, now: datetime) -> list[dict[str, Any]]:
        calls = search_calls(session, customer=customer, campaign=campaign, limit=limit,
                             regions=_branch_regions(session, staff))
        return [call_view(c, has_recording=_has_recording(directory, c.call_id)) for c in calls]

    return web.json_response({"calls": await request.app[HANDOFF].run(work)})


def _transcript(session: Session, directory: Path, call_id: str,
                unmasked: bool) -> list[dict[str, Any]]:
    """The recorded transcript; else the conversation's logged messages (a call that has
    no recording file yet, or lost it)."""
    path = directory / f"{call_id}.json"
    if path.is_file():
        document = json.loads(path.read_text(encoding="utf-8"))
        return transcript_turns(document.get("transcript", []), unmasked=unmasked)
    logged = messages.history(session, call_id)
    return transcript_turns([{**m.data, "speaker": m.sender, "text": m.text} for m in logged],
                            unmasked=unmasked)


async def show_call(request: web.Request) -> web.Response:
    """The call with its transcript; ``?unmasked=1`` shows it in full, audited."""
    account = await require_staff(request, Permission.VIEW_CALL_LOG)
    call_id = _call_id(request)
    try:
        unmasked = parse_flag(request.query.get("unmasked"))
    except ValueError as exc:
        return json_error(400, f"unmasked: {exc}")
    if unmasked and not allows(account.role, Permission.VIEW_UNMASKED):
        return json_error(403, f"the {account.role} role may not see full phone and ID numbers")
    staff, directory = staff_of(account), request.app[RECORDINGS]

    def work(session: Session, now: datetime) -> dict[str, Any] | None:
        call = _reachable(session, staff, call_id)
        if call is None:
            return None
        view = call_view(call, has_recording=_has_recording(directory, call_id), unmasked=unmasked)
        view["transcript"] = _transcript(session, directory, call_id, unmasked)
        view["unmasked"] = unmasked
        if unmasked:
            _audit_unmasked(session, account, call, now)
        return view

    try:
        view = await request.app[HANDOFF].run(work)
    except _OutOfReach:
        return _out_of_reach()
    return _not_found(call_id) if view is None else web.json_response(view)


def _audit_unmasked(session: Session, account: AgentAccount, call: LoggedCall,
                    now: datetime) -> None:
    actor = Actor(account.username, account.role, account.id)
    audit.record(session, actor, AuditAction.UNMASKED_VIEWED, "customer", call.customer_id, now,
                 call_id=call.call_id, shown=["name", "phone", "transcript"])
    log.info("calls.unmasked_viewed call_id=%s by=%s", call.call_id, account.username)


async def call_recording(request: web.Request) -> web.StreamResponse:
    """The call's two-channel WAV (Range requests work), or 404."""
    account = await require_staff(request, Permission.VIEW_CALL_LOG)
    call_id = _call_id(request)
    staff, path = staff_of(account), request.app[RECORDINGS] / f"{call_id}.wav"

    def work(session: Session, now: datetime) -> tuple[bool, bool]:
        return _reachable(session, staff, call_id) is not None, path.is_file()

    try:
        known, recorded = await request.app[HANDOFF].run(work)
    except _OutOfReach:
        return _out_of_reach()
    if not known:
        return _not_found(call_id)
    if not recorded:
        return json_error(404, f"call {call_id!r} has no recording")
    return web.FileResponse(path, headers={"Content-Type": "audio/wav",
                                           "Cache-Control": "no-store"})
