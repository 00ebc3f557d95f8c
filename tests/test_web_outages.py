"""While the database is away, the web server answers 503 with the chat's apology (the
client may try again: nothing was written), not a 500; the code's own database faults
stay 500s."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.exc import IntegrityError, OperationalError

from chat.widget import UNAVAILABLE
from offercall.web.outages import database_outages


class ServerClosed(Exception):
    """Stands for the driver's error when PostgreSQL goes away."""


async def _client(aiohttp_client, error: Exception):
    async def handler(_: web.Request) -> web.Response:
        raise error

    app = web.Application(middlewares=[database_outages])
    app.router.add_post("/api/chat/x/messages", handler)
    return await aiohttp_client(app)


async def test_a_database_outage_is_a_503_with_the_apology(aiohttp_client):
    lost = OperationalError("SELECT 1", {}, ServerClosed("server closed the connection"))
    client = await _client(aiohttp_client, lost)
    response = await client.post("/api/chat/x/messages", json={"text": "利率多少"})
    assert response.status == 503 and response.headers["Retry-After"] == "2"
    assert (await response.json())["texts"] == [UNAVAILABLE]


async def test_a_broken_constraint_is_still_the_codes_fault(aiohttp_client):
    broken = IntegrityError("INSERT", {}, ValueError("duplicate key"))
    client = await _client(aiohttp_client, broken)
    assert (await client.post("/api/chat/x/messages", json={})).status == 500
