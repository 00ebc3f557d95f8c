"""The SMS gateway's protocol boundary: Kannel's sendsms HTTP interface (no database).

One GET per message; Kannel's answers (as Kannel 1.4.5 gives them) and what they mean here:

- 202 ``0: Accepted for delivery``: accepted;
- 202 ``3: Queued for later delivery`` (no SMSC link up; bearerbox's store keeps it): accepted;
- 4xx, e.g. 403 ``Authorization failed for sendsms``, 400 ``Missing receiver number,
  rejected``: refused, and sending it again would not help;
- 5xx, a refused connection or no answer within ``timeout_s``: :class:`GatewayUnavailable`,
  send it again later.

Kannel then calls ``dlr_url`` back for each message (a long one's parts together):
``status`` 8 (the SMSC took it) and 1 (delivered), 2 (failed) or 16 (the SMSC refused it),
in either order (smsbox fetches them concurrently). Text in GSM's 7-bit alphabet goes as
such (160 characters a part), any other (Chinese) as UCS-2 (70 a part); Kannel sends a
long message as concatenated parts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from core.masking import mask_phone

DLR_MASK = 31
"""Every delivery report Kannel has: delivered, failed, buffered, SMSC ack, SMSC nack."""
GSM_SAFE = frozenset(chr(c) for c in range(32, 127)) - {"`"} | {"\n", "\r"}
"""ASCII that GSM's 7-bit alphabet holds (Kannel turns a backquote or a tab into ``?``)."""


class GatewayUnavailable(Exception):
    """The gateway did not take the message (no connection, a timeout, a 5xx): send it again
    later. The message names no password and no full phone number."""


@dataclass(frozen=True)
class Submission:
    """Kannel's answer to one message."""

    accepted: bool
    detail: str
    """Kannel's answer text (``0: Accepted for delivery``)."""


def coding_for(text: str) -> int:
    """Kannel's ``coding``: 0 (GSM 7-bit) when every character survives it, else 2 (UCS-2)."""
    return 0 if set(text) <= GSM_SAFE else 2


@dataclass(frozen=True)
class KannelGateway:
    """Sends text messages through a Kannel smsbox's sendsms interface."""

    sendsms_url: str
    username: str
    password: str = field(repr=False)
    sender: str
    dlr_url: str = field(repr=False)
    """offercall's delivery-report endpoint with its key; Kannel calls it with
    ``&id=<message id>&status=<report>&answer=<SMSC's text>`` added."""
    name: str = "kannel"
    timeout_s: float = 10.0

    def sendsms_query(self, message_id: int, phone: str, text: str) -> dict[str, str]:
        """The sendsms query parameters for one message (pure)."""
        joiner = "&" if "?" in self.dlr_url else "?"
        return {
            "username": self.username,
            "password": self.password,
            "from": self.sender,
            "to": phone,
            "text": text,
            "charset": "UTF-8",
            "coding": str(coding_for(text)),
            "dlr-mask": str(DLR_MASK),
            # %d and %A are Kannel's: the report's status and the SMSC's answer
            "dlr-url": f"{self.dlr_url}{joiner}id={message_id}&status=%d&answer=%A",
        }

    def request_url(self, message_id: int, phone: str, text: str) -> URL:
        """The sendsms URL, every value percent-encoded (``%d`` as ``%25d``, a space as
        ``%20``), handed to aiohttp as it is."""
        query = urlencode(self.sendsms_query(message_id, phone, text), quote_via=quote)
        return URL(f"{self.sendsms_url}?{query}", encoded=True)

    async def submit(self, http: aiohttp.ClientSession, message_id: int, phone: str,
                     text: str) -> Submission:
        """Hands one message to Kannel: accepted, or refused (a 4xx: sending it again would
        not help); :class:`GatewayUnavailable` when it can be sent again later."""
        url = self.request_url(message_id, phone, text)
        try:
            async with http.get(url, timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                                allow_redirects=False) as response:
                status = response.status
                detail = (await response.read()).decode("utf-8", "replace").strip()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise GatewayUnavailable(self._redacted(
                f"{self.name} at {self.sendsms_url}: {type(exc).__name__} {exc}", phone)) from None
        if status >= 500:
            raise GatewayUnavailable(self._redacted(
                f"{self.name} answered {status}: {detail}", phone))
        return Submission(accepted=200 <= status < 300,
                          detail=self._redacted(detail or f"HTTP {status}", phone))

    def _redacted(self, message: str, phone: str) -> str:
        """``message`` without the password or the full phone number (an error may quote the
        URL)."""
        for secret in {self.password, quote(self.password, safe="")} - {""}:
            message = message.replace(secret, "***")
        for number in {phone, quote(phone, safe="")} - {""}:
            message = message.replace(number, mask_phone(phone))
        return message
