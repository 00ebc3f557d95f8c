"""Wake-ups from PostgreSQL's LISTEN/NOTIFY on an asyncio loop.

Writers do nothing: triggers (revision 0007) send a NOTIFY on :data:`HANDOFF_CHANNEL` when rows
are appended to the handoff event log or the message log, delivered at the writer's commit,
whichever process or tool wrote them. A notification carries no data and is only a hint to
look: the reader still reads the log, so one lost while the connection is down costs only time.

:class:`Listener` holds one dedicated connection (autocommit, outside the engine's pool) that
LISTENs, watched by the loop through ``add_reader`` on its socket. When the connection drops
(PostgreSQL restarted, the backend terminated, the network gone: TCP keepalives notice the
last), it says so through :attr:`Listener.listening` and wakes its reader, so the reader can
poll fast meanwhile; it reconnects with back-off and wakes the reader again to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

HANDOFF_CHANNEL = "offercall_handoff"

# libpq connection options for the listening connection, unless the database URL sets them
CONNECTION_DEFAULTS: dict[str, Any] = {
    "connect_timeout": 5,
    "application_name": "offercall-listen",
    # a silent network loss is noticed within about idle + interval * count seconds
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
}


def can_listen(engine: Engine) -> bool:
    """Whether ``engine``'s database sends notifications this module can receive."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg2"


class Listener:
    """LISTENs on ``channel`` and calls ``wake()`` (on the loop) when a notification arrives,
    when the connection is lost and when it is back."""

    def __init__(
        self,
        engine: Engine,
        channel: str,
        wake: Callable[[], None],
        *,
        retry_min_s: float = 0.5,
        retry_max_s: float = 10.0,
    ) -> None:
        if not can_listen(engine):
            raise ValueError(f"LISTEN needs PostgreSQL through psycopg2, not {engine.dialect.name}")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", channel):
            raise ValueError(f"not a plain channel name: {channel!r}")
        self._engine = engine
        self._channel = channel
        self._wake = wake
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._lock = threading.Lock()  # between close() and a connect finishing in a thread
        self._closed = False
        self._connection: Any = None  # the psycopg2 connection, while it listens
        self._fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry: asyncio.Task[None] | None = None

    @property
    def listening(self) -> bool:
        """True while notifications can arrive (between a LISTEN and the loss of its connection)."""
        return self._fd is not None

    async def start(self) -> None:
        """Connects and LISTENs; if that fails now, keeps trying in the background."""
        self._loop = asyncio.get_running_loop()
        try:
            connection = await asyncio.to_thread(self._connect)
        except Exception as error:
            log.warning("db.listen.unavailable: LISTEN %s failed (%s); retrying in the background",
                        self._channel, _describe(error), extra={"channel": self._channel})
            self._retry_later()
            return
        if connection is not None:
            self._watch(connection)
            log.info("db.listen.connected: LISTEN %s", self._channel,
                     extra={"channel": self._channel})

    async def close(self) -> None:
        """Stops listening and closes the connection; nothing is retried afterwards."""
        with self._lock:
            self._closed = True
        if self._retry is not None:
            self._retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry
            self._retry = None
        self._drop()

    # connecting (in a worker thread)

    def _connect(self) -> Any:
        """A new connection that LISTENs, or None if the listener was closed meanwhile."""
        dialect = self._engine.dialect
        cargs, cparams = dialect.create_connect_args(self._engine.url)
        cparams = {**CONNECTION_DEFAULTS, **cparams}
        connection = dialect.dbapi.connect(*cargs, **cparams)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {self._channel}")
        except BaseException:
            connection.close()
            raise
        with self._lock:
            if self._closed:
                connection.close()
                return None
            self._connection = connection
        return connection

    # watching (on the loop)

    def _watch(self, connection: Any) -> None:
        assert self._loop is not None
        self._fd = connection.fileno()
        self._loop.add_reader(self._fd, self._readable)
        connection.notifies.clear()  # any that came with the LISTEN's reply: callers look anyway

    def _readable(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            connection.poll()  # reads what arrived; raises if the server hung up
            if connection.closed:
                raise ConnectionError("connection closed")
        except Exception as error:
            log.warning("db.listen.lost: the LISTEN %s connection dropped (%s); "
                        "reconnecting (readers poll meanwhile)", self._channel, _describe(error),
                        extra={"channel": self._channel})
            self._drop()
            self._wake()  # look now, and poll fast until the connection is back
            self._retry_later()
            return
        if connection.notifies:
            connection.notifies.clear()
            self._wake()

    def _drop(self) -> None:
        """Stops watching and closes the connection (if any)."""
        if self._fd is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._fd)
            self._fd = None
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    def _retry_later(self) -> None:
        if self._closed or (self._retry is not None and not self._retry.done()):
            return
        assert self._loop is not None
        self._retry = self._loop.create_task(self._reconnect(), name=f"listen-{self._channel}")

    async def _reconnect(self) -> None:
        delay = self._retry_min_s
        attempt = 0
        while not self._closed:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))  # several processes: spread out
            attempt += 1
            try:
                connection = await asyncio.to_thread(self._connect)
            except Exception as error:
                delay = min(delay * 2, self._retry_max_s)
                log.warning("db.listen.retry_failed: LISTEN %s attempt %d failed (%s); next in "
                            "about %.1f s", self._channel, attempt, _describe(error), delay,
                            extra={"channel": self._channel, "attempt": attempt})
                continue
            if connection is None:  # closed meanwhile
                return
            self._watch(connection)
            log.info("db.listen.reconnected: LISTEN %s again after %d attempt(s)", self._channel,
                     attempt, extra={"channel": self._channel, "attempt": attempt})
            self._wake()  # catch up on what was written while nobody listened
            return


def _describe(error: BaseException) -> str:
    """The error's class and first line (libpq's messages name the server, never a customer)."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
