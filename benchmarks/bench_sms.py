"""Benchmark: text messages through Kannel on this machine, from offercall's sendsms client to
the phones and back as delivery reports.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_sms.py [--messages 2000] [--concurrency 1 20]
        [--repeats 3] [--throughput 0] [--text 您好，...]

Starts real Kannel (bearerbox, smsbox, the fake SMSC with ``fakesmsc`` as the phones:
tests/kannel_network.py) on free ports, with no rate on the SMSC link unless
``--throughput`` gives one, and a small aiohttp server for its delivery reports. Each round
submits ``--messages`` messages, each to a phone of its own, through
:meth:`outbound.sms_gateway.KannelGateway.submit` with ``--concurrency`` submissions in flight
on one keep-alive session, and measures, from the first submission:

- **submit**: until Kannel has answered every submission (messages a second);
- **phones**: until the phones have received every message, checked whole;
- **reports**: until the final delivery report (status 1) of every message has reached the
  report server (each message also gets a status 8 report).

Prints each round and the medians per concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

from outbound.sms_gateway import KannelGateway
from tests.kannel_network import KannelNetwork, kannel_network
from tests.stack import free_port

TEXT = "【邮储银行】尊敬的客户，您已获得邮享贷预授信额度五万元，详询95580。回复TD退订"


@dataclass
class Reports:
    """The delivery-report server: when each message's reports arrived."""

    final_at: dict[int, float] = field(default_factory=dict)
    acked: int = 0
    all_final: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.query.get("status") == "1":
            self.final_at.setdefault(int(request.query["id"]), time.monotonic())
            if len(self.final_at) >= self.expected:
                self.all_final.set()
        elif request.query.get("status") == "8":
            self.acked += 1
        return web.Response(text="")


@dataclass(frozen=True)
class Round:
    concurrency: int
    submit_s: float
    phones_s: float
    reports_s: float
    acked: int


async def one_round(network: KannelNetwork, gateway: KannelGateway, reports: Reports,
                    first_id: int, count: int, concurrency: int, text: str) -> Round:
    reports.expected = len(reports.final_at) + count
    reports.all_final.clear()
    acked_before = reports.acked
    received_before = len(network.phones.received())
    ids = iter(range(first_id, first_id + count))
    refused: list[str] = []

    async def sender(http: aiohttp.ClientSession) -> None:
        for message_id in ids:
            result = await gateway.submit(http, message_id, f"139{message_id:08d}", text)
            if not result.accepted:
                refused.append(result.detail)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.monotonic()
        await asyncio.gather(*(sender(http) for _ in range(concurrency)))
        submitted = time.monotonic()
    if refused:
        raise RuntimeError(f"Kannel refused {len(refused)} messages: {refused[0]}")
    received = await asyncio.to_thread(network.phones.wait_for_total, received_before + count, 600)
    phones_done = time.monotonic()
    wrong = [m for m in received[received_before:] if m.text != text]
    if wrong:
        raise RuntimeError(f"{len(wrong)} messages arrived changed, e.g. {wrong[0]}")
    await asyncio.wait_for(reports.all_final.wait(), 600)
    last_report = max(reports.final_at[i] for i in range(first_id, first_id + count))
    return Round(concurrency, submitted - started, phones_done - started,
                 last_report - started, reports.acked - acked_before)


async def bench(network: KannelNetwork, reports: Reports, args: argparse.Namespace) -> list[Round]:
    gateway = network.gateway()
    rounds = []
    next_id = 1
    for concurrency in args.concurrency:
        for repeat in range(args.repeats):
            found = await one_round(network, gateway, reports, next_id, args.messages,
                                    concurrency, args.text)
            next_id += args.messages
            rounds.append(found)
            n = args.messages
            print(f"  concurrency {concurrency:>3}  round {repeat + 1}: "
                  f"submit {n / found.submit_s:6.0f}/s ({found.submit_s:.2f} s)  "
                  f"phones {n / found.phones_s:6.0f}/s ({found.phones_s:.2f} s)  "
                  f"final reports {n / found.reports_s:6.0f}/s ({found.reports_s:.2f} s, "
                  f"{found.acked} SMSC acks)", flush=True)
    return rounds


async def run(args: argparse.Namespace, directory: Path) -> list[Round]:
    reports = Reports()
    app = web.Application()
    app.router.add_get("/api/sms/dlr", reports.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        throughput = args.throughput or None
        base = f"http://127.0.0.1:{port}"
        with kannel_network(directory, base, throughput=throughput) as network:
            return await bench(network, reports, args)
    finally:
        await runner.cleanup()



def summary(rounds: list[Round], messages: int) -> None:
    title = f"SMS through Kannel 1.4.5, {messages} messages a round (medians)"
    print(f"\n{title}\n" + "-" * len(title))
    for concurrency in dict.fromkeys(found.concurrency for found in rounds):
        mine = [found for found in rounds if found.concurrency == concurrency]
        submit = statistics.median(messages / found.submit_s for found in mine)
        phones = statistics.median(messages / found.phones_s for found in mine)
        reports = statistics.median(messages / found.reports_s for found in mine)
        print(f"  concurrency {concurrency:>3}: submit {submit:6.0f} msg/s, "
              f"to the phones {phones:6.0f} msg/s, final reports {reports:6.0f} msg/s "
              f"over {len(mine)} rounds")
    print(f"  (reproduce: PYTHONPATH=. {sys.executable} {' '.join(sys.argv)})")


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(description=__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parse.add_argument("--messages", type=int, default=2000)
    parse.add_argument("--concurrency", type=int, nargs="+", default=[1, 20])
    parse.add_argument("--repeats", type=int, default=3)
    parse.add_argument("--throughput", type=float, default=0,
                       help="messages a second on the SMSC link (0: no limit)")
    parse.add_argument("--text", default=TEXT)
    return parse


def main() -> None:
    args = parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sms-") as directory:
        rounds = asyncio.run(run(args, Path(directory)))
    summary(rounds, args.messages)


if __name__ == "__main__":
    main()
