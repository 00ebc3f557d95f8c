"""The attempts exports: one CSV row per finished attempt, customers masked, filtered by the
days (``from``, ``to``: YYYY-MM-DD in the bank's time zone, both inclusive, each optional)
on which the attempt started. A branch manager gets only the rows of customers whose
nearest branch is theirs."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.orm import Session

from core.access import BRANCH_SCOPED, Permission
from handoff.agents import AgentAccount
from handoff.staff_api import require_staff
from outbound import campaigns
from outbound.web.campaign_common import CAMPAIGN_API, http_error, read
from outbound.web.campaign_input import CAMPAIGN_ID, day_bounds
from outbound.web.campaign_reads import export_rows
from outbound.web.campaign_views import ExportRow, attempts_csv


def _branch_of(account: AgentAccount) -> str | None:
    """The branch whose rows alone the account may export (None: every branch)."""
    return account.branch_id if account.role in BRANCH_SCOPED else None


def _filename(request: web.Request, campaign_id: str | None) -> str:
    """E.g. attempts-c1-2026-11-01-2026-11-30.csv (the days are checked dates by now)."""
    days = "-".join(request.query.get(key) or "all" for key in ("from", "to"))
    name = campaign_id if campaign_id and CAMPAIGN_ID.fullmatch(campaign_id) else "campaigns"
    return f"attempts-{name}-{days}.csv"


async def _export(request: web.Request, campaign_id: str | None) -> web.Response:
    account = await require_staff(request, Permission.VIEW_CAMPAIGNS)
    timezone = request.app[CAMPAIGN_API].timezone
    try:
        start, end = day_bounds(request.query.get("from"), request.query.get("to"), timezone)
    except campaigns.CampaignError as exc:
        raise http_error(exc) from None

    def work(session: Session, now: datetime) -> list[ExportRow]:
        if campaign_id is not None:
            campaigns.get_campaign(session, campaign_id)
        return export_rows(session, start=start, end=end, campaign_id=campaign_id,
                           branch_id=_branch_of(account))

    rows = await read(request, work)
    return web.Response(
        body=attempts_csv(rows, ZoneInfo(timezone)), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(request, campaign_id)}"',
                 "Cache-Control": "no-store"})


async def campaign_attempts(request: web.Request) -> web.Response:
    """``GET /api/campaigns/{id}/attempts.csv?from=&to=``: one campaign's attempts."""
    return await _export(request, request.match_info["campaign_id"])


async def all_attempts(request: web.Request) -> web.Response:
    """``GET /api/exports/attempts.csv?from=&to=``: every campaign's attempts."""
    return await _export(request, None)
