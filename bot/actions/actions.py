"""The bot's custom actions: read the offer, record outcomes, book callbacks, write opt-outs,
create handoffs. Every write is committed before the bot says it happened.

Rasa decides which action runs (bot/data/rules.yml); these only carry it out.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecuted, ActiveLoop, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.actions import history, texts
from bot.actions.context import get_context
from core.clock import utcnow
from core.masking import mask_text
from core.vocabulary import MUST_BE_HEARD, ConversationOutcome
from persistence import handoffs, store
from zhnorm import parse_amount, parse_callback_time, say_amount, say_time

log = logging.getLogger(__name__)

START_INTENT = "session_start"
OFFER_ACTION = "action_present_offer"
# Intents that leave the callback form for their own rule instead of being read as a time.
LEAVES_CALLBACK_FORM = frozenset(
    {
        "opt_out",
        "not_interested",
        "wrong_person",
        "goodbye",
        "request_handoff",
        "already_has_loan",
        "suspect_fraud",
        "ask_how_got_number",
        "ask_is_robot",
        "ask_repeat",
        "ask_interest_rate",
        "ask_amount",
        "ask_repayment",
        "ask_requirements",
        "ask_fees",
        "ask_disbursement_time",
        "silence_timeout",
    }
)


def _intent_name(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def _conversation_id(tracker: Tracker) -> str:
    return tracker.sender_id


def _unheard(tracker: Tracker) -> set[str]:
    """The prompts of the bot's last turn that the customer's barge-in cut off, as the voice
    channel reports them with the customer's words (metadata ``unheard``)."""
    metadata = tracker.latest_message.get("metadata") or {}
    unheard = metadata.get("unheard") if isinstance(metadata, dict) else None
    if not isinstance(unheard, list) or tracker.get_slot("stage") != "offer":
        return set()
    return {prompt for prompt in unheard if prompt in MUST_BE_HEARD}


async def _lookup(tracker: Tracker) -> store.CustomerOffer | None:
    customer_id = tracker.get_slot("customer_id")
    if not customer_id:
        return None
    return await get_context().in_transaction(
        lambda session: store.get_customer_offer(session, customer_id)
    )


def _hangup(dispatcher: CollectingDispatcher, outcome: str, **extra: Any) -> None:
    dispatcher.utter_message(json_message={"directive": "hangup", "outcome": str(outcome), **extra})


def _give_turn(dispatcher: CollectingDispatcher, tracker: Tracker, stage: str | None = None) -> None:
    """Tells the channel the bot now waits for an answer, and what kind (keys 1/2/0 accepted)."""
    expect = texts.expected_answer(
        stage or tracker.get_slot("stage"), tracker.active_loop.get("name")
    )
    dispatcher.utter_message(json_message={"directive": "dtmf_request", "expect": expect})


def _closing_events(stage: str = "ended") -> list[EventType]:
    return [SlotSet("stage", stage), ActiveLoop(None), SlotSet("requested_slot", None)]


