"""``offercall call``, ``transcribe`` and ``understand``: the voice layer from a terminal."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from offercall.db import make_engine
from offercall.migrations import migrate
from offercall.settings import Settings
from offercall.voice_calls import VoiceRuntime, run_call
from voice.asr import load_model, transcribe
from voice.audio import read_wav
from voice.events import CallResult, TranscriptEntry
from voice.repair import repair
from voice.session import AgentLine
from voice.transports.simulated import ScriptTurn, SimulatedCustomer, prepare_turns

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
    engine = make_engine(settings.database_url)

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
    from handoff.line import HandoffLine
    from handoff.service import HandoffService
    from offercall.web.app import sla_policy

    engine = make_engine(settings.database_url)
    service = HandoffService(engine, sla_policy(settings))
    await service.start()
    try:
        return await simulated_call(settings, customer_id, script, line=HandoffLine(service), **options)
    finally:
        await service.stop()
        engine.dispose()


def transcribe_file(settings: Settings, path: Path) -> str:
    """The Vosk text of a WAV file, spaces between Chinese words removed."""
    audio = read_wav(path)
    return transcribe(load_model(settings.vosk_model_path), audio.pcm, audio.sample_rate).text


async def understand_files(settings: Settings, paths: list[Path], out: TextIO = sys.stdout) -> int:
    """Prints one JSON line per file: text, repaired text, intent and confidence.

    Loads the Vosk model and the trained Rasa model in this process; no server is needed.
    Returns how many files could not be read.
    """
    from rasa.core.agent import Agent
    from rasa.model import get_latest_model

    model_path = get_latest_model(str(settings.models_dir))
    if model_path is None:
        raise FileNotFoundError(f"no trained model in {settings.models_dir}; run `offercall train`")
    agent = await asyncio.to_thread(Agent.load, model_path)
    asr_model = load_model(settings.vosk_model_path)
    failures = 0
    for path in paths:
        line: dict[str, Any] = {"file": str(path)}
        try:
            audio = read_wav(path)
        except ValueError as exc:
            failures += 1
            print(json.dumps({**line, "error": str(exc)}, ensure_ascii=False), file=out)
            continue
        heard = await asyncio.to_thread(transcribe, asr_model, audio.pcm, audio.sample_rate)
        fixed = repair(heard.raw)
        parsed = await agent.parse_message(fixed.text) if fixed.text else {"intent": {}}
        intent = parsed.get("intent") or {}
        line.update(
            text=heard.text, repaired=fixed.text, repair=fixed.rule,
            asr_confidence=None if heard.confidence is None else round(heard.confidence, 3),
            intent=intent.get("name"),
            confidence=None if intent.get("confidence") is None else round(float(intent["confidence"]), 3),
        )
        print(json.dumps(line, ensure_ascii=False), file=out, flush=True)
    return failures


def prepare_database(settings: Settings) -> None:
    """Makes sure the schema exists before a call writes to it."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    engine.dispose()
