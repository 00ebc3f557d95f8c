"""The post-loan alerts page, static HTML that the browser fills from the alerts API, served
only to a logged-in role that works alerts::

    GET /workspace/alerts                the alerts within reach: rule, figures, deadline,
                                         acknowledging with a note; escalated ones highlighted
    GET /workspace/alerts-assets/...     its CSS and JS modules (public: no data)

As the branch pages (``branches.web.pages``, whose stylesheet, header and countdowns it
shares): without a valid session a 302 to the login page (``?next=`` the page); a role
without ``work_alerts`` gets a short 403 page in Chinese. The page holds no data and is never
cached; the API decides which alerts each person sees.
"""

from __future__ import annotations

import html
from pathlib import Path

from aiohttp import web

from core.access import Permission, allows
from handoff.staff_api import current_account
from outbound.web.pages import NO_STORE, ROLE_NAMES, login_url

STATIC = Path(__file__).parent / "static"
ASSETS_URL = "/workspace/alerts-assets"
GATE = Permission.WORK_ALERTS


def refusal_page(role: str) -> str:
    """The short page a role that works no alerts gets (with a 403)."""
    shown = html.escape(ROLE_NAMES.get(role, role))
    elsewhere = ""
    if allows(role, Permission.VIEW_CAMPAIGNS):
        elsewhere = '<p>请前往 <a href="/workspace">营销活动工作台</a>。</p>'
    return f"""<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>无权访问 · 贷后预警</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/workspace/static/workspace.css"></head>
<body class="centred">
<main class="card narrow" data-testid="forbidden">
  <h1>无权访问</h1>
  <p>贷后预警仅供支行经理、客户经理和系统管理员使用；
     您当前登录的角色是<strong data-testid="forbidden-role">{shown}</strong>。</p>
  {elsewhere}
  <p class="muted">Post-loan alerts are for branch managers and account managers.</p>
  <p><a href="/workspace/login">切换账号</a></p>
</main>
</body>
</html>
"""


async def alerts_page(request: web.Request) -> web.StreamResponse:
    """The alerts page, for a role that works alerts."""
    account = await current_account(request)
    if account is None:
        raise web.HTTPFound(login_url(request.rel_url.path_qs), headers=NO_STORE)
    if not allows(account.role, GATE):
        return web.Response(status=403, text=refusal_page(account.role),
                            content_type="text/html", headers=NO_STORE)
    return web.FileResponse(STATIC / "pages" / "alerts.html", headers=NO_STORE)


def add_alert_pages(app: web.Application) -> None:
    """Registers the alerts page and its assets on ``app``."""
    app.router.add_get("/workspace/alerts", alerts_page)
    app.router.add_static(ASSETS_URL, STATIC / "assets")
