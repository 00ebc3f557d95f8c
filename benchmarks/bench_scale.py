"""Benchmark: chat throughput and latency with one Rasa server against several behind haproxy.

Run on demand (not a test)::

    .venv/bin/python benchmarks/bench_scale.py [--customers 16] [--seconds 40] \
        [--profiles 1x1,2x2]

For each profile ``NxM`` (N Rasa servers, M action servers), in one run and on the same
machine: a fresh database on a private PostgreSQL server (tests/postgres.py) with the sample
whitelist; the servers started by offercall's own supervisor (N > 1 adds Redis for Rasa's lock
store and haproxy in front); ``--customers`` simulated customers who each hold 5-turn
conversations through the web server's chat API with no think time, for ``--seconds`` after
a warm-up. It prints messages per second, median and p95 turn latency, turns answered with an
apology, and each process's resident memory, and writes var/bench/scale.html.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.customer_tokens import issue  # noqa: E402
from chat.widget import UNAVAILABLE  # noqa: E402
from core.settings import PROJECT_ROOT  # noqa: E402
from tests.postgres import start_postgres  # noqa: E402
from tests.stack import BotStack, start_stack  # noqa: E402

TURNS = ["是我", "利率多少", "多久到账", "有手续费吗", "要什么材料"]


@dataclass
class Result:
    profile: str
    latencies_ms: list[float] = field(default_factory=list)
    apologies: int = 0
    elapsed_s: float = 0.0
    memory_mb: dict[str, float] = field(default_factory=dict)
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU time during the measured run, by process, and the whole machine's ("all")."""

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s if self.elapsed_s else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User plus system CPU of a process, in clock ticks, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks() -> int:
    """Every core's non-idle CPU time since boot, in clock ticks."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4]  # minus idle and iowait


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def customer(session: aiohttp.ClientSession, stack: BotStack, until: float,
                   result: Result | None) -> None:
    """One customer holding conversations back to back until ``until`` (monotonic)."""
    settings = stack.settings
    base = f"http://{settings.web_host}:{settings.web_port}"
    token = issue("C0001", settings.secret_key)
    while time.monotonic() < until:
        async with session.post(f"{base}/api/chat/start", json={"token": token}) as response:
            response.raise_for_status()
            conversation = (await response.json())["conversation_id"]
        for text in TURNS:
            started = time.perf_counter()
            async with session.post(f"{base}/api/chat/{conversation}/messages",
                                    json={"token": token, "text": text}) as response:
                body = await response.json()
            took = (time.perf_counter() - started) * 1000
            if result is not None and time.monotonic() < until:
                result.latencies_ms.append(took)
                replies = " ".join(body.get("texts", []))
                if response.status >= 400 or not replies or UNAVAILABLE in replies:
                    result.apologies += 1


async def load(stack: BotStack, customers: int, seconds: float, result: Result) -> None:
    connector = aiohttp.TCPConnector(limit=customers * 2)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        warm_until = time.monotonic() + 5
        await asyncio.gather(*(customer(session, stack, warm_until, None) for _ in range(customers)))
        pids = {name: process.pid for name, process in stack.supervisor.started.items()}
        pids["load (this benchmark)"] = os.getpid()
        before = {name: cpu_ticks(pid) for name, pid in pids.items()}
        busy_before = machine_busy_ticks()
        started = time.monotonic()
        await asyncio.gather(*(customer(session, stack, started + seconds, result)
                               for _ in range(customers)))
        result.elapsed_s = time.monotonic() - started
        result.cpu_ms = {name: (cpu_ticks(pid) - before[name]) * TICK_MS for name, pid in pids.items()}
        result.cpu_ms["all"] = (machine_busy_ticks() - busy_before) * TICK_MS


def run_profile(profile: str, database_url: str, customers: int, seconds: float) -> Result:
    rasa, actions = (int(part) for part in profile.split("x"))
    print(f"[{profile}] starting {rasa} Rasa server(s), {actions} action server(s) ...", flush=True)
    stack = start_stack(Path(tempfile.mkdtemp(prefix="bench-scale-")), database_url,
                        ["actions", "rasa", "web"],
                        {"OFFERCALL_RASA_SERVERS": str(rasa), "OFFERCALL_ACTION_SERVERS": str(actions)})
    result = Result(profile)
    try:
        print(f"[{profile}] {customers} customers for {seconds:g} s ...", flush=True)
        asyncio.run(load(stack, customers, seconds, result))
        result.memory_mb = {name: rss_mb(process.pid)
                            for name, process in stack.supervisor.started.items()}
    finally:
        stack.stop()
    return result


def describe(result: Result) -> str:
    return (f"{result.profile:>5}  {result.rate:7.1f} msg/s  median {statistics.median(result.latencies_ms):6.0f} ms"
            f"  p95 {result.percentile(0.95):6.0f} ms  turns {len(result.latencies_ms):5d}"
            f"  apologies {result.apologies}")


def write_report(path: Path, results: list[Result], customers: int) -> None:
    top = max(r.percentile(0.95) for r in results) or 1.0
    rows = []
    for r in results:
        median = statistics.median(r.latencies_ms)
        p95 = r.percentile(0.95)
        rows.append(
            f"<tr><th>{html.escape(r.profile)}</th><td>{r.rate:.1f}</td><td>{median:.0f}</td>"
            f"<td>{p95:.0f}</td><td><div class=bar style='width:{300 * median / top:.0f}px'></div>"
            f"<div class='bar p95' style='width:{300 * p95 / top:.0f}px'></div></td>"
            f"<td>{r.apologies}</td><td>{html.escape(', '.join(f'{k} {v:.0f}' for k, v in r.memory_mb.items()))}</td></tr>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"""<!doctype html><meta charset=utf-8><title>offercall: chat scale-out</title>
<style>body{{font:14px system-ui;margin:2em}}td,th{{padding:4px 10px;text-align:left}}
.bar{{height:8px;background:#00703c;margin:2px 0}}.p95{{background:#d97706}}</style>
<h1>Chat with N Rasa servers × M action servers</h1>
<p>{customers} customers, 5-turn conversations, no think time, through the web server's chat API;
bars: median (green) and p95 (amber) turn latency.</p>
<table><tr><th>N×M</th><th>msg/s</th><th>median ms</th><th>p95 ms</th><th></th><th>apologies</th>
<th>resident memory, MB</th></tr>{''.join(rows)}</table>""", "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--profiles", default="1x1,2x2", help="NxM,... (Rasa x action servers)")
    args = parser.parse_args()
    server = start_postgres()
    try:
        results = [run_profile(profile, server.new_database(), args.customers, args.seconds)
                   for profile in args.profiles.split(",")]
    finally:
        server.stop()
    print()
    for result in results:
        print(describe(result))
    base = results[0]
    for result in results[1:]:
        print(f"{result.profile} against {base.profile}: {result.rate / base.rate:.2f}x the messages/s")
    print("CPU per message (ms), by process; 'all' is the whole machine (PostgreSQL included):")
    for result in results:
        turns = len(result.latencies_ms) or 1
        print(f"  {result.profile}: " + ", ".join(f"{k} {v / turns:.1f}" for k, v in result.cpu_ms.items()))
    print("resident memory (MB):")
    for result in results:
        print(f"  {result.profile}: " + ", ".join(f"{k} {v:.0f}" for k, v in result.memory_mb.items()))
    report = PROJECT_ROOT / "var" / "bench" / "scale.html"
    write_report(report, results, args.customers)
    print(f"report: {report}")


if __name__ == "__main__":
    main()
