"""Benchmark: the always-on scheduler's overhead on a 100,000-customer campaign, on SQLite and
PostgreSQL.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_scheduler.py [--customers 100000] [--dials 400]
        [--postgres] [--gap-ms 50] [--idle-s 10] [--call-ms 20]

For each backend (a SQLite file in a temporary directory; with ``--postgres`` also a private
PostgreSQL server from tests/postgres.py), in one run:

1. migrates a fresh database and bulk-loads ``--customers`` customers with an offer each and a
   running campaign (window all day, not agent-gated, max_concurrency 4, min_gap_s 0) that has
   all of them as targets, due tomorrow (SQLAlchemy Core executemany; the campaign row and its
   audit entries through ``outbound.campaigns``). The load is timed.
2. makes ``--dials`` of the targets (spread over the table) due one every ``--gap-ms`` from
   2 s + ``--idle-s`` after the worker starts, so the scheduler works against the whole table
   while the dials are paced by their due times;
3. runs a real :class:`offercall.worker.Worker` with its production poll intervals, over a fake
   phone network (tests/scheduler_doubles.py) whose calls end ``not_interested`` after
   ``--call-ms``, until every due target's call is recorded.

It counts every statement the engine executes (a ``before_cursor_execute`` listener; the
connection pool's liveness ping on PostgreSQL is not a statement and is counted as a
checkout), and reports statements per dial, statements and database time per idle second
(the ``--idle-s`` before the first due time), and the delay from each target's due time to
its dial (when the network's ``place()`` is called). Prints a table with the backends side by
side and the costliest statements, and writes var/bench/scheduler.html (the table and a
histogram of the delays per backend, inline SVG).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import math
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, event, insert, text, update
from sqlalchemy.engine import Engine

from core.clock import utcnow
from core.settings import PROJECT_ROOT
from offercall.worker import Worker
from outbound import campaigns
from outbound.campaigns import CampaignConfig
from persistence.audit import Actor
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import CallAttempt, CampaignTarget, Customer, Offer
from tests.scheduler_doubles import ScriptedNetwork, ScriptedPlacing

CAMPAIGN_ID = "bench-scheduler"
SETTINGS: dict[str, Any] = {
    "window_start": "00:00", "window_end": "23:59:59", "agent_gated": False,
    "max_concurrency": 4, "min_gap_s": 0,
}
MANAGER = Actor("bench", "campaign_manager")
WARMUP_S = 2.0
"""From the worker's start to the idle measurement: it finds the campaign and starts a dialer."""
CHUNK = 5_000
OUT = PROJECT_ROOT / "var" / "bench" / "scheduler.html"


# ------------------------------------------------------------------ loading
@dataclass(frozen=True)
class LoadTiming:
    """Seconds spent loading each table (and the campaign row)."""

    customers: float
    offers: float
    targets: float
    campaign: float

    @property
    def total(self) -> float:
        return self.customers + self.offers + self.targets + self.campaign


def customer_id(i: int) -> str:
    return f"S{i:07d}"


def _progress(label: str, done: int, total: int) -> None:
    end = "\n" if done >= total else ""
    print(f"\r  loading {label:<9} {done:>9,}/{total:,}", end=end, file=sys.stderr, flush=True)


def _insert_chunked(engine: Engine, table: Any, rows: Callable[[int], dict[str, Any]], count: int,
                    label: str) -> float:
    """Inserts ``count`` rows made by ``rows(i)`` in one transaction, executemany per chunk."""
    started = time.perf_counter()
    with engine.begin() as connection:
        for start in range(0, count, CHUNK):
            stop = min(count, start + CHUNK)
            connection.execute(insert(table), [rows(i) for i in range(start, stop)])
            _progress(label, stop, count)
    return time.perf_counter() - started


