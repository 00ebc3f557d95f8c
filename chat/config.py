"""What the chat needs from the process it runs in, given by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from bot.client import BotPort
from core.owners import Owner


@dataclass(frozen=True)
class ChatConfig:
    """The bot that answers customers, the key that signs their chat links, and this
    server's run (the owner of the turns it takes to the bot: :mod:`chat.lost_turns`)."""

    bot: BotPort
    secret_key: str = field(repr=False)
    owner: Owner = field(default_factory=Owner.of_this_process)


CHAT = web.AppKey("chat", ChatConfig)
