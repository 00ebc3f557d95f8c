"""The campaign API: JSON over HTTP for the workspace, every call authenticated::

    GET   /api/campaigns                       the list, with counters         view_campaigns
    POST  /api/campaigns                       create a draft and its targets  manage_campaigns
    GET   /api/campaigns/{id}                  status, counters, funnel        view_campaigns
    PATCH /api/campaigns/{id}                  change a draft or paused one    manage_campaigns
    POST  /api/campaigns/{id}/start|resume|stop                                manage_campaigns
    POST  /api/campaigns/{id}/pause                                            pause_campaigns
    GET   /api/campaigns/{id}/audit            its audit trail, newest first   view_audit
    GET   /api/campaigns/{id}/report           the HTML report as of now       view_campaigns
    GET   /api/campaigns/{id}/attempts.csv     its attempts, masked            view_campaigns
    GET   /api/exports/attempts.csv            every campaign's attempts       view_campaigns
    WS    /ws/campaigns/{id}                   live status, pushed             view_campaigns
    GET   /api/campaigns/{id}/plan             its plan, who is where   view_campaign_settings
    GET   /api/plan-options                    what a plan may hold     view_campaign_settings

A contact plan is one of the settings (``config.plan``; ``null``: calls only), written by the
create and the change like the others, so their checks are its checks; the two plan reads
are in :mod:`outbound.web.campaign_plans`.

Without a session the answer is 401, with a role that lacks the permission 403 (see
``core.access``); bad input 400, an unknown campaign 404, a taken id or a command the
campaign's status refuses 409, each with ``{"error": <the reason>}`` and nothing written.
Settings (``config``) are shown only to roles with ``view_campaign_settings``. Campaigns are
head-office objects: a branch manager sees them all, but exports only their branch's rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.access import Permission, allows
from handoff.agents import AgentAccount
from handoff.staff_api import json_body, require_staff
from outbound import campaigns
from outbound.arm_results import arm_results
from outbound.channel_funnel_data import channel_facts
from outbound.funnel import funnel
from outbound.lifecycle import CampaignCommand
from outbound.loan_funnel_data import loan_facts
from outbound.report import render_html
from outbound.report_data import attempt_facts, lead_facts
from outbound.web import campaign_exports, campaign_live, campaign_plans
from outbound.web.campaign_common import CAMPAIGN_API, actor_of, http_error, read, write
from outbound.web.campaign_input import NewCampaign, new_campaign, settings_change
from outbound.web.campaign_reads import all_campaigns
from outbound.web.campaign_views import audit_json, campaign_json, funnel_json, report_summary
from persistence import audit

COMMAND_PERMISSION = {
    CampaignCommand.START: Permission.MANAGE_CAMPAIGNS,
    CampaignCommand.PAUSE: Permission.PAUSE_CAMPAIGNS,
    CampaignCommand.RESUME: Permission.MANAGE_CAMPAIGNS,
    CampaignCommand.STOP: Permission.MANAGE_CAMPAIGNS,
}
"""A supervisor on the floor may pause a campaign; only managers start, resume or stop one."""


def add_campaign_routes(app: web.Application) -> None:
    """Registers the campaign API on ``app``; the app's factory puts a
    :class:`~outbound.web.campaign_common.CampaignApiConfig` at ``app[CAMPAIGN_API]``."""
    commands = "|".join(CampaignCommand)
    app.router.add_get("/api/campaigns", list_campaigns)
    app.router.add_post("/api/campaigns", create_campaign)
    app.router.add_get("/api/campaigns/{campaign_id}", show_campaign)
    app.router.add_patch("/api/campaigns/{campaign_id}", change_campaign)
    app.router.add_post(f"/api/campaigns/{{campaign_id}}/{{command:{commands}}}", command_campaign)
    app.router.add_get("/api/campaigns/{campaign_id}/audit", campaign_audit)
    app.router.add_get("/api/campaigns/{campaign_id}/report", campaign_report)
    app.router.add_get("/api/campaigns/{campaign_id}/attempts.csv",
                       campaign_exports.campaign_attempts)
    app.router.add_get("/api/exports/attempts.csv", campaign_exports.all_attempts)
    app.router.add_get("/ws/campaigns/{campaign_id}", campaign_live.campaign_socket)
    campaign_plans.add_plan_routes(app)


def _campaign_id(request: web.Request) -> str:
    return request.match_info["campaign_id"]


def _detail(session: Session, campaign_id: str, account: AgentAccount) -> dict[str, Any]:
    """A campaign as its page shows it: counters, funnel per variant, settings if allowed."""
    info = campaigns.get_campaign(session, campaign_id)
    view = campaign_json(info, campaigns.progress(session, campaign_id),
                         with_settings=allows(account.role, Permission.VIEW_CAMPAIGN_SETTINGS))
    view["funnel"] = funnel_json(funnel(attempt_facts(session, campaign_id)))
    return view


async def list_campaigns(request: web.Request) -> web.Response:
    """Every campaign, newest first, with its counters."""
    account = await require_staff(request, Permission.VIEW_CAMPAIGNS)
    settings = allows(account.role, Permission.VIEW_CAMPAIGN_SETTINGS)
    found = await read(request, lambda session, now: all_campaigns(session))
    return web.json_response({"campaigns": [
        campaign_json(info, progress, with_settings=settings) for info, progress in found]})


def _create(session: Session, now: datetime, wanted: NewCampaign,
            account: AgentAccount) -> dict[str, Any]:
    """Writes the campaign and its customers, or (raising) nothing at all."""
    config = wanted.config
    try:
        campaigns.create_campaign(session, wanted.id, wanted.name, wanted.transport, config,
                                  now, actor=actor_of(account))
    except IntegrityError:  # made by someone else since the check
        raise campaigns.CampaignExists(f"campaign {wanted.id!r} already exists") from None
    customers = campaigns.matching_customers(session, product=config.product,
                                             segment=config.segment,
                                             customer_ids=wanted.customer_ids)
    campaigns.add_targets(session, wanted.id, customers, now)
    return _detail(session, wanted.id, account)


async def create_campaign(request: web.Request) -> web.Response:
    """A new draft campaign and its customers (201), its creation audited."""
    account = await require_staff(request, Permission.MANAGE_CAMPAIGNS)
    body = await json_body(request)
    try:
        wanted = new_campaign(body, request.app[CAMPAIGN_API].installation)
    except campaigns.CampaignError as exc:
        raise http_error(exc) from None
    view = await write(request, lambda session, now: _create(session, now, wanted, account))
    return web.json_response(view, status=201)


async def show_campaign(request: web.Request) -> web.Response:
    """One campaign: status, counters, funnel (and settings, for roles that may see them)."""
    account = await require_staff(request, Permission.VIEW_CAMPAIGNS)
    campaign_id = _campaign_id(request)
    return web.json_response(
        await read(request, lambda session, now: _detail(session, campaign_id, account)))


async def change_campaign(request: web.Request) -> web.Response:
    """Changes a draft or paused campaign's name or settings (audited with before and after);
    409 while it runs or once it has ended."""
    account = await require_staff(request, Permission.MANAGE_CAMPAIGNS)
    body = await json_body(request)
    campaign_id, installation = _campaign_id(request), request.app[CAMPAIGN_API].installation
    try:
        change = settings_change(body)
    except campaigns.CampaignError as exc:
        raise http_error(exc) from None

    def work(session: Session, now: datetime) -> dict[str, Any]:
        transport = campaigns.get_campaign(session, campaign_id).transport
        changed = campaigns.change_settings(
            session, campaign_id, change.settings, actor_of(account), now, name=change.name,
            check=lambda config: campaigns.check_against(
                config, transport=transport, known_variants=installation.variants,
                dial_lines=installation.dial_lines))
        return {**_detail(session, campaign_id, account), "changed": changed}

    return web.json_response(await write(request, work))


async def command_campaign(request: web.Request) -> web.Response:
    """Starts, pauses, resumes or stops a campaign (audited); 409 with the reason when its
    status does not allow it."""
    wanted = CampaignCommand(request.match_info["command"])
    account = await require_staff(request, COMMAND_PERMISSION[wanted])
    campaign_id = _campaign_id(request)
    status = await write(request, lambda session, now: campaigns.command(
        session, campaign_id, wanted, actor_of(account), now))
    return web.json_response({"id": campaign_id, "status": str(status)})


async def campaign_audit(request: web.Request) -> web.Response:
    """Who did what to the campaign, newest first."""
    await require_staff(request, Permission.VIEW_AUDIT)
    campaign_id = _campaign_id(request)

    def work(session: Session, now: datetime) -> list[dict[str, Any]]:
        campaigns.get_campaign(session, campaign_id)
        return audit_json(audit.history(session, "campaign", campaign_id))

    return web.json_response({"id": campaign_id, "entries": await read(request, work)})


async def campaign_report(request: web.Request) -> web.Response:
    """The campaign's HTML report as of now, times in the bank's time zone."""
    await require_staff(request, Permission.VIEW_CAMPAIGNS)
    campaign_id, zone = _campaign_id(request), ZoneInfo(request.app[CAMPAIGN_API].timezone)

    def work(session: Session, now: datetime) -> str:
        info = campaigns.get_campaign(session, campaign_id)
        return render_html(report_summary(info), attempt_facts(session, campaign_id), now, zone,
                           leads=lead_facts(session, campaign_id),
                           channels=channel_facts(session, campaign_id),
                           arms=arm_results(session, campaign_id),
                           loans=loan_facts(session, campaign_id))

    return web.Response(text=await read(request, work), content_type="text/html",
                        headers={"Cache-Control": "no-store"})
