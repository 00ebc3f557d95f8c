"""What the bot says: pure functions from the offer and the conversation stage to Mandarin text.

Nothing here touches the database or Rasa; the actions feed it plain values.
Amounts are written the way they are spoken (五万元) so chat and voice say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from zhnorm import say_amount

if TYPE_CHECKING:
    from persistence.store import CustomerOffer

FAQ_PATH = Path(__file__).resolve().parent.parent / "faq.yml"
DOMAIN_PATH = Path(__file__).resolve().parent.parent / "domain.yml"
VARIANT_SLOT = "script_variant"
DEFAULT_VARIANT = "A"

HANDOFF_QUESTION = "请问您还有什么问题吗？需要为您转接客户经理帮您办理吗？"
HUMAN_QUESTION = "需要为您转接人工客服吗？"
NOT_UNDERSTOOD = "抱歉，我没有听清楚您的意思。"
GIVE_UP = "抱歉，我没能理解您的意思，先不打扰您了。如有需要，您可以拨打{bank}客服电话{hotline}。再见！"


@dataclass(frozen=True)
class Offer:
    """The parts of a pre-approved offer the bot may speak about."""

    product: str
    amount_yuan: int
    rate_min: float
    rate_max: float
    term_months: int
    valid_until: date

    @classmethod
    def of(cls, found: CustomerOffer | None) -> Offer | None:
        """The offer in a customer lookup, or None when there is no customer or no active offer."""
        if found is None or found.offer_id is None:
            return None
        return cls(
            product=found.product, amount_yuan=found.amount_yuan, rate_min=found.rate_min,
            rate_max=found.rate_max, term_months=found.term_months, valid_until=found.valid_until,
        )


@dataclass(frozen=True)
class Voice:
    """Who is speaking: the bank's name and its official hotline."""

    bank: str
    hotline: str


def load_faq(path: Path = FAQ_PATH) -> dict[str, dict[str, Any]]:
    """Read the product FAQ: intent -> {answer, needs_identity}."""
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def display_name(masked_name: str, gender: str | None) -> str:
    """How the bot addresses the customer: 张**先生, 李**女士, or just 王**."""
    honorific = {"M": "先生", "F": "女士"}.get(gender or "", "")
    return f"{masked_name}{honorific}"


ANYONE = "机主本人"
"""Whom the right-party question asks for when the customer is not known."""


def addressee(masked_name: str, gender: str | None, org_name: str | None = None) -> str:
    """Whom the right-party question asks for: the person (张**先生本人), or, for a contact
    of a small business (医保贷's clinics and pharmacies), the one who runs it
    (康民药房的负责人)."""
    if org_name:
        return f"{org_name}的负责人"
    return f"{display_name(masked_name, gender)}本人"


def format_rate(percent: float) -> str:
    """3.6 -> '3.6', 4.35 -> '4.35', 5.0 -> '5'."""
    return f"{percent:.2f}".rstrip("0").rstrip(".")


@lru_cache(maxsize=None)
def script_responses(path: Path = DOMAIN_PATH) -> dict[str, dict[str, str]]:
    """The domain's scripted responses with A/B variations: response -> variant -> template.

    The variation without a condition is the default variant; the others are keyed by the
    ``script_variant`` value of their condition, as Rasa selects them.
    """
    with path.open(encoding="utf-8") as handle:
        responses = yaml.safe_load(handle).get("responses", {})
    scripts: dict[str, dict[str, str]] = {}
    for name in ("utter_opening", "utter_offer_pitch"):
        for variation in responses.get(name, []):
            condition = variation.get("condition") or []
            variant = next(
                (str(c["value"]) for c in condition if c.get("name") == VARIANT_SLOT),
                DEFAULT_VARIANT,
            )
            scripts.setdefault(name, {})[variant] = variation["text"]
    return scripts


def script_variants() -> tuple[str, ...]:
    """Every variant the domain defines (the default first)."""
    names = {v for templates in script_responses().values() for v in templates}
    return (DEFAULT_VARIANT, *sorted(names - {DEFAULT_VARIANT}))


def script_text(response: str, variant: str | None, fields: dict[str, Any]) -> str:
    """A scripted response as Rasa renders it for this variant (unknown variants: default)."""
    templates = script_responses()[response]
    return templates.get(variant or DEFAULT_VARIANT, templates[DEFAULT_VARIANT]).format(**fields)


def opening_fields(voice: Voice, whom: str, channel: str | None = "voice") -> dict[str, Any]:
    """The values the opening's template needs (``whom``: :func:`addressee`); the assistant
    speaks on a call and writes in the chat and in text messages."""
    assistant = "智能语音助手" if channel in ("voice", None) else "智能助手"
    return {"bank": voice.bank, "addressee": whom, "assistant": assistant}


def opening(voice: Voice, whom: str, variant: str | None = None,
            channel: str | None = "voice") -> str:
    """First words of an outbound contact: who is calling, why, and the right-party question
    for ``whom`` (:func:`addressee`)."""
    return script_text("utter_opening", variant, opening_fields(voice, whom, channel))


