"""Benchmark: NLU parse latency, and chat round-trip latency and throughput through the web server.

Run on demand (not a test): ``.venv/bin/python benchmarks/bench_bot.py``. It starts whatever
servers are not running (on the embedded SQLite defaults), measures, prints medians,
p95 and throughput, writes an HTML latency report to var/bench/, and stops what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import statistics
import time
from pathlib import Path

import aiohttp
from tqdm import tqdm

from core.customer_tokens import issue
from core.settings import Settings
from offercall.processes import Supervisor

UTTERANCES = [
    "是我", "利率多少", "能借多少", "怎么还款", "要什么材料", "有手续费吗", "多久到账",
    "你们是不是骗子", "你怎么有我电话", "你是机器人吗", "没听清再说一遍", "我在开车明天下午再打",
    "不需要谢谢", "以后别给我打电话了", "我不是他你打错了", "我已经贷过款了", "今天天气怎么样",
]
CONVERSATION = ["是我", "利率多少", "多久到账", "有手续费吗"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def bench_parse(session: aiohttp.ClientSession, settings: Settings, rounds: int) -> list[float]:
    url = f"{settings.rasa_url}/model/parse?token={settings.rasa_token}"
    timings = []
    for i in tqdm(range(rounds), desc="NLU parse", unit="msg"):
        text = UTTERANCES[i % len(UTTERANCES)]
        start = time.perf_counter()
        async with session.post(url, json={"text": text}) as resp:
            resp.raise_for_status()
            await resp.json()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


async def one_conversation(
    session: aiohttp.ClientSession, base: str, token: str, timings: list[float]
) -> None:
    async with session.post(f"{base}/api/chat/start", json={"token": token}) as resp:
        resp.raise_for_status()
        conversation_id = (await resp.json())["conversation_id"]
    for text in CONVERSATION:
        start = time.perf_counter()
        url = f"{base}/api/chat/{conversation_id}/messages"
        async with session.post(url, json={"token": token, "text": text}) as resp:
            resp.raise_for_status()
            await resp.json()
        timings.append((time.perf_counter() - start) * 1000)


async def bench_chat(
    session: aiohttp.ClientSession, settings: Settings, conversations: int, concurrency: int
) -> tuple[list[float], float]:
    base = f"http://{settings.web_host}:{settings.web_port}"
    timings: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)
    progress = tqdm(total=conversations, desc=f"chat x{concurrency}", unit="conv")

    async def run_one() -> None:
        async with semaphore:
            await one_conversation(session, base, sample_token(settings), timings)
            progress.update(1)

    start = time.perf_counter()
    await asyncio.gather(*(run_one() for _ in range(conversations)))
    elapsed = time.perf_counter() - start
    progress.close()
    return timings, len(timings) / elapsed


def describe(name: str, timings: list[float]) -> str:
    return (f"{name}: n={len(timings)} median={statistics.median(timings):.1f} ms "
            f"p95={percentile(timings, 0.95):.1f} ms")


def write_report(path: Path, series: dict[str, list[float]], throughput: dict[str, float]) -> None:
    """A self-contained HTML page with a latency histogram per series."""
    rows = []
    for name, values in series.items():
        top = max(values)
        buckets = [0] * 20
        for value in values:
            buckets[min(19, int(value / top * 20))] += 1
        peak = max(buckets)
        bars = "".join(
            f'<div style="display:inline-block;width:18px;margin-right:2px;background:#00703c;'
            f'height:{120 * count / peak:.0f}px" title="{count}"></div>' for count in buckets
        )
        rows.append(
            f"<h2>{html.escape(name)}</h2><p>median {statistics.median(values):.1f} ms, "
            f"p95 {percentile(values, 0.95):.1f} ms, max {top:.1f} ms, n={len(values)}</p>"
            f'<div style="display:flex;align-items:flex-end;height:125px">{bars}</div>'
            f"<p style='color:#666'>0 … {top:.0f} ms in 20 buckets</p>"
        )
    rows.append("<h2>Throughput</h2><ul>" + "".join(
        f"<li>{html.escape(k)}: {v:.1f} messages/s</li>" for k, v in throughput.items()) + "</ul>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!doctype html><meta charset=utf-8><title>offercall bot latency</title>"
                    "<body style='font-family:sans-serif'>" + "".join(rows), "utf-8")


def sample_token(settings: Settings) -> str:
    """A signed chat token for the sample customer C0001."""
    return issue("C0001", settings.secret_key)


async def check_sample_customer(session: aiohttp.ClientSession, settings: Settings) -> None:
    base = f"http://{settings.web_host}:{settings.web_port}"
    async with session.post(f"{base}/api/chat/start", json={"token": sample_token(settings)}) as resp:
        if resp.status == 404:
            raise SystemExit("customer C0001 is not in the database: run `offercall seed` first")
        resp.raise_for_status()


async def main_async(args: argparse.Namespace, settings: Settings) -> None:
    async with aiohttp.ClientSession() as session:
        await check_sample_customer(session, settings)
        parse = await bench_parse(session, settings, args.parse_rounds)
        series = {"NLU parse (Rasa /model/parse)": parse}
        throughput = {}
        for concurrency in (1, 4):
            chat, rate = await bench_chat(session, settings, args.conversations, concurrency)
            series[f"chat round trip via web server, {concurrency} concurrent"] = chat
            throughput[f"{concurrency} concurrent conversations"] = rate
    print()
    for name, values in series.items():
        print(describe(name, values))
    for name, rate in throughput.items():
        print(f"throughput, {name}: {rate:.1f} messages/s")
    ratio = statistics.median(series["chat round trip via web server, 1 concurrent"]) / statistics.median(parse)
    print(f"chat round trip / NLU parse (medians): {ratio:.1f}x")
    report = settings.var_dir / "bench" / "bot_latency.html"
    write_report(report, series, throughput)
    print(f"report: {report}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--parse-rounds", type=int, default=300)
    parser.add_argument("--conversations", type=int, default=30)
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
