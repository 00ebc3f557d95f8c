"""The call session: one phone call as turns of the Rasa conversation.

Three tasks share one call:

- **listen** reads the transport: records the customer's audio, keeps media time,
  detects speech, feeds the recogniser, stops the bot when the customer talks over it,
  and raises silence and maximum-duration timeouts;
- **speak** plays queued bot audio in 20 ms frames, paced by media time, and records it;
- **converse** sends what the customer said (or pressed, or a timeout) to the bot,
  queues the spoken reply clause by clause, and carries out ``transfer`` and ``hangup``.

Dialogue decisions stay in Rasa: silence arrives there as ``/silence_timeout`` and key
presses as ``/affirm``, ``/deny`` or ``/request_handoff``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.client import BotTurn, Directive, RasaUnavailable
from voice.amd import AmdConfig, AmdDetector, AmdVerdict
from voice.asr import CallRecognizer, FinalTranscript, call_executor
from voice.audio import FRAME_MS, AudioFormat, StreamConverter, decode, frames, rms_dbfs
from voice.errors import VoiceError
from voice.events import (
    AgentDone,
    AgentJoined,
    AgentSaid,
    AudioIn,
    CallbackPromised,
    CallResult,
    DtmfIn,
    LineEvent,
    RemoteHangup,
    TranscriptEntry,
)
from voice.recording import CallRecorder
from voice.repair import Repair, repair
from voice.transports.base import Transport
from voice.tts.speaker import Speaker
from voice.turns import (
    SpeechDetector,
    SpeechEnded,
    SpeechStarted,
    TurnConfig,
    dtmf_message,
    interrupts_bot,
    silence_timed_out,
)

log = logging.getLogger(__name__)

SILENCE_MESSAGE = "/silence_timeout"
SORRY_TEXT = "抱歉，系统暂时出了点问题，我们稍后再联系您。再见！"
MAX_DURATION_TEXT = "抱歉，通话时间已经比较长了，我们稍后再联系您。再见！"
HOLD_TEXT = "请稍等。"
"""Said when the bot is slow to answer, so the customer does not wait in silence."""
HOLD_FINISH_WAIT_S = 3.0
"""The longest the bot's answer waits for the holding phrase to finish playing."""
APOLOGY_WAIT_S = 10.0
"""The longest a failed call waits for its apology to play before hanging up."""


class BotPort(Protocol):
    """What the session needs from the bot (``bot.client.RasaClient`` fits)."""

    async def start(
        self, conversation_id: str, customer_id: str, channel: str,
        extra: dict[str, Any] | None = None,
    ) -> BotTurn: ...

    async def send(
        self, conversation_id: str, text: str, metadata: dict[str, Any] | None = None
    ) -> BotTurn: ...

    async def parse(self, text: str) -> tuple[str | None, float | None]: ...


class AgentLine(Protocol):
    """The call's side of a handoff while the customer waits for, then talks to, a human agent
    (``offercall.agent_line.HandoffLine`` fits). Without one, a transfer hands the call to the transport."""

    def events(self, handoff_id: int) -> AsyncIterator[LineEvent]: ...

    async def customer_said(self, handoff_id: int, text: str) -> None: ...

    async def connected(self, handoff_id: int) -> None: ...

    async def customer_left(self, handoff_id: int, reason: str) -> None: ...


@dataclass(frozen=True)
class SessionConfig:
    """How a call behaves; turn-taking timings live in :class:`TurnConfig`."""

    turn: TurnConfig = field(default_factory=TurnConfig)
    playback_lead_ms: float = 100.0
    """Bot audio sent ahead of media time, as a jitter cushion."""
    pause_between_texts_ms: int = 250
    asr_unsure_below: float = 0.65
    nlu_unsure_below: float = 0.7
    channel: str = "voice"
    detect_machine: bool = False
    """Listen first and hang up on answering machines before the bot says anything."""
    amd: AmdConfig = field(default_factory=AmdConfig)
    bot_hold_ms: int = 1500
    """The bot has not answered after this long: say :data:`HOLD_TEXT`."""
    bot_timeout_ms: int = 6000
    """The bot has not answered after this long: apologise and hang up (outcome ``error``)."""


