"""The partner intake API (医保贷 数据直连): a partner system submits an applicant with their
consent and data, and reads where the application stands.

- ``POST /api/partner/applications`` with the application (``lending.intake_input``) ->
  ``202 {"application_id", "partner_application_id", "status", "amount_yuan", "reasons",
  "branch", "campaign_id", "decided_at", "duplicate", "status_url"}``, committed before the
  answer. The same ``application_id`` again answers the same application (``duplicate``:
  true) and changes nothing; with other data it is a 409. The result is also posted to the
  partner's callback URL until acknowledged (``lending.partner_callbacks``).
- ``GET /api/partner/applications/{id}`` -> the same result, the amount asked for and where
  the posting stands (``callback``); 404 for an id that is not this partner's.

Every request is signed (``lending.signatures``): ``X-Offercall-Partner`` names the partner,
``X-Offercall-Timestamp``, ``X-Offercall-Nonce`` and ``X-Offercall-Signature`` (HMAC-SHA256
with the partner's key over the timestamp, the nonce, the method, the path with its query and
the body's SHA-256). Refused, changing nothing, with ``{"error", "code"}``:

- 401 ``unsigned``, ``malformed``, ``unknown_partner``, ``bad_signature``, ``stale`` (more
  than the partner's window, 300 s by default, from our clock);
- 409 ``replayed`` (a nonce the partner used before), ``application_id_reused``,
  ``lead_refused``;
- 400 ``invalid`` with ``fields``: each bad field's dotted path and what is wrong with it;
- 422 ``unknown_customer``, ``customer_mismatch``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from branches.policies import LeadPolicies
from core.clock import utcnow
from lending.errors import ApplicationInvalid, ApplicationRefused, SignatureError
from lending.intake import ApplicationView, Submission, get_application, submit
from lending.intake_input import parse_application
from lending.partner_callbacks import PARTNER_HEADER, CallbackSender
from lending.partner_nonces import remember_nonce
from lending.partners import Partner, Partners
from lending.signatures import SignedRequest, verify
from persistence.engine import in_transaction

log = logging.getLogger(__name__)

_ID = re.compile(r"[1-9][0-9]{0,9}")
MAX_ID = 2**31 - 1  # oc_partner_applications.id is a 32-bit integer on PostgreSQL
CHALLENGE = 'HMAC-SHA256 realm="offercall-partner"'


@dataclass
class PartnerIntake:
    """What the intake API needs of the installation (filled by ``offercall.web.app``)."""

    engine: Engine
    partners: Partners
    timezone: str
    """The bank's time zone: the admission rules judge ages and months by its dates."""
    lead_policies: LeadPolicies = field(default_factory=LeadPolicies)
    sender: CallbackSender | None = None
    """Posts the results; woken when there is a new one (None: posted by another process)."""
    clock: Callable[[], datetime] = utcnow


PARTNER_INTAKE = web.AppKey("partner_intake", PartnerIntake)


def add_partner_routes(app: web.Application) -> None:
    app.router.add_post("/api/partner/applications", submit_application)
    app.router.add_get("/api/partner/applications/{application_id}", application_status)


def _error(kind: type[web.HTTPException], code: str, message: str,
           **extra: Any) -> web.HTTPException:
    error = kind(text=json.dumps({"error": message, "code": code, **extra}, ensure_ascii=False),
                 content_type="application/json")
    if kind is web.HTTPUnauthorized:
        error.headers["WWW-Authenticate"] = CHALLENGE
    return error


def _signature_error(exc: SignatureError) -> web.HTTPException:
    kind = web.HTTPConflict if exc.code == "replayed" else web.HTTPUnauthorized
    return _error(kind, exc.code, str(exc))


