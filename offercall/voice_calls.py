"""Wiring for phone calls: the process's voice resources, one call run end to end, and its
durable record (the call row is committed before the caller hears the outcome)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.engine import Engine

from bot.actions import texts
from core.clock import utcnow
from core.settings import Settings
from handoff.sla import SlaPolicy, callback_promise
from offercall.bots import connect_bot
from persistence import store
from persistence.engine import session_scope
from voice.agent_bridge import AgentLine
from voice.asr import load_model
from voice.audio import AudioFormat
from voice.end_of_turn import EndOfTurnConfig
from voice.errors import VadModelError
from voice.events import CallResult, TranscriptEntry
from voice.recording import CallRecorder
from voice.session import HOLD_TEXT, MAX_DURATION_TEXT, SORRY_TEXT, CallSession, SessionConfig
from voice.smart_turn import SmartTurn
from voice.transports.base import Transport
from voice.tts import PhraseCache, Speaker, make_engine
from voice.turns import TurnConfig
from voice.vad import SileroVad
from voice.words_turn import WordsTurn, words_turn


class VoiceRuntime:
    """What every call in a process shares: the Vosk model, the speaker with its cache and the
    turn-taking models its settings ask for (Silero VAD, Smart Turn)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # a missing model is an error at start-up, not mid-call
        if settings.vad == "silero" and not self.vad_model_path.is_file():
            raise VadModelError(
                f"OFFERCALL_VAD=silero, but there is no Silero VAD model at {self.vad_model_path}: "
                "run scripts/fetch_turn_models.sh (scripts/setup.sh does), or set OFFERCALL_VAD=energy")
        if settings.end_of_turn == "smart" and not self.smart_turn_model_path.is_file():
            raise VadModelError(
                f"OFFERCALL_END_OF_TURN=smart, but there is no Smart Turn model at "
                f"{self.smart_turn_model_path}: run scripts/fetch_turn_models.sh (scripts/setup.sh "
                "does), or set OFFERCALL_END_OF_TURN=fixed")

    @property
    def vad_model_path(self) -> Path:
        """Where the Silero VAD model is (``OFFERCALL_TURN_MODELS_DIR``)."""
        return self.settings.turn_models_dir / "silero_vad.onnx"

    @cached_property
    def vad(self) -> SileroVad | None:
        """The shared Silero VAD model with ``OFFERCALL_VAD=silero``; None: the energy detector."""
        return SileroVad.load(self.vad_model_path) if self.settings.vad == "silero" else None

    @property
    def smart_turn_model_path(self) -> Path:
        """Where the Smart Turn model is (``OFFERCALL_TURN_MODELS_DIR``)."""
        return self.settings.turn_models_dir / "smart-turn-v3.2-cpu.onnx"

    @cached_property
    def smart_turn(self) -> SmartTurn | None:
        """The shared Smart Turn model with ``OFFERCALL_END_OF_TURN=smart``; else None."""
        return SmartTurn.load(self.smart_turn_model_path) if self.settings.end_of_turn == "smart" else None

    @cached_property
    def words_turn(self) -> WordsTurn | None:
        """The model of whether a partial transcript reads finished, with
        ``OFFERCALL_END_OF_TURN=words`` or ``smart``; else None."""
        return words_turn() if self.settings.end_of_turn in ("words", "smart") else None

    @cached_property
    def asr_model(self) -> object:
        """The shared Vosk model (loaded on first use)."""
        return load_model(self.settings.vosk_model_path)

    @cached_property
    def speaker(self) -> Speaker:
        """The bot's voice, chosen by ``OFFERCALL_TTS_ENGINE``, with the on-disk phrase cache."""
        engine = make_engine(self.settings.tts_engine)
        return Speaker(engine, PhraseCache(directory=self.settings.tts_cache_dir))

    async def load(self) -> None:
        """Loads the models off the event loop, so the first call does not wait for them."""
        await asyncio.to_thread(
            lambda: (self.asr_model, self.speaker.engine.load(), self.vad, self.smart_turn, self.words_turn))

    async def warm(self, fmt: AudioFormat) -> int:
        """Synthesises the fixed prompts into the phrase cache before dialling; returns how many
        clauses were new."""
        await self.load()
        return await self.speaker.warm(fixed_prompts(self.settings), fmt)

    async def warm_for_customer(
        self, engine: Engine, customer_id: str, fmt: AudioFormat, variant: str | None = None
    ) -> int:
        """Synthesises what the bot may say to this customer (their name, offer and the answers
        about it) while the call rings, so those turns start from the cache."""
        found = await asyncio.to_thread(_customer_offer, engine, customer_id)
        if found is None:
            return 0
        return await self.speaker.warm(customer_prompts(self.settings, found, variant), fmt)

    def session_config(self, detect_machine: bool = False) -> SessionConfig:
        """Call timings from the settings; ``detect_machine`` screens for answering machines."""
        turn = TurnConfig(
            endpoint_silence_ms=self.settings.endpoint_silence_ms,
            silence_timeout_ms=self.settings.silence_timeout_ms,
            max_call_ms=self.settings.max_call_s * 1000,
        )
        return SessionConfig(
            turn=turn, detect_machine=detect_machine, bot_hold_ms=self.settings.bot_hold_ms,
            bot_timeout_ms=self.settings.bot_timeout_ms,
            end_of_turn=None if self.settings.end_of_turn == "fixed" else EndOfTurnConfig(),
            answer_grammar=self.settings.answer_grammar,
        )


