"""Text-message rules: what a campaign's message says, whether it may go now, how fast
messages may go, what a delivery report does to a message, and which replies are opt-outs.
Pure functions: no I/O and no clock.

Every marketing message ends with the opt-out instruction (回复TD退订), and none carries
offer details or the customer's name: the phone may not be the customer's, and the bot
checks who it is talking to before any offer detail, in the chat the link opens.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from core.vocabulary import SmsStatus
from outbound.compliance import CallingWindow, in_window, next_window_start

OPT_OUT_HINT = "回复TD退订"
SEGMENT_CHARS = 67
"""Characters of one part of a long Chinese (UCS-2) message: 70, less the 3 of its header."""
MAX_SEGMENTS = 4

TEMPLATES: Mapping[str, str] = {
    "offer": "【{bank}】尊敬的客户，您有一份专属贷款服务待查看，点击了解：{link}",
    "reminder": "【{bank}】您的专属贷款服务即将到期，如需了解请点击：{link}",
}
"""The built-in message templates: placeholders ``{bank}`` and ``{link}`` (the customer's
signed chat link). :data:`OPT_OUT_HINT` is appended to every one."""

PLACEHOLDERS = frozenset({"bank", "link"})

OPT_OUT_CONFIRMATION = "【{bank}】您已成功退订，我们将不再通过任何渠道向您推送营销信息。"

_OPT_OUT_WORDS = frozenset({"TD", "T", "退订", "TD退订", "退订TD", "取消订阅", "N"})
_PUNCTUATION = re.compile(r"[\s" + re.escape(string.punctuation) + r"。，！？、；：“”‘’（）【】]+")


class TemplateError(ValueError):
    """A message template that cannot be used."""


def check_template(template: str) -> None:
    """Refuses a template with an unknown placeholder, without the link, or too long."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise TemplateError(f"the template is malformed: {exc}") from exc
    unknown = names - PLACEHOLDERS
    if unknown:
        raise TemplateError(f"unknown placeholders {sorted(unknown)}; use {{bank}} and {{link}}")
    if "link" not in names:
        raise TemplateError("the template must carry the customer's link: {link}")


def render(template: str, *, bank: str, link: str) -> str:
    """The message a customer gets: the template filled in, and the opt-out instruction.
    Raises :class:`TemplateError` for a bad template or a message over :data:`MAX_SEGMENTS`."""
    check_template(template)
    text = template.format(bank=bank, link=link).rstrip()
    text = f"{text} {OPT_OUT_HINT}"
    if segments(text) > MAX_SEGMENTS:
        raise TemplateError(
            f"the message is {len(text)} characters, {segments(text)} parts; at most {MAX_SEGMENTS}")
    return text


def segments(text: str) -> int:
    """How many parts (and charges) a message is sent as: one up to 70 characters of Chinese
    (160 of plain ASCII), then parts of 67 (153)."""
    ascii_only = text.isascii()
    single, part = (160, 153) if ascii_only else (70, SEGMENT_CHARS)
    if len(text) <= single:
        return 1
    return -(-len(text) // part)


def national_number(phone: str) -> str:
    """A mainland number as the whitelist holds it: without ``+86`` or ``0086`` before it."""
    for prefix in ("+86", "0086"):
        if phone.startswith(prefix):
            return phone[len(prefix):]
    if len(phone) == 13 and phone.startswith("861"):
        return phone[2:]
    return phone


def is_opt_out(reply: str) -> bool:
    """Whether a customer's reply is the opt-out instruction (TD, T, 退订 … in any width and
    case, with any punctuation around it). Other wording ("别再发了") goes to the bot, whose
    language understanding recognises it as an opt-out too."""
    folded = unicodedata.normalize("NFKC", reply).upper()
    return _PUNCTUATION.sub("", folded) in _OPT_OUT_WORDS


MAX_REPLY_CHARS = MAX_SEGMENTS * SEGMENT_CHARS


def reply_parts(texts: list[str]) -> list[str]:
    """The bot's texts as few messages as fit: joined, and cut where a message would grow
    past :data:`MAX_REPLY_CHARS`. A text that repeats the end of the one before it (the
    opening's question, asked again in answer to the customer's first words) is sent once."""
    parts: list[str] = []
    for text in (t.strip() for t in texts):
        if not text or (parts and parts[-1].endswith(text)):
            continue
        if parts and len(parts[-1]) + len(text) <= MAX_REPLY_CHARS:
            parts[-1] += text
            continue
        while len(text) > MAX_REPLY_CHARS:
            parts.append(text[:MAX_REPLY_CHARS])
            text = text[MAX_REPLY_CHARS:]
        parts.append(text)
    return parts


# ---------------------------------------------------------------- delivery reports
DELIVERED, FAILED_PHONE, BUFFERED, SMSC_ACCEPTED, SMSC_REJECTED = 1, 2, 4, 8, 16
"""Kannel's delivery report codes (its ``%d``)."""

_RANK = {SmsStatus.QUEUED: 0, SmsStatus.SUBMITTED: 1, SmsStatus.SENT: 2,
         SmsStatus.DELIVERED: 3, SmsStatus.FAILED: 3}
_REPORTED = {DELIVERED: SmsStatus.DELIVERED, FAILED_PHONE: SmsStatus.FAILED,
             BUFFERED: SmsStatus.SENT, SMSC_ACCEPTED: SmsStatus.SENT,
             SMSC_REJECTED: SmsStatus.FAILED}
FINAL = frozenset({SmsStatus.DELIVERED, SmsStatus.FAILED})


def status_after_report(current: SmsStatus, code: int) -> SmsStatus:
    """A message's status once a delivery report with ``code`` came in. Reports can arrive
    late or twice: the status only moves forward, and a final one never changes.
    Raises ``ValueError`` for a code Kannel does not send."""
    if code not in _REPORTED:
        raise ValueError(f"unknown delivery report code {code}")
    if current not in _RANK:
        raise ValueError(f"a {current} message has no delivery reports")
    if current in FINAL:
        return current
    reported = _REPORTED[code]
    return reported if _RANK[reported] > _RANK[current] else current


# ---------------------------------------------------------------- sending
@dataclass(frozen=True)
class SendDecision:
    """``send`` now, ``wait`` until ``not_before``, or ``skip`` for good (with the reason)."""

    verdict: str
    reason: str = ""
    not_before: datetime | None = None


def decide_send(window: CallingWindow, at: datetime, *, opted_out: bool,
                already_sent: bool) -> SendDecision:
    """Whether a campaign's message to one customer may go at ``at``: never to a customer
    who opted out, never twice, and only within the campaign's contact window (the one its
    calls keep)."""
    if opted_out:
        return SendDecision("skip", "do_not_contact")
    if already_sent:
        return SendDecision("skip", "already_sent")
    if not in_window(window, at):
        return SendDecision("wait", "outside_window", next_window_start(window, at))
    return SendDecision("send")


@dataclass
class TokenBucket:
    """At most ``rate`` messages a second on average, in bursts of at most ``burst``.
    Times are seconds on any monotonic clock."""

    rate: float
    burst: float = 1.0
    _tokens: float | None = None
    _at: float = 0.0

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")

    def wait_s(self, now: float) -> float:
        """Takes one message's token: how long to wait before sending it (0: now)."""
        if self._tokens is None:
            self._tokens, self._at = self.burst, now
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate
