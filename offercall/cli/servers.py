"""``offercall serve`` and ``run``: the web server alone, or every server with a terminal chat."""

from __future__ import annotations

import argparse
import asyncio
import sys

from core.settings import Settings


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from aiohttp import web

    from offercall.web.app import init_app

    port = settings.web_port if args.port is None else args.port
    web.run_app(init_app(settings), host=settings.web_host, port=port)
    return 0


def cmd_worker(settings: Settings, _: argparse.Namespace) -> int:
    from offercall.worker import serve_worker

    asyncio.run(serve_worker(settings))
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from core.customer_tokens import chat_path
    from offercall.cli.chat import run_chat
    from offercall.processes import ServiceError, Supervisor
    from offercall.training import train

    train(settings)
    supervisor = Supervisor(settings)
    try:
        supervisor.ensure()
        base = f"http://{settings.web_host}:{settings.web_port}"
        chat_url = base + chat_path(args.customer, settings.secret_key)
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


def cmd_kannel(settings: Settings, args: argparse.Namespace) -> int:
    """Writes kannel.conf from the settings, then becomes Kannel's bearerbox or smsbox (as
    ``offercall run`` starts them): for systemd's offercall-kannel-*.service."""
    import os

    from offercall import kannel

    if settings.sms_gateway != "kannel":
        print("error: the SMS channel is off: set OFFERCALL_SMS_GATEWAY=kannel", file=sys.stderr)
        return 2
    try:
        setup = kannel.KannelSetup.from_settings(settings)
        kannel.write_config(setup)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    argv = kannel.bearerbox_command(setup) if args.box == "bearerbox" \
        else kannel.smsbox_command(setup)
    os.execv(argv[0], argv)
    return 1  # not reached: execv returns only by raising


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers the server commands."""
    serve = sub.add_parser("serve", help="run the web server (chat, console, media streams)")
    serve.add_argument("--port", type=int, default=None,
                       help="listen here instead of OFFERCALL_PORT (one of several web servers)")
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="run the dialer worker: dials every running campaign, always on"
                   ).set_defaults(func=cmd_worker)
    run = sub.add_parser("run", help="train, start all servers and open a chat")
    run.add_argument("--customer", default="C0001")
    run.add_argument("--no-chat", action="store_true", help="only serve; no terminal chat")
    run.set_defaults(func=cmd_run)
    box = sub.add_parser("kannel", help="write kannel.conf and become Kannel's bearerbox or "
                                       "smsbox (for systemd; offercall run starts both itself)")
    box.add_argument("box", choices=("bearerbox", "smsbox"))
    box.set_defaults(func=cmd_kannel)
