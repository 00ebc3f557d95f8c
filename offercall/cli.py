"""The ``offercall`` command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from pathlib import Path

from offercall.settings import PROJECT_ROOT, Settings

SAMPLE_WHITELIST = PROJECT_ROOT / "data" / "whitelist_sample.csv"


def _configure_logging(settings: Settings) -> None:
    from offercall.masking import PiiMaskingFilter

    handler = logging.StreamHandler()
    handler.addFilter(PiiMaskingFilter())
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        handlers=[handler],
    )


def cmd_migrate(settings: Settings, _: argparse.Namespace) -> int:
    from offercall.db import make_engine
    from offercall.migrations import migrate

    applied = migrate(make_engine(settings.database_url))
    print(f"schema up to date (applied: {applied or 'nothing'})")
    return 0


def cmd_seed(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.db import make_engine
    from offercall.migrations import migrate
    from outbound.whitelist import WhitelistFormatError, import_whitelist_file

    engine = make_engine(settings.database_url)
    migrate(engine)
    try:
        report = import_whitelist_file(engine, Path(args.file), progress=True)
    except (WhitelistFormatError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.summary() if hasattr(report, "summary") else report)
    return 0


def cmd_staff(settings: Settings, args: argparse.Namespace) -> int:
    from handoff.agents import AccountError, load_agents_csv
    from handoff.tickets import load_branches
    from offercall.db import make_engine, session_scope, utcnow
    from offercall.migrations import migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    try:
        with session_scope(engine) as session:
            regions = load_branches(session, Path(args.branches))
            created, updated = load_agents_csv(session, Path(args.agents), utcnow())
    except (AccountError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"branches: {regions} region-branch distances; agents: {created} created, {updated} updated")
    return 0


def cmd_chat_link(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.web.customer_token import issue

    if not _customer_exists(settings, args.customer):
        print(f"error: unknown customer {args.customer!r}", file=sys.stderr)
        return 2
    token = issue(args.customer, settings.secret_key, ttl_s=args.hours * 3600)
    print(f"http://{settings.web_host}:{settings.web_port}/chat?t={token}")
    return 0


def cmd_train(settings: Settings, _: argparse.Namespace) -> int:
    from offercall.training import TrainingError, train

    try:
        print(f"model: {train(settings)}")
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_nlu_report(settings: Settings, _: argparse.Namespace) -> int:
    from offercall.nlu_eval import REPORT_PATH, EvaluationError, render_markdown, run_rasa_test_nlu, summarise
    from offercall.training import train

    try:
        report_dir = run_rasa_test_nlu(train(settings), settings.var_dir / "nlu_eval")
    except EvaluationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    REPORT_PATH.write_text(render_markdown(summarise(report_dir), "offercall nlu-report"))
    print(REPORT_PATH.read_text())
    return 0


def cmd_serve(settings: Settings, _: argparse.Namespace) -> int:
    from aiohttp import web

    from offercall.web.app import init_app

    web.run_app(init_app(settings), host=settings.web_host, port=settings.web_port)
    return 0


def _customer_exists(settings: Settings, customer_id: str) -> bool:
    from offercall import store
    from offercall.db import make_engine, session_scope
    from offercall.migrations import migrate

    engine = make_engine(settings.database_url)
    migrate(engine)
    with session_scope(engine) as session:
        return store.get_customer_offer(session, customer_id) is not None


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.chat_cli import print_json_summary, run_chat, script_lines
    from offercall.processes import ServiceError, Supervisor

    if not _customer_exists(settings, args.customer):
        print(f"error: unknown customer {args.customer!r} (load a whitelist with "
              "`offercall seed FILE`)", file=sys.stderr)
        return 2
    utterances = None
    if args.script:
        utterances = script_lines(Path(args.script).read_text(encoding="utf-8").splitlines())
    supervisor = Supervisor(settings)
    try:
        supervisor.ensure(["actions", "rasa"], echo=not args.json)
        record = asyncio.run(run_chat(settings, args.customer, utterances, args.channel))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    if args.json:
        print_json_summary(record)
    return 0


def cmd_call(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.call_cli import call_via_agent_queue, prepare_database, simulated_call
    from offercall.processes import ServiceError, Supervisor
    from voice.errors import VoiceError
    from voice.transports.simulated import parse_script

    lines = list(args.say or [])
    if args.script:
        lines += Path(args.script).read_text(encoding="utf-8").splitlines()
    try:
        script = parse_script(lines)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prepare_database(settings)
    if not _customer_exists(settings, args.customer):
        print(f"error: unknown customer {args.customer!r} (load a whitelist with "
              "`offercall seed FILE`)", file=sys.stderr)
        return 2
    supervisor = Supervisor(settings)
    try:
        if args.answer == "answered":
            supervisor.ensure(["actions", "rasa"], echo=True)
        place = call_via_agent_queue if args.agents else simulated_call
        run = asyncio.run(place(
            settings, args.customer, script, speed=args.speed, answer=args.answer, out=sys.stdout,
        ))
    except (ServiceError, VoiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop()
    print(f"outcome: {run.result.outcome}")
    print(json.dumps(run.result.summary(), ensure_ascii=False))
    return 0 if run.result.error is None else 1


def cmd_transcribe(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.call_cli import transcribe_file
    from voice.errors import VoiceError

    try:
        print(transcribe_file(settings, Path(args.file)))
    except VoiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def cmd_understand(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.call_cli import understand_files
    from voice.errors import VoiceError

    try:
        failures = asyncio.run(understand_files(settings, [Path(f) for f in args.files]))
    except (VoiceError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 2 if failures else 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.chat_cli import run_chat
    from offercall.processes import ServiceError, Supervisor
    from offercall.training import train
    from offercall.web.customer_token import issue

    train(settings)
    supervisor = Supervisor(settings)
    try:
        supervisor.ensure()
        base = f"http://{settings.web_host}:{settings.web_port}"
        chat_url = f"{base}/chat?t={issue(args.customer, settings.secret_key)}"
        print(f"\noffercall is running.\n  Customer chat ({args.customer}): {chat_url}\n"
              f"  Agent console: {base}/console  (sample logins: data/agents_sample.csv)\n")
        if args.no_chat:
            print("Ctrl-C stops all servers.")
            supervisor.wait()
        else:
            print(f"Terminal chat with customer {args.customer} (Ctrl-D ends it and stops the servers):\n")
            asyncio.run(run_chat(settings, args.customer, None, "chat"))
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        supervisor.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="offercall", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="create or upgrade the database schema").set_defaults(func=cmd_migrate)
    seed = sub.add_parser("seed", help="load a pre-approved whitelist CSV (UTF-8 or GBK)")
    seed.add_argument("file", nargs="?", default=str(SAMPLE_WHITELIST))
    seed.set_defaults(func=cmd_seed)
    staff = sub.add_parser("staff", help="load branches (region -> branch distances) and agent accounts")
    staff.add_argument("--branches", default=str(PROJECT_ROOT / "data" / "branches.csv"))
    staff.add_argument("--agents", default=str(PROJECT_ROOT / "data" / "agents_sample.csv"))
    staff.set_defaults(func=cmd_staff)
    link = sub.add_parser("chat-link", help="print a signed in-app chat link for a customer")
    link.add_argument("--customer", required=True)
    link.add_argument("--hours", type=float, default=24.0, help="how long the link works")
    link.set_defaults(func=cmd_chat_link)
    sub.add_parser("train", help="train the Rasa model (skipped when unchanged)").set_defaults(func=cmd_train)
    sub.add_parser("nlu-report", help="evaluate the NLU on the held-out split into docs/nlu_report.md").set_defaults(
        func=cmd_nlu_report)
    sub.add_parser("serve", help="run the web server (chat endpoint)").set_defaults(func=cmd_serve)
    run = sub.add_parser("run", help="train, start all servers and open a chat")
    run.add_argument("--customer", default="C0001")
    run.add_argument("--no-chat", action="store_true", help="only serve; no terminal chat")
    run.set_defaults(func=cmd_run)
    chat = sub.add_parser("chat", help="chat with the bot as a customer")
    chat.add_argument("--customer", required=True)
    chat.add_argument("--script", help="a file with one customer utterance per line")
    chat.add_argument("--json", action="store_true", help="end with a JSON summary line")
    chat.add_argument("--channel", choices=["chat", "voice"], default="chat")
    chat.set_defaults(func=cmd_chat)
    call = sub.add_parser("call", help="place a call to a simulated customer")
    call.add_argument("--customer", required=True)
    call.add_argument("--say", action="append", metavar="WAV_OR_TEXT",
                      help="one customer turn: a WAV file or text (repeatable)")
    call.add_argument("--script", help="a file of customer turns, one per line")
    call.add_argument("--speed", type=float, default=1.0, help="play the call this many times faster")
    call.add_argument("--answer", choices=["answered", "no_answer", "busy"], default="answered")
    call.add_argument("--agents", action="store_true",
                      help="hold a transferred call for an agent at the console of `offercall serve`")
    call.set_defaults(func=cmd_call)
    transcribe = sub.add_parser("transcribe", help="print the Vosk transcript of a WAV file")
    transcribe.add_argument("file")
    transcribe.set_defaults(func=cmd_transcribe)
    understand = sub.add_parser("understand", help="WAV files -> text, repaired text, intent (JSON lines)")
    understand.add_argument("files", nargs="+")
    understand.set_defaults(func=cmd_understand)
    from offercall.campaign_commands import add_commands

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``offercall`` console script."""
    args = build_parser().parse_args(argv)
    # SIGTERM (systemd, docker stop, kill) unwinds like Ctrl-C, so servers started here stop too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    settings = Settings.from_environ()
    _configure_logging(settings)
    return args.func(settings, args)
