"""The voice layer's metrics (prometheus_client's default registry of the process that runs
the calls: the dialer worker, or the web server for media streams)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Histogram

from bot.scrape import TURN_BUCKETS

CHANNEL = "voice"
STAGES = ("asr_final", "nlu_dialogue", "tts_first_audio")

TURN_SECONDS = Histogram(
    "offercall_voice_turn_seconds",
    "End of the customer's speech to the first frame of the bot's reply on the line",
    ["channel"], buckets=TURN_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "offercall_voice_turn_stage_seconds",
    "One stage of a voice turn: asr_final (speech end to final text), nlu_dialogue (the bot's "
    "round trip), tts_first_audio (reply to its first audio frame)",
    ["stage"], buckets=TURN_BUCKETS,
)
FRAMES_OUT = Counter(
    "offercall_sip_frames_out", "20 ms frames sent to SIP callers while the bot was on the line")
LATE_FRAMES = Counter(
    "offercall_sip_late_frames",
    "Frames sent as silence because the bot's audio came late (short gaps inside its speech)")


def observe_turn(latency_ms: Mapping[str, float]) -> None:
    """One answered voice turn, from :meth:`voice.latency.TurnLatency.finish`'s breakdown."""
    TURN_SECONDS.labels(CHANNEL).observe(latency_ms["total"] / 1000)
    for stage in STAGES:
        STAGE_SECONDS.labels(stage).observe(max(0.0, latency_ms[stage] / 1000))


def count_frames(stats: Mapping[str, int]) -> None:
    """A SIP leg's final media counters (``MediaPort.stats``)."""
    FRAMES_OUT.inc(max(0, int(stats.get("frames_out", 0))))
    LATE_FRAMES.inc(max(0, int(stats.get("glitch_frames", 0))))
