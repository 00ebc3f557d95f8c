"""Doubles for the scheduler's tests: a controllable clock, and a phone network that records
every dial (in memory and, for a worker in another process, in a JSON-lines file written
before the call connects) and plays scripted outcomes.

``python -m tests.scheduler_doubles DB_URL DIAL_LOG [CALL_S]`` runs a real :class:`Worker` over that
network until SIGTERM or SIGKILL: the worker the fault test kills.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.clock import utcnow
from outbound import campaigns
from outbound.dialer import Dialer
from persistence import store
from persistence.engine import make_engine, session_scope
from voice.events import CallResult


@dataclass
class Clock:
    """Time that moves only when the test says so."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True)
class Dial:
    customer_id: str
    attempt_no: int
    call_id: str
    at: datetime
    wall: float


Script = Mapping[tuple[str, int], str]
"""(customer id, attempt no) -> outcome; "callback+<seconds>" books a callback that far ahead."""


@dataclass
class ScriptedNetwork:
    """Places calls that last ``call_s`` (real seconds) and end as the script says
    (``not_interested`` by default)."""

    engine: Any
    clock: Callable[[], datetime] = utcnow
    script: Script = field(default_factory=dict)
    call_s: float = 0.0
    log_path: Path | None = None
    dials: list[Dial] = field(default_factory=list)

    async def place(self, job: campaigns.DialJob) -> CallResult:
        dial = Dial(job.customer_id, job.attempt_no, job.call_id, self.clock(), time.monotonic())
        self.dials.append(dial)
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as log:
                log.write(json.dumps({"customer_id": job.customer_id, "attempt_no": job.attempt_no,
                                      "call_id": job.call_id}) + "\n")
                log.flush()
                os.fsync(log.fileno())
        await asyncio.sleep(self.call_s)
        outcome = self.script.get((job.customer_id, job.attempt_no), "not_interested")
        if outcome.startswith("callback+"):
            due = self.clock() + timedelta(seconds=float(outcome.split("+", 1)[1]))
            with session_scope(self.engine) as session:
                store.book_callback(session, conversation_id=job.call_id, customer_id=job.customer_id,
                                    due_at=due, requested_text="晚点再打")
            outcome = "callback"
        return CallResult(job.call_id, job.customer_id, outcome, "bot", 0.0, [])


_calls = itertools.count(1)


def call_id() -> str:
    return f"call-s{next(_calls)}-{uuid.uuid4().hex[:6]}"


@dataclass
class ScriptedPlacing:
    """Stands in for :class:`offercall.call_placing.CallPlacing`: every campaign's dialer
    places its calls on ``network``."""

    network: ScriptedNetwork

    async def dialer(self, campaign: campaigns.CampaignInfo, **options: Any) -> Dialer:
        return Dialer(self.network.engine, campaign.id, self.network.place, new_call_id=call_id,
                      **options)


async def _serve(db_url: str, log_path: Path, call_s: float = 0.4) -> None:
    from offercall.worker import Worker

    engine = make_engine(db_url)
    network = ScriptedNetwork(engine, call_s=call_s, log_path=log_path)
    worker = Worker(engine, ScriptedPlacing(network), poll_s=0.1, dialer_poll_s=0.1)
    await worker.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], Path(sys.argv[2]), *map(float, sys.argv[3:4])))
