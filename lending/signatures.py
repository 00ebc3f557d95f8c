"""Signed requests from the bank's systems: HMAC-SHA256 over the request, a timestamp window,
and a nonce the receiver remembers (replay protection is the receiver's, with its own store).
Pure: no I/O, no clock; the caller gives ``now``.

A request carries three headers::

    X-Offercall-Timestamp  Unix seconds when it was signed
    X-Offercall-Nonce      16-64 characters of A-Z a-z 0-9 _ - , new for every request
    X-Offercall-Signature  sha256=<hex HMAC-SHA256 of the canonical text under the shared key>

The canonical text is five lines joined by ``\\n``: the timestamp, the nonce, the method in
capitals, the path with its query string as sent, and the hex SHA-256 of the raw body::

    1767225600\\nq7Yc0...\\nPOST\\n/api/loans/events\\n9f86d08...

A request more than ``window_s`` seconds from the receiver's clock (either way) is stale.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from lending.errors import SignatureError

TIMESTAMP_HEADER = "X-Offercall-Timestamp"
NONCE_HEADER = "X-Offercall-Nonce"
SIGNATURE_HEADER = "X-Offercall-Signature"
DEFAULT_WINDOW_S = 300
"""How far a request's timestamp may be from the receiver's clock, in seconds."""

_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")


@dataclass(frozen=True)
class SignedRequest:
    """What a verified request was signed with: its nonce (for the replay check) and time."""

    nonce: str
    timestamp: int


def canonical(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The text that is signed (see the module docstring)."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join((str(timestamp), nonce, method.upper(), path, digest)).encode()


def signature(key: str, method: str, path: str, timestamp: int, nonce: str, body: bytes) -> str:
    """The ``X-Offercall-Signature`` value: ``sha256=<hex>``."""
    mac = hmac.new(key.encode(), canonical(method, path, timestamp, nonce, body), hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def signed_headers(key: str, method: str, path: str, body: bytes, *, now: float,
                   nonce: str) -> dict[str, str]:
    """The three headers a sender adds (the bank's systems, our tests and tools)."""
    if not _NONCE.fullmatch(nonce):
        raise ValueError("a nonce is 16-64 characters of A-Z a-z 0-9 _ -")
    timestamp = int(now)
    return {TIMESTAMP_HEADER: str(timestamp), NONCE_HEADER: nonce,
            SIGNATURE_HEADER: signature(key, method, path, timestamp, nonce, body)}


def verify(key: str, headers: Mapping[str, str], method: str, path: str, body: bytes, *,
           now: float, window_s: float = DEFAULT_WINDOW_S) -> SignedRequest:
    """The request's nonce and timestamp when its signature is right and it is fresh; raises
    :class:`SignatureError` (``unsigned``, ``malformed``, ``bad_signature``, ``stale``)
    otherwise. The replay check (a nonce seen before) is the caller's."""
    if not key:
        raise ValueError("no key to verify with")
    given = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
               if not given.get(name.lower())]
    if missing:
        raise SignatureError("unsigned", f"the request is not signed: missing {', '.join(missing)}")
    raw_time, nonce = given[TIMESTAMP_HEADER.lower()], given[NONCE_HEADER.lower()]
    if not _TIMESTAMP.fullmatch(raw_time):
        raise SignatureError("malformed", f"{TIMESTAMP_HEADER} must be Unix seconds")
    if not _NONCE.fullmatch(nonce):
        raise SignatureError("malformed",
                             f"{NONCE_HEADER} must be 16-64 characters of A-Z a-z 0-9 _ -")
    found = _SIGNATURE.fullmatch(given[SIGNATURE_HEADER.lower()])
    if found is None:
        raise SignatureError("malformed", f"{SIGNATURE_HEADER} must be sha256=<64 hex digits>")
    timestamp = int(raw_time)
    expected = signature(key, method, path, timestamp, nonce, body)
    if not hmac.compare_digest(f"sha256={found.group(1)}", expected):
        raise SignatureError("bad_signature", "the signature does not match the request")
    if abs(now - timestamp) > window_s:
        raise SignatureError("stale", f"the request was signed {now - timestamp:+.0f} s from "
                                      f"our clock (at most ±{window_s:.0f} s)")
    return SignedRequest(nonce, timestamp)
