"""Every route of the web server, in one place."""

from __future__ import annotations

from aiohttp import web

from branches.click_calls import ClickCallPolicy
from branches.policies import lead_policies
from branches.web.click_call_api import add_click_call_routes
from branches.web.leads_api import add_lead_routes
from branches.web.map_api import add_map_routes
from branches.web.pages import add_lead_pages
from chat.routes import add_chat_routes
from handoff.api import add_console_routes
from handoff.staff_api import add_staff_routes
from lending.alert_policy import alert_policy
from lending.web.alert_pages import add_alert_pages
from lending.web.alerts_api import add_alert_routes
from lending.web.intake_api import add_partner_routes
from lending.web.loan_api import add_loan_routes
from lending.web.settlements_api import add_settlement_routes
from offercall.web import media
from offercall.web.keys import SETTINGS
from offercall.web.metrics import add_web_metrics
from outbound.web.call_log_api import add_call_log_routes
from outbound.web.campaign_api import add_campaign_routes
from outbound.web.pages import add_workspace_pages
from outbound.web.popup_api import add_popup_routes
from outbound.web.sms_api import add_sms_routes
from outbound.web.whitelist_api import add_whitelist_routes


async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def setup_routes(app: web.Application) -> None:
    """Register the routes."""
    app.router.add_get("/health", health)
    add_web_metrics(app)
    add_chat_routes(app)
    app.router.add_get("/media/{protocol}", media.media_stream)
    add_console_routes(app)
    add_staff_routes(app)
    add_whitelist_routes(app)
    add_call_log_routes(app)
    add_campaign_routes(app)
    add_sms_routes(app)
    add_popup_routes(app)
    add_workspace_pages(app)
    add_lead_routes(app, lead_policies(app[SETTINGS]))
    add_map_routes(app)
    add_click_call_routes(app, ClickCallPolicy.from_settings(app[SETTINGS]))
    add_lead_pages(app)
    add_alert_routes(app)
    add_settlement_routes(app, app[SETTINGS].settlement_key, alert_policy(app[SETTINGS]))
    add_alert_pages(app)
    add_loan_routes(app)
    add_partner_routes(app)
