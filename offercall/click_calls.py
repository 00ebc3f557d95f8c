"""Placing one-click calls (一键外呼) in the dialer worker, the process that holds the SIP stack.

Each tick the worker's :class:`ClickCallPlacer` closes stale calls, renews the leases of those
it holds, and takes requests (``branches.click_calls.claim_next``) while two lines are free.
For each it rings the account manager's own phone first; when they answer it plays them a
ringback tone and dials the customer through the trunk; when the customer answers it joins
the two legs in PJSIP's conference bridge (the bot is never on the line) and records both
sides: a two-channel WAV, the customer on the left and the manager on the right, beside a JSON
of the call's facts. When either hangs up the other leg is ended. Every step and the outcome
are written to the call's row and, at the end, to the lead's history
(``branches.click_calls.finish``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from branches import click_calls
from branches.click_calls import ClickCallPolicy, ClickCallStatus, Placement
from core.clock import utcnow
from persistence.engine import session_scope
from voice.audio import decode, encode, float_to_pcm, interleave, write_wav
from voice.errors import TransportError
from voice.events import Answer, AudioIn, RemoteHangup
from voice.transports.sip import SipStack, SipTransport, TrunkConfig
from voice.transports.sip.legs import DISCONNECTED

log = logging.getLogger(__name__)
T = TypeVar("T")

LINES_PER_CALL = 2
"""A one-click call holds two SIP legs: the manager's and the customer's."""
SAMPLE_RATE = 8000


def ringback(seconds: float, *, hz: float = 450.0, on_s: float = 1.0, off_s: float = 4.0) -> bytes:
    """China's ringback tone (450 Hz, 1 s on, 4 s off) as μ-law: what the manager hears while
    the customer's phone rings."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = 0.2 * np.sin(2 * np.pi * hz * t) * ((t % (on_s + off_s)) < on_s)
    return encode(float_to_pcm(tone), "mulaw")


@dataclass
class _Sides:
    """Both parties' audio from the moment they are joined (16-bit PCM, 8 kHz)."""

    customer: bytearray = field(default_factory=bytearray)
    manager: bytearray = field(default_factory=bytearray)
    recording: bool = False
    hung_up: list[str] = field(default_factory=list)
    """The sides whose legs ended, in the order PJSIP reported it (the first hung up)."""


async def _pump(transport: SipTransport, sides: _Sides, side: str) -> str:
    """Reads a leg's audio into ``sides`` while recording; returns once the leg is over."""
    async for event in transport.events():
        if isinstance(event, AudioIn) and sides.recording:
            getattr(sides, side).extend(decode(event.data, "mulaw"))
        elif isinstance(event, RemoteHangup):
            sides.hung_up.append(side)
            return event.reason
    return "ended"


async def _hang_up(transport: SipTransport) -> None:
    """Ends a leg at once (queued audio, such as the ringback, is dropped)."""
    with contextlib.suppress(TransportError):
        await transport.clear_audio()
        await transport.hangup("ended")


async def _finish_task(task: asyncio.Task[Any], timeout_s: float) -> None:
    """Lets a pump end by itself for a moment, then cancels it."""
    with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), timeout_s)
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _leg_facts(answer: Answer) -> dict[str, Any]:
    detail = answer.detail
    return {"status": str(answer.status), "sip_code": detail.get("sip_code"),
            "timings_ms": detail.get("timings_ms", {})}


