"""The Rasa input channel offercall's chat and voice layers talk to.

Like Rasa's REST channel, but it passes the request's ``metadata`` (customer id, channel)
into the conversation and answers a failed turn with an HTTP error instead of an empty
reply, so callers never mistake a crash for silence. Enabled in credentials.yml as
``bot.channel.OffercallInput`` and served at ``/webhooks/offercall/webhook``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

log = logging.getLogger(__name__)


class OffercallInput(InputChannel):
    """JSON in: ``{"sender", "message", "metadata"}``; JSON out: the bot's messages."""

    @classmethod
    def name(cls) -> str:
        return "offercall"

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        metadata = (request.json or {}).get("metadata")
        return metadata if isinstance(metadata, dict) else None

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = Blueprint("offercall_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.json or {}
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json(
                    {"error": "need a JSON body with string 'sender' and 'message'"}, status=400
                )
            collector = CollectingOutputChannel()
            message = UserMessage(
                text, collector, sender, input_channel=self.name(),
                metadata=self.get_metadata(request),
            )
            try:
                await on_new_message(message)
            except Exception:  # the turn failed: say so instead of answering with silence
                log.exception("bot.channel.turn_failed")
                return response.json({"error": "the assistant failed on this turn"}, status=500)
            return response.json(collector.messages)

        return webhook
