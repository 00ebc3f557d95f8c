"""The Rasa input channel offercall's chat and voice layers talk to.

Like Rasa's REST channel, but it passes the request's ``metadata`` (customer id, channel)
into the conversation and answers a failed turn with an HTTP error instead of an empty
reply, so callers never mistake a crash for silence. Enabled in credentials.yml as
``bot.channel.OffercallInput`` and served at ``/webhooks/offercall/webhook``.

A custom action that fails (the action server is down, crashed or broken) does not stop Rasa:
it logs the error, drops the action's events and carries on, so the turn would end with no
reply and nothing written. The channel notices such failures (see :class:`FailedActionNotes`)
and answers ``502 {"error": "action_failed", "failed_actions":
[...], "messages": [...]}``, so the caller can tell the customer and keep their request.

``GET /webhooks/offercall/metrics`` serves the Rasa process's Prometheus metrics (who may
scrape: :mod:`bot.scrape`): every turn's time from the message in to the reply out, and the
turns answered with an error.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from prometheus_client import Counter, Histogram
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import rasa_durability, rasa_speedups
from bot.scrape import CONTENT_TYPE, TURN_BUCKETS, exposition, metrics_token, refusal

rasa_speedups.install()
rasa_durability.install()

log = logging.getLogger(__name__)

ACTION_FAILED = "action_failed"
_failed_actions: ContextVar[list[str] | None] = ContextVar("offercall_failed_actions", default=None)

TURN_SECONDS = Histogram(
    "offercall_rasa_turn_seconds",
    "A message into Rasa's offercall channel to the bot's reply out (NLU, policies, actions)",
    buckets=TURN_BUCKETS,
)
TURN_FAILURES = Counter(
    "offercall_rasa_turn_failures",
    "Turns answered with an error: a custom action failed (action_failed) or the turn crashed "
    "(error)",
    ["reason"],
)
for _reason in (ACTION_FAILED, "error"):
    TURN_FAILURES.labels(_reason)  # present at 0 from the start


class FailedActionNotes(logging.Handler):
    """Notes each action whose run failed during the turn in progress.

    Rasa's processor catches the failure, logs it (``Encountered an exception while running
    action '<name>'``) and drops the action's events; that log record is the one place the
    failure shows. Only actions the processor ran count: a custom slot mapping that cannot be
    checked while the action server is down (``action_extract_slots``) loses nothing.
    """

    RUNNING = re.compile(r"while running action '([^']+)'")

    def emit(self, record: logging.LogRecord) -> None:
        failed = _failed_actions.get()
        if failed is None:
            return
        found = self.RUNNING.search(record.getMessage())
        if found:
            failed.append(found.group(1))


logging.getLogger("rasa.core.processor").addHandler(FailedActionNotes(logging.ERROR))


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
        scrape_token = metrics_token()  # read at start-up: a malformed one stops the server

        @webhook.route("/metrics", methods=["GET"])
        async def metrics(request: Request) -> HTTPResponse:
            refused = refusal(request.headers.get("Authorization"), request.ip, scrape_token)
            if refused is not None:
                return response.json({"error": refused.message}, status=refused.status,
                                      headers=refused.headers)
            return response.raw(exposition(), content_type=CONTENT_TYPE)

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
            failed: list[str] = []
            token = _failed_actions.set(failed)
            started = time.perf_counter()
            try:
                await on_new_message(message)
            except Exception:  # the turn failed: say so instead of answering with silence
                log.exception("bot.channel.turn_failed")
                TURN_FAILURES.labels("error").inc()
                return response.json({"error": "the assistant failed on this turn"}, status=500)
            finally:
                _failed_actions.reset(token)
                TURN_SECONDS.observe(time.perf_counter() - started)
            if failed:
                log.error("bot.channel.action_failed", extra={"actions": failed})
                TURN_FAILURES.labels(ACTION_FAILED).inc()
                return response.json(
                    {"error": ACTION_FAILED, "failed_actions": failed,
                     "messages": collector.messages},
                    status=502,
                )
            return response.json(collector.messages)

        return webhook
