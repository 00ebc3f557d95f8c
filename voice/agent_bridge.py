"""A transferred call held in the agents' queue, then bridged to the agent who claims it: the
customer's speech goes to the agent's console, and what the agent types is spoken to the
customer in the bot's voice. The queue's side is an :class:`AgentLine`; the call's side, the
few controls of :class:`CallControls`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

from bot.client import BotTurn
from core.vocabulary import CallOutcome, EndedBy
from voice.call_events import CallTooLong, CustomerEvent, CustomerSpoke, LineClosed
from voice.events import (
    AgentDone,
    AgentJoined,
    AgentSaid,
    CallbackPromised,
    CallEnd,
    LineEvent,
    TranscriptEntry,
)


class AgentLine(Protocol):
    """The call's side of a handoff while the customer waits for, then talks to, a human agent
    (``offercall.agent_line.HandoffLine`` fits). Without one, a transfer hands the call to the
    transport."""

    def events(self, handoff_id: int) -> AsyncIterator[LineEvent]: ...

    async def customer_said(self, handoff_id: int, text: str) -> None: ...

    async def connected(self, handoff_id: int) -> None: ...

    async def customer_left(self, handoff_id: int, reason: str) -> None: ...


class CallControls(Protocol):
    """What the bridge may do with the call (``voice.session.CallSession`` fits)."""

    async def next_event(self) -> CustomerEvent: ...

    def note(self, speaker: str, text: str, start_ms: float | None = None, **fields: Any) -> TranscriptEntry: ...

    async def say(self, turn: BotTurn, speaker: str = "bot") -> asyncio.Future[None]: ...

    async def wait_played(self, played: asyncio.Future[None]) -> None: ...

    async def hang_up(self, outcome: str) -> None: ...

    async def end_for_max_duration(self) -> CallEnd: ...


class AgentBridge:
    """Runs the call from the transfer to its end (see the module docstring)."""

    def __init__(self, call: CallControls, line: AgentLine) -> None:
        self.call = call
        self.line = line

    async def run(self, handoff_id: int) -> CallEnd:
        call, line = self.call, self.line
        agent_events = line.events(handoff_id)
        from_agent = asyncio.ensure_future(anext(agent_events))
        from_customer = asyncio.ensure_future(call.next_event())
        connected = False
        try:
            while True:
                done, _ = await asyncio.wait({from_agent, from_customer}, return_when=asyncio.FIRST_COMPLETED)
                if from_customer in done:
                    ended = await self._from_customer(handoff_id, from_customer.result())
                    if ended is not None:
                        return ended
                    from_customer = asyncio.ensure_future(call.next_event())
                if from_agent in done:
                    try:
                        said = from_agent.result()
                    except StopAsyncIteration:
                        said = AgentDone("the handoff line closed")
                    if isinstance(said, AgentJoined) and not connected:
                        connected = True
                        call.note("event", f"agent {said.name} connected", kind="agent_joined")
                        await line.connected(handoff_id)
                    elif isinstance(said, AgentSaid):
                        await call.say(BotTurn([said.text], []), speaker="agent")
                    elif isinstance(said, CallbackPromised):
                        call.note("event", "no agent in time: callback promised", kind="callback")
                        await call.wait_played(await call.say(BotTurn([said.text], [])))
                        await call.hang_up(CallOutcome.CALLBACK)
                        return CallEnd(CallOutcome.CALLBACK, EndedBy.BOT)
                    elif isinstance(said, AgentDone):
                        call.note("event", f"agent ended the call: {said.reason}", kind="hangup")
                        await call.hang_up(CallOutcome.TRANSFERRED)
                        return CallEnd(CallOutcome.TRANSFERRED, EndedBy.AGENT)
                    from_agent = asyncio.ensure_future(anext(agent_events))
        finally:
            for waiting in (from_agent, from_customer):
                waiting.cancel()
            with contextlib.suppress(Exception):
                await agent_events.aclose()  # type: ignore[attr-defined]

    async def _from_customer(self, handoff_id: int, event: CustomerEvent) -> CallEnd | None:
        call, line = self.call, self.line
        if isinstance(event, LineClosed):
            call.note("event", "customer hung up while with the agent queue", kind="hangup")
            await line.customer_left(handoff_id, "the customer hung up")
            return CallEnd(CallOutcome.TRANSFERRED, EndedBy.CUSTOMER)
        if isinstance(event, CallTooLong):
            await line.customer_left(handoff_id, "maximum call duration")
            return await call.end_for_max_duration()
        if isinstance(event, CustomerSpoke) and event.final.text:
            call.note("customer", event.final.text, event.speech.started_ms, raw_text=event.final.raw,
                      end_ms=event.speech.at_ms, asr_confidence=_round(event.final.confidence))
            await line.customer_said(handoff_id, event.final.text)
        return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
