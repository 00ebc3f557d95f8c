"""What the chat needs from the process it runs in, given by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from bot.client import BotTurn


class ChatBot(Protocol):
    """The bot as the chat talks to it (``bot.failsafe.FailSafeBot`` fits)."""

    async def start(
        self, conversation_id: str, customer_id: str, channel: str,
        extra: dict[str, Any] | None = None,
    ) -> BotTurn: ...

    async def send(
        self, conversation_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> BotTurn: ...


@dataclass(frozen=True)
class ChatConfig:
    """The bot that answers customers, and the key that signs their chat links."""

    bot: ChatBot
    secret_key: str = field(repr=False)


CHAT = web.AppKey("chat", ChatConfig)
