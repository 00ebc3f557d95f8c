"""The handoff feed wakes on PostgreSQL's NOTIFY (sent by the logs' triggers at commit) and
reads the logs, which stay the source of truth: appends by another connection arrive at once
although the feed would poll only every 30 s; when the LISTEN connection is killed the feed
polls, reconnects and loses nothing; SQLite has no NOTIFY and is polled as before."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from handoff import messages
from handoff.feed import Feed, Item
from persistence import handoffs
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.notify import Listener
from tests.conftest import QUEUE_NOW

SLOW = 30.0  # a poll this slow never fires during a test: only a notification can wake the feed
WITHIN = 5.0  # generous on a loaded 2-core machine, still far below SLOW


@pytest.fixture
def pg(postgres_server) -> Engine:
    engine = make_engine(postgres_server.new_database())
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def writer(pg) -> Engine:
    """Another process's connections: nothing here kicks the feed."""
    engine = make_engine(pg.url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def say(engine: Engine, text_: str, conversation: str = "conv-notify") -> None:
    with session_scope(engine) as session:
        messages.post(session, conversation_id=conversation, sender="customer", text=text_,
                      now=QUEUE_NOW)


def hand_off(engine: Engine, conversation: str = "conv-notify") -> int:
    with session_scope(engine) as session:
        return handoffs.create_ticket(
            session, conversation_id=conversation, customer_id=None, offer_id=None,
            channel="chat", reason="customer_requested", transcript=[], intents=[], now=QUEUE_NOW)


def listen_backends(engine: Engine) -> list[int]:
    """The pids of the backends LISTENing on this database (from a connection of its own)."""
    with engine.connect() as connection:
        return list(connection.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()")).scalars())


async def until(condition, timeout: float = WITHIN, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(condition):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(step)


async def take(subscription, count: int, timeout: float = WITHIN) -> list[Item]:
    return [await asyncio.wait_for(subscription.get(), timeout) for _ in range(count)]


def texts(items: list[Item]) -> list[str]:
    return [item.text for item in items]  # type: ignore[union-attr]


async def test_an_append_by_another_connection_wakes_the_feed_at_once_and_stop_closes_the_listener(
        pg, writer):
    feed = Feed(pg, interval_s=SLOW, safety_interval_s=SLOW)
    await feed.start()
    try:
        assert feed.listening
        subscription = feed.subscribe(lambda item: True)
        await asyncio.sleep(0.2)  # the tail is now in its 30 s wait

        started = time.monotonic()
        await asyncio.to_thread(say, writer, "我想办卡")
        (message,) = await take(subscription, 1)
        assert message.text == "我想办卡"
        ticket_id = await asyncio.to_thread(hand_off, writer)  # the event log's trigger too
        (event,) = await take(subscription, 1)
        assert event.handoff_id == ticket_id and event.to_status == "queued"
        assert time.monotonic() - started < WITHIN < SLOW
        assert len(await asyncio.to_thread(listen_backends, writer)) == 1
    finally:
        await feed.stop()
    await until(lambda: listen_backends(writer) == [])


async def test_after_the_listen_backend_is_killed_appends_still_arrive_in_order_none_lost(
        pg, writer):
    feed = Feed(pg, interval_s=0.25, safety_interval_s=SLOW)
    await feed.start()
    try:
        subscription = feed.subscribe(lambda item: True)
        (killed,) = await asyncio.to_thread(listen_backends, writer)
        with writer.connect() as connection:
            terminate = text("SELECT pg_terminate_backend(:pid)")
            assert connection.execute(terminate, {"pid": killed}).scalar()

        for n in range(1, 4):  # while the feed has no LISTEN connection
            await asyncio.to_thread(say, writer, f"断线后{n}")
        assert texts(await take(subscription, 3)) == ["断线后1", "断线后2", "断线后3"]

        await until(lambda: feed.listening)
        await until(lambda: listen_backends(writer) not in ([], [killed]))
        await asyncio.sleep(0.5)  # the reconnect's catch-up read is done: the feed polls every 30 s
        for n in range(4, 7):
            await asyncio.to_thread(say, writer, f"重连后{n}")
        assert texts(await take(subscription, 3)) == ["重连后4", "重连后5", "重连后6"]
        await asyncio.sleep(0.3)
        assert subscription.queue.empty(), "nothing delivered twice"
    finally:
        await feed.stop()


async def test_a_feed_that_cannot_listen_at_start_polls_and_listens_once_it_can(
        pg, writer, monkeypatch):
    real_connect = Listener._connect
    refusals = []

    def refuse_once(self):
        if not refusals:
            refusals.append(True)
            raise OSError("PostgreSQL is restarting")
        return real_connect(self)

    monkeypatch.setattr(Listener, "_connect", refuse_once)
    feed = Feed(pg, interval_s=0.25, safety_interval_s=SLOW)
    await feed.start()
    try:
        assert not feed.listening
        subscription = feed.subscribe(lambda item: True)
        await asyncio.to_thread(say, writer, "还在轮询")
        assert texts(await take(subscription, 1)) == ["还在轮询"]
        await until(lambda: feed.listening)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(say, writer, "已在监听")
        assert texts(await take(subscription, 1)) == ["已在监听"]
    finally:
        await feed.stop()
    assert not feed.listening


async def test_on_sqlite_the_feed_polls(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'offercall.db'}")
    migrate(engine)
    feed = Feed(engine, interval_s=0.05, safety_interval_s=SLOW)
    await feed.start()
    try:
        assert not feed.listening
        subscription = feed.subscribe(lambda item: True)
        await asyncio.to_thread(say, engine, "轮询")
        assert texts(await take(subscription, 1)) == ["轮询"]
    finally:
        await feed.stop()
        engine.dispose()
