"""``offercall alerts …``: post-loan alerts. Load a settlement file (its new records judged by
the alert rules as they are stored), and run the scan the worker runs: the rules over every
customer's settlements as of now, then the escalation of alerts left unacknowledged."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from core.settings import Settings


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _now(raw: str | None) -> datetime:
    """``--now`` (ISO 8601 with its offset; for replaying a day), else the clock."""
    from core.clock import utcnow

    if raw is None:
        return utcnow()
    moment = datetime.fromisoformat(raw)
    if moment.tzinfo is None:
        raise ValueError(f"--now needs its offset, e.g. {raw}+08:00")
    return moment


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Stores a settlement CSV all or nothing, naming every bad row."""
    from lending.alert_policy import alert_policy
    from lending.errors import SettlementFileError, SettlementsRefused
    from lending.settlements import import_file
    from persistence.audit import Actor
    from persistence.engine import open_database

    try:
        now = _now(args.now)
    except ValueError as exc:
        return _fail(str(exc))
    engine = open_database(settings)
    try:
        done = import_file(engine, Path(args.file), now=now, policy=alert_policy(settings),
                           actor=Actor.command_line(), progress=not args.quiet)
    except SettlementsRefused as exc:
        print(f"error: {args.file}: {len(exc.problems)} bad rows; nothing was stored",
              file=sys.stderr)
        for where, reason in exc.problems:
            print(f"  {where}: {reason}", file=sys.stderr)
        return 2
    except (SettlementFileError, OSError) as exc:
        return _fail(f"{args.file}: {exc}; nothing was stored")
    finally:
        engine.dispose()
    print(done.summary())
    for alert in done.raised:
        print(f"  alert {alert.id} {alert.customer_id} {alert.rule} {alert.period}: "
              f"{alert.summary}")
    return 0


def cmd_scan(settings: Settings, args: argparse.Namespace) -> int:
    """Raises what the rules find now and escalates the overdue alerts."""
    from lending.alert_policy import alert_policy
    from lending.alerts import scan
    from persistence.engine import open_database, session_scope

    try:
        now = _now(args.now)
    except ValueError as exc:
        return _fail(str(exc))
    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            done = scan(session, now, alert_policy(settings))
    finally:
        engine.dispose()
    print(f"alerts: {len(done.raised)} raised, {len(done.escalated)} escalated")
    for alert in done.raised:
        print(f"  raised {alert.id} {alert.customer_id} {alert.rule} {alert.period}")
    for escalation in done.escalated:
        print(f"  escalated {escalation.alert_id} to branch {escalation.branch_id or '(none)'}'s "
              f"managers {list(escalation.to)}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers ``offercall alerts import`` and ``offercall alerts scan``."""
    alerts = sub.add_parser("alerts", help="post-loan alerts: settlement files and the scan")
    commands = alerts.add_subparsers(dest="alerts_command", required=True)
    load = commands.add_parser(
        "import",
        help="load a settlement CSV (ref, customer_id, date, amount, payer; UTF-8 or GBK)")
    load.add_argument("file")
    load.add_argument("--quiet", action="store_true", help="no progress bars")
    load.add_argument("--now", help="judge as of this time (ISO 8601 with offset)")
    load.set_defaults(func=cmd_import)
    scan = commands.add_parser("scan", help="raise alerts on every customer's settlements and "
                                            "escalate the unacknowledged past their deadline")
    scan.add_argument("--now", help="as of this time (ISO 8601 with offset)")
    scan.set_defaults(func=cmd_scan)
