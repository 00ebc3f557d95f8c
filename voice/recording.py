"""A call's recording on disk: a two-channel WAV (left customer, right bot) and a JSON transcript."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from voice.audio import interleave, write_wav
from voice.events import TranscriptEntry


class CallRecorder:
    """Collects both sides of a call's audio, aligned on media time, and saves them."""

    def __init__(self, call_id: str, directory: Path, sample_rate: int) -> None:
        self.call_id = call_id
        self.directory = Path(directory)
        self.sample_rate = sample_rate
        self._customer = bytearray()
        self._bot = bytearray()

    def _offset(self, at_ms: float) -> int:
        return int(at_ms * self.sample_rate / 1000) * 2

    def add_customer(self, pcm: bytes) -> None:
        """Appends customer audio (16-bit PCM at the call's rate); it defines media time."""
        self._customer += pcm

    def add_bot(self, pcm: bytes, at_ms: float) -> None:
        """Places bot audio at media time ``at_ms`` (gaps before it become silence)."""
        offset = self._offset(at_ms)
        if len(self._bot) < offset:
            self._bot += bytes(offset - len(self._bot))
        self._bot[offset : offset + len(pcm)] = pcm

    @property
    def paths(self) -> tuple[Path, Path]:
        """Where the WAV and the JSON transcript go."""
        return self.directory / f"{self.call_id}.wav", self.directory / f"{self.call_id}.json"

    def save(self, transcript: list[TranscriptEntry], meta: dict[str, Any]) -> tuple[Path, Path]:
        """Writes the stereo WAV and the transcript (atomically); returns their paths."""
        wav_path, json_path = self.paths
        write_wav(wav_path, interleave(bytes(self._customer), bytes(self._bot)), self.sample_rate, 2)
        document = {
            "call_id": self.call_id,
            **meta,
            "sample_rate": self.sample_rate,
            "channels": {"left": "customer", "right": "bot"},
            "transcript": [entry.as_dict() for entry in transcript],
        }
        partial = json_path.with_name(json_path.name + ".part")
        partial.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
        partial.replace(json_path)
        return wav_path, json_path
