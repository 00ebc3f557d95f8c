"""``offercall migrate``, ``seed`` and ``staff``: the database's schema and what it starts with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.settings import PROJECT_ROOT, Settings

SAMPLE_WHITELIST = PROJECT_ROOT / "data" / "whitelist_sample.csv"


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from persistence.engine import make_engine
    from persistence.migrator import head_revision, migrate

    engine = make_engine(settings.database_url)
    try:
        applied = migrate(engine)
    finally:
        engine.dispose()
    print(f"schema at revision {head_revision()} (applied: {', '.join(applied) or 'nothing'})")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from outbound.whitelist import WhitelistFormatError, import_whitelist_file
    from persistence.engine import open_database

    engine = open_database(settings)
    try:
        report = import_whitelist_file(engine, Path(args.file), progress=True)
    except (WhitelistFormatError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


def cmd_staff(settings: Settings, args: argparse.Namespace) -> int:
    from core.clock import utcnow
    from handoff.agents import AccountError, load_agents_csv
    from persistence.branches import load_branch_sites, load_branches
    from persistence.engine import open_database, session_scope

    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            regions = load_branches(session, Path(args.branches))
            sites = load_branch_sites(session, Path(args.sites))
            created, updated = load_agents_csv(session, Path(args.agents), utcnow())
    except (AccountError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"branches: {regions} region-branch distances, {sites} sites; "
          f"agents: {created} created, {updated} updated")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers the database commands."""
    sub.add_parser("migrate", help="create or upgrade the database schema (Alembic)").set_defaults(
        func=cmd_migrate)
    seed = sub.add_parser("seed", help="load a pre-approved whitelist CSV (UTF-8 or GBK)")
    seed.add_argument("file", nargs="?", default=str(SAMPLE_WHITELIST))
    seed.set_defaults(func=cmd_seed)
    staff = sub.add_parser("staff", help="load branches (region -> branch distances) and agent accounts")
    staff.add_argument("--branches", default=str(PROJECT_ROOT / "data" / "branches.csv"))
    staff.add_argument("--agents", default=str(PROJECT_ROOT / "data" / "agents_sample.csv"))
    staff.add_argument("--sites", default=str(PROJECT_ROOT / "data" / "branch_sites.csv"),
                       help="where each branch is (branch_id, branch_name, address, lat, lon)")
    staff.set_defaults(func=cmd_staff)