def _authenticate(request: web.Request, body: bytes) -> tuple[Partner, SignedRequest]:
    """The partner who signed the request, and its nonce; a 401 otherwise."""
    intake = request.app[PARTNER_INTAKE]
    partner_id = request.headers.get(PARTNER_HEADER, "").strip()
    if not partner_id:
        raise _error(web.HTTPUnauthorized, "unsigned",
                     f"the request is not signed: missing {PARTNER_HEADER}")
    partner = intake.partners.get(partner_id)
    if partner is None:
        log.info("lending.intake.unknown_partner")
        raise _error(web.HTTPUnauthorized, "unknown_partner", "no such partner")
    try:
        signed = verify(partner.secret, request.headers, request.method, request.raw_path, body,
                        now=intake.clock().timestamp(), window_s=partner.window_s)
    except SignatureError as exc:
        log.info("lending.intake.signature_refused partner=%s code=%s", partner.id, exc.code)
        raise _signature_error(exc) from None
    return partner, signed


def _invalid(problems: list[tuple[str, str]]) -> web.HTTPException:
    return _error(web.HTTPBadRequest, "invalid",
                  "the application has bad fields: " + "; ".join(
                      f"{where} {reason}" for where, reason in problems),
                  fields=dict(problems))


def _answer(view: ApplicationView, *, duplicate: bool | None = None,
            status: int = 200) -> web.Response:
    url = f"/api/partner/applications/{view.id}"
    body = view.to_json() if duplicate is None else {
        **view.result_json(), "duplicate": duplicate, "status_url": url}
    return web.json_response(body, status=status, headers={"Location": url},
                             dumps=lambda value: json.dumps(value, ensure_ascii=False))


async def submit_application(request: web.Request) -> web.Response:
    """``POST /api/partner/applications``."""
    intake = request.app[PARTNER_INTAKE]
    body = await request.read()
    partner, signed = _authenticate(request, body)
    try:
        raw = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _invalid([("(body)", "must be a JSON object in UTF-8")]) from None
    try:
        application = parse_application(raw)
    except ApplicationInvalid as exc:
        log.info("lending.intake.invalid partner=%s fields=%s", partner.id,
                 ",".join(where for where, _ in exc.problems))
        raise _invalid(exc.problems) from None
    try:
        campaign_id = partner.campaign_for(application.campaign_id)
    except ValueError as exc:
        raise _invalid([("campaign_id", str(exc))]) from None
    now = intake.clock()
    today = now.astimezone(ZoneInfo(intake.timezone)).date()

    def work(session: Session) -> Submission:
        remember_nonce(session, partner.id, signed.nonce, now, partner.window_s)
        return submit(session, partner, application, now, today, campaign_id=campaign_id,
                      lead_policies=intake.lead_policies)

    try:
        done = await in_transaction(intake.engine, work)
    except SignatureError as exc:
        log.info("lending.intake.replayed partner=%s", partner.id)
        raise _signature_error(exc) from None
    except ApplicationRefused as exc:
        log.info("lending.intake.refused partner=%s code=%s", partner.id, exc.code)
        raise _error(web.HTTPConflict if exc.status == 409 else web.HTTPUnprocessableEntity,
                     exc.code, str(exc)) from None
    if not done.duplicate and intake.sender is not None:
        intake.sender.wake()
    return _answer(done.application, duplicate=done.duplicate, status=202)


async def application_status(request: web.Request) -> web.Response:
    """``GET /api/partner/applications/{id}``."""
    intake = request.app[PARTNER_INTAKE]
    body = await request.read()
    partner, signed = _authenticate(request, body)
    raw = request.match_info["application_id"]
    application_id = int(raw) if _ID.fullmatch(raw) else None
    now = intake.clock()

    def work(session: Session) -> ApplicationView | None:
        remember_nonce(session, partner.id, signed.nonce, now, partner.window_s)
        if application_id is None or application_id > MAX_ID:
            return None
        return get_application(session, partner.id, application_id)

    try:
        view = await in_transaction(intake.engine, work)
    except SignatureError as exc:
        raise _signature_error(exc) from None
    if view is None:
        raise _error(web.HTTPNotFound, "not_found", f"no application {raw} of this partner")
    return _answer(view)
