"""The simulated phone network a campaign dials by default: each customer is a persona (answers
or not, a person or a voicemail box, and what they say), played by the voice layer's simulated
customer through the 8 kHz μ-law band. Every dial is appended to a dial log first, the
network's own record of what was dialled (the tests compare it with the attempts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from outbound.campaigns import DialJob
from voice.transports.simulated import (
    SimulatedCustomer,
    parse_script,
    prepare_turns,
    voicemail_greeting_text,
)
from voice.tts import Speaker

ANSWERS = ("answered", "no_answer", "busy", "voicemail")
PERSON_GREETING = "喂，你好"


class PersonaError(ValueError):
    """A personas file that cannot be used."""


@dataclass(frozen=True)
class Persona:
    """How a simulated customer behaves on one attempt."""

    answer: str = "answered"
    greeting: str | None = None
    """What is heard on pick-up; by default 喂，你好 from a person, the carrier's voicemail
    prompt from a voicemail box."""
    script: tuple[str, ...] = ("不用了，谢谢",)

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise PersonaError(f"answer must be one of {', '.join(ANSWERS)}, not {self.answer!r}")

    def script_lines(self) -> list[str]:
        """The simulated customer's script, greeting first."""
        greeting = self.greeting or (
            voicemail_greeting_text() if self.answer == "voicemail" else PERSON_GREETING)
        return [f"[greet] {greeting}", *self.script]


@dataclass(frozen=True)
class Personas:
    """Customer id -> their behaviour per attempt (the last one repeats)."""

    by_customer: dict[str, tuple[Persona, ...]] = field(default_factory=dict)
    default: Persona = Persona()

    def for_attempt(self, customer_id: str, attempt_no: int) -> Persona:
        """The persona of this customer on this attempt."""
        plan = self.by_customer.get(customer_id)
        if not plan:
            return self.default
        return plan[min(attempt_no, len(plan)) - 1]


def _persona(data: Any, where: str) -> Persona:
    if not isinstance(data, dict):
        raise PersonaError(f"{where}: expected a mapping with answer/greeting/script")
    unknown = set(data) - {"answer", "greeting", "script"}
    if unknown:
        raise PersonaError(f"{where}: unknown keys {sorted(unknown)}")
    script = data.get("script", list(Persona.script))
    if isinstance(script, str):
        script = [script]
    return Persona(answer=data.get("answer", "answered"),
                   greeting=data.get("greeting"), script=tuple(script))


def load_personas(path: Path) -> Personas:
    """Reads ``customer_id: {answer, greeting, script}`` (or a list of them, one per attempt),
    plus an optional ``default``."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise PersonaError(f"{path}: expected a mapping of customer ids")
    default = _persona(data.pop("default"), "default") if "default" in data else Persona()
    plans = {}
    for customer_id, entry in data.items():
        entries = entry if isinstance(entry, list) else [entry]
        plans[str(customer_id)] = tuple(
            _persona(e, f"{customer_id}[{i}]") for i, e in enumerate(entries, 1))
    return Personas(plans, default)


REPLY_WALL_GAP_MS = 1000.0
"""How long, on the wall clock, a simulated customer hears the bot pause before answering, however
fast the campaign plays: the bot's real voice on a busy machine can pause that long between
clauses of one turn."""


class SimulatedNetwork:
    """Places a campaign's calls to simulated customers (a ``CallPlacer`` for the dialer)."""

    def __init__(
        self,
        speaker: Speaker,
        run_call: Callable[..., Any],
        personas: Personas,
        *,
        speed: float = 1.0,
        dial_log: Path | None = None,
    ) -> None:
        self.speaker = speaker
        """The voice the simulated customers speak with."""
        self.run_call = run_call
        self.personas = personas
        self.speed = speed
        self.dial_log = dial_log

    async def place(self, job: DialJob):
        """Dials ``job``'s customer and runs the call to its end."""
        persona = self.personas.for_attempt(job.customer_id, job.attempt_no)
        self._log(job, persona)
        turns = await prepare_turns(parse_script(persona.script_lines()), self.speaker)
        customer = SimulatedCustomer(turns, speed=self.speed, answer=persona.answer,
                                     wall_gap_ms=REPLY_WALL_GAP_MS)
        return await self.run_call(customer, job)

    def _log(self, job: DialJob, persona: Persona) -> None:
        if self.dial_log is None:
            return
        line = {"customer_id": job.customer_id, "attempt_no": job.attempt_no, "call_id": job.call_id,
                "answer": persona.answer, "at": time.time()}
        with open(self.dial_log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