class ActionSessionStart(Action):
    """Starts a conversation: who the customer is (from the channel's metadata) and the opening.

    The channel opens every conversation with ``/session_start`` and metadata
    ``{"customer_id": ..., "channel": "voice"|"chat"}``; the opening is said in answer to it.
    """

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        # Rasa runs this action twice for a new conversation: once when the tracker is
        # created (with the metadata slot set), and once for the /session_start message
        # itself. SessionStarted resets every slot, so whatever is known is carried over.
        metadata = {
            **(tracker.get_slot("session_started_metadata") or {}),
            **(tracker.latest_message.get("metadata") or {}),
        }
        carried = [
            SlotSet(key, value)
            for key, value in tracker.slots.items()
            if value is not None and key != "requested_slot"
        ]
        events: list[EventType] = [SessionStarted(), *carried]
        if metadata.get(texts.VARIANT_SLOT):  # set before the opening, which Rasa picks by it
            events.append(SlotSet(texts.VARIANT_SLOT, str(metadata[texts.VARIANT_SLOT])))
        customer_id = metadata.get("customer_id") or tracker.get_slot("customer_id")
        channel = metadata.get("channel") or tracker.get_slot("channel") or "chat"
        is_start_message = _intent_name(tracker) == START_INTENT
        if customer_id and is_start_message and tracker.get_slot("stage") is None:
            events += await self._open(dispatcher, tracker, customer_id, channel)
        return [*events, ActionExecuted("action_listen")]

    async def _open(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, customer_id: str, channel: str
    ) -> list[EventType]:
        context = get_context()
        conversation_id = _conversation_id(tracker)

        def start(session: Any) -> tuple[store.CustomerOffer | None, bool]:
            found = store.get_customer_offer(session, customer_id)
            if found is None:
                return None, False
            blocked = store.is_do_not_contact(
                session, customer_id=customer_id, phone=found.phone
            )
            store.start_conversation(
                session, conversation_id, customer_id, channel, found.offer_id
            )
            if blocked:
                store.record_outcome(session, conversation_id, ConversationOutcome.ENDED, "on do-not-contact list")
            return found, blocked

        found, blocked = await context.in_transaction(start)
        if found is None:
            log.warning("bot.session.unknown_customer", extra={"conversation_id": conversation_id})
            dispatcher.utter_message(text=f"您好，这里是{context.voice.bank}。抱歉，暂时无法为您服务，再见。")
            _hangup(dispatcher, ConversationOutcome.ENDED, reason="unknown_customer")
            return [SlotSet("channel", channel), SlotSet("stage", "ended")]
        if blocked:
            dispatcher.utter_message(text=f"您好，这里是{context.voice.bank}。打扰了，再见。")
            _hangup(dispatcher, ConversationOutcome.ENDED, reason="do_not_contact")
            return [SlotSet("channel", channel), SlotSet("stage", "ended")]
        whom = texts.addressee(found.masked_name, found.gender, found.org_name)
        dispatcher.utter_message(response="utter_opening",
                                 **texts.opening_fields(context.voice, whom, channel))
        _give_turn(dispatcher, tracker, "identity")
        return [
            SlotSet("customer_id", customer_id),
            SlotSet("channel", channel),
            SlotSet("addressee", whom),
            SlotSet("stage", "identity"),
        ]


class ActionPresentOffer(Action):
    """After the right-party check: the disclosures, then the offer read from the database."""

    def name(self) -> str:
        return OFFER_ACTION

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return await _present_offer(dispatcher, tracker)


async def _present_offer(
    dispatcher: CollectingDispatcher, tracker: Tracker, *, disclosure: bool = True
) -> list[EventType]:
    """The disclosure (unless it was heard in full already), then the offer and its question.
    Said again, whole, when a barge-in cut either off: what must be heard is never skipped."""
    context = get_context()
    offer = texts.Offer.of(await _lookup(tracker))
    if disclosure:
        dispatcher.utter_message(
            text=texts.disclosure(context.voice, tracker.get_slot("channel")),
            json_message={"prompt": "disclosure"},
        )
    if offer is None:
        dispatcher.utter_message(
            text="抱歉，暂时没有查到您的额度信息。" + texts.HUMAN_QUESTION
        )
        _give_turn(dispatcher, tracker, "human_offered")
        return [SlotSet("stage", "human_offered")]
    dispatcher.utter_message(response="utter_offer_pitch", **texts.pitch_fields(context.voice, offer))
    _give_turn(dispatcher, tracker, "offer")
    return [SlotSet("stage", "offer")]


