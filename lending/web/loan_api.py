"""The loan system's API: ``POST /api/loans/events`` reports loan outcomes.

The request is signed (``lending.signatures``: ``X-Offercall-Timestamp``, ``X-Offercall-Nonce``,
``X-Offercall-Signature`` over the method, path and body with ``OFFERCALL_LOAN_API_KEY``) and
its body is ``{"events": [{event fields, see lending.loan_events}, ...]}`` (1-500 events).

The events are recorded together or not at all, in the order given, in one transaction with
the request's nonce, committed before the answer:

- 200 ``{"recorded": [event ids], "duplicates": [event ids]}``: duplicates were recorded
  before (by a request that had its 200, or whose answer was lost): sending an event again
  under its id is harmless.
- 400 the body is not JSON of that shape, or an event's fields are invalid;
  422 the rules refuse an event (an unknown customer, disbursed before approved, a time
  before the step it follows, an event id recorded with another report): both with
  ``{"error", "problems": [{"where": "events[1]", "reason"}]}``, and nothing recorded.
- 401 ``{"error", "code"}``: ``unsigned``, ``malformed``, ``bad_signature`` or ``stale``
  (the timestamp is more than 300 s from our clock); 409 code ``replayed``: this very request
  (its nonce) was received before; 503: the API has no key (it is off).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.clock import utcnow
from lending import signatures
from lending.errors import LoanEventRefused, SignatureError
from lending.loan_events import LoanEvent, parse_event
from lending.loan_outcomes import Recorded, record_events, remember_nonce, with_retries

log = logging.getLogger(__name__)

PATH = "/api/loans/events"
MAX_EVENTS = 500


@dataclass(frozen=True)
class LoanApiConfig:
    """What the loan API needs (filled by ``offercall.web.app``)."""

    key: str = field(repr=False)
    """``Settings.loan_api_key``: the HMAC key shared with the loan system; empty: API off."""
    engine: Engine
    window_s: float = signatures.DEFAULT_WINDOW_S
    clock: Callable[[], datetime] = utcnow


LOAN_API = web.AppKey("loan_api", LoanApiConfig)


def add_loan_routes(app: web.Application) -> None:
    """Registers the loan system's API."""
    app.router.add_post(PATH, post_events)


def _json_error(kind: type[web.HTTPException], message: str, **extra: Any) -> web.HTTPException:
    return kind(text=json.dumps({"error": message, **extra}, ensure_ascii=False),
                content_type="application/json")


def _problems(problems: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"where": where, "reason": reason} for where, reason in problems]


def parse_body(body: bytes) -> list[LoanEvent]:
    """The request's events; raises ``LoanEventRefused`` (every bad event named) or
    ``ValueError`` (the envelope)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError("the body is not UTF-8 JSON") from None
    if (not isinstance(data, dict) or set(data) != {"events"}
            or not isinstance(data["events"], list)):
        raise ValueError('the body must be {"events": [...]}')
    items = data["events"]
    if not 1 <= len(items) <= MAX_EVENTS:
        raise ValueError(f"a request has 1 to {MAX_EVENTS} events, got {len(items)}")
    events, problems = [], []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError("an event is a JSON object")
            events.append(parse_event(item))
        except ValueError as exc:
            problems.append((f"events[{index}]", str(exc)))
    if problems:
        raise LoanEventRefused(problems)
    return events


async def post_events(request: web.Request) -> web.Response:
    """See the module docstring."""
    config = request.app.get(LOAN_API)
    if config is None or not config.key:
        raise _json_error(web.HTTPServiceUnavailable,
                          "the loan API is off: OFFERCALL_LOAN_API_KEY is not set")
    body = await request.read()
    now = config.clock()
    try:
        signed = signatures.verify(config.key, request.headers, request.method,
                                   request.raw_path, body, now=now.timestamp(),
                                   window_s=config.window_s)
    except SignatureError as exc:
        log.warning("lending.loans.api.unauthorized", extra={"code": exc.code})
        raise _json_error(web.HTTPUnauthorized, str(exc), code=exc.code) from None
    try:
        events = parse_body(body)
    except LoanEventRefused as exc:
        raise _json_error(web.HTTPBadRequest, "invalid events; nothing was recorded",
                          problems=_problems(exc.problems)) from None
    except ValueError as exc:
        raise _json_error(web.HTTPBadRequest, str(exc)) from None

    def work(session: Session) -> Recorded:
        remember_nonce(session, signed.nonce, now, timedelta(seconds=config.window_s))
        return record_events(session, events, now=now, all_or_nothing=True,
                             sources=[f"api:{signed.nonce}"] * len(events),
                             wheres=[f"events[{i}]" for i in range(len(events))])

    try:
        done = await asyncio.to_thread(with_retries, config.engine, work)
    except SignatureError as exc:
        log.warning("lending.loans.api.replayed")
        raise _json_error(web.HTTPConflict, str(exc), code=exc.code) from None
    except LoanEventRefused as exc:
        log.info("lending.loans.api.refused", extra={"problems": len(exc.problems)})
        raise _json_error(web.HTTPUnprocessableEntity, "refused; nothing was recorded",
                          problems=_problems(exc.problems)) from None
    return web.json_response({"recorded": done.recorded, "duplicates": done.duplicates})
