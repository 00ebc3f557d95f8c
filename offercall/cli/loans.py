"""``offercall loans import FILE``: the loan system's daily file of outcomes (applied …
disbursed; format in ``lending.loan_file``). Bad rows are listed by line; the good ones are
recorded; the same file again records nothing."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from core.settings import Settings


def _progress(quiet: bool) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        if not quiet:
            print(f"\r{done}/{total} rows", end="" if done < total else "\n", file=sys.stderr,
                  flush=True)
    return show


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    """Imports one daily file; exit code 1 when a row was refused, 2 when the file was."""
    from lending.errors import LoanFileError
    from lending.loan_file import import_file
    from persistence.engine import open_database

    engine = open_database(settings)
    try:
        result = import_file(engine, args.file, now=datetime.now(timezone.utc),
                             progress=_progress(args.quiet))
    except LoanFileError as exc:
        print(f"error: {args.file}: {exc}; nothing was recorded", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(result.summary())
    return 1 if result.errors else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers ``loans import``."""
    loans = sub.add_parser("loans", help="loan outcomes from the loan system")
    verbs = loans.add_subparsers(dest="verb", required=True)
    load = verbs.add_parser("import", help="record a daily file of loan outcomes (CSV, UTF-8 "
                                           "or GBK); bad rows are listed by line")
    load.add_argument("file", type=Path)
    load.add_argument("--quiet", action="store_true", help="no progress")
    load.set_defaults(func=cmd_import)
