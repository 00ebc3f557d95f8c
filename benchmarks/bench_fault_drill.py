"""Fault drill: chat customers keep talking while the servers are killed one after another.

Run on demand (not a test)::

    .venv/bin/python benchmarks/bench_fault_drill.py [--customers 16] [--settle-s 30]

It starts a private PostgreSQL server (tests/postgres.py) and the scaled-out profile under
offercall's own supervisor: two Rasa servers, two action servers and two web servers behind
haproxy, Redis's lock store. ``--customers`` simulated chat customers hold 5-turn conversations
through the chat API with a short think time. After a quiet phase the drill, in turn,
kills -9 one Rasa server, one action server and one web server, then restarts PostgreSQL,
with ``--settle-s`` between faults. Nobody restarts anything by hand: the supervisor does.

Printed, per phase: turns, how many got the bot's answer, an apology (the chat's "busy" text
or HTTP 503: the customer is told), or nothing within 5 s; the slowest answer; and how long
after the fault the first turn was answered again. Afterwards it checks that every turn a
customer was answered on is in Rasa's shared tracker store, once. Writes var/bench/drill.html.

The test of the same drill (tests/test_fault_drill.py) also kills a dialer worker with 4
simulated calls in flight; this benchmark is chat only.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.customer_tokens import issue  # noqa: E402
from chat.widget import UNAVAILABLE  # noqa: E402
from core.settings import PROJECT_ROOT  # noqa: E402
from persistence.engine import session_scope  # noqa: E402
from tests.postgres import start_postgres  # noqa: E402
from tests.stack import BotStack, start_stack  # noqa: E402

TURNS = ["是我", "利率多少", "多久到账", "有手续费吗", "要什么材料"]
ANSWER_WITHIN_S = 5.0
THINK_S = 0.5


@dataclass
class Turn:
    phase: str
    sent_at: float
    took_s: float
    kind: str  # answered | apology | nothing
    conversation: str = ""
    words: str = ""


@dataclass
class Drill:
    phase: str = "quiet"
    faults: list[tuple[str, float]] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    stop: bool = False


async def one_turn(session: aiohttp.ClientSession, url: str, body: dict) -> str:
    """``answered``, ``apology`` or ``nothing``: what the customer saw within 5 s."""
    try:
        async with session.post(url, json=body,
                                timeout=aiohttp.ClientTimeout(total=ANSWER_WITHIN_S)) as response:
            if response.status == 503:
                return "apology"
            if response.status != 200:
                return "nothing"
            texts = " ".join((await response.json()).get("texts", []))
            return "apology" if UNAVAILABLE in texts or not texts else "answered"
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return "nothing"


async def customer(number: int, stack: BotStack, drill: Drill) -> None:
    settings = stack.settings
    base = f"http://{settings.web_host}:{settings.web_port}"
    token = issue("C0001", settings.secret_key)
    async with aiohttp.ClientSession() as session:
        while not drill.stop:
            try:
                async with session.post(f"{base}/api/chat/start", json={"token": token},
                                        timeout=aiohttp.ClientTimeout(total=ANSWER_WITHIN_S)) as r:
                    conversation = (await r.json())["conversation_id"] if r.status == 200 else None
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                conversation = None
            if conversation is None:  # the web server is down: the app would say so; try again
                await asyncio.sleep(THINK_S)
                continue
            for words in TURNS:
                if drill.stop:
                    return
                started = time.monotonic()
                kind = await one_turn(session, f"{base}/api/chat/{conversation}/messages",
                                      {"token": token, "text": words})
                drill.turns.append(Turn(drill.phase, started, time.monotonic() - started, kind,
                                        conversation, words))
                await asyncio.sleep(THINK_S)
                if kind != "answered":
                    break  # the customer starts over, as someone told "try again" would


def kill(stack: BotStack, name: str) -> None:
    os.kill(stack.supervisor.started[name].pid, signal.SIGKILL)


async def run_drill(stack: BotStack, server, customers: int, settle_s: float) -> Drill:
    drill = Drill()
    tasks = [asyncio.create_task(customer(i, stack, drill)) for i in range(customers)]
    faults = [
        ("kill -9 rasa-1", lambda: kill(stack, "rasa-1")),
        ("kill -9 actions-1", lambda: kill(stack, "actions-1")),
        ("kill -9 web-1", lambda: kill(stack, "web-1")),
        ("restart PostgreSQL", server.restart),
    ]
    await asyncio.sleep(settle_s)
    for name, fault in faults:
        print(f"{time.strftime('%H:%M:%S')} {name}", flush=True)
        drill.phase = name
        drill.faults.append((name, time.monotonic()))
        await asyncio.to_thread(fault)
        await asyncio.sleep(settle_s)
    drill.stop = True
    await asyncio.gather(*tasks)
    return drill


def served_again_s(drill: Drill, phase: str, at: float) -> float | None:
    """From the fault to the first answered turn sent after it."""
    answered = [t.sent_at + t.took_s for t in drill.turns
                if t.phase == phase and t.kind == "answered" and t.sent_at >= at]
    return min(answered) - at if answered else None


def lost_turns(stack: BotStack, drill: Drill) -> int:
    """Answered turns missing from Rasa's shared tracker store."""
    answered = Counter((t.conversation, t.words) for t in drill.turns if t.kind == "answered")
    with session_scope(stack.engine) as session:
        rows = session.execute(text(
            "SELECT sender_id, data FROM events WHERE type_name = 'user'")).all()
    stored = Counter((sender, json.loads(data).get("text")) for sender, data in rows)
    return sum(max(0, n - stored[key]) for key, n in answered.items())


