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


def funnel_facts(result: CallResult) -> dict[str, Any]:
    """The funnel stages this call reached, from its transcript and directives."""
    transcript = result.transcript
    disclosure, offer = _prompt(transcript, "disclosure"), _prompt(transcript, "offer")
    spoke_during_offer = _started(offer) and any(
        e.speaker == "customer" and e.kind == "speech" and e.start_ms >= offer.start_ms
        for e in transcript
    )
    offer_heard = bool(offer and offer.completed) or spoke_during_offer
    transfer = next((d for d in result.directives if d.get("directive") == "transfer"), None)
    interested = transfer is not None or any(
        e.speaker == "customer" and e.intent == "request_handoff" for e in transcript)
    return {
        "answered": result.outcome not in (CallOutcome.NO_ANSWER, CallOutcome.BUSY),
        "voicemail": result.outcome == CallOutcome.VOICEMAIL,
        "right_person": disclosure is not None,
        "disclosure_played": bool(disclosure and disclosure.completed),
        "offer_heard": offer_heard,
        "hung_up_mid_offer": _started(offer) and not offer_heard and result.ended_by == EndedBy.CUSTOMER,
        "interested": interested,
        "transferred": transfer is not None and result.handoff_id is not None,
        "ended_by": result.ended_by,
        "duration_ms": round(result.duration_ms),
    }


def disclosure_proof(result: CallResult) -> dict[str, Any] | None:
    """When the disclosure was played, in media time, relative to the offer; with the recording
    that holds the audio. None when the call never reached the disclosure."""
    disclosure, offer = _prompt(result.transcript, "disclosure"), _prompt(result.transcript, "offer")
    if disclosure is None:
        return None

    def span(entry: TranscriptEntry | None) -> dict[str, Any] | None:
        if entry is None:
            return None
        return {"text": entry.text, "start_ms": round(entry.start_ms),
                "end_ms": None if entry.end_ms is None else round(entry.end_ms),
                "completed": entry.completed}

    before = (
        disclosure.completed and disclosure.end_ms is not None
        and (offer is None or offer.end_ms is None or disclosure.end_ms <= offer.start_ms)
    )
    return {
        "disclosure": span(disclosure), "offer": span(offer),
        "disclosure_before_offer": bool(before), "recording": result.recording_path,
        "transcript": result.transcript_path,
    }
