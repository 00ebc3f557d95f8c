"""The settlement system's API::

    POST /api/settlements   {"settlements": [{"ref", "customer_id", "date", "amount",
                             "payer"}, ...]}   at most 2,000 records (256 KB) a request

Signed with the key both sides hold (``OFFERCALL_SETTLEMENT_KEY``), as
``lending.signatures`` describes: the request's timestamp within five minutes of our clock,
its nonce never seen before. The answer, once the records and the alerts they raise are
committed::

    200 {"received", "new", "unchanged", "alerts_raised"}

Refusals change nothing: 503 the API is off (no key set); 401 unsigned, a wrong signature or
a stale timestamp; 400 malformed headers or a body that is not the shape above; 409 a
replayed request (its nonce is spent); 422 bad records or unknown customers, each named
(``{"error", "problems": [{"where": "settlements[2]", "reason"}]}``). A refused request may
be sent again, fixed and signed anew.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from handoff.api import HANDOFF
from handoff.staff_api import json_error
from lending import settlements
from lending.alert_policy import AlertPolicy
from lending.errors import SettlementFileError, SettlementsRefused, SignatureError
from lending.settlement_rows import parse_request
from lending.signatures import DEFAULT_WINDOW_S, verify

log = logging.getLogger(__name__)

SETTLEMENT_KEY = web.AppKey("settlement_key", str)
ALERT_POLICY = web.AppKey("alert_policy", AlertPolicy)
STATUS = {"unsigned": 401, "bad_signature": 401, "stale": 401, "malformed": 400, "replayed": 409}
"""The HTTP status of each way a signature fails."""
WINDOW = timedelta(seconds=DEFAULT_WINDOW_S)


def add_settlement_routes(app: web.Application, key: str, policy: AlertPolicy) -> None:
    """The settlement API, verifying with ``key`` (empty: the API answers 503)."""
    app[SETTLEMENT_KEY] = key
    app[ALERT_POLICY] = policy
    app.router.add_post("/api/settlements", post_settlements)


def _refused(exc: SignatureError) -> web.Response:
    log.warning("lending.settlements.refused code=%s", exc.code)
    return json_error(STATUS.get(exc.code, 401), str(exc), code=exc.code)


async def post_settlements(request: web.Request) -> web.Response:
    """Verifies, checks and stores one request's settlement records (module docstring)."""
    key = request.app[SETTLEMENT_KEY]
    if not key:
        return json_error(503, "the settlement API is off: set OFFERCALL_SETTLEMENT_KEY")
    body = await request.read()
    service = request.app[HANDOFF]
    try:
        signed = verify(key, request.headers, request.method, request.path_qs, body,
                        now=service.clock().timestamp(), window_s=WINDOW.total_seconds())
    except SignatureError as exc:
        return _refused(exc)
    policy = request.app[ALERT_POLICY]
    try:
        parsed = parse_request(json.loads(body.decode("utf-8")), policy.today(service.clock()))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return json_error(400, "the body must be JSON (UTF-8)")
    except SettlementFileError as exc:
        return json_error(400, str(exc))

    def work(session: Session, now: datetime) -> dict[str, Any]:
        done = settlements.receive(session, parsed, nonce=signed.nonce, now=now, policy=policy,
                                   window=WINDOW)
        return {"received": done.received, "new": done.new, "unchanged": done.unchanged,
                "alerts_raised": len(done.raised)}

    try:
        return web.json_response(await service.run(work))
    except SignatureError as exc:
        return _refused(exc)
    except SettlementsRefused as exc:
        return json_error(422, f"{len(exc.problems)} settlement records refused; "
                               "nothing was stored",
                          problems=[{"where": where, "reason": reason}
                                    for where, reason in exc.problems])
