"""Signed customer tokens for the in-app chat link.

The bank's app opens ``/chat?t=<token>`` from its pop-up. The token names the customer and
an expiry, signed with HMAC-SHA256 under ``OFFERCALL_SECRET_KEY``, so the bot knows who it
is talking to without asking for personal data, and nobody can forge another customer's link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time


class TokenError(ValueError):
    """A token that is malformed, forged or expired."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(payload: str, secret: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def issue(customer_id: str, secret: str, *, ttl_s: float = 86400, now: float | None = None) -> str:
    """A token for ``customer_id`` valid for ``ttl_s`` seconds."""
    issued = time.time() if now is None else now
    payload = _b64(json.dumps({"c": customer_id, "exp": int(issued + ttl_s)}).encode())
    return f"{payload}.{_sign(payload, secret)}"


def verify(token: str, secret: str, *, now: float | None = None) -> str:
    """The customer id in a valid token; raises :class:`TokenError` otherwise."""
    if not isinstance(token, str) or token.count(".") != 1:
        raise TokenError("the chat link is malformed")
    payload, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(payload, secret)):
        raise TokenError("the chat link is not valid")
    try:
        claims = json.loads(_unb64(payload))
        customer_id, expires = str(claims["c"]), float(claims["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise TokenError("the chat link is malformed") from exc
    if (time.time() if now is None else now) >= expires:
        raise TokenError("the chat link has expired; open it again from the app")
    return customer_id
