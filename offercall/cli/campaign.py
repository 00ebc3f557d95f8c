"""The ``offercall campaign …`` and ``offercall report`` commands (argument parsing and exit
codes; the work is in :mod:`offercall.campaign_runner`, imported only when a command runs)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.settings import Settings
from outbound.campaigns import TRANSPORTS


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.campaign_runner import import_into, open_engine
    from outbound import campaigns
    from outbound.whitelist import WhitelistFormatError

    engine = open_engine(settings)
    try:
        report, added, _ = import_into(engine, Path(args.file), args.campaign)
    except (WhitelistFormatError, campaigns.CampaignError, OSError) as exc:
        return _fail(str(exc))
    print(report.summary())
    if args.errors_csv and report.errors:
        report.write_errors_csv(Path(args.errors_csv))
        print(f"rejected rows written to {args.errors_csv}")
    if args.campaign:
        print(f"campaign {args.campaign}: {added} new targets")
    return 0 if not report.errors else 1


def cmd_create(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.campaign_runner import all_customer_ids, create, open_engine, parse_settings
    from outbound import campaigns

    engine = open_engine(settings)
    try:
        values = parse_settings(args.set or [])
        if args.config:
            values = {**json.loads(Path(args.config).read_text(encoding="utf-8")), **values}
        config = campaigns.CampaignConfig.from_json(values)
        customers = (args.customers.split(",") if args.customers
                     else all_customer_ids(engine, args.segment))
        added, unknown = create(engine, args.campaign, args.name or args.campaign, args.transport,
                                config, customers, dial_lines=settings.dial_lines)
    except (campaigns.CampaignError, OSError, json.JSONDecodeError) as exc:
        return _fail(str(exc))
    print(f"campaign {args.campaign} created with {added} customers"
          + (f"; unknown customer ids ignored: {', '.join(unknown)}" if unknown else ""))
    return 0


def cmd_start(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from offercall.campaign_runner import open_engine, run_campaign, status_text
    from offercall.processes import ServiceError, Supervisor
    from outbound import campaigns
    from outbound.simulated_network import Personas, load_personas

    supervisor = Supervisor(settings)
    try:
        personas = load_personas(Path(args.personas)) if args.personas else Personas()
        supervisor.ensure(["actions", "rasa"], echo=True)
        run = asyncio.run(run_campaign(
            settings, args.campaign, personas=personas,
            dial_log=Path(args.dial_log) if args.dial_log else None,
            simulated_agents=tuple(a for a in (args.simulated_agents or "").split(",") if a),
            out=None if args.quiet else sys.stderr,
        ))
    except (campaigns.CampaignError, ServiceError, ValueError, OSError) as exc:
        return _fail(str(exc), 1)
    finally:
        supervisor.stop()
    print(status_text(open_engine(settings), args.campaign))
    if not run.progress.finished and run.progress.next_due is not None:
        print("some customers are scheduled for later: run `offercall campaign start` again then")
    return 0


_SAID = {
    "pause": "paused: dialers stop placing calls; calls in flight finish",
    "stop": "stopped: nobody more is dialled; calls in flight finish",
}


def cmd_command(settings: Settings, args: argparse.Namespace) -> int:
    """``pause`` and ``stop``: the status changes, audited as the command line's user."""
    from core.clock import utcnow
    from offercall.campaign_runner import open_engine
    from outbound import campaigns
    from persistence.audit import Actor
    from persistence.engine import session_scope

    engine = open_engine(settings)
    try:
        with session_scope(engine) as session:
            campaigns.command(session, args.campaign, args.verb, Actor.command_line(), utcnow())
    except campaigns.CampaignError as exc:
        return _fail(str(exc))
    print(f"campaign {args.campaign} {_SAID[args.verb]}")
    return 0


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """Who did what to the campaign, newest first."""
    from offercall.campaign_runner import open_engine
    from outbound import campaigns
    from persistence import audit
    from persistence.engine import session_scope

    try:
        with session_scope(open_engine(settings)) as session:
            campaigns.get_campaign(session, args.campaign)
            entries = audit.history(session, "campaign", args.campaign)
    except campaigns.CampaignError as exc:
        return _fail(str(exc))
    for entry in entries:
        detail = " ".join(f"{k}={v}" for k, v in entry.detail.items() if k != "config")
        print(f"{entry.at:%Y-%m-%d %H:%M:%S} UTC  {entry.actor} ({entry.actor_role})  {entry.action}  {detail}".rstrip())
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.campaign_runner import open_engine, status_text
    from outbound import campaigns

    try:
        print(status_text(open_engine(settings), args.campaign))
    except campaigns.CampaignError as exc:
        return _fail(str(exc))
    return 0


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.campaign_runner import open_engine, report_dir, write_campaign_report
    from outbound import campaigns

    out_dir = Path(args.out) if args.out else report_dir(settings, args.campaign)
    try:
        paths = write_campaign_report(open_engine(settings), args.campaign, out_dir)
    except campaigns.CampaignError as exc:
        return _fail(str(exc))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def cmd_popup(settings: Settings, args: argparse.Namespace) -> int:
    """Queues an app pop-up for one customer (for demos) and prints how the app fetches it."""
    from datetime import timedelta

    from core import customer_tokens
    from core.clock import utcnow
    from outbound import popups
    from persistence.engine import open_database, session_scope

    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            popup_id = popups.create_popup(
                session, customer_id=args.customer, title=args.title,
                body=args.body or f"点击与{settings.bank_name}智能助手聊聊您的预授信贷款额度",
                now=utcnow(), ttl=timedelta(hours=args.hours), campaign_id=args.campaign)
    except popups.PopupError as exc:
        return _fail(str(exc))
    finally:
        engine.dispose()
    token = customer_tokens.issue(args.customer, settings.secret_key, ttl_s=3600,
                                  purpose=customer_tokens.APP)
    print(f"pop-up {popup_id} pending for {args.customer}; the app fetches it with (1 hour):")
    print(f"curl -H 'Authorization: Bearer {token}' "
          f"http://127.0.0.1:{settings.web_port}/api/app/popup")
    return 0


