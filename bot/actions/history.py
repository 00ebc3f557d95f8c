"""Pure readings of a conversation's event list (the ``tracker.events`` dicts)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

FALLBACK_INTENTS = frozenset({"nlu_fallback", "out_of_scope"})

Event = dict[str, Any]


def _intent(event: Event) -> tuple[str | None, float | None]:
    intent = event.get("parse_data", {}).get("intent") or {}
    return intent.get("name"), intent.get("confidence")


def transcript(events: Iterable[Event], last_turns: int = 20) -> list[dict[str, Any]]:
    """Both sides of the conversation, oldest first, at most ``last_turns`` entries.

    Customer entries carry the detected intent and its confidence. Synthetic
    messages such as ``/session_start`` are left out.
    """
    lines: list[dict[str, Any]] = []
    for event in events:
        text = event.get("text")
        if event.get("event") == "user" and text and not text.startswith("/"):
            intent, confidence = _intent(event)
            lines.append(
                {
                    "speaker": "customer",
                    "text": text,
                    "intent": intent,
                    "confidence": None if confidence is None else round(float(confidence), 3),
                    "timestamp": event.get("timestamp"),
                }
            )
        elif event.get("event") == "bot" and text:
            lines.append({"speaker": "bot", "text": text, "timestamp": event.get("timestamp")})
    return lines[-last_turns:]


def detected_intents(events: Iterable[Event]) -> list[str]:
    """The customer's intents in order, synthetic messages left out."""
    return [
        line["intent"]
        for line in transcript(events, last_turns=10_000)
        if line["speaker"] == "customer" and line["intent"]
    ]


def previous_bot_turn(events: Sequence[Event]) -> list[str]:
    """The texts the bot said in its turn before the latest customer message."""
    user_seen = 0
    texts: list[str] = []
    for event in reversed(events):
        kind = event.get("event")
        if kind == "user":
            user_seen += 1
            if user_seen == 2:
                break
        elif kind == "bot" and user_seen == 1 and event.get("text"):
            texts.append(event["text"])
    return list(reversed(texts))


def consecutive_silences(events: Iterable[Event]) -> int:
    """How many of the latest customer messages in a row were silence timeouts."""
    count = 0
    for event in events:
        if event.get("event") != "user":
            continue
        intent, _ = _intent(event)
        if intent == "session_start":
            continue
        count = count + 1 if intent == "silence_timeout" else 0
    return count


def consecutive_fallbacks(events: Iterable[Event]) -> int:
    """How many of the latest customer messages in a row were not understood."""
    count = 0
    for event in events:
        if event.get("event") != "user" or (event.get("text") or "").startswith("/"):
            continue
        intent, _ = _intent(event)
        count = count + 1 if intent in FALLBACK_INTENTS else 0
    return count