def disclosure(voice: Voice, channel: str | None = "voice") -> str:
    """The mandatory disclosures said before any offer detail: AI, bank, purpose (worded for a
    phone call, or for the in-app chat and text messages)."""
    if channel in ("chat", "sms"):
        return (
            f"感谢您的确认。温馨提示：本次对话由{voice.bank}智能助手进行，"
            "目的是向您介绍您的预授信贷款额度，对话内容会被记录。"
        )
    return (
        f"感谢您的确认。温馨提示：本次通话由{voice.bank}智能语音助手进行，"
        "目的是向您介绍您的预授信贷款额度，通话内容可能会被录音。"
    )


def pitch_fields(voice: Voice, offer: Offer) -> dict[str, Any]:
    """The values the offer pitch's template needs, written as they are spoken."""
    return {
        "bank": voice.bank, "product": offer.product, "amount_spoken": say_amount(offer.amount_yuan),
        "rate_min": format_rate(offer.rate_min), "rate_max": format_rate(offer.rate_max),
        "term_months": offer.term_months,
    }


def offer_pitch(voice: Voice, offer: Offer, variant: str | None = None) -> str:
    """The pre-approved offer: product, amount, rate range, term, how to apply; then the question."""
    return script_text("utter_offer_pitch", variant, pitch_fields(voice, offer))


def follow_up(stage: str | None, whom: str) -> str:
    """The question that gives the turn back to the customer at this stage."""
    if stage == "identity":
        return f"请问您是{whom}吗？"
    if stage == "human_offered":
        return HUMAN_QUESTION
    return HANDOFF_QUESTION


def answer(
    intent: str,
    faq: dict[str, dict[str, Any]],
    voice: Voice,
    offer: Offer | None,
    identity_confirmed: bool,
) -> str | None:
    """The FAQ answer for ``intent``, or None when it may not be given yet.

    Answers that reveal offer details need the right-party check to have passed and an offer.
    """
    entry = faq.get(intent)
    if entry is None:
        return None
    if entry.get("needs_identity") and (not identity_confirmed or offer is None):
        return None
    values: dict[str, Any] = {"bank": voice.bank, "hotline": voice.hotline}
    if offer is not None:
        values.update(
            product=offer.product,
            amount=say_amount(offer.amount_yuan),
            rate_min=format_rate(offer.rate_min),
            rate_max=format_rate(offer.rate_max),
            term=offer.term_months,
            valid_until=f"{offer.valid_until.year}年{offer.valid_until.month}月{offer.valid_until.day}日",
        )
    return " ".join(entry["answer"].split()).format(**values).replace(" ", "")


def identity_needed(whom: str) -> str:
    """Said when a question about the offer comes before the right-party check."""
    return f"为了保护您的信息安全，需要先确认您的身份，才能为您介绍具体内容。请问您是{whom}吗？"


def wrong_person_goodbye() -> str:
    """Apology for the wrong person; reveals nothing about the offer."""
    return "不好意思，打扰您了。祝您生活愉快，再见！"


def not_interested_goodbye(voice: Voice) -> str:
    """Thanks and ends without pushing again."""
    return (
        "好的，明白了，不打扰您了。如果以后有需要，可以随时在"
        f"{voice.bank}手机银行查看和申请。感谢您的接听，祝您生活愉快，再见！"
    )


def already_has_loan_goodbye(voice: Voice) -> str:
    """Acknowledges an existing loan and says the offer stays available."""
    return (
        "好的，了解了。这个预授信额度在有效期内会一直为您保留，"
        f"以后有需要可以随时在{voice.bank}手机银行申请。感谢您的接听，再见！"
    )


def opt_out_confirmation() -> str:
    """Confirms the opt-out; said only after it is written."""
    return "好的，已经为您登记，以后不会再给您拨打此类营销电话。打扰您了，再见！"


SILENCE_REPROMPT = "喂，您好，请问您还在听吗？"
SILENCE_GOODBYE = "您现在可能不方便接听，那我们改天再联系您。再见！"
CALLBACK_QUESTION = "您看什么时候方便再给您打电话？"


def expected_answer(stage: str | None, active_loop: str | None = None) -> str:
    """The kind of answer the bot's open question expects, named for the voice channel."""
    if active_loop == "callback_form":
        return "callback_time"
    return "identity" if stage == "identity" else "yes_no"


def goodbye() -> str:
    """A plain goodbye."""
    return "好的，感谢您的接听，祝您生活愉快，再见！"


def transfer_notice(channel: str | None = "voice", promise_min: int = 30) -> str:
    """Said while the customer is being transferred to a human (by text message: an agent
    calls them back within ``promise_min`` minutes)."""
    if channel == "sms":
        return f"好的，已为您安排客户经理，将在{promise_min}分钟内给您回电，请留意来电。"
    if channel == "chat":
        return "好的，正在为您转接客户经理，请稍候。"
    return "好的，正在为您转接客户经理，请稍候，不要挂机。"


def callback_confirmation(when_spoken: str) -> str:
    """Confirms a booked callback time."""
    return f"好的，已为您预约{when_spoken}再给您回电。到时候再联系您，先不打扰了，再见！"
