"""The ``offercall`` command line: one module per group of commands, each registering its own
subcommands (``add_commands``) and importing what a command needs only when it runs."""

from __future__ import annotations

import argparse
import signal
import sys

from core.settings import Settings
from offercall.cli import (
    alerts,
    call,
    campaign,
    chat,
    database,
    loans,
    model,
    partners,
    response,
    servers,
)
from offercall.cli.common import configure_logging
from persistence.errors import PersistenceError

GROUPS = (database, model, servers, chat, call, campaign, response, loans, alerts, partners)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="offercall", description="Outbound pre-approved loan offers by voice and chat.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``offercall`` console script."""
    args = build_parser().parse_args(argv)
    # SIGTERM (systemd, docker stop, kill) unwinds like Ctrl-C, so servers started here stop too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = Settings.from_environ()
    configure_logging(settings)
    try:
        return args.func(settings, args)
    except PersistenceError as exc:  # e.g. a database that `offercall migrate` has not made yet
        print(f"error: {exc}", file=sys.stderr)
        return 2
