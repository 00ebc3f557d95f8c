"""Calls to simulated customers, for the CLI, the tests and the benchmarks: a customer who
follows a script, spoken with the neural voice through the 8 kHz telephone band, against the
real bot; optionally held for an agent at the console of a running ``offercall serve``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp

from core.settings import Settings
from offercall.voice_calls import VoiceRuntime, run_call
from persistence.engine import open_database
from voice.agent_bridge import AgentLine
from voice.events import CallResult, TranscriptEntry
from voice.transports.simulated import ScriptTurn, SimulatedCustomer, prepare_turns


@dataclass
class SimulatedCallRun:
    """What a simulated call produced, for the CLI and tests."""

    result: CallResult
    customer: SimulatedCustomer


async def simulated_call(
    settings: Settings,
    customer_id: str,
    script: list[ScriptTurn],
    *,
    speed: float = 1.0,
    answer: str = "answered",
    runtime: VoiceRuntime | None = None,
    out: TextIO | None = None,
    customer_options: dict[str, Any] | None = None,
    line: AgentLine | None = None,
) -> SimulatedCallRun:
    """Places one call to a simulated customer who follows ``script``; prints it live to ``out``."""
    runtime = runtime or VoiceRuntime(settings)
    await runtime.load()
    turns = await prepare_turns(script, runtime.speaker)
    customer = SimulatedCustomer(turns, speed=speed, answer=answer, **(customer_options or {}))
    await runtime.warm(customer.format)
    engine = open_database(settings)

    def show(entry: TranscriptEntry) -> None:
        if out is not None:
            print(format_entry(entry), file=out, flush=True)

    async with aiohttp.ClientSession() as http:
        result = await run_call(
            settings, runtime, engine, http,
            customer_id=customer_id, transport=customer, on_entry=show, line=line,
        )
    engine.dispose()
    return SimulatedCallRun(result, customer)


async def call_via_agent_queue(
    settings: Settings, customer_id: str, script: list[ScriptTurn], **options: Any
) -> SimulatedCallRun:
    """A simulated call whose transfer waits in the agent queue (with the SLA running) until an
    agent takes it over from the console of a running ``offercall serve``."""
    from handoff.service import HandoffService
    from handoff.sla import SlaPolicy
    from offercall.agent_line import HandoffLine

    engine = open_database(settings)
    service = HandoffService(engine, SlaPolicy.from_settings(settings))
    await service.start()
    try:
        return await simulated_call(settings, customer_id, script, line=HandoffLine(service), **options)
    finally:
        await service.stop()
        engine.dispose()


SPEAKERS = {"bot": "机器人", "customer": "客户", "event": "  ··"}


def format_entry(entry: TranscriptEntry) -> str:
    """One transcript line as printed live: time, speaker, text and what was understood."""
    seconds = entry.start_ms / 1000
    line = f"[{int(seconds // 60):02d}:{seconds % 60:04.1f}] {SPEAKERS.get(entry.speaker, entry.speaker)}: {entry.text}"
    if entry.speaker == "customer" and entry.kind == "speech":
        details = [f"{entry.intent} {entry.intent_confidence}"] if entry.intent else []
        if entry.raw_text and entry.repair and entry.repair != "none":
            details.append(f"heard {entry.raw_text!r}, {entry.repair}")
        if details:
            line += f"   ({'; '.join(details)})"
    elif entry.kind not in ("speech",):
        line += f"   [{entry.kind}]"
    return line
