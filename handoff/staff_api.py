"""Staff sessions for the workspace pages (campaigns, whitelists, call log): log in with any
role, and the one check every workspace endpoint makes.

Any staff account may log in here (the agents' console has its own login, for the roles that
work tickets). The session is the same as the console's: an HttpOnly ``SameSite=Strict``
cookie for the browser, or the token as ``Authorization: Bearer`` for API clients.
:func:`require_staff` answers 401 without a valid session and 403 when the role lacks the
permission (or, for a branch manager, the thing belongs to another branch).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from core.access import ROLE_PERMISSIONS, AccessDenied, Permission, Staff, require
from core.vocabulary import Role
from handoff import agents
from handoff.agents import AgentAccount
from handoff.api import HANDOFF

log = logging.getLogger(__name__)

STAFF_COOKIE = "oc_staff"


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    """A JSON error body, ``{"error": message, ...}``."""
    return web.json_response({"error": message, **extra}, status=status)


def _raise(kind: type[web.HTTPException], message: str) -> None:
    raise kind(text=json.dumps({"error": message}, ensure_ascii=False), content_type="application/json")


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong."""
    try:
        body = await request.json()
    except ValueError:
        _raise(web.HTTPBadRequest, "the body must be JSON")
    if not isinstance(body, dict):
        _raise(web.HTTPBadRequest, "the body must be a JSON object")
    return body


def session_token(request: web.Request) -> str:
    """The bearer token, else the workspace cookie."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer "):].strip()
    return request.cookies.get(STAFF_COOKIE, "")


def staff_of(account: AgentAccount) -> Staff:
    """The access rules' view of an account."""
    return Staff(account.id, Role(account.role), account.branch_id)


async def current_account(request: web.Request) -> AgentAccount | None:
    """The logged-in account (by the bearer token or the workspace cookie), or None."""
    token = session_token(request)
    if not token:
        return None
    return await request.app[HANDOFF].read(
        lambda session, now: agents.account_for_token(session, token, now))


async def require_staff(request: web.Request, permission: Permission, *,
                        branch_id: str | None = None, branch_scoped: bool = False) -> AgentAccount:
    """The logged-in account if it may do this; else 401 (no session) or 403 (the role, or
    another branch's data)."""
    account = await current_account(request)
    if account is None:
        _raise(web.HTTPUnauthorized, "log in first")
    try:
        require(staff_of(account), permission, branch_id, branch_scoped=branch_scoped)
    except AccessDenied as exc:
        log.info("staff.refused role=%s permission=%s", account.role, permission.value)
        _raise(web.HTTPForbidden, str(exc))
    return account


def account_json(account: AgentAccount) -> dict[str, Any]:
    """An account as the pages show it (never its password hash)."""
    return {"id": account.id, "username": account.username, "name": account.display_name,
            "role": account.role, "branch_id": account.branch_id}


async def staff_login(request: web.Request) -> web.Response:
    """POST {"username", "password"} -> {"token", "staff"} and the session cookie."""
    body = await json_body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        return json_error(400, "username and password are required")

    def work(session: Session, now: datetime) -> tuple[str, AgentAccount] | None:
        return agents.log_in(session, username, password, now)

    found = await request.app[HANDOFF].run(work)
    if found is None:
        return json_error(401, "wrong username or password")
    token, account = found
    response = web.json_response({"token": token, "staff": account_json(account)})
    response.set_cookie(STAFF_COOKIE, token, httponly=True, samesite="Strict",
                        max_age=agents.SESSION_HOURS * 3600, secure=request.secure)
    return response


async def staff_logout(request: web.Request) -> web.Response:
    token = session_token(request)
    await request.app[HANDOFF].run(lambda session, now: agents.log_out(session, token, now))
    response = web.json_response({"ok": True})
    response.del_cookie(STAFF_COOKIE)
    return response


async def staff_me(request: web.Request) -> web.Response:
    """The logged-in account and what its role may do (the pages hide what it may not)."""
    account = await current_account(request)
    if account is None:
        return json_error(401, "log in first")
    permissions = sorted(p.value for p in ROLE_PERMISSIONS[Role(account.role)])
    return web.json_response({**account_json(account), "permissions": permissions})


def add_staff_routes(app: web.Application) -> None:
    """The workspace's login, logout and who-am-I."""
    app.router.add_post("/api/staff/login", staff_login)
    app.router.add_post("/api/staff/logout", staff_logout)
    app.router.add_get("/api/staff/me", staff_me)
