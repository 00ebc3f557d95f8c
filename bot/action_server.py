"""The action server with Prometheus metrics: ``python -m bot.action_server --actions
bot.actions --port N`` takes the same arguments as ``python -m rasa_sdk`` and serves the same
routes (``/webhook``, ``/health``, ``/actions``), plus ``GET /metrics``.

It builds rasa_sdk's own Sanic app (``rasa_sdk.endpoint.create_app``) and adds a request and
a response middleware that time every ``POST /webhook`` by action name. Only actions the
server knows are named in labels (anything else counts as ``unknown``), so a stray request
cannot grow the label set. A run fails when the server answers 5xx (the action raised) or 404
(no such action); a 400 is a form's validation rejecting a value, a normal turn.

Metrics live in this process's default registry: with ``ACTION_SERVER_SANIC_WORKERS`` above 1
each Sanic worker would count apart, so run more action servers instead (one worker each).
"""

from __future__ import annotations

import json
import logging
import os
import time
import zlib
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram
from rasa_sdk import utils
from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
from rasa_sdk.endpoint import create_app, create_argument_parser, create_ssl_context
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.plugin import plugin_manager
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.scrape import CONTENT_TYPE, exposition, metrics_token, refusal

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
ACTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

ACTION_SECONDS = Histogram(
    "offercall_action_seconds", "A custom action's run on the action server (POST /webhook)",
    ["action"], buckets=ACTION_BUCKETS,
)
ACTION_FAILURES = Counter(
    "offercall_action_failures",
    "Custom action runs that failed: the action raised (5xx) or is unknown (404)",
    ["action"],
)


def action_name(request: Request, known: frozenset[str]) -> str:
    """The action a webhook request asked for, if the server knows it, else ``unknown``."""
    try:
        if request.headers.get("Content-Encoding") == "deflate":
            body: Any = json.loads(zlib.decompress(request.body))
        else:
            body = request.json
    except (ValueError, zlib.error):
        return UNKNOWN
    name = body.get("next_action") if isinstance(body, dict) else None
    return name if isinstance(name, str) and name in known else UNKNOWN


def build_app(
    package: str = "bot.actions", *, token: str | None = None,
    cors_origins: str | list[str] | None = "*", auto_reload: bool = False,
) -> Sanic:
    """rasa_sdk's app for ``package`` with the metrics (see the module docstring)."""
    app = create_app(package, cors_origins=cors_origins, auto_reload=auto_reload)
    executor = ActionExecutor()
    executor.register_package(package)
    known = frozenset(executor.actions)

    def is_run(request: Request) -> bool:
        return request.method == "POST" and request.path == "/webhook"

    async def start_timer(request: Request) -> None:
        if is_run(request):
            request.ctx.started = time.perf_counter()

    async def observe(request: Request, answer: HTTPResponse) -> None:
        started = getattr(request.ctx, "started", None)
        if started is None or not is_run(request):
            return
        name = action_name(request, known)
        ACTION_SECONDS.labels(name).observe(time.perf_counter() - started)
        if answer.status >= 500 or answer.status == 404:
            ACTION_FAILURES.labels(name).inc()

    async def metrics(request: Request) -> HTTPResponse:
        refused = refusal(request.headers.get("Authorization"), request.ip, token)
        if refused is not None:
            return response.json({"error": refused.message}, status=refused.status,
                                  headers=refused.headers)
        return response.raw(exposition(), content_type=CONTENT_TYPE)

    app.register_middleware(start_timer, "request")
    app.register_middleware(observe, "response")
    app.add_route(metrics, "/metrics", methods=["GET"])
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the action server as ``python -m rasa_sdk`` would, with the metrics."""
    args = create_argument_parser().parse_args(argv)
    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(logging.getLogger(APPLICATION_ROOT_LOGGER_NAME), args.log_file,
                                 args.loglevel, args.logging_config_file)
    utils.update_sanic_log_level()
    app = build_app(args.actions, token=metrics_token(), cors_origins=args.cors,
                    auto_reload=args.auto_reload)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    workers = utils.number_of_sanic_workers()
    if workers > 1:
        log.warning("bot.action_server.workers: %d Sanic workers each keep their own metrics; "
                    "run more action servers with one worker each instead", workers)
    host = os.environ.get("SANIC_HOST", "0.0.0.0")
    log.info("bot.action_server.start host=%s port=%s", host, args.port)
    app.run(host, args.port, ssl=ssl_context, workers=workers)


if __name__ == "__main__":
    main()