class ActionAnswerQuestion(Action):
    """Answers product, trust and privacy questions, then gives the turn back."""

    def name(self) -> str:
        return "action_answer_question"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        context = get_context()
        intent = _intent_name(tracker) or ""
        confirmed = any(
            event.get("event") == "action" and event.get("name") == OFFER_ACTION
            for event in tracker.events
        )
        offer = texts.Offer.of(await _lookup(tracker)) if confirmed else None
        name = tracker.get_slot("addressee") or texts.ANYONE
        reply = texts.answer(intent, context.faq, context.voice, offer, confirmed)
        if reply is None:
            dispatcher.utter_message(text=texts.identity_needed(name))
            _give_turn(dispatcher, tracker, "identity")
            return []
        events: list[EventType] = []
        if intent == "ask_amount" and offer is not None:
            wanted = parse_amount(tracker.latest_message.get("text") or "")
            if wanted:
                events.append(SlotSet("amount", float(wanted)))
                reply = _requested_amount_reply(wanted, offer.amount_yuan) + reply
        dispatcher.utter_message(text=reply)
        unheard = _unheard(tracker)
        if unheard:  # the question cut off the disclosure or the offer: say it again, whole
            return events + await _present_offer(dispatcher, tracker, disclosure="disclosure" in unheard)
        if tracker.active_loop.get("name") is None:
            dispatcher.utter_message(text=texts.follow_up(tracker.get_slot("stage"), name))
        _give_turn(dispatcher, tracker)
        return events


def _requested_amount_reply(wanted: int, limit: int) -> str:
    if wanted <= limit:
        return f"可以的，{say_amount(wanted)}在您的额度之内。"
    return f"您想借{say_amount(wanted)}，超过了目前的预授信额度，客户经理可以帮您评估提额。"


class ActionCreateHandoff(Action):
    """Creates the handoff record and tells the channel to transfer to a human."""

    def name(self) -> str:
        return "action_create_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        unheard = _unheard(tracker)
        if unheard and _intent_name(tracker) == "affirm":
            # a yes over the disclosure or the offer answers no question the customer heard
            return await _present_offer(dispatcher, tracker, disclosure="disclosure" in unheard)
        context = get_context()
        reason = _handoff_reason(_intent_name(tracker), tracker.get_slot("stage"))
        found = await _lookup(tracker)
        conversation_id = _conversation_id(tracker)
        channel = tracker.get_slot("channel") or "chat"
        settings = context.settings
        now = utcnow()
        # a customer texting is not on the line: an agent calls them back instead
        callback = ((now + timedelta(minutes=settings.callback_promise_min),
                     now + timedelta(seconds=settings.sla_callback_claim_s))
                    if channel == "sms" else None)

        def create(session: Any) -> int:
            handoff_id = handoffs.create_ticket(
                session,
                conversation_id=conversation_id,
                customer_id=tracker.get_slot("customer_id"),
                offer_id=found.offer_id if found else None,
                channel=channel if channel in ("voice", "chat", "sms") else "chat",
                reason=reason,
                transcript=history.transcript(tracker.events),
                intents=history.detected_intents(tracker.events),
                now=now,
                callback=callback,
            )
            store.record_outcome(session, conversation_id, ConversationOutcome.TRANSFERRED, reason)
            return handoff_id

        handoff_id = await context.in_transaction(create)
        log.info(
            "bot.handoff.created",
            extra={"conversation_id": conversation_id, "handoff_id": handoff_id},
        )
        dispatcher.utter_message(
            text=texts.transfer_notice(channel, settings.callback_promise_min))
        dispatcher.utter_message(
            json_message={"directive": "transfer", "handoff_id": handoff_id, "reason": reason}
        )
        return _closing_events("transferred")


def _handoff_reason(intent: str | None, stage: str | None) -> str:
    if intent == "request_handoff":
        return "customer_requested"
    if stage == "human_offered":
        return "not_understood"
    return "accepted_offer"


class EndConversation(Action, ABC):
    """Records an outcome, says a closing line, and hangs up."""

    outcome = ConversationOutcome.ENDED

    @abstractmethod
    def name(self) -> str:
        """The action's name in the domain."""

    def closing_text(self, voice: texts.Voice) -> str:
        return texts.goodbye()

    def reason(self, tracker: Tracker) -> str | None:
        return None

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        context = get_context()
        conversation_id = _conversation_id(tracker)
        reason = self.reason(tracker)
        await context.in_transaction(
            lambda session: store.record_outcome(session, conversation_id, self.outcome, reason)
        )
        dispatcher.utter_message(text=self.closing_text(context.voice))
        _hangup(dispatcher, self.outcome)
        return _closing_events()


