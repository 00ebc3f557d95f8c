"""The campaign managers' workspace pages: static HTML that the browser fills from the JSON
APIs, each page served only to a logged-in role that may view campaigns::

    GET /workspace/login                 the staff login form (public)
    GET /workspace                       the campaigns, with their counters
    GET /workspace/whitelists/new        upload a whitelist, read its bad rows, confirm it
    GET /workspace/campaigns/new         the new-campaign form
    GET /workspace/campaigns/{id}        a campaign's live status, controls, settings, audit
    GET /workspace/calls                 the call log: transcripts and recordings
    GET /workspace/static/...            the pages' CSS and JS modules (public: no data)

The check is made here, on the server, before any page is sent: without a valid session
the answer is a 302 to the login page (``?next=`` the page asked for); a role without
``view_campaigns`` (an agent) gets a short 403 page. The pages then hide the buttons the
role may not use, and the APIs refuse them anyway. Every page is ``Cache-Control:
no-store``; the pages hold no data, the APIs give it (masked) to the page's script.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from core.access import Permission, allows
from handoff.staff_api import current_account
from outbound.web.campaign_input import CAMPAIGN_ID

STATIC = Path(__file__).parent / "static"
PAGES = STATIC / "pages"
ASSETS = STATIC / "assets"
LOGIN_PATH = "/workspace/login"
NO_STORE = {"Cache-Control": "no-store"}
GATE = Permission.VIEW_CAMPAIGNS
"""What every workspace page needs: the campaign managers' roles have it, agents do not."""

ROLE_NAMES = {
    "admin": "系统管理员", "campaign_manager": "营销活动经理", "supervisor": "坐席主管",
    "branch_manager": "支行经理", "account_manager": "客户经理", "agent": "坐席",
}
"""The roles as the pages name them: an agent (坐席) takes transfers in the console; an account
manager (客户经理) follows up a branch's leads."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def login_url(wanted: str) -> str:
    """The login page, asked to come back to ``wanted`` (a path with its query) afterwards."""
    return f"{LOGIN_PATH}?{urlencode({'next': wanted})}"


def refusal_page(role: str) -> str:
    """The short page a role without the workspace's permission gets (with a 403)."""
    shown = html.escape(ROLE_NAMES.get(role, role))
    console = ('<p>坐席请使用 <a href="/console">坐席工作台</a> 处理转人工客户。</p>'
               if allows(role, Permission.WORK_TICKETS) else "")
    return f"""<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>无权访问 · 营销活动工作台</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/workspace/static/workspace.css"></head>
<body class="centred">
<main class="card narrow" data-testid="forbidden">
  <h1>无权访问</h1>
  <p>营销活动工作台仅供营销活动经理、坐席主管、支行经理和系统管理员使用；
     您当前登录的角色是<strong data-testid="forbidden-role">{shown}</strong>。</p>
  {console}
  <p class="muted">This workspace is for campaign managers.</p>
  <p><a href="{LOGIN_PATH}">切换账号</a></p>
</main>
</body>
</html>
"""


def _page(name: str, *, check: Callable[[web.Request], bool] = lambda _: True) -> Handler:
    """A handler that sends ``pages/<name>`` to a role that may view campaigns."""
    path = PAGES / name

    async def page(request: web.Request) -> web.StreamResponse:
        account = await current_account(request)
        if account is None:
            raise web.HTTPFound(login_url(request.rel_url.path_qs), headers=NO_STORE)
        if not allows(account.role, GATE):
            return web.Response(status=403, text=refusal_page(account.role),
                                content_type="text/html", headers=NO_STORE)
        if not check(request):
            raise web.HTTPNotFound(text="没有这个页面 (no such page)", headers=NO_STORE)
        return web.FileResponse(path, headers=NO_STORE)

    return page


def _valid_campaign_id(request: web.Request) -> bool:
    return bool(CAMPAIGN_ID.fullmatch(request.match_info["campaign_id"]))


async def login_page(_: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGES / "login.html", headers=NO_STORE)


def add_workspace_pages(app: web.Application) -> None:
    """Registers the workspace's pages and their static assets on ``app``."""
    app.router.add_get(LOGIN_PATH, login_page)
    app.router.add_get("/workspace", _page("campaigns.html"))
    app.router.add_get("/workspace/whitelists/new", _page("whitelist_new.html"))
    app.router.add_get("/workspace/campaigns/new", _page("campaign_new.html"))
    app.router.add_get("/workspace/campaigns/{campaign_id}",
                       _page("campaign.html", check=_valid_campaign_id))
    app.router.add_get("/workspace/calls", _page("calls.html"))
    app.router.add_static("/workspace/static", ASSETS)
