"""The bot's answer to a logged chat turn is kept through a short database outage."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from bot.client import BotTurn
from chat import widget


class FlakyDatabase:
    """Fails the first ``outage`` transactions as a restarting PostgreSQL does, then works."""

    def __init__(self, outage: int) -> None:
        self.outage = outage
        self.tries = 0
        self.stored: list[str] = []

    async def run(self, work):
        self.tries += 1
        if self.tries <= self.outage:
            raise OperationalError("INSERT", {}, Exception("the database system is shutting down"))
        self.stored.append("answer")
        return 42


def socket_with(service: FlakyDatabase) -> widget._WidgetSocket:
    socket = widget._WidgetSocket.__new__(widget._WidgetSocket)
    socket.service = service
    return socket


async def test_an_answer_is_logged_once_the_database_is_back(monkeypatch):
    monkeypatch.setattr(widget, "REPLY_STORE_TRIES", (0.01, 0.01, 0.01, 0.01))
    database = FlakyDatabase(outage=3)
    reply = await socket_with(database)._store_bot_turn_durably("chat-1", BotTurn(["您好"], []))
    assert reply == 42 and database.stored == ["answer"] and database.tries == 4


async def test_a_database_away_for_good_is_reported_after_the_tries(monkeypatch):
    monkeypatch.setattr(widget, "REPLY_STORE_TRIES", (0.01, 0.01))
    database = FlakyDatabase(outage=99)
    with pytest.raises(OperationalError):  # the socket then gets the 503 apology
        await socket_with(database)._store_bot_turn_durably("chat-1", BotTurn(["您好"], []))
    assert database.tries == 3 and database.stored == []
