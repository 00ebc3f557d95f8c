"""Campaign throughput: calls completed per minute with simulated customers, at real-time pace
and accelerated, and where each call's time goes.

Runs the demo campaign's customers (data/demo_whitelist.csv, data/demo_personas.yml) on a
private stack (Rasa server, action server, SQLite in a temporary directory) with the simulated
agents, once per pace, and prints, per pace:

- calls completed per minute of wall time, and customers finished;
- per answered call (medians): media length, wall length, the share of media time the bot
  spoke, the customer spoke, and the customer waited in the agent queue; the turn latency;
- the dialer's pacing: mean calls in flight.

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_campaign.py [--speeds 1,3]
[--customers 30] [--concurrency 3]``. Writes var/bench/campaign_report.html (the campaign
report of the last pace).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from core.clock import utcnow
from core.settings import PROJECT_ROOT
from offercall.campaign_runner import (
    DEMO_AGENTS,
    DEMO_CONFIG,
    DEMO_PERSONAS,
    DEMO_WHITELIST,
    create,
    import_into,
    run_campaign,
    write_campaign_report,
)
from outbound.campaigns import CampaignConfig
from outbound.dialer import DialerStatus
from outbound.simulated_network import load_personas
from persistence.engine import session_scope
from persistence.schema import Call, CallAttempt


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def call_breakdown(transcript_path: str) -> dict[str, float]:
    """Where one call's media time went: bot speech, customer speech, the agent queue."""
    doc = json.loads(Path(transcript_path).read_text(encoding="utf-8"))
    entries = doc["transcript"]
    span = lambda e: max(0.0, (e.get("end_ms") or e["start_ms"]) - e["start_ms"])  # noqa: E731
    bot = sum(span(e) for e in entries if e["speaker"] in ("bot", "agent") and e.get("kind", "speech") == "speech")
    customer = sum(span(e) for e in entries if e["speaker"] == "customer")
    transfer = next((e["start_ms"] for e in entries if e.get("kind") == "transfer"), None)
    joined = next((e["start_ms"] for e in entries if e.get("kind") == "agent_joined"), None)
    latencies = [e["latency_ms"]["total"] for e in entries if e.get("latency_ms")]
    return {
        "media_s": doc["duration_s"] if "duration_s" in doc else doc.get("duration_ms", 0) / 1000,
        "wall_s": doc.get("wall_s", float("nan")),
        "bot_s": bot / 1000, "customer_s": customer / 1000,
        "queue_s": (joined - transfer) / 1000 if transfer is not None and joined is not None else 0.0,
        "turn_latency_ms": _median(latencies),
    }


async def one_pace(directory: Path, speed: float, customers: int, concurrency: int) -> dict:
    from handoff.agents import load_agents_csv
    from persistence.branches import load_branches
    from tests.stack import start_stack

    stack = await asyncio.to_thread(start_stack, directory, f"sqlite:///{directory / 'offercall.db'}",
                                    ["actions", "rasa"])
    try:
        engine = stack.engine
        report, _, _ = import_into(engine, DEMO_WHITELIST, None, progress=False)
        with session_scope(engine) as session:
            load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
            load_agents_csv(session, PROJECT_ROOT / "data" / "agents_sample.csv", utcnow())
        config = CampaignConfig.from_json({**DEMO_CONFIG, "speed": speed, "max_concurrency": concurrency})
        campaign_id = f"bench-x{speed:g}"
        create(engine, campaign_id, campaign_id, "simulated", config, report.loaded_customer_ids[:customers])
        in_flight: list[int] = []

        def sample(status: DialerStatus) -> None:
            in_flight.append(status.in_flight)

        started = time.monotonic()
        run = await run_campaign(stack.settings, campaign_id, personas=load_personas(DEMO_PERSONAS),
                                 simulated_agents=DEMO_AGENTS, out=sys.stderr,
                                 idle_horizon=timedelta(minutes=2))
        wall = time.monotonic() - started
        with session_scope(engine) as session:
            attempts = session.execute(select(CallAttempt).where(
                CallAttempt.campaign_id == campaign_id)).scalars().all()
            calls = {c.id: c for c in session.execute(select(Call).where(
                Call.id.in_([a.call_id for a in attempts]))).scalars()}
        answered = [calls[a.call_id] for a in attempts
                    if a.call_id in calls and calls[a.call_id].outcome not in ("no_answer", "busy")]
        breakdowns = [call_breakdown(c.transcript_path) for c in answered if c.transcript_path]
        paths = write_campaign_report(engine, campaign_id, directory / "report")
        del run, sample
        return {
            "speed": speed, "wall_s": wall, "calls": len(attempts), "answered": len(answered),
            "calls_per_min": len(attempts) / wall * 60,
            "answered_per_min": len(answered) / wall * 60,
            "breakdowns": breakdowns, "report": paths["html"],
        }
    finally:
        stack.stop()


def print_pace(result: dict) -> None:
    b = result["breakdowns"]
    pick = lambda key: _median([x[key] for x in b])  # noqa: E731
    media = pick("media_s")
    print(f"\n== speed x{result['speed']:g} ==")
    print(f"  {result['calls']} calls ({result['answered']} answered) in {result['wall_s']:.0f} s wall: "
          f"{result['calls_per_min']:.1f} calls/min, {result['answered_per_min']:.1f} answered calls/min")
    print(f"  per answered call (median): media {media:.1f} s, wall {pick('wall_s'):.1f} s "
          f"(wall/media {pick('wall_s') / media:.2f})")
    print(f"  media time: bot speaking {pick('bot_s'):.1f} s, customer speaking {pick('customer_s'):.1f} s, "
          f"agent queue {_median([x['queue_s'] for x in b if x['queue_s']]):.1f} s (transferred calls)")
    print(f"  turn latency (end of customer speech -> bot audio) median {pick('turn_latency_ms'):.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speeds", default="1,3")
    parser.add_argument("--customers", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=3)
    args = parser.parse_args()
    results = []
    for speed in (float(s) for s in args.speeds.split(",")):
        directory = Path(tempfile.mkdtemp(prefix=f"bench-campaign-x{speed:g}-"))
        results.append(asyncio.run(one_pace(directory, speed, args.customers, args.concurrency)))
        print_pace(results[-1])
    out = PROJECT_ROOT / "var" / "bench" / "campaign_report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(Path(results[-1]["report"]).read_bytes())
    if len(results) > 1:
        base = results[0]["calls_per_min"]
        print("\nthroughput ratio vs the first pace: " + ", ".join(
            f"x{r['speed']:g}: {r['calls_per_min'] / base:.2f}" for r in results))
    print(f"\ncampaign report of the last pace: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
