"""What the campaign API's handlers share: the installation's settings they need (an app
key the composition root fills), database work off the event loop with campaign errors
answered as HTTP errors, and the audit trail's view of the logged-in account."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from handoff.agents import AgentAccount
from handoff.api import HANDOFF
from outbound.campaigns import CampaignError, CampaignExists, CampaignNotFound, CampaignRefused
from outbound.web.campaign_input import Installation
from persistence.audit import Actor

T = TypeVar("T")


@dataclass(frozen=True)
class CampaignApiConfig:
    """What the campaign API needs of the installation (filled by ``offercall.web.app``)."""

    installation: Installation
    """The bot's script variants and the dial lines, which new settings are checked against."""
    timezone: str
    """The bank's time zone: export dates are its days, the report shows its times."""
    live_every_s: float = 1.0
    """How often a live status socket re-reads the campaign."""


CAMPAIGN_API = web.AppKey("campaign_api", CampaignApiConfig)

_HTTP_ERRORS: tuple[tuple[type[CampaignError], type[web.HTTPException]], ...] = (
    (CampaignNotFound, web.HTTPNotFound),
    (CampaignExists, web.HTTPConflict),
    (CampaignRefused, web.HTTPConflict),
    (CampaignError, web.HTTPBadRequest),
)


def http_error(exc: CampaignError) -> web.HTTPException:
    """The HTTP answer to a campaign error: 404 unknown, 409 taken or refused, 400 bad input;
    the body is ``{"error": <the reason>}``."""
    kind = next(http for error, http in _HTTP_ERRORS if isinstance(exc, error))
    return kind(text=json.dumps({"error": str(exc)}, ensure_ascii=False),
                content_type="application/json")


def actor_of(account: AgentAccount) -> Actor:
    """The audit trail's name for a logged-in account."""
    return Actor(account.username, account.role, account.id)


async def write(request: web.Request, work: Callable[[Session, datetime], T]) -> T:
    """``work`` in one committed transaction (the handoff service's, so its feed sees it);
    a :class:`CampaignError` rolls it back and answers as :func:`http_error`."""
    try:
        return await request.app[HANDOFF].run(work)
    except CampaignError as exc:
        raise http_error(exc) from None


async def read(request: web.Request, work: Callable[[Session, datetime], T]) -> T:
    """``work`` in a transaction of its own off the event loop, for reads (no feed wake-up);
    a :class:`CampaignError` answers as :func:`http_error`."""
    try:
        return await request.app[HANDOFF].read(work)
    except CampaignError as exc:
        raise http_error(exc) from None