def load(engine: Engine, count: int, now: datetime) -> LoadTiming:
    """``count`` customers with an offer each, and a running campaign of all of them, due
    tomorrow."""
    tomorrow = now + timedelta(days=1)
    valid_until = date.today() + timedelta(days=365)

    def customer(i: int) -> dict[str, Any]:
        return {"customer_id": customer_id(i), "name": f"客户{i}", "masked_name": f"客*{i % 10}",
                "gender": "MF"[i % 2], "phone": str(13_000_000_000 + i * 7), "region": "金堂县",
                "segment": "农户", "consent": True, "created_at": now, "updated_at": now}

    def offer(i: int) -> dict[str, Any]:
        return {"customer_id": customer_id(i), "product": "邮享贷", "amount_yuan": 50_000,
                "rate_min": Decimal("3.60"), "rate_max": Decimal("7.20"), "term_months": 12,
                "valid_until": valid_until, "version": 1, "active": True, "created_at": now}

    customers = _insert_chunked(engine, Customer.__table__, customer, count, "customers")
    offers = _insert_chunked(engine, Offer.__table__, offer, count, "offers")

    started = time.perf_counter()
    config = CampaignConfig.from_json(SETTINGS)
    with session_scope(engine) as session:
        campaigns.create_campaign(session, CAMPAIGN_ID, "调度基准", "simulated", config, now,
                                  actor=MANAGER)
    made = time.perf_counter() - started

    def target(i: int) -> dict[str, Any]:
        cid = customer_id(i)
        return {"campaign_id": CAMPAIGN_ID, "customer_id": cid,
                "variant": campaigns.assign_variant(CAMPAIGN_ID, cid, config.variants),
                "status": "pending", "attempts": 0, "next_attempt_at": tomorrow,
                "created_at": now, "updated_at": now}

    targets = _insert_chunked(engine, CampaignTarget.__table__, target, count, "targets")

    started = time.perf_counter()
    with session_scope(engine) as session:
        campaigns.command(session, CAMPAIGN_ID, "start", MANAGER, now)
    if engine.dialect.name == "postgresql":
        # As the whitelist import does for customers and offers (and autovacuum would soon do
        # for the targets): the planner needs statistics to use the indexes.
        with engine.begin() as connection:
            connection.execute(text("ANALYZE oc_customers, oc_offers, oc_campaign_targets"))
    return LoadTiming(customers, offers, targets, made + time.perf_counter() - started)


