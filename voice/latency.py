"""Where the time of one bot answer went, from the end of the customer's speech to the first
frame of the bot's reply on the line (wall clock: what the customer waits)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from voice import metrics
from voice.events import TranscriptEntry


@dataclass
class TurnLatency:
    """One answer's timeline (``time.perf_counter`` readings), written onto the customer's
    transcript entry once the reply's first frame is played."""

    entry: TranscriptEntry
    """The customer's turn being answered."""
    endpoint_wall: float
    """The customer's speech was judged over."""
    final_wall: float
    """The recogniser's final text was ready."""
    replied_wall: float
    """The bot's reply arrived."""

    def finish(self, first_audio_wall: float | None = None) -> dict[str, float]:
        """Records the breakdown on the entry (and returns it): recognition, NLU and dialogue,
        synthesis to the first audio, and the total."""
        first_audio = time.perf_counter() if first_audio_wall is None else first_audio_wall
        self.entry.latency_ms = {
            "asr_final": _ms(self.final_wall - self.endpoint_wall),
            "nlu_dialogue": _ms(self.replied_wall - self.final_wall),
            "tts_first_audio": _ms(first_audio - self.replied_wall),
            "total": _ms(first_audio - self.endpoint_wall),
        }
        metrics.observe_turn(self.entry.latency_ms)
        return self.entry.latency_ms


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
