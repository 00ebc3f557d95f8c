"""Benchmark: the handoff queue — decision-to-console latency, claims under contention on
PostgreSQL, and chat round trips through the widget endpoint.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_handoff.py console [--tickets 60] [--postgres]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_handoff.py claims [--tickets 400 --agents 8]
    PYTHONPATH=. .venv/bin/python benchmarks/bench_handoff.py chat [--customers 1 4 16]   # starts Rasa
    PYTHONPATH=. .venv/bin/python benchmarks/bench_handoff.py all

``console``: a web server with an agent's console socket open; another OS process (as the
action server would) enqueues tickets one by one; the figure is the time from the ticket's
creation to the console receiving it. ``claims``: agents in threads, each with its own
connection, race ``claim_next`` over a backlog and race for single tickets, on a private
PostgreSQL server. ``chat``: N customers at once chat through ``/ws/widget`` with the real
bot; the figure is the time from sending a message to the bot's reply frame.

Prints medians and p95; ``all`` also writes var/bench/handoff_report.html with histograms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import io
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from core.settings import PROJECT_ROOT
from persistence import branches, handoffs

REPORT_PATH = PROJECT_ROOT / "var" / "bench" / "handoff_report.html"
PASSWORD = "bench-agent-pass"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def med_p95(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {percentile(values, 0.95):.1f}" if values else "-"


def print_table(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}\n" + "-" * len(title))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    print(f"  (reproduce: PYTHONPATH=. {sys.executable} {' '.join(sys.argv)})")


def prepared_database(url: str) -> None:
    """Schema, sample whitelist, branches and bench agents in ``url``."""
    from core.clock import utcnow
    from handoff import agents
    from outbound.whitelist import import_whitelist_file
    from persistence.engine import make_engine, session_scope
    from persistence.migrator import migrate

    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv")
    with session_scope(engine) as session:
        branches.load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        for i in range(16):
            if agents.log_in(session, f"bench{i}", PASSWORD, utcnow()) is None:
                agents.add_agent(session, username=f"bench{i}", password=PASSWORD,
                                 display_name=f"bench{i}", role="supervisor" if i == 0 else "agent",
                                 branch_id="JT", now=utcnow())
    engine.dispose()


def _enqueue_one(url: str, index: int) -> None:
    from core.clock import utcnow
    from persistence import store
    from persistence.engine import make_engine, session_scope

    engine = make_engine(url)
    with session_scope(engine) as session:
        offer = store.get_customer_offer(session, "C0001")
        handoffs.create_ticket(session, conversation_id=f"bench-{time.time_ns()}-{index}", customer_id="C0001",
                        offer_id=offer.offer_id if offer else None, channel="voice",
                        reason="customer_requested", transcript=[], intents=["request_handoff"], now=utcnow())
    engine.dispose()


def _action_server(url: str, count: int, gap_s: float, go: Any) -> None:
    """Another process writing tickets, as the action server does."""
    go.wait()
    for index in range(count):
        _enqueue_one(url, index)
        time.sleep(gap_s)


async def bench_console(args: argparse.Namespace) -> dict[str, Any]:
    """Ticket creation (in another process) -> the agent's console websocket."""
    import aiohttp
    from aiohttp import web

    from offercall.web.app import init_app
    from tests.stack import stack_settings

    server = None
    if args.postgres:
        from tests.postgres import start_postgres

        server = start_postgres()
        url = server.new_database()
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='bench-handoff-')}/offercall.db"
    prepared_database(url)
    settings = stack_settings(Path(tempfile.mkdtemp(prefix="bench-var-")), url)
    runner = web.AppRunner(init_app(settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.web_port).start()
    base = f"http://127.0.0.1:{settings.web_port}"
    latencies: list[float] = []
    spawn = multiprocessing.get_context("spawn")  # a forked child would share our SQLite handles
    go = spawn.Event()
    writer = spawn.Process(target=_action_server, args=(url, args.tickets, args.gap, go))
    try:
        async with aiohttp.ClientSession() as http:
            login = await http.post(f"{base}/api/agent/login", json={"username": "bench1", "password": PASSWORD})
            token = (await login.json())["token"]
            async with http.ws_connect(f"{base}/ws/agent", headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.receive_json()  # snapshot
                writer.start()
                go.set()
                seen: set[int] = set()
                with tqdm(total=args.tickets, desc="tickets to console", unit="ticket") as progress:
                    while len(seen) < args.tickets:
                        frame = await asyncio.wait_for(ws.receive_json(), 30)
                        arrived = time.time()
                        if frame["type"] != "ticket" or frame["ticket"]["id"] in seen:
                            continue
                        seen.add(frame["ticket"]["id"])
                        created = datetime.fromisoformat(frame["ticket"]["created_at"]).timestamp()
                        latencies.append((arrived - created) * 1000)
                        progress.update(1)
    finally:
        writer.join(timeout=30)
        await runner.cleanup()
        if server is not None:
            server.stop()
    ms = latencies
    rows = [("database", "PostgreSQL" if args.postgres else "SQLite"),
            ("tickets", str(len(ms))),
            ("handoff -> console median / p95 (ms)", med_p95(ms)),
            ("p95 < 1 s?", "yes" if ms and percentile(ms, 0.95) < 1000 else "no")]
    print_table("Handoff decision -> ticket on the agent console", rows)
    return {"rows": rows, "values": ms, "unit": "ms", "title": "handoff -> console (ms)"}


def _race(work: Any, crew: list[Any]) -> float:
    """Runs ``work(agent)`` for every agent in its own thread; returns the seconds it took."""
    threads = [threading.Thread(target=work, args=(agent,)) for agent in crew]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def bench_claims(args: argparse.Namespace) -> dict[str, Any]:
    """Claims per second with agents racing on PostgreSQL."""
    from core.clock import utcnow
    from handoff import agents, tickets
    from persistence.engine import make_engine, session_scope
    from tests.postgres import start_postgres

    server = start_postgres()
    try:
        url = server.new_database()
        prepared_database(url)
        engine = make_engine(url)
        with session_scope(engine) as session:
            accounts = [a for a in agents.all_accounts(session, utcnow()) if a.username.startswith("bench")]
        crew = accounts[: args.agents]
        rates, contested = [], []
        for _ in tqdm(range(args.rounds), desc="claim rounds", unit="round"):
            for index in range(args.tickets):
                _enqueue_one(url, index)
            claimed: list[int] = []
            barrier = threading.Barrier(len(crew))

            def drain(agent: agents.AgentAccount) -> None:
                barrier.wait()
                while True:
                    with session_scope(engine) as session:
                        ticket = tickets.claim_next(session, agent, utcnow())
                    if ticket is None:
                        return
                    claimed.append(ticket.id)

            elapsed = _race(drain, crew)
            assert len(claimed) == len(set(claimed)) == args.tickets, "a ticket was claimed twice or lost"
            rates.append(args.tickets / elapsed)

            for index in range(args.races):  # everyone clicks the same ticket at once
                _enqueue_one(url, index)
                with session_scope(engine) as session:
                    target = tickets.open_tickets(session)[-1].id
                winners: list[int] = []
                barrier = threading.Barrier(len(crew))

                def click(agent: agents.AgentAccount) -> None:
                    barrier.wait()
                    try:
                        with session_scope(engine) as session:
                            winners.append(tickets.claim(session, target, agent, utcnow()).claimed_by or 0)
                    except tickets.TicketError:
                        pass

                contested.append(_race(click, crew) * 1000)
                assert len(winners) == 1, f"{len(winners)} agents won one ticket"
        engine.dispose()
    finally:
        server.stop()
    rows = [("agents racing", str(len(crew))),
            ("backlog drained: claims/s median (min-max)",
             f"{statistics.median(rates):.0f} ({min(rates):.0f}-{max(rates):.0f}) over {len(rates)} rounds"),
            ("one ticket, all click: settle median / p95 (ms)", med_p95(contested)),
            ("double claims", "0 (asserted every round)")]
    print_table(f"Claims under contention (PostgreSQL, {args.tickets} tickets per round)", rows)
    return {"rows": rows, "values": contested, "unit": "ms", "title": "contested claim settle (ms)"}


async def bench_chat(args: argparse.Namespace) -> dict[str, Any]:
    """Widget round trips with N customers at once, against the real bot."""
    import aiohttp
    from aiohttp import web

    from core.customer_tokens import issue
    from offercall.web.app import init_app
    from tests.stack import start_stack

    directory = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    stack = await asyncio.to_thread(start_stack, directory, f"sqlite:///{directory / 'offercall.db'}",
                                    ["actions", "rasa"])
    runner = web.AppRunner(init_app(stack.settings))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", stack.settings.web_port).start()
    url = f"ws://127.0.0.1:{stack.settings.web_port}/ws/widget"
    script = ["你们的利率是多少", "需要什么材料", "怎么还款", "有手续费吗"]
    by_level: dict[int, list[float]] = {}

    async def customer(http: aiohttp.ClientSession, number: int, out: list[float]) -> None:
        token = issue(f"C{(number % 12) + 1:04d}", stack.settings.secret_key)
        async with http.ws_connect(url) as ws:
            await ws.send_json({"type": "hello", "token": token})
            await _until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
            await ws.send_json({"type": "message", "text": "是我", "client_id": "id"})
            await _until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
            for index, text in enumerate(script):
                start = time.perf_counter()
                await ws.send_json({"type": "message", "text": text, "client_id": f"m{index}"})
                await _until(ws, lambda f: f["type"] == "message" and f["sender"] == "bot")
                out.append((time.perf_counter() - start) * 1000)

    try:
        async with aiohttp.ClientSession() as http:
            for level in tqdm(args.customers, desc="concurrency levels", unit="level"):
                out: list[float] = []
                await asyncio.gather(*(customer(http, n, out) for n in range(level)))
                by_level[level] = out
    finally:
        await runner.cleanup()
        await asyncio.to_thread(stack.stop)
    rows = [(f"{level} customers: round trip median / p95 (ms)", med_p95(values))
            for level, values in by_level.items()]
    base = statistics.median(by_level[args.customers[0]])
    rows += [(f"{level} customers: median / {args.customers[0]}-customer median",
              f"{statistics.median(v) / base:.2f}x") for level, v in by_level.items()]
    print_table("Chat round trip through /ws/widget (message -> bot reply frame)", rows)
    every = [v for values in by_level.values() for v in values]
    return {"rows": rows, "values": every, "unit": "ms", "title": "chat round trip (ms), all levels"}


async def _until(ws: Any, done: Any) -> dict[str, Any]:
    while True:
        frame = await asyncio.wait_for(ws.receive_json(), 60)
        if done(frame):
            return frame


def histogram(values: list[float], title: str) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ""
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(values, bins=30, color="#00703c")
    ax.axvline(statistics.median(values), color="k", linestyle="--", label="median")
    ax.axvline(percentile(values, 0.95), color="r", linestyle=":", label="p95")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def write_report(sections: dict[str, dict[str, Any]]) -> None:
    parts = ["<!doctype html><meta charset=utf-8><title>offercall handoff benchmark</title>",
             "<body style='font-family:sans-serif;max-width:60em'>"]
    for name, result in sections.items():
        parts.append(f"<h2>{html.escape(name)}</h2><table>")
        parts += [f"<tr><td>{html.escape(k)}</td><td><b>{html.escape(v)}</b></td></tr>" for k, v in result["rows"]]
        parts.append("</table>")
        if result["values"]:
            parts.append(histogram(result["values"], result["title"]))
    REPORT_PATH.parent.mkdir(parents=True, exist_ok=True)
    REPORT_PATH.write_text("".join(parts), "utf-8")
    print(f"\nreport: {REPORT_PATH}")


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parse.add_subparsers(dest="what", required=True)
    for name in ("console", "all"):
        p = sub.add_parser(name)
        p.add_argument("--tickets", type=int, default=60)
        p.add_argument("--gap", type=float, default=0.2, help="seconds between tickets")
        p.add_argument("--postgres", action="store_true")
        if name == "all":
            p.add_argument("--agents", type=int, default=8)
            p.add_argument("--rounds", type=int, default=5)
            p.add_argument("--races", type=int, default=20)
            p.add_argument("--customers", type=int, nargs="+", default=[1, 4, 16])
    claims = sub.add_parser("claims")
    claims.add_argument("--tickets", type=int, default=400)
    claims.add_argument("--agents", type=int, default=8)
    claims.add_argument("--rounds", type=int, default=5)
    claims.add_argument("--races", type=int, default=20)
    chat = sub.add_parser("chat")
    chat.add_argument("--customers", type=int, nargs="+", default=[1, 4, 16])
    return parse


def main() -> None:
    args = parser().parse_args()
    sections: dict[str, dict[str, Any]] = {}
    if args.what in ("console", "all"):
        sections["console"] = asyncio.run(bench_console(args))
    if args.what in ("claims", "all"):
        if args.what == "all":
            args.tickets = 400
        sections["claims"] = bench_claims(args)
    if args.what in ("chat", "all"):
        sections["chat"] = asyncio.run(bench_chat(args))
    if args.what == "all":
        write_report(sections)


if __name__ == "__main__":
    main()
