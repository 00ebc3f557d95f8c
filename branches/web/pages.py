"""The branch workspace's pages: static HTML that the browser fills from the leads API, each
served only to a logged-in role that works leads::

    GET /workspace/leads                 the leads with their deadlines; for a branch manager
                                         also the scorecard and who each lead is given to
    GET /workspace/leads/{id}            a lead: customer, offer, history, steps, notes
    GET /workspace/map                   the marketing map (营销地图): the branch's leads and
                                         customers on its counties, drawn offline
    GET /workspace/leads-assets/...      the pages' CSS and JS modules (public: no data)
    GET /workspace/map-assets/...        the map's county boundaries and vendored ECharts
                                         (public: no data; a tree of their own, with licences)

As ``outbound.web.pages`` (whose login page, stylesheet and ``common.js`` these share): the
check is made on the server before a page is sent. Without a valid session the answer is a
302 to the login page (``?next=`` the page asked for); a role without ``work_leads`` gets a
short 403 page in Chinese. The pages hold no data and are never cached; the API decides
which leads each person sees.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from branches.web.leads_api import LEAD_ID
from core.access import Permission, allows
from handoff.staff_api import current_account
from outbound.web.pages import NO_STORE, ROLE_NAMES, Handler, login_url

STATIC = Path(__file__).parent / "static"
PAGES = STATIC / "pages"
ASSETS = STATIC / "assets"
ASSETS_URL = "/workspace/leads-assets"
MAP_ASSETS = STATIC / "map"
MAP_ASSETS_URL = "/workspace/map-assets"
GATE = Permission.WORK_LEADS
"""What every branch page needs: branch managers, account managers and administrators."""


def refusal_page(role: str) -> str:
    """The short page a role that works no leads gets (with a 403), pointing to its own pages."""
    shown = html.escape(ROLE_NAMES.get(role, role))
    elsewhere = []
    if allows(role, Permission.VIEW_CAMPAIGNS):
        elsewhere.append('<p>请前往 <a href="/workspace">营销活动工作台</a>。</p>')
    if allows(role, Permission.WORK_TICKETS):
        elsewhere.append('<p>坐席请使用 <a href="/console">坐席工作台</a> 处理转人工客户。</p>')
    return f"""<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>无权访问 · 支行线索</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/workspace/static/workspace.css"></head>
<body class="centred">
<main class="card narrow" data-testid="forbidden">
  <h1>无权访问</h1>
  <p>支行线索仅供支行经理、客户经理和系统管理员使用；
     您当前登录的角色是<strong data-testid="forbidden-role">{shown}</strong>。</p>
  {"".join(elsewhere)}
  <p class="muted">Branch leads are for branch managers and account managers.</p>
  <p><a href="/workspace/login">切换账号</a></p>
</main>
</body>
</html>
"""


def _page(name: str) -> Handler:
    """A handler that sends ``pages/<name>`` to a role that works leads."""
    path = PAGES / name

    async def page(request: web.Request) -> web.StreamResponse:
        account = await current_account(request)
        if account is None:
            raise web.HTTPFound(login_url(request.rel_url.path_qs), headers=NO_STORE)
        if not allows(account.role, GATE):
            return web.Response(status=403, text=refusal_page(account.role),
                                content_type="text/html", headers=NO_STORE)
        return web.FileResponse(path, headers=NO_STORE)

    return page


def add_lead_pages(app: web.Application) -> None:
    """Registers the branch pages and their static assets on ``app``."""
    app.router.add_get("/workspace/leads", _page("leads.html"))
    app.router.add_get(f"/workspace/leads/{LEAD_ID}", _page("lead.html"))
    app.router.add_get("/workspace/map", _page("map.html"))
    app.router.add_static(ASSETS_URL, ASSETS)
    app.router.add_static(MAP_ASSETS_URL, MAP_ASSETS)