def report(drill: Drill, lost: int, path: Path) -> None:
    lines, rows = [], []
    for phase in ["quiet", *(name for name, _ in drill.faults)]:
        turns = [t for t in drill.turns if t.phase == phase]
        kinds = Counter(t.kind for t in turns)
        slowest = max((t.took_s for t in turns if t.kind == "answered"), default=0.0)
        at = dict(drill.faults).get(phase)
        again = served_again_s(drill, phase, at) if at is not None else 0.0
        again_text = "-" if at is None else ("never" if again is None else f"{again:.1f} s")
        line = (f"{phase:>20}: {len(turns):5d} turns, answered {kinds['answered']:5d}, "
                f"apology {kinds['apology']:3d}, nothing within 5 s {kinds['nothing']:3d}, "
                f"slowest answer {slowest:.2f} s, served again after {again_text}")
        lines.append(line)
        rows.append(f"<tr><th>{html.escape(phase)}</th><td>{len(turns)}</td><td>{kinds['answered']}</td>"
                    f"<td>{kinds['apology']}</td><td>{kinds['nothing']}</td><td>{slowest:.2f}</td>"
                    f"<td>{again_text}</td></tr>")
    lines.append(f"answered turns missing from the tracker store: {lost}")
    print("\n".join(lines))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<!doctype html><meta charset=utf-8><title>offercall: fault drill</title>
<style>body{{font:14px system-ui;margin:2em}}td,th{{padding:4px 10px;text-align:left}}</style>
<h1>Fault drill</h1><table><tr><th>phase</th><th>turns</th><th>answered</th><th>apology</th>
<th>nothing within 5 s</th><th>slowest answer, s</th><th>served again after</th></tr>{''.join(rows)}</table>
<p>Answered turns missing from Rasa's tracker store: {lost}</p>""", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=16)
    parser.add_argument("--settle-s", type=float, default=30.0)
    args = parser.parse_args()
    server = start_postgres()
    stack = None
    try:
        stack = start_stack(Path(tempfile.mkdtemp(prefix="drill-")), server.new_database(),
                            ["actions", "rasa", "web"],
                            {"OFFERCALL_RASA_SERVERS": "2", "OFFERCALL_ACTION_SERVERS": "2",
                             "OFFERCALL_WEB_SERVERS": "2"})
        drill = asyncio.run(run_drill(stack, server, args.customers, args.settle_s))
        report(drill, lost_turns(stack, drill), PROJECT_ROOT / "var" / "bench" / "drill.html")
        print(f"restarts by the supervisor: " + ", ".join(
            f"{name} {stack.supervisor.restarts(name)}" for name in ("rasa-1", "actions-1", "web-1")))
    finally:
        if stack is not None:
            stack.stop()
        server.stop()


if __name__ == "__main__":
    main()