def fixed_prompts(settings: Settings) -> list[str]:
    """What the bot says the same way to every customer (customer-specific parts aside)."""
    voice = texts.Voice(bank=settings.bank_name, hotline=settings.bank_hotline)
    return [
        # the openings' clauses before the name are the same for every customer
        *(texts.opening(voice, "张**先生本人", variant) for variant in texts.script_variants()),
        texts.disclosure(voice), texts.HANDOFF_QUESTION, texts.HUMAN_QUESTION,
        texts.NOT_UNDERSTOOD, texts.transfer_notice(), texts.not_interested_goodbye(voice),
        texts.already_has_loan_goodbye(voice), texts.opt_out_confirmation(), texts.goodbye(),
        texts.wrong_person_goodbye(), texts.SILENCE_REPROMPT + texts.HANDOFF_QUESTION,
        texts.SILENCE_GOODBYE, texts.CALLBACK_QUESTION, SORRY_TEXT, MAX_DURATION_TEXT, HOLD_TEXT,
        *faq_prompts(settings, None),
        callback_promise(SlaPolicy(callback_promise_min=settings.callback_promise_min)),
    ]


def faq_prompts(settings: Settings, offer: texts.Offer | None) -> list[str]:
    """The FAQ answers as this offer (or, without one, every customer) would hear them."""
    voice = texts.Voice(bank=settings.bank_name, hotline=settings.bank_hotline)
    faq = texts.load_faq()
    answers = []
    for intent, entry in faq.items():
        if bool(entry.get("needs_identity")) != (offer is not None):
            continue
        try:
            answers.append(texts.answer(intent, faq, voice, offer, identity_confirmed=True))
        except KeyError:  # an answer that quotes the offer, with no offer to quote
            continue
    return [text for text in answers if text]


def customer_prompts(
    settings: Settings, found: store.CustomerOffer, variant: str | None = None
) -> list[str]:
    """What the bot says only to this customer: the opening with their name, then, if they have
    an offer, its pitch and the answers that quote it."""
    voice = texts.Voice(bank=settings.bank_name, hotline=settings.bank_hotline)
    whom = texts.addressee(found.masked_name, found.gender, found.org_name)
    prompts = [texts.opening(voice, whom, variant)]
    offer = texts.Offer.of(found)
    if offer is not None:
        prompts += [texts.offer_pitch(voice, offer, variant), *faq_prompts(settings, offer)]
    return prompts


def _customer_offer(engine: Engine, customer_id: str) -> store.CustomerOffer | None:
    with session_scope(engine) as session:
        return store.get_customer_offer(session, customer_id)


def new_call_id() -> str:
    """A fresh call id (also the Rasa conversation id)."""
    return f"call-{uuid.uuid4().hex[:16]}"


async def run_call(
    settings: Settings,
    runtime: VoiceRuntime,
    engine: Engine,
    http: aiohttp.ClientSession,
    *,
    customer_id: str,
    transport: Transport,
    call_id: str | None = None,
    on_entry: Callable[[TranscriptEntry], None] | None = None,
    config: SessionConfig | None = None,
    line: AgentLine | None = None,
    start_metadata: dict[str, Any] | None = None,
) -> CallResult:
    """Runs one call through the session and stores its record; returns the result."""
    call_id = call_id or new_call_id()
    # the session's own deadline (bot_timeout_ms) decides; the client's is only a backstop
    bot = connect_bot(settings, http, engine, timeout_s=settings.bot_timeout_ms / 1000 + 1)
    await runtime.load()
    session = CallSession(
        call_id=call_id,
        customer_id=customer_id,
        transport=transport,
        bot=bot,
        speaker=runtime.speaker,
        asr_model=runtime.asr_model,
        recorder=CallRecorder(call_id, settings.recordings_dir, transport.format.sample_rate),
        config=config or runtime.session_config(),
        on_entry=on_entry,
        line=line,
        start_metadata=start_metadata,
        vad=runtime.vad,
        smart_turn=runtime.smart_turn,
        words_turn=runtime.words_turn,
    )
    started_at = utcnow()
    warming = asyncio.create_task(
        runtime.warm_for_customer(
            engine, customer_id, transport.format, (start_metadata or {}).get(texts.VARIANT_SLOT)
        ),
        name=f"warm-{call_id}",
    )
    try:
        result = await session.run()
    finally:
        warming.cancel()
    await asyncio.to_thread(_store_call, engine, result, transport.name, started_at)
    return result


def _store_call(engine: Engine, result: CallResult, transport: str, started_at: datetime) -> None:
    record = store.CallRecord(
        call_id=result.call_id,
        customer_id=result.customer_id,
        transport=transport,
        outcome=result.outcome,
        ended_by=result.ended_by,
        duration_ms=int(result.duration_ms),
        handoff_id=result.handoff_id,
        recording_path=result.recording_path,
        transcript_path=result.transcript_path,
        error=result.error,
        started_at=started_at,
        ended_at=utcnow(),
    )
    with session_scope(engine) as session:
        store.record_call(session, record)
