"""The call session: one phone call as turns of the Rasa conversation.

Three tasks share one call, under ``asyncio.wait(FIRST_COMPLETED)``:

- **listen** reads the transport: records the customer's audio, moves media time, decides
  which frames are voiced (:mod:`voice.vad`: energy, or Silero VAD on the call threads), runs
  the turn-taking rules (:class:`voice.turns.TurnTaker`) and the recogniser, stops the bot when the
  customer talks over it, and hands the conversation typed events (:mod:`voice.call_events`);
- **speak** plays the bot's queued audio (:class:`voice.playback.Playback`);
- **converse** sends what the customer said (or pressed, or a timeout) to the bot, queues the
  spoken reply, and carries out ``transfer`` (to the agents' queue: :mod:`voice.agent_bridge`)
  and ``hangup``.

If listening or speaking fails, the call ends at once, with an apology where the bot can still
be heard, and its record is saved. Dialogue decisions stay in Rasa: silence arrives there as
``/silence_timeout`` and key presses as ``/affirm``, ``/deny`` or ``/request_handoff``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.client import BotPort, BotTurn, Directive, RasaUnavailable
from core.vocabulary import MUST_BE_HEARD, CallOutcome, EndedBy
from voice.agent_bridge import AgentBridge, AgentLine
from voice.amd import AmdConfig, AmdDetector, AmdVerdict
from voice.answer_listener import AnswerListener, ConstrainedHearing
from voice.asr import CallRecognizer, FinalTranscript, call_executor
from voice.audio import FRAME_MS, AudioFormat, StreamConverter, rms_dbfs
from voice.call_events import (
    CallTooLong,
    CustomerEvent,
    CustomerSilent,
    CustomerSpoke,
    KeyPressed,
    LineClosed,
)
from voice.end_of_turn import EndOfTurnConfig, PauseWatch, expected_answers
from voice.errors import VoiceError
from voice.events import AudioIn, CallEnd, CallResult, DtmfIn, RemoteHangup, TranscriptEntry
from voice.latency import TurnLatency
from voice.playback import MediaClock, Playback
from voice.recording import CallRecorder
from voice.repair import Repair, repair
from voice.smart_turn import SmartTurn
from voice.transports.base import Transport
from voice.tts.speaker import Speaker
from voice.turns import (
    BargeIn,
    MaxDurationReached,
    SilenceTimedOut,
    SpeechEnded,
    SpeechStarted,
    TurnConfig,
    TurnTaker,
    dtmf_message,
    interrupts_bot,
)
from voice.vad import SileroVad, voicing_for
from voice.words_turn import WordsTurn

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
    answer_grammar: bool = True
    """Hear answers a second time against the answers the question expects
    (:mod:`voice.answer_listener`)."""
    end_of_turn: EndOfTurnConfig | None = None
    """End-of-turn decisions (:mod:`voice.end_of_turn`): each pause of the customer's is judged
    and ends the turn after between ``min_silence_ms`` and ``max_silence_ms``; None (the
    default): ``turn.endpoint_silence_ms`` of silence ends every turn."""


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
        vad: SileroVad | None = None,
        smart_turn: SmartTurn | None = None,
        words_turn: WordsTurn | None = None,
    ) -> None:
        """``vad``: the process's Silero VAD model, which then decides which frames are voiced;
        None: the energy threshold (``TurnConfig.speech_threshold_db``) does. ``smart_turn``:
        the process's Smart Turn model, heard when ``config.end_of_turn`` is set; ``words_turn``:
        the model of whether the partial transcript reads finished, asked then too."""
        self.call_id = call_id
        self.customer_id = customer_id
        self.transport = transport
        self.bot = bot
        self.config = config or SessionConfig()
        self.recorder = recorder
        self.line = line
        self.start_metadata = start_metadata
        self.transcript: list[TranscriptEntry] = []
        self.machine_verdict: AmdVerdict | None = None
        self._asr_model = asr_model
        self._on_entry = on_entry
        self._fmt = transport.format
        self._answers = AnswerListener(asr_model, _pcm_of(self._fmt)) if self.config.answer_grammar else None
        self._clock = MediaClock()
        ending = self.config.end_of_turn
        self._turns = TurnTaker(self.config.turn if ending is None else replace(
            self.config.turn, endpoint_silence_ms=ending.max_silence_ms))
        self._smart_turn = smart_turn
        self._words_turn = words_turn
        self._utterance = bytearray()
        """The customer's audio since the utterance began (its last 8 s), for Smart Turn."""
        self._partial = ""
        """What the recogniser has heard of the utterance so far."""
        self._pause = PauseWatch()
        self._voicing = voicing_for(vad, self._fmt.sample_rate, self.config.turn.speech_threshold_db)
        self._voicing_on_threads = vad is not None
        """A model's inference runs on the call threads, not on the event loop."""
        self._events: asyncio.Queue[CustomerEvent] = asyncio.Queue()
        self._expect: str | None = None
        self._turn_entries: list[TranscriptEntry] = []
        """What the bot's latest turn says, prompt by prompt."""
        self._unheard: list[str] = []
        """Prompts (disclosure, offer) of a turn a barge-in cut off: the bot is told with the
        customer's next words, so it says them again before going on."""
        self._latency: TurnLatency | None = None
        self._directives: list[dict[str, Any]] = []
        self._amd = AmdDetector(self.config.amd) if self.config.detect_machine else None
        self._amd_decided = asyncio.Event()
        self._playback = Playback(
            transport=transport, speaker=speaker, recorder=recorder, clock=self._clock,
            lead_ms=self.config.playback_lead_ms,
            pause_between_texts_ms=self.config.pause_between_texts_ms,
            on_started=self._bot_started_text, on_first_audio=self._bot_first_audio,
            on_finished=self._turns.bot_finished,
        )

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
            self.note("event", answer.status, kind="hangup")
            return self._finish(CallEnd(CallOutcome(answer.status), EndedBy.NETWORK), started)
        listen = asyncio.create_task(self._listen(recognizer), name=f"{self.call_id}:listen")
        speak = asyncio.create_task(self._playback.play(), name=f"{self.call_id}:speak")
        converse = asyncio.create_task(self._converse(), name=f"{self.call_id}:converse")
        try:
            ended = await self._supervise(listen, speak, converse)
        finally:
            for task in (listen, speak, converse):
                task.cancel()
            for task in (listen, speak, converse):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._playback.close()
        return self._finish(ended, started)

    async def _supervise(
        self, listen: asyncio.Task[None], speak: asyncio.Task[None], converse: asyncio.Task[CallEnd],
    ) -> CallEnd:
        """Waits for the conversation to end, watching its siblings: if listening or speaking
        fails, the call ends at once instead of hanging on a customer nobody hears."""
        pending: set[asyncio.Task[Any]] = {listen, speak, converse}
        while True:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if converse in done:
                failure = converse.exception()
                return converse.result() if failure is None else await self._broken("converse", failure, speak)
            for task in done:  # listen ends on its own when the line closes: news for converse
                failure = task.exception()
                if failure is not None:
                    converse.cancel()
                    return await self._broken("listen" if task is listen else "speak", failure, speak)

    async def _broken(self, part: str, exc: BaseException, speak: asyncio.Task[None]) -> CallEnd:
        """A part of the call failed unexpectedly: apologise if the bot can still be heard,
        hang up, and keep what was said so far."""
        log.error("voice.call.failed", extra={"call_id": self.call_id, "part": part}, exc_info=exc)
        error = f"{part} failed: {exc!r}"
        self.note("event", error, kind="error")
        if not speak.done():
            # Media time moves with the customer's audio: with listening gone, the wall clock
            # has to move it for the apology to play.
            ticker = asyncio.create_task(self._clock.follow_wall_clock()) if part == "listen" else None
            await self._interrupt("call failure")
            with contextlib.suppress(Exception):
                played = await self.say(BotTurn([SORRY_TEXT], []))
                await asyncio.wait_for(asyncio.shield(played), APOLOGY_WAIT_S)
            if ticker is not None:
                ticker.cancel()
        with contextlib.suppress(Exception):
            await self.transport.hangup(CallOutcome.ERROR)
        return CallEnd(CallOutcome.ERROR, EndedBy.ERROR, error)

    def _finish(self, ended: CallEnd, started: float) -> CallResult:
        self.transcript.sort(key=lambda entry: entry.start_ms)
        for entry in self.transcript:
            if entry.speaker in ("bot", "agent") and entry.kind == "speech" and entry.end_ms is None:
                entry.kind = "unspoken"
        result = CallResult(
            call_id=self.call_id,
            customer_id=self.customer_id,
            outcome=ended.outcome,
            ended_by=ended.ended_by,
            duration_ms=self._clock.now_ms,
            transcript=self.transcript,
            handoff_id=next(
                (d.get("handoff_id") for d in self._directives if d["directive"] == "transfer"),
                None,
            ),
            error=ended.error,
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
        log.info("voice.call.ended",
                 extra={"call_id": self.call_id, "outcome": ended.outcome, "ended_by": ended.ended_by})
        return result

    # ------------------------------------------------------ the call's controls
    def note(self, speaker: str, text: str, start_ms: float | None = None, **fields: Any) -> TranscriptEntry:
        """A line of the transcript (now, unless ``start_ms`` says when)."""
        start = self._clock.now_ms if start_ms is None else start_ms
        entry = TranscriptEntry(speaker=speaker, text=text, start_ms=start, **fields)
        self.transcript.append(entry)
        if self._on_entry is not None and (speaker != "bot" or entry.kind != "speech"):
            self._on_entry(entry)
        return entry

    async def next_event(self) -> CustomerEvent:
        """What the customer did next."""
        return await self._events.get()

    async def say(self, turn: BotTurn, speaker: str = "bot") -> asyncio.Future[None]:
        """Queues the bot's (or the agent's) turn for playback; the future completes when it has
        played."""
        for directive in turn.directives:
            self._directives.append({"directive": directive.name, **directive.data})
            if directive.name == "dtmf_request":
                self._expect = directive.data.get("expect")
        entries = [
            self.note(speaker, text, kind="speech", prompt=turn.prompt_of(index))
            for index, text in enumerate(turn.texts)
            if text.strip()
        ]
        self._turns.bot_started()
        if not entries:
            self._latency = None
        self._turn_entries = entries
        return self._playback.say(entries)

    async def wait_played(self, played: asyncio.Future[None]) -> None:
        """Waits for a turn to finish playing, or for the customer to hang up first."""
        hangup = asyncio.ensure_future(self._next_hangup())
        try:
            await asyncio.wait({played, hangup}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hangup.cancel()

    async def hang_up(self, outcome: str) -> None:
        """Ends the call from the bot's side."""
        await self.transport.hangup(outcome)

    async def end_for_max_duration(self) -> CallEnd:
        """The call has lasted its longest: say so and hang up."""
        await self._interrupt("maximum call duration")
        await self.wait_played(await self.say(BotTurn([MAX_DURATION_TEXT], [])))
        await self.transport.hangup(CallOutcome.MAX_DURATION)
        return CallEnd(CallOutcome.MAX_DURATION, EndedBy.TIMEOUT)

    async def _next_hangup(self) -> None:
        while not isinstance(await self._events.get(), LineClosed):
            pass

    async def _interrupt(self, why: str) -> None:
        """Barge-in: stop the bot's turn now, drop what was queued, and note it."""
        if await self._playback.interrupt():
            self._unheard = unheard_prompts(self._turn_entries)
            self.note("event", why, kind="barge_in")
            log.info("voice.call.barge_in", extra={"call_id": self.call_id})

    async def _bot_started_text(self, entry: TranscriptEntry) -> None:
        if self._on_entry is not None:
            self._on_entry(entry)
        await self.transport.notify(_transcript_event(entry))

    def _bot_first_audio(self) -> None:
        latency, self._latency = self._latency, None
        if latency is not None:
            latency.finish()

    # --------------------------------------------------------------- listen
    async def _listen(self, recognizer_ready: asyncio.Future[CallRecognizer]) -> None:
        turn = self.config.turn
        decoder = StreamConverter(self._fmt, _pcm_of(self._fmt))
        recognizer = await recognizer_ready
        preroll: collections.deque[bytes] = collections.deque(maxlen=max(1, turn.preroll_ms // FRAME_MS))
        pending = b""
        frame_bytes = _pcm_of(self._fmt).frame_bytes
        try:
            async for event in self.transport.events():
                if isinstance(event, DtmfIn):
                    self._turns.answered()
                    await self._events.put(KeyPressed(event.digit))
                    continue
                if isinstance(event, RemoteHangup):
                    await self._events.put(LineClosed(event.reason))
                    return
                if not isinstance(event, AudioIn):
                    continue
                pcm = decoder.feed(event.data)
                self.recorder.add_customer(pcm)
                pending += pcm
                while len(pending) >= frame_bytes:
                    frame, pending = pending[:frame_bytes], pending[frame_bytes:]
                    await self._hear(frame, recognizer, preroll)
        except VoiceError as exc:
            log.warning("voice.call.bad_media", extra={"call_id": self.call_id, "error": str(exc)})
            await self._events.put(LineClosed(f"bad media: {exc}"))
            return
        finally:
            await asyncio.shield(recognizer.close())
            if self._answers is not None:
                await asyncio.shield(self._answers.close())
        await self._events.put(LineClosed("closed"))

    async def _hear(self, frame: bytes, recognizer: CallRecognizer, preroll: collections.deque[bytes]) -> None:
        """One 20 ms frame of the customer's audio."""
        at = self._clock.now_ms
        self._clock.advance(FRAME_MS)
        if self._voicing_on_threads:
            voiced = await asyncio.get_running_loop().run_in_executor(
                call_executor(), self._voicing.voiced, frame)
        else:
            voiced = self._voicing.voiced(frame)
        if self._amd is not None and self._amd.verdict is None:
            # answering-machine detection keeps to its own, energy-tuned, voiced frames
            if self._amd.feed(rms_dbfs(frame) > self.config.turn.speech_threshold_db, FRAME_MS):
                self._amd_decided.set()
        speaking_before = self._turns.speaking
        if not speaking_before:
            preroll.append(frame)
        changes = self._turns.frame(at, voiced, FRAME_MS, bot_speaking=self._playback.busy)
        for change in changes:
            if isinstance(change, SpeechStarted):
                if self._answers is not None:
                    self._answers.start(self._expect)
                for buffered in preroll:
                    await recognizer.accept(buffered)
                    if self._answers is not None:
                        await self._answers.accept(buffered)
                self._utterance, self._partial = bytearray(b"".join(preroll)), ""
                preroll.clear()
        if speaking_before:
            self._keep_utterance(frame)
            partial = await recognizer.accept(frame)
            if self._answers is not None:
                await self._answers.accept(frame)
            if partial is not None:
                self._partial = partial.text
            if partial is not None and self._amd is not None and self._amd.verdict is None:
                if self._amd.heard(partial.text):
                    self._amd_decided.set()
        if self.config.end_of_turn is not None:
            await self._judge_pause(voiced, self.config.end_of_turn)
        for change in changes:
            if isinstance(change, BargeIn):
                await self._interrupt("long speech over the bot")
            elif isinstance(change, SpeechEnded):
                endpoint_wall = time.perf_counter()
                final = await recognizer.finish()
                constrained = await self._answers.finish() if self._answers is not None else None
                await self._events.put(
                    CustomerSpoke(final, change, endpoint_wall, time.perf_counter(), constrained))
            elif isinstance(change, SilenceTimedOut):
                await self._events.put(CustomerSilent())
            elif isinstance(change, MaxDurationReached):
                await self._events.put(CallTooLong())

    def _keep_utterance(self, frame: bytes) -> None:
        if self.config.end_of_turn is None:
            return
        self._utterance += frame
        keep = self._fmt.sample_rate * 2 * 8  # Smart Turn hears the last 8 s
        if len(self._utterance) > 2 * keep:
            del self._utterance[:-keep]

    async def _judge_pause(self, voiced: bool, ending: EndOfTurnConfig) -> None:
        """End-of-turn decisions: once a pause of the customer's reaches ``min_silence_ms``, how
        much silence ends it (Smart Turn on the call threads, once per pause; the partial
        transcript: the answers the bot's question expects, whether it reads finished). The
        pause is judged again whenever the recogniser's partial transcript changes in it (the
        last word often arrives a batch or two into the silence)."""
        detector = self._turns.detector
        pause = self._pause
        if not pause.due(voiced, detector.speaking, detector.silence_ms, self._partial, ending):
            return
        inference_ms = None
        if self._smart_turn is not None and pause.first:
            heard = await asyncio.get_running_loop().run_in_executor(
                call_executor(), self._smart_turn.predict, bytes(self._utterance), self._fmt.sample_rate)
            pause.sound, inference_ms = heard.probability, heard.inference_ms
        finished = self._words_turn.complete(self._partial) if self._words_turn is not None else None
        needed, reason = pause.judge(self._partial, expected_answers(self._expect), finished, ending)
        detector.end_after(needed)
        log.debug("voice.turn.pause_judged", extra={
            "call_id": self.call_id, "needed_ms": needed, "reason": reason.value,
            "smart_turn": pause.sound, "words_finished": finished, "inference_ms": inference_ms})

    # ------------------------------------------------------------- converse
    async def _converse(self) -> CallEnd:
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
            assert turn is not None
            played = await self.say(turn)
            ending = _ending(turn)
            if ending is not None:
                return await self._carry_out(ending, played)
            next_turn = None
            while next_turn is None:
                event = await self._events.get()
                if isinstance(event, LineClosed):
                    return CallEnd(self._outcome_so_far(), EndedBy.CUSTOMER)
                if isinstance(event, CallTooLong):
                    return await self.end_for_max_duration()
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
            self.note("event", "the bot is slow to answer: holding phrase", kind="hold")
            holding = await self.say(BotTurn([HOLD_TEXT], []))
            remaining_s = max(0.0, (config.bot_timeout_ms - config.bot_hold_ms) / 1000)
            done, _ = await asyncio.wait({reply}, timeout=remaining_s)
            if not done:
                raise RasaUnavailable(f"the bot did not answer within {config.bot_timeout_ms / 1000:g} s")
            with contextlib.suppress(asyncio.TimeoutError):  # let the phrase end, not cut it
                await asyncio.wait_for(asyncio.shield(holding), HOLD_FINISH_WAIT_S)
            return reply.result()
        finally:
            if not reply.done():
                reply.cancel()

    async def _screen_for_machine(self) -> CallEnd | None:
        """Answering-machine detection: listens to the greeting before the bot says a word.
        A machine gets no offer details (the bot hangs up in silence); a person gets the
        opening. Returns how the call ended, or None to go on."""
        assert self._amd is not None
        next_event = asyncio.ensure_future(self._events.get())
        try:
            while self._amd.verdict is None:
                decided = asyncio.ensure_future(self._amd_decided.wait())
                await asyncio.wait({next_event, decided}, return_when=asyncio.FIRST_COMPLETED)
                decided.cancel()
                if not next_event.done():
                    continue
                event = next_event.result()
                next_event = asyncio.ensure_future(self._events.get())
                if isinstance(event, LineClosed):
                    self.note("event", "hung up during the greeting", kind="hangup")
                    return CallEnd(CallOutcome.HUNG_UP, EndedBy.CUSTOMER)
                if isinstance(event, CustomerSpoke) and event.final.text:
                    self.note("customer", event.final.text, event.speech.started_ms, kind="greeting",
                              raw_text=event.final.raw, end_ms=event.speech.at_ms)
                    self._amd.heard(event.final.text)
        finally:
            if not next_event.done():
                next_event.cancel()
            elif not isinstance(next_event.result(), CustomerSpoke):
                self._events.put_nowait(next_event.result())  # e.g. a hang-up: keep it
        verdict = self.machine_verdict = self._amd.verdict
        self.note("event", f"{verdict.kind}: {verdict.reason}", kind="amd")
        self._drop_greeting()
        if verdict.kind == "machine":
            await self.transport.hangup(CallOutcome.VOICEMAIL)
            return CallEnd(CallOutcome.VOICEMAIL, EndedBy.BOT)
        return None

    def _drop_greeting(self) -> None:
        """The greeting is not a turn of the conversation; a hang-up behind it is kept."""
        kept = [e for e in _drain(self._events) if isinstance(e, (LineClosed, CallTooLong))]
        for event in kept:
            self._events.put_nowait(event)

    async def _handle(self, event: CustomerEvent) -> BotTurn | None:
        """One customer event to at most one bot turn (None: nothing to answer)."""
        if isinstance(event, CustomerSpoke):
            return await self._handle_speech(event)
        if isinstance(event, KeyPressed):
            message = dtmf_message(event.digit)
            self.note("customer", event.digit, kind="dtmf", intent=message)
            if message is None:
                self._turns.still_waiting(self._clock.now_ms, self._playback.busy)
                return None
            await self._interrupt("key press")
            unheard, self._unheard = self._unheard, []  # a key over the offer is no yes to it unheard
            return await self.bot.send(self.call_id, message,
                                       {"dtmf": event.digit, **({"unheard": unheard} if unheard else {})})
        if isinstance(event, CustomerSilent):
            self.note("event", "silence timeout", kind="silence")
            return await self.bot.send(self.call_id, SILENCE_MESSAGE)
        return None

    async def _handle_speech(self, event: CustomerSpoke) -> BotTurn | None:
        final, speech = event.final, event.speech
        if not final.text:  # a cough, a click, a sound nobody could read
            if speech.over_bot:
                self.note("customer", "", speech.started_ms, kind="noise", end_ms=speech.at_ms)
            self._turns.still_waiting(self._clock.now_ms, self._playback.busy)
            return None
        if self._playback.busy and not interrupts_bot(speech.speech_ms, final.text, self.config.turn):
            self.note("customer", final.text, speech.started_ms, kind="backchannel", raw_text=final.raw,
                      end_ms=speech.at_ms, asr_confidence=_round(final.confidence))
            return None
        await self._interrupt("customer spoke over the bot")
        try:
            fixed, intent, confidence = await self._understand(final, event.constrained)
        except asyncio.CancelledError:  # the bot never answered: keep what was heard anyway
            self.note("customer", final.text, speech.started_ms, raw_text=final.raw,
                      end_ms=speech.at_ms, asr_confidence=_round(final.confidence))
            raise
        heard_as_answer = {}
        if fixed.rule == "grammar" and event.constrained is not None:
            heard_as_answer["grammar_text"] = event.constrained.final.raw
        entry = self.note(
            "customer", fixed.text, speech.started_ms, raw_text=final.raw, repair=fixed.rule,
            end_ms=speech.at_ms, asr_confidence=_round(final.confidence),
            intent=intent, intent_confidence=_round(confidence), **heard_as_answer,
        )
        await self.transport.notify(_transcript_event(entry))
        unheard, self._unheard = self._unheard, []
        turn = await self.bot.send(self.call_id, fixed.text, {"unheard": unheard} if unheard else None)
        self._latency = TurnLatency(entry, event.endpoint_wall, event.final_wall, time.perf_counter())
        return turn

    async def _understand(
        self, final: FinalTranscript, constrained: ConstrainedHearing | None = None,
    ) -> tuple[Repair, str | None, float | None]:
        asr_unsure = final.confidence is not None and final.confidence < self.config.asr_unsure_below
        answer = constrained.answer if constrained is not None else None
        fixed = repair(final.raw, expect=self._expect, unsure=asr_unsure, constrained=answer)
        intent, confidence = await self.bot.parse(fixed.text)
        nlu_unsure = confidence is not None and confidence < self.config.nlu_unsure_below
        if nlu_unsure and fixed.rule not in ("canonical", "grammar", "expected"):
            second = repair(final.raw, expect=self._expect, unsure=True)
            if second.text != fixed.text:
                fixed = second
                intent, confidence = await self.bot.parse(fixed.text)
        return fixed, intent, confidence

    async def _carry_out(self, ending: Directive, played: asyncio.Future[None]) -> CallEnd:
        await self.wait_played(played)
        if ending.name == "transfer":
            handoff_id = ending.data.get("handoff_id")
            self.note("event", f"transfer to agent queue (ticket {handoff_id})", kind="transfer")
            if self.line is not None and isinstance(handoff_id, int):
                return await AgentBridge(self, self.line).run(handoff_id)
            await self.transport.transfer(handoff_id, str(ending.data.get("reason", "")))
            return CallEnd(CallOutcome.TRANSFERRED, EndedBy.BOT)
        outcome = CallOutcome(str(ending.data.get("outcome", CallOutcome.ENDED)))
        self.note("event", f"bot hung up: {outcome}", kind="hangup")
        await self.transport.hangup(outcome)
        return CallEnd(outcome, EndedBy.BOT)

    async def _fail(self, exc: Exception) -> CallEnd:
        """The bot is unreachable: apologise, hang up, and keep what was said so far."""
        log.error("voice.call.bot_unavailable", extra={"call_id": self.call_id, "error": str(exc)})
        self.note("event", str(exc), kind="error")
        await self._interrupt("bot unavailable")
        with contextlib.suppress(VoiceError):
            await self.wait_played(await self.say(BotTurn([SORRY_TEXT], [])))
        await self.transport.hangup(CallOutcome.ERROR)
        return CallEnd(CallOutcome.ERROR, EndedBy.ERROR, str(exc))

    def _outcome_so_far(self) -> CallOutcome:
        for directive in reversed(self._directives):
            if directive["directive"] == "hangup":
                return CallOutcome(str(directive.get("outcome", CallOutcome.ENDED)))
        return CallOutcome.HUNG_UP


def _drain(queue: asyncio.Queue[CustomerEvent]) -> list[CustomerEvent]:
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


def unheard_prompts(entries: list[TranscriptEntry]) -> list[str]:
    """The prompts of a turn that did not play to their last frame (cut off, or never reached)."""
    return [e.prompt for e in entries if e.prompt in MUST_BE_HEARD and not e.completed]
