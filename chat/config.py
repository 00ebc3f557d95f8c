"""What the chat needs from the process it runs in, given by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from bot.client import BotPort


@dataclass(frozen=True)
class ChatConfig:
    """The bot that answers customers, and the key that signs their chat links."""

    bot: BotPort
    secret_key: str = field(repr=False)


CHAT = web.AppKey("chat", ChatConfig)
