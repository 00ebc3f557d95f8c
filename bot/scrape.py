"""What every offercall process's ``GET /metrics`` shares: who may scrape, and the exposition.

Each process (web server, dialer worker, action server, Rasa) keeps its metrics in
prometheus_client's default registry and serves them in the text format Prometheus scrapes.
A scrape must show ``Authorization: Bearer <OFFERCALL_METRICS_TOKEN>`` when that variable is
set; when it is not set, only a scraper on the same machine (a loopback peer) is served.

It lives in ``bot`` because the Rasa input channel (``bot.channel``, which must stand alone)
and the action server need it; the aiohttp servers of ``offercall`` use it too. Framework
neutral: each server turns :func:`refusal` and :func:`exposition` into its own response.
No metric of offercall's carries personal data: labels are closed vocabularies (channels,
outcomes, action names, ticket tiers), never phone numbers, names or customer ids.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

TOKEN_ENV = "OFFERCALL_METRICS_TOKEN"
MIN_TOKEN_CHARS = 16
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The classic text format that ``generate_latest`` writes (every Prometheus reads it)."""

TURN_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
"""Seconds, for every turn-latency histogram: fine below the 300 ms goal, up to the 5 s by
which a customer must have had an answer or an apology."""


class MetricsConfigError(ValueError):
    """``OFFERCALL_METRICS_TOKEN`` is set to something unusable (raised at start-up)."""


def metrics_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The scrape token from ``environ`` (the process's by default); None when unset or empty."""
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        return None
    if len(token) < MIN_TOKEN_CHARS or any(ch.isspace() for ch in token):
        raise MetricsConfigError(
            f"{TOKEN_ENV} must be at least {MIN_TOKEN_CHARS} characters without spaces")
    return token


@dataclass(frozen=True)
class Refusal:
    """Why a scrape is refused, as an HTTP answer."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


def is_loopback(peer: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback; False for anything else or unknown."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def refusal(authorization: str | None, peer: str | None, token: str | None) -> Refusal | None:
    """None when the scrape may go on; else the answer to give (see the module docstring)."""
    if token is None:
        if is_loopback(peer):
            return None
        return Refusal(403, f"metrics are served to loopback only unless {TOKEN_ENV} is set")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return None
    return Refusal(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


def exposition(*registries: CollectorRegistry) -> bytes:
    """The text exposition of ``registries`` (the default registry when none is given).

    Several registries are concatenated: their metric names must not overlap."""
    return b"".join(generate_latest(registry) for registry in (registries or (REGISTRY,)))
