"""Benchmark: the marketing map's API (``GET /api/map``) as a branch's area grows.

Run on demand (not a test)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_map.py [--sizes 1000,5000,20000] [--runs 5]

For each size, in one run: a fresh SQLite database with the branches, 金堂's branch manager,
and ``size`` whitelisted customers in 金堂's area (金堂县, each with a street address in one of
its towns; one in fifty with a lead), then ``--runs`` requests to ``/api/map`` through the real
app in process (aiohttp's test client). Prints, per size, the median time to answer, the
points returned and the size of the JSON, and the time per 1,000 points.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert

from branches import leads
from core.clock import utcnow
from core.settings import PROJECT_ROOT
from core.vocabulary import LeadSource
from handoff.agents import add_agent, open_session
from offercall.web.app import init_app
from persistence.branches import load_branch_sites, load_branches
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import Customer, Offer
from tests.stack import stack_settings

TOWNS = ("赵镇", "淮口街道", "白果街道", "五凤镇", "转龙镇", "三溪镇", "竹篙镇", "高板街道")


def load(url: str, size: int) -> str:
    """The database for one size; returns the branch manager's session token."""
    engine = make_engine(url)
    migrate(engine)
    now = utcnow()
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        load_branch_sites(session, PROJECT_ROOT / "data" / "branch_sites.csv")
        manager = add_agent(session, username="jt_mgr", password="bench-password-1",
                            display_name="jt_mgr", role="branch_manager", branch_id="JT", now=now)
        add_agent(session, username="jt_am", password="bench-password-1", display_name="jt_am",
                  role="account_manager", branch_id="JT", now=now)
    customers = [{"customer_id": f"B{i:07d}", "name": "测试客户", "masked_name": "测**",
                  "phone": f"139{i:08d}", "region": "金堂县", "segment": "农户", "consent": True,
                  "address": f"四川省成都市金堂县{TOWNS[i % len(TOWNS)]}{i % 300 + 1}号",
                  "created_at": now, "updated_at": now} for i in range(size)]
    offers = [{"customer_id": c["customer_id"], "product": "邮享贷", "amount_yuan": 50000,
               "rate_min": Decimal("3.6"), "rate_max": Decimal("7.2"), "term_months": 12,
               "valid_until": date(2027, 12, 31), "active": True, "version": 1,
               "created_at": now} for c in customers]
    with engine.begin() as connection:
        connection.execute(insert(Customer), customers)
        connection.execute(insert(Offer), offers)
    with session_scope(engine) as session:
        for c in customers[::50]:
            leads.open_lead(session, c["customer_id"], LeadSource.PARTNER_INTAKE,
                            f"bench-{c['customer_id']}", now - timedelta(hours=1))
        token = open_session(session, manager, now)
    engine.dispose()
    return token


async def measure(url: str, var: Path, token: str, runs: int) -> tuple[list[float], int, int]:
    client = TestClient(TestServer(init_app(stack_settings(var, url))))
    await client.start_server()
    try:
        seconds, points, size = [], 0, 0
        for _ in range(runs):
            started = time.perf_counter()
            response = await client.get("/api/map", headers={"Authorization": f"Bearer {token}"})
            body = await response.read()
            seconds.append(time.perf_counter() - started)
            assert response.status == 200, body[:200]
            size = len(body)
            points = body.count(b'"customer_id"')
        return seconds, points, size
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'customers':>10} {'points':>8} {'median ms':>10} {'ms/1k pts':>10} {'JSON KB':>9}")
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            print(f"loading {size:,} customers …", end="\r", file=sys.stderr, flush=True)
            token = load(url, size)
            seconds, points, body = asyncio.run(measure(url, Path(tmp) / "var", token, args.runs))
        median = statistics.median(seconds) * 1000
        print(f"{size:>10,} {points:>8,} {median:>10.0f} {median / max(points, 1) * 1000:>10.1f} "
              f"{body / 1024:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
