"""The contact plan's reads for the workspace, every call authenticated::

    GET /api/plan-options                 channels, text templates, stop conditions, limits
    GET /api/campaigns/{id}/plan          its plan and where its customers stand in it

Both need ``view_campaign_settings`` (a plan is one of the campaign's settings): 401 without
a session, 403 for a role without it, 404 for an unknown campaign. A plan is written only
with the campaign's settings (``POST /api/campaigns``, ``PATCH /api/campaigns/{id}`` with
``config.plan``), so the server's checks of the settings are the plan's only checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from core.access import Permission
from handoff.staff_api import require_staff
from outbound import campaigns
from outbound.web.campaign_common import read
from outbound.web.campaign_reads import plan_positions
from outbound.web.campaign_views import plan_json, plan_options_json


def add_plan_routes(app: web.Application) -> None:
    """Registers the plan's reads on ``app`` (beside the campaign API)."""
    app.router.add_get("/api/plan-options", plan_options)
    app.router.add_get("/api/campaigns/{campaign_id}/plan", campaign_plan)


async def plan_options(request: web.Request) -> web.Response:
    """What a plan may hold, for the editor's choices (the checks stay on the server)."""
    await require_staff(request, Permission.VIEW_CAMPAIGN_SETTINGS)
    return web.json_response(plan_options_json())


async def campaign_plan(request: web.Request) -> web.Response:
    """The campaign's plan as the server reads it (``null``: calls only) and, with one, how
    many customers wait for each step, are in its call, or are through."""
    await require_staff(request, Permission.VIEW_CAMPAIGN_SETTINGS)
    campaign_id = request.match_info["campaign_id"]

    def work(session: Session, now: datetime) -> dict[str, Any]:
        info = campaigns.get_campaign(session, campaign_id)
        if not info.config.planned:
            return plan_json(info, None, {})
        return plan_json(info, info.config.contact_plan(), plan_positions(session, campaign_id))

    return web.json_response(await read(request, work))