class ActionEndWrongPerson(EndConversation):
    """The wrong person answered: apologise, reveal nothing, end."""

    outcome = ConversationOutcome.WRONG_PERSON

    def name(self) -> str:
        return "action_end_wrong_person"

    def closing_text(self, voice: texts.Voice) -> str:
        return texts.wrong_person_goodbye()


class ActionEndNotInterested(EndConversation):
    """Not interested: keep what they said as the reason, thank them, end."""

    outcome = ConversationOutcome.NOT_INTERESTED

    def name(self) -> str:
        return "action_end_not_interested"

    def closing_text(self, voice: texts.Voice) -> str:
        return texts.not_interested_goodbye(voice)

    def reason(self, tracker: Tracker) -> str | None:
        return tracker.latest_message.get("text")


class ActionEndAlreadyHasLoan(EndConversation):
    """Already has a loan: the offer stays available."""

    outcome = ConversationOutcome.ALREADY_HAS_LOAN

    def name(self) -> str:
        return "action_end_already_has_loan"

    def closing_text(self, voice: texts.Voice) -> str:
        return texts.already_has_loan_goodbye(voice)

    def reason(self, tracker: Tracker) -> str | None:
        return tracker.latest_message.get("text")


class ActionEndGoodbye(EndConversation):
    """The customer said goodbye (or declined the offered human)."""

    outcome = ConversationOutcome.ENDED

    def name(self) -> str:
        return "action_end_goodbye"


class ActionOptOut(Action):
    """Writes the customer to the do-not-contact list at once, then confirms and ends."""

    def name(self) -> str:
        return "action_opt_out"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        context = get_context()
        conversation_id = _conversation_id(tracker)
        customer_id = tracker.get_slot("customer_id")
        utterance = tracker.latest_message.get("text") or ""

        def opt_out(session: Any) -> None:
            found = store.get_customer_offer(session, customer_id) if customer_id else None
            store.add_do_not_contact(
                session,
                customer_id=customer_id,
                phone=found.phone if found else None,
                utterance=utterance,
                conversation_id=conversation_id,
            )
            store.record_outcome(session, conversation_id, ConversationOutcome.OPT_OUT, utterance)

        await context.in_transaction(opt_out)
        log.info("bot.opt_out.recorded", extra={"conversation_id": conversation_id})
        dispatcher.utter_message(text=texts.opt_out_confirmation())
        _hangup(dispatcher, ConversationOutcome.OPT_OUT)
        return _closing_events()


