"""The typed messages that move through a call.

Transports produce inbound events (:class:`AudioIn`, :class:`DtmfIn`, :class:`RemoteHangup`);
the session reports what happened as :class:`TranscriptEntry` lines and ends with a
:class:`CallResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.vocabulary import CallOutcome, EndedBy


@dataclass(frozen=True)
class AudioIn:
    """Customer audio in the call's wire format."""

    data: bytes


@dataclass(frozen=True)
class DtmfIn:
    """A key the customer pressed."""

    digit: str


@dataclass(frozen=True)
class RemoteHangup:
    """The far end ended the call (hung up, or the connection dropped)."""

    reason: str = "hangup"


InboundEvent = AudioIn | DtmfIn | RemoteHangup


@dataclass(frozen=True)
class AgentJoined:
    """A human agent has claimed the call's handoff ticket."""

    name: str


@dataclass(frozen=True)
class AgentSaid:
    """Something the agent typed, to be spoken to the customer."""

    text: str


@dataclass(frozen=True)
class CallbackPromised:
    """Nobody claimed the call in time: say ``text`` (a callback promise) and hang up."""

    text: str


@dataclass(frozen=True)
class AgentDone:
    """The agent closed the ticket (or it ended otherwise): the call is over."""

    reason: str = ""


LineEvent = AgentJoined | AgentSaid | CallbackPromised | AgentDone


@dataclass(frozen=True)
class Answer:
    """How the dialled party answered: ``answered`` or a failure such as ``no_answer``, ``busy``."""

    status: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        """True when there is somebody (or something) on the line."""
        return self.status == "answered"


@dataclass
class TranscriptEntry:
    """One line of a call transcript: either side, with times in media milliseconds."""

    speaker: str
    """customer | bot | agent | event"""
    text: str
    start_ms: float
    end_ms: float | None = None
    raw_text: str | None = None
    repair: str | None = None
    grammar_text: str | None = None
    """For repair ``grammar``: what the decode against the question's expected answers heard."""
    intent: str | None = None
    intent_confidence: float | None = None
    asr_confidence: float | None = None
    interrupted: bool = False
    kind: str = "speech"
    """speech | backchannel | dtmf | silence | barge_in | transfer | hangup | error"""
    latency_ms: dict[str, float] | None = None
    prompt: str | None = None
    """For bot speech: which scripted prompt this is (opening, disclosure, offer), if tagged."""
    completed: bool = False
    """For bot speech: its last frame was played (not cut off by a barge-in or a hang-up)."""
    played_text: str | None = None
    """For bot speech cut off: the clauses played to their last frame before it was, as spoken."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, without empty fields."""
        return {k: v for k, v in asdict(self).items() if v not in (None, False)}


@dataclass(frozen=True)
class CallEnd:
    """How a call ended: its outcome, who or what ended it, and the error if it failed."""

    outcome: CallOutcome
    ended_by: EndedBy
    error: str | None = None


@dataclass
class CallResult:
    """How a call ended and where its record is."""

    call_id: str
    customer_id: str
    outcome: CallOutcome
    ended_by: EndedBy
    duration_ms: float
    transcript: list[TranscriptEntry]
    handoff_id: int | None = None
    recording_path: str | None = None
    transcript_path: str | None = None
    error: str | None = None
    directives: list[dict[str, Any]] = field(default_factory=list)

    def bot_texts(self) -> list[str]:
        """Everything the bot said (or began to say), in order."""
        return [e.text for e in self.transcript if e.speaker == "bot" and e.kind == "speech"]

    def summary(self) -> dict[str, Any]:
        """The JSON line printed at the end of a call."""
        return {
            "call_id": self.call_id,
            "customer_id": self.customer_id,
            "outcome": self.outcome,
            "ended_by": self.ended_by,
            "duration_s": round(self.duration_ms / 1000, 1),
            "handoff_id": self.handoff_id,
            "recording": self.recording_path,
            "transcript": self.transcript_path,
            "error": self.error,
        }
