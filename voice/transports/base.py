"""The transport interface every call leg implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any

from voice.audio import AudioFormat
from voice.events import Answer, InboundEvent


class Transport(ABC):
    """One call leg: audio and key presses in, audio and call control out."""

    name: str = "transport"
    format: AudioFormat

    @abstractmethod
    async def connect(self) -> Answer:
        """Places or accepts the call; returns once it is answered or has failed."""

    @abstractmethod
    def events(self) -> AsyncIterator[InboundEvent]:
        """Inbound audio, DTMF and hang-up, in order; ends when the call is over."""

    @abstractmethod
    async def send_audio(self, data: bytes) -> None:
        """Plays one frame of bot audio (in :attr:`format`)."""

    async def clear_audio(self) -> None:
        """Drops bot audio the far end has buffered but not played (barge-in)."""

    async def notify(self, event: dict[str, Any]) -> None:
        """Tells the far end about a transcript line or state change, where it listens."""

    @abstractmethod
    async def transfer(self, handoff_id: int | None, reason: str) -> None:
        """Hands the call to the human agent queue (bridge or redirect)."""

    @abstractmethod
    async def hangup(self, outcome: str) -> None:
        """Ends the call from the bot's side."""
