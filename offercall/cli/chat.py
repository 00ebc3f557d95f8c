"""``offercall chat`` and ``chat-link``: talk to the bot in the terminal, or replay a script of
customer turns; print a customer's signed in-app chat link.

The conversation starts as if an outbound call had just connected: the bot speaks first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from bot.client import BotTurn, RasaClient
from core.settings import Settings
from offercall.cli.common import customer_exists

OUTCOME_BY_DIRECTIVE = {"transfer": "transferred"}


@dataclass
class ChatRecord:
    """What happened in one conversation, summarised for ``--json``."""

    conversation_id: str
    bot_messages: list[str] = field(default_factory=list)
    directives: list[dict[str, Any]] = field(default_factory=list)

    def add(self, turn: BotTurn) -> None:
        self.bot_messages += turn.texts
        self.directives += [{"name": d.name, **d.data} for d in turn.directives]

    def summary(self) -> dict[str, Any]:
        """outcome, directives, bot_messages and callback_at, as the CLI contract says."""
        outcome, callback_at = "ended", None
        for directive in self.directives:
            if directive["name"] == "transfer":
                outcome = "transferred"
            elif directive["name"] == "hangup":
                outcome = directive.get("outcome", "ended")
                callback_at = directive.get("callback_at", callback_at)
        return {
            "conversation_id": self.conversation_id,
            "outcome": outcome,
            "directives": self.directives,
            "bot_messages": self.bot_messages,
            "callback_at": callback_at,
        }


def script_lines(lines: Iterable[str]) -> list[str]:
    """Customer utterances from a script: one per line; blank lines and # comments skipped."""
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _print_turn(turn: BotTurn, out: TextIO) -> None:
    for text in turn.texts:
        print(f"机器人: {text}", file=out)
    for directive in turn.directives:
        details = " ".join(f"{k}={v}" for k, v in directive.data.items())
        print(f"[{directive.name}{' ' + details if details else ''}]", file=out)


async def run_chat(
    settings: Settings,
    customer_id: str,
    utterances: list[str] | None,
    channel: str = "chat",
    out: TextIO = sys.stdout,
) -> ChatRecord:
    """Hold one conversation: scripted when ``utterances`` is given, else typed at a prompt."""
    record = ChatRecord(conversation_id=f"cli-{uuid.uuid4().hex[:12]}")
    async with aiohttp.ClientSession() as session:
        client = RasaClient(settings.rasa_url, session, api_token=settings.rasa_token)
        turn = await client.start(record.conversation_id, customer_id, channel)
        record.add(turn)
        _print_turn(turn, out)
        pending = list(utterances) if utterances is not None else None
        while not turn.ends_conversation:
            if pending is None:
                text = await asyncio.to_thread(_prompt)
                if text is None:
                    break
            elif pending:
                text = pending.pop(0)
                print(f"客户: {text}", file=out)
            else:
                break
            if not text:
                continue
            turn = await client.send(record.conversation_id, text)
            record.add(turn)
            _print_turn(turn, out)
        if pending:
            print(f"(the conversation ended; {len(pending)} script line(s) not used)", file=sys.stderr)
    return record


def _prompt() -> str | None:
    try:
        return input("客户> ").strip()
    except EOFError:
        return None


def print_json_summary(record: ChatRecord, out: TextIO = sys.stdout) -> None:
    """The final machine-readable line."""
    print(json.dumps(record.summary(), ensure_ascii=False), file=out)


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from offercall.processes import ServiceError, Supervisor

    if not customer_exists(settings, args.customer):
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


def cmd_chat_link(settings: Settings, args: argparse.Namespace) -> int:
    from core.customer_tokens import chat_path

    if not customer_exists(settings, args.customer):
        print(f"error: unknown customer {args.customer!r}", file=sys.stderr)
        return 2
    print(f"http://{settings.web_host}:{settings.web_port}"
          + chat_path(args.customer, settings.secret_key, ttl_s=args.hours * 3600))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Registers the chat commands."""
    link = sub.add_parser("chat-link", help="print a signed in-app chat link for a customer")
    link.add_argument("--customer", required=True)
    link.add_argument("--hours", type=float, default=24.0, help="how long the link works")
    link.set_defaults(func=cmd_chat_link)
    chat = sub.add_parser("chat", help="chat with the bot as a customer")
    chat.add_argument("--customer", required=True)
    chat.add_argument("--script", help="a file with one customer utterance per line")
    chat.add_argument("--json", action="store_true", help="end with a JSON summary line")
    chat.add_argument("--channel", choices=["chat", "voice"], default="chat")
    chat.set_defaults(func=cmd_chat)