def cmd_sms(settings: Settings, args: argparse.Namespace) -> int:
    """Sends a campaign's text message to its customers, through the Kannel ``offercall run``
    runs (replies are answered there)."""
    import asyncio

    from offercall.sms import send_campaign
    from outbound import campaigns
    from outbound.sms_rules import TEMPLATES
    from persistence.engine import open_database

    if settings.sms_gateway != "kannel":
        return _fail("the SMS channel is off: set OFFERCALL_SMS_GATEWAY=kannel, and run the "
                     "servers (offercall run) so Kannel runs and replies are answered")
    if args.template not in TEMPLATES:
        return _fail(f"unknown template {args.template!r}; one of {', '.join(TEMPLATES)}")

    def show(done: int, total: int) -> None:
        if not args.quiet:
            print(f"\r{done}/{total} customers", end="", file=sys.stderr, flush=True)

    engine = open_database(settings)
    try:
        outcomes = asyncio.run(send_campaign(settings, engine, args.campaign,
                                             template=args.template, progress=show))
    except campaigns.CampaignError as exc:
        return _fail(str(exc))
    finally:
        engine.dispose()
    if not args.quiet:
        print(file=sys.stderr)
    for what, count in sorted(outcomes.items()):
        print(f"{what}: {count}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.campaign_runner import run_demo
    from offercall.processes import ServiceError, Supervisor
    from offercall.training import train
    from outbound import campaigns

    train(settings)
    supervisor = Supervisor(settings)
    try:
        html = run_demo(settings, ensure_servers=supervisor.ensure)
    except (ServiceError, campaigns.CampaignError) as exc:
        return _fail(str(exc), 1)
    finally:
        supervisor.stop()
    print(f"\nThe campaign report: {html}\nOpen it in a browser (file://{html.resolve()}).")
    return 0


def add_commands(sub) -> None:
    """Registers ``campaign …`` and ``report`` on the CLI's subparsers."""
    campaign = sub.add_parser("campaign", help="outbound campaigns: import, create, start, pause, "
                                               "stop, status, audit, report, demo, popup, sms")
    verbs = campaign.add_subparsers(dest="verb", required=True)
    imp = verbs.add_parser("import", help="load a whitelist CSV/XLSX (UTF-8 or GBK), optionally into a campaign")
    imp.add_argument("file")
    imp.add_argument("--campaign", help="add the loaded customers to this campaign")
    imp.add_argument("--errors-csv", help="write the rejected rows here")
    imp.set_defaults(func=cmd_import)
    new = verbs.add_parser("create", help="create a campaign over loaded customers")
    new.add_argument("campaign", help="campaign id, e.g. 2026-12-jintang")
    new.add_argument("--name")
    new.add_argument("--customers", help="comma-separated customer ids (default: all customers)")
    new.add_argument("--segment", help="only customers of this segment")
    new.add_argument("--transport", default="simulated", choices=TRANSPORTS)
    new.add_argument("--config", help="a JSON file of campaign settings")
    new.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="one setting, e.g. max_concurrency=2 or window_end=18:00 (repeatable)")
    new.set_defaults(func=cmd_create)
    start = verbs.add_parser("start", help="dial the campaign, with live progress")
    start.add_argument("campaign")
    start.add_argument("--personas", help="simulated customers' behaviour (YAML, see data/demo_personas.yml)")
    start.add_argument("--dial-log", help="append each dial to this JSON-lines file")
    start.add_argument("--simulated-agents", help="comma-separated agent usernames to simulate")
    start.add_argument("--quiet", action="store_true", help="no progress bar")
    start.set_defaults(func=cmd_start)
    for verb, func, text in (("pause", cmd_command, "stop placing new calls (start resumes)"),
                             ("stop", cmd_command, "end the campaign for good"),
                             ("status", cmd_status, "where the campaign stands"),
                             ("audit", cmd_audit, "who created, started, paused or stopped it"),
                             ("report", cmd_report, "write the HTML report and CSV exports")):
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("campaign")
        if verb == "report":
            parser.add_argument("--out", help="directory (default var/reports/<campaign>)")
        parser.set_defaults(func=func)
    verbs.add_parser("demo", help="run the demo campaign end to end and write its report").set_defaults(func=cmd_demo)
    popup = verbs.add_parser("popup", help="queue an app pop-up for a customer (demo)")
    popup.add_argument("--customer", required=True, help="customer id, e.g. C0001")
    popup.add_argument("--campaign", help="the campaign it belongs to (default: none)")
    popup.add_argument("--title", default="您有一笔专属预授信额度")
    popup.add_argument("--body", help="default: 点击与<the bank>智能助手聊聊您的预授信贷款额度")
    popup.add_argument("--hours", type=float, default=24.0, help="how long it is served")
    popup.set_defaults(func=cmd_popup)
    sms = verbs.add_parser("sms", help="text the campaign's customers its message (SMS on)")
    sms.add_argument("campaign")
    sms.add_argument("--template", default="offer", help="offer (default) or reminder")
    sms.add_argument("--quiet", action="store_true", help="no progress")
    sms.set_defaults(func=cmd_sms)
    report = sub.add_parser("report", help="a campaign's HTML report and CSV exports")
    report.add_argument("campaign")
    report.add_argument("--out", help="directory (default var/reports/<campaign>)")
    report.set_defaults(func=cmd_report)
