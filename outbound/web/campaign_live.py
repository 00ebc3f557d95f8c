"""``WS /ws/campaigns/{id}``: a campaign's live status, pushed with no polling by the page.

On connect the socket sends a ``status`` frame (status, counters, funnel, calls in flight,
agents free); then a new one whenever any of it changes. The server re-reads the campaign
every ``CampaignApiConfig.live_every_s`` and sends only what differs from the last frame
(the dialers are other processes; a change feed can replace the re-read later). The
session comes from the workspace cookie or an ``Authorization: Bearer`` header, never from
the URL. The client has nothing to say: its frames are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from core.access import Permission
from handoff.staff_api import require_staff
from outbound.web.campaign_common import CAMPAIGN_API, read
from outbound.web.campaign_reads import live_status

log = logging.getLogger(__name__)

MAX_CLIENT_FRAME = 4 * 1024


async def _push_changes(request: web.Request, ws: web.WebSocketResponse, campaign_id: str,
                        last: dict[str, Any]) -> None:
    """Re-reads the status every ``live_every_s`` and sends it when it changed."""
    every = request.app[CAMPAIGN_API].live_every_s
    while not ws.closed:
        await asyncio.sleep(every)
        current = await read(request, lambda session, now: live_status(session, campaign_id, now))
        if current != last:
            await ws.send_json(current)
            last = current


async def _until_closed(ws: web.WebSocketResponse) -> None:
    """Reads (and ignores) the client's frames until it closes the socket."""
    async for frame in ws:
        if frame.type == WSMsgType.ERROR:
            return


async def campaign_socket(request: web.Request) -> web.WebSocketResponse:
    """The live status socket (see the module docstring); 401/403/404 before the upgrade."""
    await require_staff(request, Permission.VIEW_CAMPAIGNS)
    campaign_id = request.match_info["campaign_id"]
    first = await read(request, lambda session, now: live_status(session, campaign_id, now))
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=MAX_CLIENT_FRAME)
    await ws.prepare(request)
    await ws.send_json(first)
    tasks = {asyncio.create_task(_push_changes(request, ws, campaign_id, first)),
             asyncio.create_task(_until_closed(ws))}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if not task.cancelled() and task.exception() is not None \
                    and not isinstance(task.exception(), ConnectionResetError):
                log.error("campaigns.live.failed campaign_id=%s", campaign_id,
                          exc_info=task.exception())
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await ws.close()
    return ws
