"""Signed customer tokens: the chat link's, and the mobile-banking app's session.

The bank's app opens ``/chat?t=<token>`` from its pop-up, and an SMS carries the same link.
The token names the customer, a purpose and an expiry, signed with HMAC-SHA256 under
``OFFERCALL_SECRET_KEY``, so the bot knows who it is talking to without asking for personal
data, and nobody can forge another customer's link.

Purposes keep one kind of token from opening the other's doors: ``chat`` (the chat link,
also what tokens without a purpose are) and ``app`` (the app back end's session token, with
which the app fetches the customer's pop-ups).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import quote


class TokenError(ValueError):
    """A token that is malformed, forged or expired."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


CHAT = "chat"
APP = "app"
PURPOSES = (CHAT, APP)


def issue(customer_id: str, secret: str, *, ttl_s: float = 86400, now: float | None = None,
          purpose: str = CHAT) -> str:
    """A token for ``customer_id`` valid for ``ttl_s`` seconds, for ``purpose``."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    issued = time.time() if now is None else now
    claims = {"c": customer_id, "exp": int(issued + ttl_s)}
    if purpose != CHAT:
        claims["p"] = purpose
    payload = _b64(json.dumps(claims).encode())
    return f"{payload}.{_sign(payload, secret)}"


def chat_path(customer_id: str, secret: str, *, ttl_s: float = 86400) -> str:
    """The chat widget's address signed in as ``customer_id``: ``/chat?t=<chat token>``, as
    text messages, pop-ups and the command line give it."""
    return f"/chat?t={quote(issue(customer_id, secret, ttl_s=ttl_s), safe='')}"


def verify(token: str, secret: str, *, now: float | None = None, purpose: str = CHAT) -> str:
    """The customer id in a valid token for ``purpose``; raises :class:`TokenError` otherwise."""
    if not isinstance(token, str) or token.count(".") != 1:
        raise TokenError("the chat link is malformed")
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(payload, secret)):
        raise TokenError("the chat link is not valid")
    try:
        claims = json.loads(_unb64(payload))
        customer_id, expires = str(claims["c"]), float(claims["exp"])
        given = str(claims.get("p", CHAT))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TokenError("the chat link is malformed") from exc
    if given != purpose:
        raise TokenError(f"this token is for {given}, not for {purpose}")
    if (time.time() if now is None else now) >= expires:
        raise TokenError("the chat link has expired; open it again from the app")
    return customer_id
