"""What a finished call means for the campaign (pure): the retry outcome, the funnel facts,
and the proof that the disclosure was played before the offer.

The facts come from the call's transcript: bot prompts are tagged by the bot (``opening``,
``disclosure``, ``offer``) and marked ``completed`` when their last frame was played.
"""

from __future__ import annotations

from typing import Any

from core.vocabulary import DIAL_OUTCOME_OF_CALL, CallOutcome, DialOutcome, EndedBy
from voice.events import CallResult, TranscriptEntry


def dial_outcome(result: CallResult) -> DialOutcome:
    """The outcome the campaign schedules by. A callback promised because no agent was free
    belongs to the agents' callback queue, not the dialer: it counts as transferred."""
    if result.outcome == CallOutcome.CALLBACK and result.handoff_id is not None:
        return DialOutcome.TRANSFERRED
    if result.outcome == CallOutcome.ENDED and any(
            d.get("reason") == "do_not_contact" for d in result.directives):
        return DialOutcome.DO_NOT_CONTACT
    try:
        return DIAL_OUTCOME_OF_CALL[CallOutcome(result.outcome)]
    except ValueError:  # not a way a call ends: count it as failed, to be retried
        return DialOutcome.FAILED


def _prompt(transcript: list[TranscriptEntry], name: str) -> TranscriptEntry | None:
    return next((e for e in transcript if e.speaker == "bot" and e.prompt == name), None)


def _started(entry: TranscriptEntry | None) -> bool:
    return entry is not None and entry.kind == "speech" and entry.end_ms is not None


def _plays(transcript: list[TranscriptEntry], name: str) -> list[TranscriptEntry]:
    """Every time the bot started saying prompt ``name`` (it says it again after a barge-in)."""
    return [e for e in transcript if e.speaker == "bot" and e.prompt == name and _started(e)]


def _heard(transcript: list[TranscriptEntry], name: str) -> TranscriptEntry | None:
    """The first play of prompt ``name`` that reached its last frame."""
    return next((e for e in _plays(transcript, name) if e.completed), None)


def funnel_facts(result: CallResult) -> dict[str, Any]:
    """The funnel stages this call reached, from its transcript and directives."""
    transcript = result.transcript
    disclosure, offer = _prompt(transcript, "disclosure"), _prompt(transcript, "offer")
    offer_heard = _heard(transcript, "offer") is not None  # cut off by a barge-in is not heard
    transfer = next((d for d in result.directives if d.get("directive") == "transfer"), None)
    interested = transfer is not None or any(
        e.speaker == "customer" and e.intent == "request_handoff" for e in transcript)
    return {
        "answered": result.outcome not in (CallOutcome.NO_ANSWER, CallOutcome.BUSY),
        "voicemail": result.outcome == CallOutcome.VOICEMAIL,
        "right_person": disclosure is not None,
        "disclosure_played": _heard(transcript, "disclosure") is not None,
        "offer_heard": offer_heard,
        "offer_interrupted": any(e.interrupted for e in _plays(transcript, "offer")),
        "hung_up_mid_offer": _started(offer) and not offer_heard and result.ended_by == EndedBy.CUSTOMER,
        "interested": interested,
        "transferred": transfer is not None and result.handoff_id is not None,
        "ended_by": result.ended_by,
        "duration_ms": round(result.duration_ms),
    }


def disclosure_proof(result: CallResult) -> dict[str, Any] | None:
    """When the disclosure was played, in media time, relative to the offer; with the recording
    that holds the audio. None when the call never reached the disclosure.

    ``disclosure`` is the play heard in full (else the last one started), ``offer`` the first
    offer heard in full (else the first one started); ``cut_off`` lists every play a barge-in or
    a hang-up cut, with exactly what was played of it. The disclosure came first when it was
    heard in full before any offer detail was played."""
    transcript = result.transcript
    if _prompt(transcript, "disclosure") is None:
        return None
    disclosures, offers = _plays(transcript, "disclosure"), _plays(transcript, "offer")
    disclosure = _heard(transcript, "disclosure") or (disclosures[-1] if disclosures else None)
    offer = _heard(transcript, "offer") or (offers[0] if offers else None)

    def span(entry: TranscriptEntry | None) -> dict[str, Any] | None:
        if entry is None:
            return None
        played = {} if entry.completed else {"played_text": entry.played_text or ""}
        return {"text": entry.text, "start_ms": round(entry.start_ms),
                "end_ms": None if entry.end_ms is None else round(entry.end_ms),
                "completed": entry.completed, **played}

    first_offer_at = min((e.start_ms for e in offers), default=None)
    before = (
        disclosure is not None and disclosure.completed and disclosure.end_ms is not None
        and (first_offer_at is None or disclosure.end_ms <= first_offer_at)
    )
    cut_off = [{"prompt": e.prompt, **span(e)} for e in [*disclosures, *offers] if not e.completed]
    return {
        "disclosure": span(disclosure), "offer": span(offer), "cut_off": sorted(cut_off, key=lambda c: c["start_ms"]),
        "disclosure_before_offer": bool(before), "recording": result.recording_path,
        "transcript": result.transcript_path,
    }
