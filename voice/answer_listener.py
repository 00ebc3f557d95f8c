"""A second hearing of the customer's answer, constrained to what the question expects.

While the customer answers a question that expects short answers (see
:data:`voice.repair.EXPECTED_ANSWERS`), the same audio goes to a recogniser restricted to those
answers (:func:`voice.repair.answer_grammar`). Its result backs up the free transcript when that
is no answer at all, through :func:`voice.repair.constrained_answer` and :func:`voice.repair.repair`.
A grammar decode of a short answer costs about 15 ms per second of speech.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from dataclasses import dataclass

from voice.asr import CallRecognizer, FinalTranscript
from voice.audio import AudioFormat
from voice.repair import answer_grammar, constrained_answer


@dataclass(frozen=True)
class ConstrainedHearing:
    """What the constrained recogniser heard of one utterance, for a question of ``kind``."""

    kind: str
    final: FinalTranscript

    @property
    def answer(self) -> str | None:
        """The expected phrase heard (是我), when the decode is exactly one, every word confident."""
        return constrained_answer(self.final.raw, [w.confidence for w in self.final.words], self.kind)


class AnswerListener:
    """Per call: one constrained recogniser per kind of question, made on first use, fed only
    while an utterance that began after such a question lasts."""

    def __init__(self, model: object, source: AudioFormat, *, executor: Executor | None = None) -> None:
        self._model = model
        self._source = source
        self._executor = executor
        self._recognizers: dict[str, CallRecognizer] = {}
        self._active: tuple[str, CallRecognizer] | None = None

    def start(self, kind: str | None) -> None:
        """An utterance begins after a question of ``kind``: listen for its answers, if it has any."""
        grammar = answer_grammar(kind)
        if kind is None or grammar is None:
            self._active = None
            return
        if kind not in self._recognizers:
            self._recognizers[kind] = CallRecognizer(
                self._model, self._source, executor=self._executor, grammar=grammar)
        self._active = (kind, self._recognizers[kind])

    async def accept(self, audio: bytes) -> None:
        """Feeds the utterance's audio (nothing happens when no question is being answered)."""
        if self._active is not None:
            await self._active[1].accept(audio)

    async def finish(self) -> ConstrainedHearing | None:
        """The constrained result of the utterance just ended, or None if none was listened for."""
        active, self._active = self._active, None
        if active is None:
            return None
        kind, recognizer = active
        return ConstrainedHearing(kind, await recognizer.finish())

    async def close(self) -> None:
        """The call is over: every recogniser goes back to its pool."""
        self._active = None
        recognizers, self._recognizers = list(self._recognizers.values()), {}
        await asyncio.gather(*(recognizer.close() for recognizer in recognizers))
