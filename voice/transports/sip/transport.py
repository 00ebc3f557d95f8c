"""A call to a real phone over SIP: the transport the call session talks to.

:meth:`SipTransport.connect` dials the customer through the trunk and waits for the answer
(or the busy signal, a decline, a wrong number, or no answer within the ring timeout).
Once answered, the far end's audio arrives every 20 ms as :class:`AudioIn` (μ-law, 8 kHz),
key presses as :class:`DtmfIn`, and a hang-up as :class:`RemoteHangup`; the bot's audio is
queued for PJSIP's media clock, which plays it out at real time.

A transfer to an agent is either blind (SIP REFER: the customer's side calls the agent) or
bridged: the bot calls the agent, says who is coming in one sentence, joins the two calls
and drops out. Either way a :class:`TransferRecord` says what happened and when.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import pjsua2 as pj

from voice import metrics
from voice.audio import FRAME_MS, MULAW_8K, PCM_8K, decode, encode, frames
from voice.errors import TransportError
from voice.events import Answer, AudioIn, DtmfIn, InboundEvent, RemoteHangup
from voice.transports.base import Transport
from voice.transports.sip import outcomes
from voice.transports.sip.config import TrunkConfig
from voice.transports.sip.legs import CONFIRMED, DISCONNECTED, EARLY, SILENCE, Leg
from voice.transports.sip.stack import SipStack

log = logging.getLogger("voice.sip")

HANDOFF_HEADER = "X-Offercall-Handoff"
TRANSFER_FAILED_TEXT = "抱歉，客户经理暂时无法接通，稍后会有专人给您回电。"
Synthesize = Callable[[str], Awaitable[bytes]]
"""Text to 8 kHz μ-law audio in the bot's voice (the transport's format)."""


@dataclass
class TransferRecord:
    """How a call was handed to an agent: ``mode`` refer or bridge; ``status`` what came of it
    (``accepted`` / ``bridged`` / ``failed``), with the SIP code and the times."""

    handoff_id: int | None
    mode: str
    target: str
    status: str = "started"
    sip_code: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    ended_at: datetime | None = None
    detail: str = ""
    callback_promised: bool = False
    """The transfer failed and the customer was told a manager will call back."""

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat() if self.ended_at else None
        return data


class _LegEvents:
    """A leg's news, moved from PJSIP's threads onto the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str) -> None:
        self.loop = loop
        self.name = name
        self.states: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()
        self.transfer: asyncio.Queue[tuple[int, str, bool]] = asyncio.Queue()
        self.inbound: asyncio.Queue[InboundEvent | None] = asyncio.Queue()
        self.audio_enabled = False
        self.early_frames = 0
        self.backlog: collections.Counter[int] = collections.Counter()
        """How many inbound frames were waiting for the session, sampled at every frame."""
        self.final_stats: dict[str, int] = {}

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            pass

    def on_state(self, state: str, code: int, reason: str) -> None:
        self._post(self.states.put_nowait, (state, code, reason))

    def on_audio(self, pcm: bytes) -> None:
        self._post(self._audio, pcm)

    def _audio(self, pcm: bytes) -> None:
        if not self.audio_enabled:
            if pcm != SILENCE:  # early media (ringback, a carrier's announcement): not the customer
                self.early_frames += 1
            return
        self.inbound.put_nowait(AudioIn(encode(pcm, "mulaw")))
        self.backlog[self.inbound.qsize()] += 1

    def on_dtmf(self, digit: str, method: str) -> None:
        log.info("voice.sip.dtmf", extra={"leg": self.name, "digit": digit, "method": method})
        self._post(self.inbound.put_nowait, DtmfIn(digit))

    def on_transfer_status(self, code: int, reason: str, final: bool) -> None:
        self._post(self.transfer.put_nowait, (code, reason, final))

    def on_final_stats(self, stats: dict[str, int]) -> None:
        self.final_stats = dict(stats)  # a single assignment: safe from another thread
        metrics.count_frames(stats)  # prometheus_client's counters are thread-safe


async def _until_disconnected(events: _LegEvents, timeout_s: float) -> None:
    """Waits (a bounded time) for the leg to report that it is gone."""
    deadline = time.monotonic() + timeout_s
    with contextlib.suppress(asyncio.TimeoutError):
        while True:
            state, _, _ = await asyncio.wait_for(events.states.get(), max(deadline - time.monotonic(), 0.001))
            if state == DISCONNECTED:
                return


