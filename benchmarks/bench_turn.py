"""Benchmark: where a chat turn's milliseconds go, layer by layer, one customer at a time.

Run on demand (not a test)::

    .venv/bin/python benchmarks/bench_turn.py [--conversations 20]

It starts whatever servers are not running (embedded SQLite defaults; ``offercall seed`` and
a trained model first), then, for each of ``--conversations`` 5-turn conversations with the
sample customer, sends each turn three ways, side by side in one run:

1. through the web server's chat API (``POST /api/chat/{id}/messages``): what a customer waits;
2. straight to Rasa's input channel (``/webhooks/offercall/webhook``) in a conversation of its
   own: NLU, policies, the action server, the tracker store, without the web server;
3. Rasa's NLU alone (``/model/parse``) on the same text.

The medians give the web server's share (1 − 2), the dialogue's (2 − 3: policies, actions,
tracker store) and the NLU's (3); the turn with the most events in the tracker (the last)
against the first shows what a growing tracker costs. Writes var/bench/turn.html.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import statistics
import time
import uuid
from pathlib import Path

import aiohttp

from core.customer_tokens import issue
from core.settings import Settings
from offercall.processes import Supervisor

TURNS = ["是我", "利率多少", "多久到账", "有手续费吗", "要什么材料"]


async def timed(session: aiohttp.ClientSession, url: str, body: dict) -> float:
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        await response.read()
        if response.status >= 400:
            raise SystemExit(f"{url}: HTTP {response.status}")
    return (time.perf_counter() - started) * 1000


async def one_conversation(session: aiohttp.ClientSession, settings: Settings,
                           samples: dict[str, list[list[float]]]) -> None:
    base = f"http://{settings.web_host}:{settings.web_port}"
    token = issue("C0001", settings.secret_key)
    async with session.post(f"{base}/api/chat/start", json={"token": token}) as response:
        if response.status == 404:
            raise SystemExit("customer C0001 is not in the database: run `offercall seed` first")
        conversation = (await response.json())["conversation_id"]
    direct = f"bench-{uuid.uuid4().hex[:12]}"
    channel = f"{settings.rasa_url}/webhooks/offercall/webhook?token={settings.rasa_token}"
    metadata = {"customer_id": "C0001", "channel": "chat"}
    await timed(session, channel, {"sender": direct, "message": "/session_start",
                                   "metadata": metadata})
    parse = f"{settings.rasa_url}/model/parse?token={settings.rasa_token}"
    for turn, text in enumerate(TURNS):
        web = await timed(session, f"{base}/api/chat/{conversation}/messages",
                          {"token": token, "text": text})
        rasa = await timed(session, channel, {"sender": direct, "message": text,
                                              "metadata": metadata})
        nlu = await timed(session, parse, {"text": text})
        for name, value in (("web", web), ("rasa", rasa), ("nlu", nlu)):
            samples[name][turn].append(value)


def write_report(path: Path, rows: list[tuple[str, float, float, float]]) -> None:
    """A bar per turn: NLU, dialogue and web server shares of the median turn."""
    top = max(web for _, web, _, _ in rows)
    bars = []
    for label, web, rasa, nlu in rows:
        parts = [(nlu, "#0891b2", "NLU"), (rasa - nlu, "#00703c", "dialogue"),
                 (web - rasa, "#d97706", "web server")]
        segments = "".join(
            f'<div title="{name} {value:.0f} ms" style="width:{max(value, 0) / top * 600:.1f}px;'
            f'background:{colour}"></div>' for value, colour, name in parts)
        bars.append(f"<tr><td>{html.escape(label)}</td><td><div style='display:flex;height:18px'>"
                    f"{segments}</div></td><td>{web:.0f} ms</td></tr>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>offercall chat turn</title>"
        "<body style='font-family:sans-serif'><h1>Where a chat turn's time goes (medians)</h1>"
        "<p><span style='color:#0891b2'>■ NLU</span> <span style='color:#00703c'>■ dialogue "
        "(policies, actions, tracker store)</span> <span style='color:#d97706'>■ web server"
        "</span></p><table>" + "".join(bars) + "</table>", "utf-8")


async def main_async(args: argparse.Namespace, settings: Settings) -> None:
    samples = {name: [[] for _ in TURNS] for name in ("web", "rasa", "nlu")}
    async with aiohttp.ClientSession() as session:
        await one_conversation(session, settings, {n: [[] for _ in TURNS] for n in samples})  # warm
        for done in range(args.conversations):
            await one_conversation(session, settings, samples)
            print(f"conversations: {done + 1}/{args.conversations}", end="\r", flush=True)
    print()
    print(f"{'turn':<14} {'web ms':>8} {'rasa ms':>8} {'nlu ms':>7} {'web share':>10} "
          f"{'dialogue':>9} {'nlu share':>10}")
    rows = []
    for turn, text in enumerate(TURNS):
        web, rasa, nlu = (statistics.median(samples[n][turn]) for n in ("web", "rasa", "nlu"))
        rows.append((f"{turn + 1}. {text}", web, rasa, nlu))
        print(f"{turn + 1}. {text:<10} {web:>8.0f} {rasa:>8.0f} {nlu:>7.0f} {web - rasa:>10.0f} "
              f"{rasa - nlu:>9.0f} {nlu:>10.0f}")
    every = {n: statistics.median([v for turn in samples[n] for v in turn]) for n in samples}
    print(f"all turns: web {every['web']:.0f} ms = web server {every['web'] - every['rasa']:.0f} "
          f"+ dialogue {every['rasa'] - every['nlu']:.0f} + NLU {every['nlu']:.0f} (medians)")
    report = settings.var_dir / "bench" / "turn.html"
    write_report(report, rows)
    print(f"report: {report}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20)
    args = parser.parse_args()
    settings = Settings.from_environ()
    supervisor = Supervisor(settings)
    try:
        supervisor.ensure()
        asyncio.run(main_async(args, settings))
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