class ClickCallPlacer:
    """Takes one-click calls off the table and places them on ``stack`` (see the module
    docstring). ``tick`` is called by the worker's loop; ``stop`` hangs up what is in flight."""

    def __init__(self, engine: Engine, stack: SipStack, recordings_dir: Path, *,
                 policy: ClickCallPolicy | None = None, trunk: TrunkConfig | None = None,
                 worker_id: str = "click-calls", clock: Callable[[], datetime] = utcnow,
                 max_talk_s: float = 3600.0) -> None:
        self.engine = engine
        self.stack = stack
        self.recordings_dir = Path(recordings_dir)
        self.policy = policy or ClickCallPolicy()
        self.trunk = trunk
        self.worker_id = worker_id
        self.clock = clock
        self.max_talk_s = max_talk_s
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._legs: dict[int, list[SipTransport]] = {}
        self.placed = 0

    async def _db(self, work: Callable[[Session, datetime], T]) -> T:
        def run() -> T:
            with session_scope(self.engine) as session:
                return work(session, self.clock())
        return await asyncio.to_thread(run)

    # ------------------------------------------------------------------ the loop
    async def tick(self) -> None:
        """Closes stale calls, renews this worker's leases, and takes what it has lines for."""
        for call_id, task in list(self._calls.items()):
            if task.done():
                del self._calls[call_id]
                self._legs.pop(call_id, None)
                if not task.cancelled() and task.exception() is not None:
                    log.error("click_call.crashed call=%s", call_id, exc_info=task.exception())
        held = list(self._calls)
        policy, worker = self.policy, self.worker_id
        await self._db(lambda s, now: (click_calls.renew(s, held, worker, now, policy),
                                       click_calls.expire(s, now, policy)))
        while self._free_lines() >= LINES_PER_CALL:
            placement = await self._db(
                lambda s, now: click_calls.claim_next(s, worker, now, policy))
            if placement is None:
                return
            self.placed += 1
            legs: list[SipTransport] = []
            self._legs[placement.call_id] = legs
            self._calls[placement.call_id] = asyncio.create_task(
                self.place(placement, legs), name=f"click-call-{placement.call_id}")

    def _free_lines(self) -> int:
        """Lines neither the bot's calls nor this worker's one-click calls hold or will hold
        (a call just taken has not dialled its two legs yet)."""
        live = [call_id for call_id, task in self._calls.items() if not task.done()]
        mine = sum(1 for call_id in live for leg in self._legs.get(call_id, ())
                   if leg.leg is not None)
        others = max(self.stack.calls_in_flight() - mine, 0)
        return self.stack.max_calls - others - LINES_PER_CALL * len(live)

    async def stop(self) -> None:
        """Hangs up the calls in flight (each records how it ended)."""
        for task in self._calls.values():
            task.cancel()
        await asyncio.gather(*self._calls.values(), return_exceptions=True)
        self._calls.clear()
        self._legs.clear()

    def status(self) -> dict[str, Any]:
        return {"placed": self.placed, "in_flight": sum(not t.done() for t in self._calls.values())}

    # ------------------------------------------------------------------ one call
    async def _advance(self, call_id: int, status: ClickCallStatus, **times: datetime) -> bool:
        policy, worker = self.policy, self.worker_id
        return await self._db(lambda s, now: click_calls.advance(
            s, call_id, worker, status, now, policy, **{k: now for k in times}))

    async def _finish(self, call_id: int, **facts: Any) -> None:
        worker = self.worker_id
        await self._db(lambda s, now: click_calls.finish(s, call_id, now, worker=worker, **facts))

    def _leg(self, number: str, call_id: int, side: str) -> SipTransport:
        return SipTransport(self.stack, number, trunk=self.trunk, call_id=f"click-{call_id}-{side}")

    async def place(self, placement: Placement, legs: list[SipTransport] | None = None) -> None:
        """Rings the manager, then the customer; joins them; records; writes the outcome.
        ``legs`` gets the call's legs as they are dialled."""
        call_id = placement.call_id
        detail: dict[str, Any] = {}
        legs = [] if legs is None else legs
        try:
            await self.stack.start()  # started on the first SIP call of the process; then a no-op
            await self._place(placement, detail, legs)
        except asyncio.CancelledError:
            await asyncio.shield(self._abandon(call_id, legs, detail, "interrupted"))
            raise
        except Exception as exc:
            log.exception("click_call.failed call=%s", call_id)
            await self._abandon(call_id, legs, {**detail, "error": str(exc)}, "error")

    async def _abandon(self, call_id: int, legs: list[SipTransport], detail: dict[str, Any],
                       why: str) -> None:
        for leg in legs:
            await _hang_up(leg)
        with contextlib.suppress(Exception):
            await self._finish(call_id, failure=why, ended_by="system", detail=detail)

    async def _place(self, placement: Placement, detail: dict[str, Any],
                     legs: list[SipTransport]) -> None:
        call_id = placement.call_id
        manager = self._leg(placement.manager_phone, call_id, "manager")
        legs.append(manager)
        answer = await manager.connect()
        detail["manager"] = _leg_facts(answer)
        if not answer.answered:
            failure = "no_line" if answer.detail.get("error") else f"manager_{answer.status}"
            await self._finish(call_id, failure=failure, detail=detail)
            return
        if not await self._advance(call_id, ClickCallStatus.RINGING_CUSTOMER,
                                   manager_answered_at=True):
            await _hang_up(manager)  # closed meanwhile (its lease lapsed): nothing to record
            return
        trunk = manager.trunk
        await manager.send_audio(ringback(trunk.ring_timeout_s))
        sides = _Sides()
        manager_pump = asyncio.create_task(_pump(manager, sides, "manager"))
        customer = self._leg(placement.customer_phone, call_id, "customer")
        legs.append(customer)
        dialling = asyncio.create_task(customer.connect())
        await asyncio.wait({dialling, manager_pump}, return_when=asyncio.FIRST_COMPLETED)
        if not dialling.done():  # the manager hung up while the customer's phone rang
            dialling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dialling
            await _hang_up(customer)
            detail["customer"] = {"status": "cancelled"}
            await self._finish(call_id, failure="manager_hung_up", ended_by="manager",
                               detail=detail)
            return
        answer = dialling.result()
        detail["customer"] = _leg_facts(answer)
        if not answer.answered:
            await _hang_up(manager)
            await _finish_task(manager_pump, 2)
            failure = "no_line" if answer.detail.get("error") else f"customer_{answer.status}"
            await self._finish(call_id, failure=failure, detail=detail)
            return
        await manager.clear_audio()
        if not await self._join(manager, customer):
            await _hang_up(customer)
            await _hang_up(manager)
            await _finish_task(manager_pump, 2)
            await self._finish(call_id, failure="manager_hung_up", ended_by="manager",
                               detail=detail)
            return
        sides.recording = True
        bridged = time.monotonic()
        customer_pump = asyncio.create_task(_pump(customer, sides, "customer"))
        log.info("click_call.bridged call=%s", call_id)
        await self._advance(call_id, ClickCallStatus.BRIDGED, customer_answered_at=True)
        done, _ = await asyncio.wait({manager_pump, customer_pump}, timeout=self.max_talk_s,
                                     return_when=asyncio.FIRST_COMPLETED)  # a hang-up, or too long
        talk_ms = round((time.monotonic() - bridged) * 1000)
        ended_by = sides.hung_up[0] if done and sides.hung_up else "system"
        for leg in (customer, manager):  # the bridge ends the partner too; this makes sure
            await _hang_up(leg)
        for pump in (manager_pump, customer_pump):
            await _finish_task(pump, 2)
        recording = await asyncio.to_thread(self._save, placement, sides, talk_ms, ended_by)
        await self._finish(call_id, duration_ms=talk_ms, ended_by=ended_by,
                           recording_path=str(recording), detail=detail)

    async def _join(self, manager: SipTransport, customer: SipTransport) -> bool:
        """Bridges the two legs (with a tap for the recording); False when one is gone."""
        manager_ref = weakref.ref(manager.leg) if manager.leg is not None else None
        customer_ref = weakref.ref(customer.leg) if customer.leg is not None else None

        def join() -> bool:
            a = manager_ref() if manager_ref is not None else None
            b = customer_ref() if customer_ref is not None else None
            if a is None or b is None or DISCONNECTED in (a.state, b.state):
                return False
            b.bridge(a, tap=True)
            return True

        try:
            return await self.stack.run(join)
        except TransportError:
            return False

    def _save(self, placement: Placement, sides: _Sides, talk_ms: int, ended_by: str) -> Path:
        """The two-channel WAV (left: customer, right: manager) and its JSON; the WAV's path."""
        name = f"click-{placement.call_id}"
        wav = write_wav(self.recordings_dir / f"{name}.wav",
                        interleave(bytes(sides.customer), bytes(sides.manager)), SAMPLE_RATE, 2)
        facts = {"call_id": name, "kind": "click_call", "click_call": placement.call_id,
                 "lead_id": placement.lead_id, "customer_id": placement.customer_id,
                 "manager_id": placement.manager_id, "duration_ms": talk_ms,
                 "ended_by": ended_by, "sample_rate": SAMPLE_RATE,
                 "channels": {"left": "customer", "right": "manager"}}
        meta = self.recordings_dir / f"{name}.json"
        partial = meta.with_name(meta.name + ".part")
        partial.write_text(json.dumps(facts, ensure_ascii=False, indent=1), encoding="utf-8")
        partial.replace(meta)
        return wav