class SipTransport(Transport):
    """One outbound call through the stack's trunk (see the module docstring)."""

    name = "sip"
    format = MULAW_8K
    """What the session exchanges with this transport: the bot's prompts come from the same
    μ-law phrase cache as other phone calls. PJSIP codes to and from G.711 itself (μ-law to
    linear and back is lossless)."""

    def __init__(
        self,
        stack: SipStack,
        number: str,
        *,
        trunk: TrunkConfig | None = None,
        call_id: str = "",
        synthesize: Synthesize | None = None,
        briefing: Callable[[int | None, str], Awaitable[str]] | None = None,
        on_transfer: Callable[[TransferRecord], Awaitable[None]] | None = None,
    ) -> None:
        self.stack = stack
        self.trunk = trunk or stack.config.trunk
        self.uri = self.trunk.uri_for(number) if not number.startswith("sip") else number
        self.call_id = call_id
        self.synthesize = synthesize
        self.briefing = briefing
        self.on_transfer = on_transfer
        self._leg: weakref.ref[Leg] | None = None
        self.events_from: _LegEvents | None = None
        self.answer: Answer | None = None
        self.transfer_record: TransferRecord | None = None
        self.timings: dict[str, float] = {}
        """Milliseconds from the INVITE: ``provisional`` (post-dial delay), ``answered``, ``ended``."""
        self._hung_up = False

    # --------------------------------------------------------------- dialling
    async def connect(self) -> Answer:
        """Dials; returns ``answered`` or why not (busy, declined, no_answer, invalid_number,
        unreachable, failed), with the SIP code and timings in ``detail``."""
        await self.stack.start()
        events = _LegEvents(asyncio.get_running_loop(), self.call_id or self.uri)
        self.events_from = events
        headers = {"X-Offercall-Call": self.call_id} if self.call_id else {}
        started = time.monotonic()
        try:
            self._leg = await self.stack.run(lambda: self._dial(self.uri, events, headers))
        except TransportError as exc:
            log.warning("voice.sip.dial_failed", extra={"uri": self.uri, "error": str(exc)})
            self.answer = Answer(outcomes.FAILED, {"error": str(exc)})
            return self.answer
        self.answer = await self._await_answer(self._leg, events, started, self.trunk.ring_timeout_s)
        self.timings = dict(self.answer.detail.get("timings_ms", {}))
        if self.answer.answered:
            events.audio_enabled = True
        return self.answer

    @property
    def leg(self) -> Leg | None:
        """The call leg while PJSIP still has it (None before dialling and once it is over)."""
        return self._leg() if self._leg is not None else None

    def _dial(self, uri: str, listener: _LegEvents, headers: dict[str, str]) -> weakref.ref[Leg]:
        """On the stack's thread: a new leg, INVITE sent (the stack owns it)."""
        leg = Leg(self.stack, self.stack.account(self.trunk), listener, listener.name)
        leg.uri = uri
        param = pj.CallOpParam(True)
        for name, value in headers.items():
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            param.txOption.headers.append(header)
        try:
            leg.makeCall(uri, param)
        except pj.Error:
            self.stack.retire(leg)
            raise
        return weakref.ref(leg)

    async def _await_answer(self, leg: weakref.ref[Leg], events: _LegEvents, started: float,
                            timeout_s: float) -> Answer:
        """Waits for the leg's INVITE to end: answered, refused, or CANCELled at the timeout.
        ``detail`` has the SIP code and ``timings_ms`` (``provisional``: post-dial delay)."""
        deadline = started + timeout_s
        timings: dict[str, float] = {}
        detail: dict[str, Any] = {"uri": getattr(leg(), "uri", ""), "timings_ms": timings}

        def mark(name: str) -> None:
            timings[name] = round((time.monotonic() - started) * 1000, 1)

        while True:
            try:
                state, code, reason = await asyncio.wait_for(
                    events.states.get(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                await self._end_leg(leg(), 487)  # CANCEL
                await _until_disconnected(events, timeout_s=4)  # 487 and ACK: the line is free
                mark("ended")
                detail.update(sip_code=487, reason="ring timeout", early_media_ms=events.early_frames * FRAME_MS)
                return Answer(outcomes.NO_ANSWER, detail)
            if state == EARLY and "provisional" not in timings:
                mark("provisional")
                detail["provisional_code"] = code
            elif state == CONFIRMED:
                mark("answered")
                detail["sip_code"] = code
                return Answer("answered", detail)
            elif state == DISCONNECTED:
                mark("ended")
                status = outcomes.failure_status(code)
                detail.update(sip_code=code, reason=reason, early_media_ms=events.early_frames * FRAME_MS)
                log.info("voice.sip.not_answered", extra={"uri": detail["uri"], "code": code, "status": status})
                return Answer(status, detail)

    # ------------------------------------------------------------------ media
    async def events(self) -> AsyncIterator[InboundEvent]:
        events = self.events_from
        if events is None or self.answer is None or not self.answer.answered:
            return
        watcher = asyncio.create_task(self._watch_hangup(events))
        try:
            while True:
                event = await events.inbound.get()
                if event is None:
                    return
                yield event
                if isinstance(event, RemoteHangup):
                    return
        finally:
            events.audio_enabled = False  # nobody listens any more: stop queueing audio
            watcher.cancel()

    async def _watch_hangup(self, events: _LegEvents) -> None:
        while True:
            state, code, reason = await events.states.get()
            if state == DISCONNECTED:
                events.audio_enabled = False
                if not self._hung_up:
                    events.inbound.put_nowait(RemoteHangup(f"remote hang-up ({code} {reason})".strip()))
                events.inbound.put_nowait(None)
                return

    async def send_audio(self, data: bytes) -> None:
        leg = self.leg
        if leg is not None and not self._hung_up:
            leg.port.outgoing.extend(frames(decode(data, "mulaw"), PCM_8K))

    async def clear_audio(self) -> None:
        leg = self.leg
        if leg is not None:
            leg.port.outgoing.clear()

    async def hangup(self, outcome: str) -> None:
        """Lets the queued audio play out, then sends BYE."""
        if self._hung_up:
            return
        if self.events_from is not None:
            self.events_from.audio_enabled = False  # the bot has had its last word
        await self._drain(self._leg, timeout_s=10)
        self._hung_up = True
        await self._end_leg(self.leg, 200)

    async def _drain(self, ref: weakref.ref[Leg] | None, timeout_s: float) -> None:
        """Waits until the leg has played what is queued for it (or is gone)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leg = ref() if ref is not None else None
            if leg is None or not leg.port.outgoing or leg.state == DISCONNECTED:
                return
            del leg
            await asyncio.sleep(FRAME_MS / 1000)

    async def _end_leg(self, leg: Leg | None, code: int) -> None:
        if leg is None:
            return
        ref = weakref.ref(leg)
        del leg

        def hang_up() -> None:
            alive = ref()
            if alive is not None:
                alive.hang_up(code)

        with contextlib.suppress(TransportError):
            await self.stack.run(hang_up)

    # --------------------------------------------------------------- transfer
    async def transfer(self, handoff_id: int | None, reason: str) -> None:
        """Hands the customer to an agent (REFER or bridge, per the trunk) and records it."""
        if self.leg is None:
            return
        await self._drain(self._leg, timeout_s=10)
        target = self.trunk.agent_uri
        record = TransferRecord(handoff_id, self.trunk.transfer_mode, target)
        self.transfer_record = record
        try:
            if record.mode == "bridge":
                await self._bridge(record, reason)
            else:
                await self._refer(record)
        finally:
            record.ended_at = datetime.now(timezone.utc)
            log.info("voice.sip.transfer", extra=record.as_dict())
            if self.on_transfer is not None:
                await self.on_transfer(record)

    async def _refer(self, record: TransferRecord, timeout_s: float = 30.0) -> None:
        """Blind transfer: REFER, then follow the NOTIFYs until the agent's side answered or
        refused; our leg is ended either way."""
        events = self.events_from
        assert events is not None

        def refer() -> None:
            leg = self.leg
            if leg is None:
                raise TransportError("the customer hung up before the transfer")
            leg.xfer(record.target, pj.CallOpParam(True))

        try:
            await self.stack.run(refer)
        except TransportError as exc:
            record.status, record.detail = "failed", str(exc)
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                code, reason, final = await asyncio.wait_for(events.transfer.get(), deadline - time.monotonic())
            except asyncio.TimeoutError:
                break
            record.sip_code, record.detail = code, reason
            if code >= 300 or (200 <= code < 300 and (final or code != 202)):
                break
        if 200 <= record.sip_code < 300:
            record.status = "accepted"
            self._hung_up = True
            await self._end_leg(self.leg, 200)
            return
        record.status = "failed"
        record.detail = record.detail or "no answer to the REFER"
        await self._give_up(record)  # the customer is still on our line: tell them

    async def _bridge(self, record: TransferRecord, reason: str) -> None:
        """Warm transfer: call the agent, brief them, join the two calls, drop out."""
        customer = self._leg
        assert customer is not None
        agent_events = _LegEvents(asyncio.get_running_loop(), f"{self.call_id or self.uri}:agent")
        headers = {HANDOFF_HEADER: str(record.handoff_id)} if record.handoff_id else {}
        started = time.monotonic()
        try:
            agent = await self.stack.run(lambda: self._dial(record.target, agent_events, headers))
        except TransportError as exc:
            record.status, record.detail = "failed", str(exc)
            await self._give_up(record)
            return
        answer = await self._await_answer(agent, agent_events, started, self.trunk.agent_ring_timeout_s)
        record.sip_code = int(answer.detail.get("sip_code", 0))
        if not answer.answered:
            record.status, record.detail = "failed", f"the agent's line: {answer.status}"
            await self._give_up(record)
            return
        if self.briefing is not None and self.synthesize is not None:
            sentence = await self.briefing(record.handoff_id, reason)
            audio = decode(await self.synthesize(sentence), "mulaw")
            agent_leg = agent()
            if agent_leg is not None:
                agent_leg.port.outgoing.extend(frames(audio, PCM_8K))
            del agent_leg
            record.detail = sentence
            await self._drain(agent, timeout_s=30)

        def join() -> bool:
            customer_leg, agent_leg = customer(), agent()
            if customer_leg is None or customer_leg.state == DISCONNECTED:
                if agent_leg is not None:
                    agent_leg.hang_up(200)
                return False
            if agent_leg is None or agent_leg.state == DISCONNECTED:
                return False
            customer_leg.bridge(agent_leg)
            return True

        if not await self.stack.run(join):
            record.status = "failed"
            record.detail = "a side hung up before the agent was connected"
            if self.leg is not None:
                await self._give_up(record)
            return
        self._hung_up = True  # the bot is out of the call; the stack keeps the two legs joined
        record.status = "bridged"
        if self.events_from is not None:
            self.events_from.audio_enabled = False
            self.events_from.inbound.put_nowait(None)

    async def _give_up(self, record: TransferRecord) -> None:
        """The agent could not be reached: tell the customer a manager will call back (the
        ticket becomes a callback task), and end the call."""
        if self.synthesize is not None and self.leg is not None:
            audio = await self.synthesize(TRANSFER_FAILED_TEXT)
            await self.send_audio(audio)
            record.callback_promised = True
        self._hung_up = True
        await self._drain(self._leg, timeout_s=15)
        await self._end_leg(self.leg, 200)

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        """Media health of the call: glitches in the bot's audio, the inbound backlog, and the
        RTP counters (final once the call is over)."""
        events = self.events_from
        if events is None:
            return {}
        leg = self.leg
        media = {**leg.port.stats(), **leg.stream_stats} if leg is not None else dict(events.final_stats)
        return {**media, **backlog_summary(events.backlog), "early_media_frames": events.early_frames}


def backlog_summary(backlog: collections.Counter[int]) -> dict[str, int]:
    """The largest and the 95th-percentile number of inbound frames waiting for the session."""
    total = sum(backlog.values())
    if not total:
        return {"max_inbound_backlog_frames": 0, "p95_inbound_backlog_frames": 0}
    seen, p95 = 0, 0
    for size in sorted(backlog):
        seen += backlog[size]
        if seen >= 0.95 * total:
            p95 = size
            break
    return {"max_inbound_backlog_frames": max(backlog), "p95_inbound_backlog_frames": p95}
