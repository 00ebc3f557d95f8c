"""``offercall partners``: the partner systems of the intake API (``OFFERCALL_PARTNERS``) and
their applications.

- ``partners list``: the partners in the file (their keys never shown);
- ``partners applications [--partner ID]``: the newest applications, their decisions and
  whether the partner has the result;
- ``partners resend APPLICATION``: posts an abandoned result again;
- ``partners submit PARTNER [FILE | --sample]``: signs an application with the partner's key
  and posts it to the running server, as the partner's system would (for trying the API).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core.settings import Settings

API_PATH = "/api/partner/applications"


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    from lending.partners import load_partners

    partners = load_partners(settings.partners_path)
    if not partners:
        print("no partners: set OFFERCALL_PARTNERS to a partners' file")
        return 0
    for partner in partners.values():
        print(f"{partner.id}\t{partner.name}\t{partner.callback_url}\t{partner.offer.product}"
              f"\tcampaigns: {', '.join(partner.campaigns) or '-'}")
    return 0


def cmd_applications(settings: Settings, args: argparse.Namespace) -> int:
    from lending.intake import recent_applications
    from persistence.engine import open_database, session_scope

    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            views = recent_applications(session, args.partner, args.limit)
    finally:
        engine.dispose()
    for view in views:
        callback = view.callback
        posted = (f"{callback.status} after {callback.attempts} attempt(s)"
                  if callback else "no result")
        why = "; ".join(r.code for r in view.reasons)
        print(f"{view.id}\t{view.partner_id}/{view.partner_application_id}\t{view.status}"
              f"\t{view.amount_yuan or '-'}\t{view.branch_id or '-'}\t{posted}"
              + (f"\t{why}" if why else ""))
    return 0


def cmd_resend(settings: Settings, args: argparse.Namespace) -> int:
    from lending.partner_callbacks import retry_abandoned
    from persistence.engine import open_database, session_scope

    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            done = retry_abandoned(session, args.application, datetime.now(timezone.utc))
    finally:
        engine.dispose()
    if not done:
        print(f"error: application {args.application} has no abandoned result", file=sys.stderr)
        return 1
    print(f"application {args.application}: the result will be posted again (within a poll "
          "of the web server)")
    return 0


def sample_application(today: date, reference: str) -> dict[str, Any]:
    """An application the default rules admit, dated for ``today`` (a 双流区 clinic)."""
    months = []
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    for _ in range(12):
        months.append({"month": f"{year:04d}-{month:02d}", "amount_yuan": 80_000})
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    signed = datetime.combine(today, datetime.min.time(), ZoneInfo("Asia/Shanghai"))
    return {
        "application_id": reference, "requested_amount_yuan": 200_000,
        "applicant": {"name": "赵小兰", "phone": "13600136001", "id_number": "510122198805061231"},
        "organisation": {"name": "棠湖社区诊所", "kind": "clinic", "region": "双流区",
                         "address": "四川省成都市双流区东升街道棠湖西路88号",
                         "insurance_code": "H51011600123", "operating_since": "2018-03-01"},
        "consent": {"given": True, "signed_at": signed.isoformat(),
                    "expires_at": (signed + timedelta(days=365)).isoformat(),
                    "reference": f"SQ-{reference}"},
        "settlement": months,
    }


def cmd_submit(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    import aiohttp

    from lending.partner_callbacks import PARTNER_HEADER
    from lending.partners import load_partners
    from lending.signatures import signed_headers

    partner = load_partners(settings.partners_path).get(args.partner)
    if partner is None:
        print(f"error: no partner {args.partner!r} in OFFERCALL_PARTNERS", file=sys.stderr)
        return 2
    if args.sample:
        today = datetime.now(ZoneInfo(settings.timezone)).date()
        application = sample_application(today, f"DEMO-{secrets.token_hex(4)}")
        raw = json.dumps(application, ensure_ascii=False).encode()
    elif args.file is not None:
        raw = args.file.read_bytes()
    else:
        print("error: give a FILE or --sample", file=sys.stderr)
        return 2
    base = (args.url or f"http://{settings.web_host}:{settings.web_port}").rstrip("/")
    headers = {"Content-Type": "application/json", PARTNER_HEADER: partner.id,
               **signed_headers(partner.secret, "POST", API_PATH, raw,
                                now=datetime.now(timezone.utc).timestamp(),
                                nonce=secrets.token_urlsafe(16))}

    async def send() -> tuple[int, str]:
        async with aiohttp.ClientSession() as http, http.post(
                base + API_PATH, data=raw, headers=headers) as response:
            return response.status, await response.text()

    status, text = asyncio.run(send())
    print(f"HTTP {status}")
    try:
        print(json.dumps(json.loads(text), ensure_ascii=False, indent=2))
    except ValueError:
        print(text)
    return 0 if status < 300 else 1


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers ``partners list|applications|resend|submit``."""
    partners = sub.add_parser("partners", help="partner systems submitting applicants (医保贷)")
    verbs = partners.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="the partners in OFFERCALL_PARTNERS").set_defaults(func=cmd_list)
    listing = verbs.add_parser("applications", help="the newest applications and their results")
    listing.add_argument("--partner", help="only this partner's")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=cmd_applications)
    resend = verbs.add_parser("resend", help="post an abandoned result to its partner again")
    resend.add_argument("application", type=int, help="offercall's application id")
    resend.set_defaults(func=cmd_resend)
    submit = verbs.add_parser("submit", help="sign an application with a partner's key and "
                                             "post it to the server (trying the API)")
    submit.add_argument("partner", help="the partner's id in OFFERCALL_PARTNERS")
    submit.add_argument("file", type=Path, nargs="?", help="the application (JSON)")
    submit.add_argument("--sample", action="store_true",
                        help="a sample application the default rules admit, dated today")
    submit.add_argument("--url", help="the server (default: OFFERCALL_HOST:OFFERCALL_PORT)")
    submit.set_defaults(func=cmd_submit)