def make_due(engine: Engine, customers: int, dials: int, first: datetime, gap: timedelta
             ) -> dict[str, datetime]:
    """Makes ``dials`` targets, spread over the table, due one every ``gap`` from ``first``;
    returns each one's due time by customer id."""
    due = {customer_id(n * customers // dials): first + n * gap for n in range(dials)}
    table = CampaignTarget.__table__
    statement = (
        update(table)
        .where(table.c.campaign_id == CAMPAIGN_ID, table.c.customer_id == bindparam("b_cid"))
        .values(next_attempt_at=bindparam("b_due", type_=table.c.next_attempt_at.type)))
    with engine.begin() as connection:
        connection.execute(statement, [{"b_cid": c, "b_due": d} for c, d in due.items()])
    return due


# ------------------------------------------------------------------ counting statements
_SELECT_LIST = re.compile(r"^SELECT .+? FROM ")
_PARAM_LIST = re.compile(r"\((?:\?|%\(\w+\)s)(?:, (?:\?|%\(\w+\)s))*\)")


def statement_label(sql: str) -> str:
    """A statement's shape: whitespace folded, the select list and IN lists elided."""
    flat = " ".join(sql.split())
    flat = _PARAM_LIST.sub("(…)", flat)
    return _SELECT_LIST.sub("SELECT … FROM ", flat)[:110]


@dataclass(frozen=True)
class Tally:
    """Statements, their database time and pool checkouts, at one moment or over a span."""

    statements: int = 0
    seconds: float = 0.0
    checkouts: int = 0
    by_label: dict[str, tuple[int, float]] = field(default_factory=dict)

    def __sub__(self, earlier: Tally) -> Tally:
        labels = {}
        for label, (n, seconds) in self.by_label.items():
            before_n, before_s = earlier.by_label.get(label, (0, 0.0))
            labels[label] = (n - before_n, seconds - before_s)
        return Tally(self.statements - earlier.statements, self.seconds - earlier.seconds,
                     self.checkouts - earlier.checkouts, {k: v for k, v in labels.items() if v[0]})


class StatementLog:
    """Counts and times every statement ``engine`` executes, from any thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._statements = 0
        self._seconds = 0.0
        self._checkouts = 0
        self._by_label: dict[str, list[float]] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "checkout", self._checkout)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        event.remove(self.engine, "checkout", self._checkout)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                executemany: bool) -> None:
        conn.info["bench_started"] = time.perf_counter()
        with self._lock:
            self._statements += 1

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        took = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        label = statement_label(statement)
        with self._lock:
            self._seconds += took
            entry = self._by_label.setdefault(label, [0, 0.0])
            entry[0] += 1
            entry[1] += took

    def _checkout(self, dbapi_connection: Any, record: Any, proxy: Any) -> None:
        with self._lock:
            self._checkouts += 1

    def tally(self) -> Tally:
        with self._lock:
            return Tally(self._statements, self._seconds, self._checkouts,
                         {k: (int(n), s) for k, (n, s) in self._by_label.items()})


# ------------------------------------------------------------------ one backend
@dataclass
class BackendResult:
    """What one backend's run measured."""

    backend: str
    customers: int
    dials: int
    load: LoadTiming
    poll_s: float
    dialer_poll_s: float
    whole: Tally
    whole_s: float
    idle: Tally
    idle_s: float
    dialling: Tally
    dialling_s: float
    delays_ms: list[float]

    @property
    def per_dial(self) -> float:
        return self.whole.statements / self.dials

    @property
    def dialling_per_dial(self) -> float:
        return self.dialling.statements / self.dials

    @property
    def above_idle_per_dial(self) -> float:
        baseline = self.idle.statements / self.idle_s * self.dialling_s
        return (self.dialling.statements - baseline) / self.dials


async def _sleep_until(when: datetime) -> None:
    await asyncio.sleep(max(0.0, (when - utcnow()).total_seconds()))


def _finished_calls(worker: Worker) -> int:
    return sum(c["finished"] for c in worker.health()["campaigns"].values())


@dataclass
class Run:
    """One worker run: the worker, the calls it placed, the due times, and the statement tallies
    and monotonic times at each mark (start, idle_from, first_due, done)."""

    worker: Worker
    network: ScriptedNetwork
    due: dict[str, datetime]
    tallies: dict[str, Tally]
    at: dict[str, float]

    def span(self, start: str, end: str) -> tuple[Tally, float]:
        """The statements between two marks, and the seconds between them."""
        return self.tallies[end] - self.tallies[start], self.at[end] - self.at[start]


async def drive(engine: Engine, args: argparse.Namespace, backend: str) -> Run:
    """Makes the targets due and runs the worker until their calls are recorded."""
    start = utcnow()
    idle_from = start + timedelta(seconds=WARMUP_S)
    first_due = idle_from + timedelta(seconds=args.idle_s)
    gap = timedelta(milliseconds=args.gap_ms)
    due = make_due(engine, args.customers, args.dials, first_due, gap)
    last_due = max(due.values())
    network = ScriptedNetwork(engine, call_s=args.call_ms / 1000)
    worker = Worker(engine, ScriptedPlacing(network))  # production poll intervals
    log = StatementLog(engine)
    stop = asyncio.Event()
    tallies: dict[str, Tally] = {}
    at: dict[str, float] = {}

    def mark(name: str) -> None:
        tallies[name], at[name] = log.tally(), time.monotonic()

    mark("start")
    task = asyncio.create_task(worker.run(stop))
    try:
        await _sleep_until(idle_from)
        mark("idle_from")
        print(f"  {backend}: idle for {args.idle_s:g} s", file=sys.stderr, flush=True)
        await _sleep_until(first_due)
        mark("first_due")
        deadline = last_due + timedelta(seconds=60)
        shown = -1
        while (finished := _finished_calls(worker)) < args.dials:
            if task.done():
                await task  # raises what stopped the worker
                raise SystemExit(f"{backend}: the worker stopped after {finished} calls")
            if utcnow() > deadline:
                raise SystemExit(f"{backend}: only {finished}/{args.dials} calls a minute after "
                                 f"the last due time")
            if finished // 50 != shown:
                shown = finished // 50
                print(f"\r  {backend}: {finished:>5}/{args.dials} calls", end="", file=sys.stderr,
                      flush=True)
            await asyncio.sleep(0.01)
        mark("done")
        print(f"\r  {backend}: {args.dials:>5}/{args.dials} calls", file=sys.stderr, flush=True)
    finally:
        stop.set()
        await task
        log.close()
    return Run(worker, network, due, tallies, at)


def check(engine: Engine, network: ScriptedNetwork, due: dict[str, datetime], backend: str) -> None:
    """Every due target was dialled once, nobody else, and every attempt was recorded as done."""
    dialled = [d.customer_id for d in network.dials]
    if sorted(dialled) != sorted(due):
        extra = sorted(set(dialled) - set(due))[:5]
        raise SystemExit(f"{backend}: dialled {len(dialled)} ({len(set(dialled))} customers) for "
                         f"{len(due)} due targets; not due but dialled: {extra}")
    with session_scope(engine) as session:
        statuses = session.execute(
            text(f"SELECT status, count(*) FROM {CallAttempt.__tablename__} GROUP BY status")).all()
    if dict(statuses) != {"done": len(due)}:
        raise SystemExit(
            f"{backend}: attempts by status {dict(statuses)}, expected {len(due)} done")


def run_backend(backend: str, url: str, args: argparse.Namespace) -> BackendResult:
    engine = make_engine(url)
    try:
        migrate(engine)
        print(f"{backend}: loading {args.customers:,} customers", file=sys.stderr, flush=True)
        timing = load(engine, args.customers, utcnow())
        print(f"  loaded in {timing.total:.1f} s", file=sys.stderr, flush=True)
        run = asyncio.run(drive(engine, args, backend))
        check(engine, run.network, run.due, backend)
    finally:
        engine.dispose()
    delays = [(d.at - run.due[d.customer_id]).total_seconds() * 1000 for d in run.network.dials]
    whole, whole_s = run.span("start", "done")
    idle, idle_s = run.span("idle_from", "first_due")
    dialling, dialling_s = run.span("first_due", "done")
    return BackendResult(backend, args.customers, args.dials, timing, run.worker.poll_s,
                         run.worker.dialer_poll_s, whole, whole_s, idle, idle_s, dialling,
                         dialling_s, delays)


@contextmanager
def databases(postgres: bool) -> Iterator[list[tuple[str, str]]]:
    """(backend, url) of a fresh SQLite file and, with ``postgres``, a private server's database."""
    with tempfile.TemporaryDirectory(prefix="offercall-bench-scheduler-") as tmp:
        found = [("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if not postgres:
            yield found
            return
        from tests.postgres import start_postgres

        server = start_postgres()
        try:
            yield [*found, ("PostgreSQL", server.new_database())]
        finally:
            server.stop()


# ------------------------------------------------------------------ reporting
def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def table_rows(results: list[BackendResult]) -> list[tuple[str, list[str]]]:
    """(label, one cell per backend) for the summary table."""
    def row(label: str, cell: Callable[[BackendResult], str]) -> tuple[str, list[str]]:
        return label, [cell(r) for r in results]

    return [
        row("customers / campaign targets", lambda r: f"{r.customers:,}"),
        row("load: customers + offers + targets",
            lambda r: f"{r.load.customers:.1f} + {r.load.offers:.1f} + {r.load.targets:.1f} s"),
        row("load: total (rows/s, 3 tables)", lambda r: f"{r.load.total:.1f} s "
            f"({3 * r.customers / r.load.total:,.0f}/s)"),
        row("worker poll_s / dialer poll_s", lambda r: f"{r.poll_s:g} / {r.dialer_poll_s:g} s"),
        row("dials (due every gap)", lambda r: f"{r.dials}"),
        row("whole run: seconds", lambda r: f"{r.whole_s:.1f}"),
        row("whole run: statements", lambda r: f"{r.whole.statements:,}"),
        row("statements per dial (whole run)", lambda r: f"{r.per_dial:.1f}"),
        row("statements per dial (dial phase)", lambda r: f"{r.dialling_per_dial:.1f}"),
        row("  of which above the idle rate", lambda r: f"{r.above_idle_per_dial:.1f}"),
        row("transactions per dial (dial phase)",
            lambda r: f"{r.dialling.checkouts / r.dials:.1f}"),
        row("DB time per dial (dial phase)",
            lambda r: f"{r.dialling.seconds / r.dials * 1000:.1f} ms"),
        row("idle: statements per second", lambda r: f"{r.idle.statements / r.idle_s:.1f}"),
        row("idle: transactions per second", lambda r: f"{r.idle.checkouts / r.idle_s:.1f}"),
        row("idle: DB time per second", lambda r: f"{r.idle.seconds / r.idle_s * 1000:.1f} ms"),
        row("due -> dial delay: median", lambda r: f"{statistics.median(r.delays_ms):.0f} ms"),
        row("due -> dial delay: p95", lambda r: f"{percentile(r.delays_ms, 0.95):.0f} ms"),
        row("due -> dial delay: max", lambda r: f"{max(r.delays_ms):.0f} ms"),
        row("due -> dial delay: min", lambda r: f"{min(r.delays_ms):.0f} ms"),
    ]


def top_statements(result: BackendResult, count: int = 8
                   ) -> list[tuple[str, float, float, float, float]]:
    """The statements that took the most database time over the run: (label, per idle second,
    per dial in the dial phase, mean ms, share of the run's DB time)."""
    ranked = sorted(result.whole.by_label.items(), key=lambda item: -item[1][1])[:count]
    return [(label, result.idle.by_label.get(label, (0, 0.0))[0] / result.idle_s,
             result.dialling.by_label.get(label, (0, 0.0))[0] / result.dials,
             seconds / n * 1000, seconds / result.whole.seconds)
            for label, (n, seconds) in ranked]


def print_report(args: argparse.Namespace, results: list[BackendResult]) -> None:
    title = (f"Always-on scheduler, {args.customers:,} targets, {args.dials} dials due every "
             f"{args.gap_ms:g} ms, calls of {args.call_ms:g} ms, {args.idle_s:g} s idle first")
    print(f"\n{title}\n" + "-" * len(title))
    rows = table_rows(results)
    width = max(len(label) for label, _ in rows)
    print(f"  {'':<{width}} " + " ".join(f"{r.backend:>18}" for r in results))
    for label, cells in rows:
        print(f"  {label:<{width}} " + " ".join(f"{c:>18}" for c in cells))
    for result in results:
        print(f"\n  {result.backend}: statements by database time over the whole run")
        print(f"    {'per idle s':>10} {'per dial':>9} {'mean ms':>8} {'DB time':>8}  statement")
        for label, idle, dial, mean_ms, share in top_statements(result):
            print(f"    {idle:>10.2f} {dial:>9.2f} {mean_ms:>8.2f} {share:>7.0%}  {label}")
    print(f"\n  (reproduce: PYTHONPATH=. {sys.executable} {' '.join(sys.argv)})")


def histogram_svg(delays: list[float], bin_ms: float, top_ms: float, width: int = 560,
                  height: int = 180) -> str:
    """A bar chart of ``delays`` in bins of ``bin_ms`` from 0 to ``top_ms``."""
    bins = max(1, math.ceil(top_ms / bin_ms))
    counts = [0] * bins
    for delay in delays:
        counts[min(bins - 1, max(0, int(delay // bin_ms)))] += 1
    left, bottom, plot_w, plot_h = 40, 30, width - 50, height - 45
    tallest = max(counts) or 1
    bar_w = plot_w / bins
    base, top = height - bottom, height - bottom - plot_h
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11">',
             f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#333"/>',
             f'<line x1="{left}" y1="{base}" x2="{left}" y2="{top}" stroke="#333"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{tallest}</text>',
             f'<text x="{left - 4}" y="{base + 4}" text-anchor="end">0</text>']
    for i, n in enumerate(counts):
        if n:
            h = n / tallest * plot_h
            parts.append(f'<rect x="{left + i * bar_w + 0.5:.1f}" y="{base - h:.1f}" '
                         f'width="{max(bar_w - 1, 0.5):.1f}" height="{h:.1f}" fill="#4a7bb7">'
                         f'<title>{i * bin_ms:g}-{(i + 1) * bin_ms:g} ms: {n}</title></rect>')
    ticks = 5
    for t in range(ticks + 1):
        value = top_ms * t / ticks
        x = left + plot_w * t / ticks
        parts.append(f'<text x="{x:.1f}" y="{base + 14}" text-anchor="middle">{value:.0f}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 3}" text-anchor="middle">'
                 f'due → dial delay (ms), bins of {bin_ms:g} ms</text></svg>')
    return "".join(parts)


def write_html(args: argparse.Namespace, results: list[BackendResult], path: Path) -> None:
    top_ms = max(max(r.delays_ms) for r in results)
    bin_ms = max(5.0, math.ceil(top_ms / 40 / 5) * 5)
    top_ms = math.ceil(top_ms / bin_ms) * bin_ms
    head = "".join(f"<th>{html.escape(r.backend)}</th>" for r in results)
    body = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"
        for label, cells in table_rows(results))
    charts = "".join(
        f"<h2>{html.escape(r.backend)}</h2>{histogram_svg(r.delays_ms, bin_ms, top_ms)}"
        for r in results)
    statements = "".join(
        f"<h2>{html.escape(r.backend)}: statements by database time</h2><table>"
        "<tr><th>per idle s</th><th>per dial</th><th>mean ms</th><th>DB time</th>"
        "<th>statement</th></tr>"
        + "".join(f"<tr><td>{i:.2f}</td><td>{d:.2f}</td><td>{m:.2f}</td><td>{s:.0%}</td>"
                  f"<td><code>{html.escape(label)}</code></td></tr>"
                  for label, i, d, m, s in top_statements(r)) + "</table>"
        for r in results)
    title = (f"Always-on scheduler: {args.customers:,} targets, {args.dials} dials due every "
             f"{args.gap_ms:g} ms")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
            "table{border-collapse:collapse;margin-bottom:1.5em}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}code{font-size:85%}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><p>Generated {utcnow():%Y-%m-%d %H:%M} UTC by "
            f"benchmarks/bench_scheduler.py (calls of {args.call_ms:g} ms, {args.idle_s:g} s idle "
            f"before the first due time).</p><table><tr><th></th>{head}</tr>{body}</table>"
            f"{charts}{statements}</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


# ------------------------------------------------------------------ main
def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    main_parser.add_argument("--customers", type=int, default=100_000)
    main_parser.add_argument("--dials", type=int, default=400)
    main_parser.add_argument("--postgres", action="store_true",
                             help="also run on a private PostgreSQL server")
    main_parser.add_argument("--gap-ms", type=float, default=50.0, help="between due times")
    main_parser.add_argument("--idle-s", type=float, default=10.0,
                             help="measured idle time before the first due time")
    main_parser.add_argument("--call-ms", type=float, default=20.0, help="how long each call lasts")
    main_parser.add_argument("--out", type=Path, default=OUT)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not 0 < args.dials <= args.customers:
        raise SystemExit("--dials must be between 1 and --customers")
    with databases(args.postgres) as found:
        results = [run_backend(backend, url, args) for backend, url in found]
    print_report(args, results)
    write_html(args, results, args.out)
    print(f"  wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