class ValidateCallbackForm(FormValidationAction):
    """Reads the callback time from whatever the customer said, with the pure time parser."""

    def name(self) -> str:
        return "validate_callback_form"

    async def extract_callback_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """The words that name a time, or the whole answer when the time was asked for."""
        text = tracker.latest_message.get("text") or ""
        entities = [
            str(entity.get("value"))
            for entity in tracker.latest_message.get("entities", [])
            if entity.get("entity") == "callback_time" and entity.get("value")
        ]
        now = get_context().now()
        for candidate in [text, *entities]:
            if parse_callback_time(candidate, now) is not None:
                return {"callback_time": candidate}
        asked = tracker.get_slot("requested_slot") == "callback_time"
        if asked and _intent_name(tracker) not in LEAVES_CALLBACK_FORM:
            return {"callback_time": text}  # validation says it was not understood
        return {}

    async def validate_callback_time(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Normalises the time to a datetime in the bank's time zone, or asks again."""
        moment = parse_callback_time(str(value or ""), get_context().now())
        if moment is None:
            dispatcher.utter_message(text="抱歉，没听清您方便的时间。")
            return {"callback_time": None, "callback_at": None}
        return {"callback_time": value, "callback_at": moment.isoformat()}


class ActionBookCallback(Action):
    """Books the callback at the normalised time, confirms it, and ends."""

    def name(self) -> str:
        return "action_book_callback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        context = get_context()
        conversation_id = _conversation_id(tracker)
        due_at = datetime.fromisoformat(tracker.get_slot("callback_at"))
        requested = tracker.get_slot("callback_time") or ""

        def book(session: Any) -> int:
            callback_id = store.book_callback(
                session,
                conversation_id=conversation_id,
                customer_id=tracker.get_slot("customer_id"),
                due_at=due_at,
                requested_text=requested,
            )
            store.record_outcome(session, conversation_id, ConversationOutcome.CALLBACK, requested)
            return callback_id

        await context.in_transaction(book)
        log.info(
            "bot.callback.booked",
            extra={"conversation_id": conversation_id, "text": mask_text(requested)},
        )
        dispatcher.utter_message(
            text=texts.callback_confirmation(say_time(due_at, context.now()))
        )
        _hangup(dispatcher, ConversationOutcome.CALLBACK, callback_at=due_at.isoformat())
        return [*_closing_events(), SlotSet("callback_time", None)]


class ActionRepeatLast(Action):
    """Says the bot's previous turn again."""

    def name(self) -> str:
        return "action_repeat_last"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        previous = history.previous_bot_turn(tracker.events)
        if not previous:
            name = tracker.get_slot("addressee") or texts.ANYONE
            previous = [texts.follow_up(tracker.get_slot("stage"), name)]
        for text in previous:
            dispatcher.utter_message(text=text)
        _give_turn(dispatcher, tracker)
        return []


class ActionHandleFallback(Action):
    """Not understood: re-prompt once, then offer a human, then give up politely."""

    def name(self) -> str:
        return "action_handle_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        context = get_context()
        misses = history.consecutive_fallbacks(tracker.events)
        stage = tracker.get_slot("stage")
        name = tracker.get_slot("addressee") or texts.ANYONE
        unheard = _unheard(tracker)
        if unheard:  # not understood over the disclosure or the offer: say it again, whole
            dispatcher.utter_message(text=texts.NOT_UNDERSTOOD)
            return await _present_offer(dispatcher, tracker, disclosure="disclosure" in unheard)
        if misses <= 1:
            dispatcher.utter_message(text=texts.NOT_UNDERSTOOD + texts.follow_up(stage, name))
            _give_turn(dispatcher, tracker)
            return []
        if misses == 2:
            if stage == "offer":
                dispatcher.utter_message(text=texts.NOT_UNDERSTOOD + texts.HANDOFF_QUESTION)
                _give_turn(dispatcher, tracker)
                return []
            dispatcher.utter_message(text=texts.NOT_UNDERSTOOD + texts.HUMAN_QUESTION)
            _give_turn(dispatcher, tracker, "human_offered")
            return [SlotSet("stage", "human_offered")]
        conversation_id = _conversation_id(tracker)
        await context.in_transaction(
            lambda session: store.record_outcome(
                session, conversation_id, ConversationOutcome.ENDED, "not understood"
            )
        )
        voice = context.voice
        dispatcher.utter_message(text=texts.GIVE_UP.format(bank=voice.bank, hotline=voice.hotline))
        _hangup(dispatcher, ConversationOutcome.ENDED)
        return _closing_events()


class ActionHandleSilence(Action):
    """The customer said nothing: ask once whether they are there, then end the call."""

    def name(self) -> str:
        return "action_handle_silence"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        stage = tracker.get_slot("stage")
        if history.consecutive_silences(tracker.events) <= 1:
            name = tracker.get_slot("addressee") or texts.ANYONE
            in_form = tracker.active_loop.get("name") == "callback_form"
            question = texts.CALLBACK_QUESTION if in_form else texts.follow_up(stage, name)
            dispatcher.utter_message(text=texts.SILENCE_REPROMPT + question)
            _give_turn(dispatcher, tracker)
            return []
        conversation_id = _conversation_id(tracker)
        await get_context().in_transaction(
            lambda session: store.record_outcome(
                session, conversation_id, ConversationOutcome.NO_RESPONSE, "silent twice"
            )
        )
        dispatcher.utter_message(text=texts.SILENCE_GOODBYE)
        _hangup(dispatcher, ConversationOutcome.NO_RESPONSE)
        return _closing_events()