@dataclass
class _Frame:
    generation: int
    entry: TranscriptEntry
    audio: bytes  # wire format
    first_of_turn: bool = False


@dataclass
class _EntryDone:
    generation: int
    entry: TranscriptEntry


@dataclass
class _TurnDone:
    generation: int
    played: asyncio.Future[None]


@dataclass
class _UserEvent:
    kind: str  # final | dtmf | silence | max_duration | hangup
    final: FinalTranscript | None = None
    speech: SpeechEnded | None = None
    digit: str = ""
    reason: str = ""
    heard_during_bot: bool = False
    endpoint_wall: float = 0.0
    final_wall: float = 0.0


class CallSession:
    """Runs one call from answer to hang-up and returns its :class:`CallResult`."""

    def __init__(
        self,
        *,
        call_id: str,
        customer_id: str,
        transport: Transport,
        bot: BotPort,
        speaker: Speaker,
        asr_model: object,
        recorder: CallRecorder,
        config: SessionConfig | None = None,
        on_entry: Callable[[TranscriptEntry], None] | None = None,
        line: AgentLine | None = None,
        start_metadata: dict[str, Any] | None = None,
    ) -> None:
        self.call_id = call_id
        self.start_metadata = start_metadata
        self.line = line
        self.customer_id = customer_id
        self.transport = transport
        self.bot = bot
        self.speaker = speaker
        self.config = config or SessionConfig()
        self.recorder = recorder
        self.transcript: list[TranscriptEntry] = []
        self._asr_model = asr_model
        self._on_entry = on_entry
        self._fmt = transport.format
        self._clock_ms = 0.0
        self._clock_moved = asyncio.Event()
        self._playback: asyncio.Queue[_Frame | _EntryDone | _TurnDone] = asyncio.Queue()
        self._user_events: asyncio.Queue[_UserEvent] = asyncio.Queue()
        self._generation = 0
        self._bot_pos_ms = 0.0
        self._bot_busy = False  # a bot turn is queued or playing
        self._playing_entry: TranscriptEntry | None = None
        self._waiting_since: float | None = None
        self._expect: str | None = None
        self._latency: dict[str, Any] | None = None
        self._producer: asyncio.Task[None] | None = None
        self._directives: list[dict[str, Any]] = []
        self._amd = AmdDetector(self.config.amd) if self.config.detect_machine else None
        self.machine_verdict: AmdVerdict | None = None
        self._amd_decided = asyncio.Event()

    # ------------------------------------------------------------------ run
    async def run(self) -> CallResult:
        """Connects, converses until someone hangs up, saves the recording, reports."""
        started = time.monotonic()
        # The recogniser is built on the recognition threads while the line rings (never on the
        # event loop, never behind speech synthesis in the default executor).
        recognizer = asyncio.get_running_loop().run_in_executor(
            call_executor(), CallRecognizer, self._asr_model, _pcm_of(self._fmt))
        answer = await self.transport.connect()
        if not answer.answered:
            with contextlib.suppress(Exception):  # back to the pool, for the next call
                await (await recognizer).close()
            self._note("event", answer.status, kind="hangup")
            return self._finish(answer.status, "network", started)
        listen = asyncio.create_task(self._listen(recognizer), name=f"{self.call_id}:listen")
        speak = asyncio.create_task(self._speak(), name=f"{self.call_id}:speak")
        converse = asyncio.create_task(self._converse(), name=f"{self.call_id}:converse")
        try:
            outcome, ended_by, error = await self._supervise(listen, speak, converse)
        finally:
            for task in (listen, speak, converse, self._producer):
                if task is not None and not task.done():
                    task.cancel()
            for task in (listen, speak, converse, self._producer):
                if task is not None:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        return self._finish(outcome, ended_by, started, error)

    async def _supervise(
        self, listen: asyncio.Task[None], speak: asyncio.Task[None],
        converse: asyncio.Task[tuple[str, str, str | None]],
    ) -> tuple[str, str, str | None]:
        """Waits for the conversation to end, watching its siblings: if listening or speaking
        fails, the call ends at once (with an apology when the bot can still speak) instead
        of hanging on a customer nobody hears."""
        pending: set[asyncio.Task[Any]] = {listen, speak, converse}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if converse in done:
                if converse.exception() is None:
                    return converse.result()
                return await self._broken("converse", converse.exception(), speak)
            for task in done:  # listen ends on its own when the line closes; that is news for converse
                if task.exception() is not None:
                    name = "listen" if task is listen else "speak"
                    converse.cancel()
                    return await self._broken(name, task.exception(), speak)

    async def _broken(
        self, part: str, exc: BaseException | None, speak: asyncio.Task[None]
    ) -> tuple[str, str, str | None]:
        """A part of the call failed unexpectedly: apologise if the bot can still be heard,
        hang up, and keep what was said so far."""
        log.error("voice.call.failed", extra={"call_id": self.call_id, "part": part}, exc_info=exc)
        error = f"{part} failed: {exc!r}"
        self._note("event", error, kind="error")
        if not speak.done():
            # Media time moves with the customer's audio; with listening gone, the wall clock
            # has to move it for the apology to play.
            ticker = asyncio.create_task(self._tick_media_clock()) if part == "listen" else None
            await self._interrupt("call failure")
            with contextlib.suppress(Exception):
                played = await self._say(BotTurn([SORRY_TEXT], []))
                await asyncio.wait_for(asyncio.shield(played), APOLOGY_WAIT_S)
            if ticker is not None:
                ticker.cancel()
        with contextlib.suppress(Exception):
            await self.transport.hangup("error")
        return "error", "error", error

    async def _tick_media_clock(self) -> None:
        while True:
            await asyncio.sleep(FRAME_MS / 1000)
            self._clock_ms += FRAME_MS
            self._clock_moved.set()

    def _finish(
        self, outcome: str, ended_by: str, started: float, error: str | None = None
    ) -> CallResult:
        self.transcript.sort(key=lambda entry: entry.start_ms)
        for entry in self.transcript:
            if entry.speaker in ("bot", "agent") and entry.kind == "speech" and entry.end_ms is None:
                entry.kind = "unspoken"
        result = CallResult(
            call_id=self.call_id,
            customer_id=self.customer_id,
            outcome=outcome,
            ended_by=ended_by,
            duration_ms=self._clock_ms,
            transcript=self.transcript,
            handoff_id=next(
                (d.get("handoff_id") for d in self._directives if d["directive"] == "transfer"),
                None,
            ),
            error=error,
            directives=self._directives,
        )
        meta = {k: v for k, v in result.summary().items() if k not in ("recording", "transcript")}
        meta["transport"] = self.transport.name
        meta["wall_s"] = round(time.monotonic() - started, 2)
        try:
            wav, doc = self.recorder.save(self.transcript, meta)
            result.recording_path, result.transcript_path = str(wav), str(doc)
        except OSError as exc:  # the call is over either way; say why the record is missing
            log.error("voice.call.recording_failed", extra={"call_id": self.call_id, "error": str(exc)})
            result.error = result.error or f"recording not saved: {exc}"
        log.info(
            "voice.call.ended",
            extra={"call_id": self.call_id, "outcome": outcome, "ended_by": ended_by},
        )
        return result

    def _note(
        self, speaker: str, text: str, start_ms: float | None = None, **fields: Any
    ) -> TranscriptEntry:
        start = self._clock_ms if start_ms is None else start_ms
        entry = TranscriptEntry(speaker=speaker, text=text, start_ms=start, **fields)
        self.transcript.append(entry)
        if self._on_entry is not None and (speaker != "bot" or entry.kind != "speech"):
            self._on_entry(entry)
        return entry

    # --------------------------------------------------------------- listen
    async def _listen(self, recognizer_ready: asyncio.Future[CallRecognizer]) -> None:
        turn = self.config.turn
        decoder = StreamConverter(self._fmt, _pcm_of(self._fmt))
        recognizer = await recognizer_ready
        detector = SpeechDetector(turn)
        preroll: collections.deque[bytes] = collections.deque(
            maxlen=max(1, turn.preroll_ms // FRAME_MS)
        )
        pending = b""
        frame_bytes = _pcm_of(self._fmt).frame_bytes
        in_utterance = False
        over_bot = False
        max_sent = False
        try:
            async for event in self.transport.events():
                if isinstance(event, DtmfIn):
                    self._waiting_since = None
                    await self._user_events.put(_UserEvent("dtmf", digit=event.digit))
                    continue
                if isinstance(event, RemoteHangup):
                    await self._user_events.put(_UserEvent("hangup", reason=event.reason))
                    return
                if not isinstance(event, AudioIn):
                    continue
                pcm = decoder.feed(event.data)
                self.recorder.add_customer(pcm)
                pending += pcm
                while len(pending) >= frame_bytes:
                    frame, pending = pending[:frame_bytes], pending[frame_bytes:]
                    at = self._clock_ms
                    self._clock_ms += FRAME_MS
                    self._clock_moved.set()
                    loudness = rms_dbfs(frame)
                    change = detector.feed(loudness, at, FRAME_MS)
                    if self._amd is not None and self._amd.verdict is None:
                        if self._amd.feed(loudness > turn.speech_threshold_db, FRAME_MS):
                            self._amd_decided.set()
                    if not in_utterance:
                        preroll.append(frame)
                    if isinstance(change, SpeechStarted):
                        in_utterance, over_bot = True, self._bot_busy
                        self._waiting_since = None
                        for buffered in preroll:
                            await recognizer.accept(buffered)
                        preroll.clear()
                    elif in_utterance:
                        partial = await recognizer.accept(frame)
                        if partial is not None and self._amd is not None and self._amd.verdict is None:
                            if self._amd.heard(partial.text):
                                self._amd_decided.set()
                        if self._bot_busy and detector.speech_ms() >= turn.backchannel_max_ms:
                            await self._interrupt("long speech over the bot")
                    if isinstance(change, SpeechEnded):
                        in_utterance = False
                        endpoint_wall = time.perf_counter()
                        final = await recognizer.finish()
                        await self._user_events.put(
                            _UserEvent(
                                "final", final=final, speech=change, heard_during_bot=over_bot,
                                endpoint_wall=endpoint_wall, final_wall=time.perf_counter(),
                            )
                        )
                    if silence_timed_out(self._waiting_since, self._clock_ms, turn):
                        self._waiting_since = None
                        await self._user_events.put(_UserEvent("silence"))
                    if self._clock_ms >= turn.max_call_ms and not max_sent:
                        max_sent = True
                        await self._user_events.put(_UserEvent("max_duration"))
        except VoiceError as exc:
            log.warning("voice.call.bad_media", extra={"call_id": self.call_id, "error": str(exc)})
            await self._user_events.put(_UserEvent("hangup", reason=f"bad media: {exc}"))
            return
        finally:
            await asyncio.shield(recognizer.close())
        await self._user_events.put(_UserEvent("hangup", reason="closed"))

    # ---------------------------------------------------------------- speak
    async def _speak(self) -> None:
        lead = self.config.playback_lead_ms
        while True:
            item = await self._playback.get()
            if isinstance(item, _EntryDone):
                if item.generation == self._generation:
                    item.entry.completed = True
                continue
            if isinstance(item, _TurnDone):
                if item.generation == self._generation:
                    self._bot_busy = False
                    self._playing_entry = None
                    self._waiting_since = self._clock_ms
                if not item.played.done():
                    item.played.set_result(None)
                continue
            if item.generation != self._generation:
                continue  # interrupted: never played
            while self._bot_pos_ms > self._clock_ms + lead:
                self._clock_moved.clear()
                await self._clock_moved.wait()
            self._bot_pos_ms = max(self._bot_pos_ms, self._clock_ms)
            entry = item.entry
            if entry.end_ms is None and self._playing_entry is not entry:
                entry.start_ms = self._bot_pos_ms
                self._playing_entry = entry
                if self._on_entry is not None:
                    self._on_entry(entry)
                await self.transport.notify(_transcript_event(entry))
            if item.first_of_turn and self._latency is not None:
                self._complete_latency()
            await self.transport.send_audio(item.audio)
            self.recorder.add_bot(decode(item.audio, self._fmt.encoding), self._bot_pos_ms)
            self._bot_pos_ms += FRAME_MS
            entry.end_ms = self._bot_pos_ms

    async def _interrupt(self, why: str) -> None:
        """Barge-in: stop the bot's turn now, drop what was queued, and note it."""
        if not self._bot_busy:
            return
        self._generation += 1
        self._bot_busy = False
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()
        if self._playing_entry is not None:
            self._playing_entry.interrupted = True
        self._playing_entry = None
        await self.transport.clear_audio()
        self._note("event", why, kind="barge_in")
        log.info("voice.call.barge_in", extra={"call_id": self.call_id})

    # ------------------------------------------------------------- converse
    async def _converse(self) -> tuple[str, str, str | None]:
        if self._amd is not None:
            ended = await self._screen_for_machine()
            if ended is not None:
                return ended
        try:
            turn = await self._answer(self.bot.start(
                self.call_id, self.customer_id, self.config.channel, self.start_metadata
            ))
        except RasaUnavailable as exc:
            return await self._fail(exc)
        while True:
            played = await self._say(turn)
            ending = _ending(turn)
            if ending is not None:
                return await self._carry_out(ending, played)
            next_turn = None
            while next_turn is None:
                event = await self._user_events.get()
                if event.kind == "hangup":
                    return self._outcome_so_far(), "customer", None
                if event.kind == "max_duration":
                    return await self._end_for_max_duration()
                try:
                    next_turn = await self._answer(self._handle(event))
                except RasaUnavailable as exc:
                    return await self._fail(exc)
            turn = next_turn

    async def _answer(self, asking: Awaitable[BotTurn | None]) -> BotTurn | None:
        """Waits for the bot's answer without leaving the customer in silence: a holding phrase
        once it is slow, and :class:`RasaUnavailable` once it is too late to wait any longer."""
        config = self.config
        reply = asyncio.ensure_future(asking)
        try:
            done, _ = await asyncio.wait({reply}, timeout=config.bot_hold_ms / 1000)
            if done:
                return reply.result()
            self._note("event", "the bot is slow to answer: holding phrase", kind="hold")
            holding = await self._say(BotTurn([HOLD_TEXT], []))
            remaining_s = max(0.0, (config.bot_timeout_ms - config.bot_hold_ms) / 1000)
            done, _ = await asyncio.wait({reply}, timeout=remaining_s)
            if not done:
                raise RasaUnavailable(
                    f"the bot did not answer within {config.bot_timeout_ms / 1000:g} s")
            with contextlib.suppress(asyncio.TimeoutError):  # let the phrase end, not cut it
                await asyncio.wait_for(asyncio.shield(holding), HOLD_FINISH_WAIT_S)
            return reply.result()
        finally:
            if not reply.done():
                reply.cancel()

    async def _screen_for_machine(self) -> tuple[str, str, str | None] | None:
        """Answering-machine detection: listens to the greeting before the bot says a word.
        A machine gets no offer details (the bot hangs up in silence); a person gets the
        opening. Returns how the call ended, or None to go on."""
        assert self._amd is not None
        next_event = asyncio.ensure_future(self._user_events.get())
        try:
            while self._amd.verdict is None:
                decided = asyncio.ensure_future(self._amd_decided.wait())
                await asyncio.wait({next_event, decided}, return_when=asyncio.FIRST_COMPLETED)
                decided.cancel()
                if not next_event.done():
                    continue
                event = next_event.result()
                next_event = asyncio.ensure_future(self._user_events.get())
                if event.kind == "hangup":
                    self._note("event", "hung up during the greeting", kind="hangup")
                    return "hung_up", "customer", None
                if event.kind == "final" and event.final is not None and event.final.text:
                    assert event.speech is not None
                    self._note("customer", event.final.text, event.speech.started_ms,
                               kind="greeting", raw_text=event.final.raw, end_ms=event.speech.at_ms)
                    self._amd.heard(event.final.text)
        finally:
            if not next_event.done():
                next_event.cancel()
            elif next_event.result().kind != "final":
                self._user_events.put_nowait(next_event.result())  # e.g. a hang-up: keep it
        verdict = self.machine_verdict = self._amd.verdict
        self._note("event", f"{verdict.kind}: {verdict.reason}", kind="amd")
        self._drop_greeting()
        if verdict.kind == "machine":
            await self.transport.hangup("voicemail")
            return "voicemail", "bot", None
        return None

    def _drop_greeting(self) -> None:
        """The greeting is not a turn of the conversation; a hang-up behind it is kept."""
        kept = [e for e in _drain(self._user_events) if e.kind in ("hangup", "max_duration")]
        for event in kept:
            self._user_events.put_nowait(event)

    async def _handle(self, event: _UserEvent) -> BotTurn | None:
        """One customer event to at most one bot turn (None: nothing to answer)."""
        if event.kind == "final" and event.final is not None:
            return await self._handle_speech(event)
        if event.kind == "dtmf":
            message = dtmf_message(event.digit)
            self._note("customer", event.digit, kind="dtmf", intent=message)
            if message is None:
                self._resume_waiting()
                return None
            await self._interrupt("key press")
            return await self.bot.send(self.call_id, message, {"dtmf": event.digit})
        if event.kind == "silence":
            self._note("event", "silence timeout", kind="silence")
            return await self.bot.send(self.call_id, SILENCE_MESSAGE)
        return None

    async def _handle_speech(self, event: _UserEvent) -> BotTurn | None:
        final, speech = event.final, event.speech
        assert final is not None and speech is not None
        if not final.text:  # a cough, a click, a sound nobody could read
            if event.heard_during_bot:
                self._note("customer", "", speech.started_ms, kind="noise", end_ms=speech.at_ms)
            self._resume_waiting()
            return None
        if self._bot_busy and not interrupts_bot(speech.speech_ms, final.text, self.config.turn):
            self._note(
                "customer", final.text, speech.started_ms, kind="backchannel",
                raw_text=final.raw, end_ms=speech.at_ms, asr_confidence=_round(final.confidence),
            )
            return None
        await self._interrupt("customer spoke over the bot")
        try:
            fixed, intent, confidence = await self._understand(final)
        except asyncio.CancelledError:  # the bot never answered: keep what was heard anyway
            self._note("customer", final.text, speech.started_ms, raw_text=final.raw,
                       end_ms=speech.at_ms, asr_confidence=_round(final.confidence))
            raise
        entry = self._note(
            "customer", fixed.text, speech.started_ms, raw_text=final.raw, repair=fixed.rule,
            end_ms=speech.at_ms, asr_confidence=_round(final.confidence),
            intent=intent, intent_confidence=_round(confidence),
        )
        await self.transport.notify(_transcript_event(entry))
        understood = time.perf_counter()
        turn = await self.bot.send(self.call_id, fixed.text)
        self._latency = {
            "entry": entry,
            "asr": event.final_wall - event.endpoint_wall,
            "nlu_dialogue": time.perf_counter() - event.final_wall,
            "repair_parse": understood - event.final_wall,
            "replied": time.perf_counter(),
            "endpoint": event.endpoint_wall,
        }
        return turn

    async def _understand(self, final: FinalTranscript) -> tuple[Repair, str | None, float | None]:
        asr_unsure = final.confidence is not None and final.confidence < self.config.asr_unsure_below
        fixed = repair(final.raw, expect=self._expect, unsure=asr_unsure)
        intent, confidence = await self.bot.parse(fixed.text)
        nlu_unsure = confidence is not None and confidence < self.config.nlu_unsure_below
        if nlu_unsure and fixed.rule not in ("canonical", "expected"):
            second = repair(final.raw, expect=self._expect, unsure=True)
            if second.text != fixed.text:
                fixed = second
                intent, confidence = await self.bot.parse(fixed.text)
        return fixed, intent, confidence

    def _resume_waiting(self) -> None:
        if not self._bot_busy:
            self._waiting_since = self._clock_ms

    def _complete_latency(self) -> None:
        latency, self._latency = self._latency, None
        assert latency is not None
        now = time.perf_counter()
        latency["entry"].latency_ms = {
            "asr_final": round(latency["asr"] * 1000, 1),
            "nlu_dialogue": round(latency["nlu_dialogue"] * 1000, 1),
            "tts_first_audio": round((now - latency["replied"]) * 1000, 1),
            "total": round((now - latency["endpoint"]) * 1000, 1),
        }

    async def _say(self, turn: BotTurn, speaker: str = "bot") -> asyncio.Future[None]:
        """Queues the bot's (or the agent's) turn for playback; returns a future that completes
        when played."""
        for directive in turn.directives:
            self._directives.append({"directive": directive.name, **directive.data})
            if directive.name == "dtmf_request":
                self._expect = directive.data.get("expect")
        self._generation += 1
        generation = self._generation
        played: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entries = [
            self._note(speaker, text, kind="speech", prompt=turn.prompt_of(index))
            for index, text in enumerate(turn.texts)
            if text.strip()
        ]
        self._bot_busy = bool(entries)
        self._waiting_since = None
        self._producer = asyncio.create_task(self._produce(generation, entries, played))
        if not entries:
            self._latency = None
        return played

    async def _produce(
        self, generation: int, entries: list[TranscriptEntry], played: asyncio.Future[None]
    ) -> None:
        """Synthesises each text clause by clause and queues its frames."""
        first = True
        try:
            for index, entry in enumerate(entries):
                async for clause in self.speaker.clauses(entry.text, self._fmt):
                    if generation != self._generation:
                        return
                    for frame in frames(clause, self._fmt):
                        await self._playback.put(_Frame(generation, entry, frame, first))
                        first = False
                await self._playback.put(_EntryDone(generation, entry))
                if index < len(entries) - 1:
                    pause = self._fmt.silence(self.config.pause_between_texts_ms)
                    for frame in frames(pause, self._fmt):
                        await self._playback.put(_Frame(generation, entry, frame))
        finally:
            await self._playback.put(_TurnDone(generation, played))

    async def _wait_played(self, played: asyncio.Future[None]) -> None:
        """Waits for a turn to finish playing, or for the customer to hang up first."""
        hangup = asyncio.ensure_future(self._next_hangup())
        try:
            await asyncio.wait({played, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()

    async def _next_hangup(self) -> None:
        while (await self._user_events.get()).kind != "hangup":
            pass

    async def _carry_out(self, ending: Directive, played: asyncio.Future[None]) -> tuple[str, str, str | None]:
        await self._wait_played(played)
        if ending.name == "transfer":
            handoff_id = ending.data.get("handoff_id")
            self._note("event", f"transfer to agent queue (ticket {handoff_id})", kind="transfer")
            if self.line is not None and isinstance(handoff_id, int):
                return await self._with_agent(handoff_id)
            await self.transport.transfer(handoff_id, str(ending.data.get("reason", "")))
            return "transferred", "bot", None
        outcome = str(ending.data.get("outcome", "ended"))
        self._note("event", f"bot hung up: {outcome}", kind="hangup")
        await self.transport.hangup(outcome)
        return outcome, "bot", None

    async def _with_agent(self, handoff_id: int) -> tuple[str, str, str | None]:
        """Holds the call in the agent queue, then bridges it: the customer's speech goes to the
        agent's console, and what the agent types is spoken to the customer."""
        assert self.line is not None
        line = self.line
        agent_events = line.events(handoff_id)
        from_agent = asyncio.ensure_future(anext(agent_events))
        from_customer = asyncio.ensure_future(self._user_events.get())
        connected = False
        try:
            while True:
                done, _ = await asyncio.wait({from_agent, from_customer}, return_when=asyncio.FIRST_COMPLETED)
                if from_customer in done:
                    event = from_customer.result()
                    if event.kind == "hangup":
                        self._note("event", "customer hung up while with the agent queue", kind="hangup")
                        await line.customer_left(handoff_id, "the customer hung up")
                        return "transferred", "customer", None
                    if event.kind == "max_duration":
                        await line.customer_left(handoff_id, "maximum call duration")
                        return await self._end_for_max_duration()
                    if event.kind == "final" and event.final is not None and event.final.text:
                        assert event.speech is not None
                        self._note("customer", event.final.text, event.speech.started_ms,
                                   raw_text=event.final.raw, end_ms=event.speech.at_ms,
                                   asr_confidence=_round(event.final.confidence))
                        await line.customer_said(handoff_id, event.final.text)
                    from_customer = asyncio.ensure_future(self._user_events.get())
                if from_agent in done:
                    try:
                        said = from_agent.result()
                    except StopAsyncIteration:
                        said = AgentDone("the handoff line closed")
                    if isinstance(said, AgentJoined) and not connected:
                        connected = True
                        self._note("event", f"agent {said.name} connected", kind="agent_joined")
                        await line.connected(handoff_id)
                    elif isinstance(said, AgentSaid):
                        await self._say(BotTurn([said.text], []), speaker="agent")
                    elif isinstance(said, CallbackPromised):
                        self._note("event", "no agent in time: callback promised", kind="callback")
                        await self._wait_played(await self._say(BotTurn([said.text], [])))
                        await self.transport.hangup("callback")
                        return "callback", "bot", None
                    elif isinstance(said, AgentDone):
                        self._note("event", f"agent ended the call: {said.reason}", kind="hangup")
                        await self.transport.hangup("transferred")
                        return "transferred", "agent", None
                    from_agent = asyncio.ensure_future(anext(agent_events))
        finally:
            for waiting in (from_agent, from_customer):
                waiting.cancel()
            with contextlib.suppress(Exception):
                await agent_events.aclose()  # type: ignore[attr-defined]

    async def _end_for_max_duration(self) -> tuple[str, str, str | None]:
        await self._interrupt("maximum call duration")
        played = await self._say(BotTurn([MAX_DURATION_TEXT], []))
        await self._wait_played(played)
        await self.transport.hangup("max_duration")
        return "max_duration", "timeout", None

    async def _fail(self, exc: Exception) -> tuple[str, str, str | None]:
        """The bot is unreachable: apologise, hang up, and keep what was said so far."""
        log.error("voice.call.bot_unavailable", extra={"call_id": self.call_id, "error": str(exc)})
        self._note("event", str(exc), kind="error")
        await self._interrupt("bot unavailable")
        with contextlib.suppress(VoiceError):
            played = await self._say(BotTurn([SORRY_TEXT], []))
            await self._wait_played(played)
        await self.transport.hangup("error")
        return "error", "error", str(exc)

    def _outcome_so_far(self) -> str:
        for directive in reversed(self._directives):
            if directive["directive"] == "hangup":
                return str(directive.get("outcome", "ended"))
        return "hung_up"


def _drain(queue: asyncio.Queue[_UserEvent]) -> list[_UserEvent]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _ending(turn: BotTurn) -> Directive | None:
    for directive in turn.directives:
        if directive.name in ("transfer", "hangup"):
            return directive
    return None


def _pcm_of(fmt: AudioFormat) -> AudioFormat:
    return AudioFormat("pcm16", fmt.sample_rate)


def _transcript_event(entry: TranscriptEntry) -> dict[str, Any]:
    return {"event": "transcript", "speaker": entry.speaker, "text": entry.text,
            "at_ms": round(entry.start_ms)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

