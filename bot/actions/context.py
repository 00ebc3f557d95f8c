"""What the action server's actions share: settings, the database, the FAQ and the clock.

Built lazily once per process (the action server is its own process), so importing the
actions never opens a database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.actions import texts
from core.settings import Settings
from persistence.engine import open_database, session_scope

T = TypeVar("T")


class ActionContext:
    """Process-wide resources of the action server."""

    def __init__(
        self, settings: Settings | None = None, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.settings = settings or Settings.from_environ()
        self._clock = clock

    @cached_property
    def engine(self) -> Engine:
        return open_database(self.settings)

    @cached_property
    def faq(self) -> dict[str, dict[str, Any]]:
        return texts.load_faq()

    @cached_property
    def voice(self) -> texts.Voice:
        return texts.Voice(bank=self.settings.bank_name, hotline=self.settings.bank_hotline)

    def now(self) -> datetime:
        """The current time in the bank's time zone (or from the clock a test gave)."""
        if self._clock is not None:
            return self._clock()
        return datetime.now(ZoneInfo(self.settings.timezone))

    async def in_transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one committed transaction, off the event loop.

        It returns only after the commit, so whatever the caller says next is durable.
        """

        def run() -> T:
            with session_scope(self.engine) as session:
                return work(session)

        return await asyncio.to_thread(run)


_context: ActionContext | None = None


def get_context() -> ActionContext:
    """The action server's shared context, created on first use."""
    global _context
    if _context is None:
        _context = ActionContext()
    return _context


def set_context(context: ActionContext) -> None:
    """Use ``context`` from now on (tests point actions at their own database)."""
    global _context
    _context = context
