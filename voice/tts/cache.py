"""A cache of synthesised phrases: in memory (LRU, bounded in bytes) and optionally on disk.

Outbound calls repeat the same prompts thousands of times; with a directory the audio is
synthesised once and shared by every process that points at it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from voice.audio import AudioFormat

log = logging.getLogger(__name__)

CACHE_VERSION = 1
"""Bump when engines change how they speak, so old disk entries are ignored."""


@dataclass(frozen=True)
class CacheKey:
    """What a cached phrase depends on."""

    engine: str
    voice: str
    text: str
    fmt: AudioFormat

    @property
    def digest(self) -> str:
        """A stable sha256 name for the disk file."""
        fields = [CACHE_VERSION, self.engine, self.voice, self.text,
                  self.fmt.encoding, self.fmt.sample_rate]
        return hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()


class PhraseCache:
    """Thread-safe phrase cache. ``max_bytes`` bounds memory; the directory is unbounded."""

    def __init__(
        self, directory: str | Path | None = None, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._memory: OrderedDict[CacheKey, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    @property
    def memory_bytes(self) -> int:
        """Bytes of audio held in memory."""
        return self._size

    def get(self, key: CacheKey, *, memory_only: bool = False) -> bytes | None:
        """The cached audio, or None. ``memory_only`` skips the disk and does not count a miss."""
        with self._lock:
            audio = self._memory.get(key)
            if audio is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return audio
        if memory_only:
            return None
        audio = self._read(key)
        with self._lock:
            if audio is None:
                self.misses += 1
                return None
            self.hits += 1
            self._remember(key, audio)
        return audio

    def put(self, key: CacheKey, audio: bytes) -> None:
        """Stores audio in memory and, with a directory, atomically on disk."""
        with self._lock:
            self._remember(key, audio)
        if self.directory is not None:
            self._write(key, audio)

    def _remember(self, key: CacheKey, audio: bytes) -> None:
        """Adds to the LRU and evicts the oldest entries over budget; call with the lock held."""
        old = self._memory.pop(key, None)
        self._size -= len(old) if old is not None else 0
        if len(audio) > self.max_bytes:
            return
        self._memory[key] = audio
        self._size += len(audio)
        while self._size > self.max_bytes:
            _, evicted = self._memory.popitem(last=False)
            self._size -= len(evicted)

    def _path(self, key: CacheKey) -> Path:
        assert self.directory is not None
        return self.directory / f"{key.digest}.{key.fmt.encoding}{key.fmt.sample_rate}"

    def _read(self, key: CacheKey) -> bytes | None:
        if self.directory is None:
            return None
        try:
            audio = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("voice.tts.cache.read_failed error=%r", exc)
            return None
        return audio or None

    def _write(self, key: CacheKey, audio: bytes) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, partial = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(audio)
                os.replace(partial, path)
            except BaseException:
                os.unlink(partial)
                raise
        except OSError as exc:
            log.warning("voice.tts.cache.write_failed directory=%s error=%r", path.parent, exc)
