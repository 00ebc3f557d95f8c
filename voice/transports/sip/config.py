"""SIP settings: the user agent on this machine, and the trunk calls go out through.

Read from ``OFFERCALL_SIP_*`` environment variables (see :meth:`SipConfig.from_environ`), so
the voice layer does not depend on the application's settings module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from voice.errors import VoiceError

CODECS = ("PCMU", "PCMA")
PJSIP_MAX_CALLS = 4
"""Calls one PJSIP process can hold at once: the pjsua2-python wheel is built with
PJSUA_MAX_CALLS = 4. More calls need more processes (dialers share a campaign)."""
TRANSFER_MODES = ("refer", "bridge")


class SipConfigError(VoiceError):
    """A SIP setting cannot be used."""


@dataclass(frozen=True)
class TrunkConfig:
    """Where calls go: the PBX or carrier trunk, its credentials, and the agents' queue."""

    dial_uri: str = "sip:{number}@127.0.0.1"
    """The request URI for a customer's number; ``{number}`` is replaced by the digits."""
    proxy: str = ""
    """Outbound proxy (the trunk), e.g. ``sip:pbx.bank.local:5060``; empty: dial directly."""
    registrar: str = ""
    """Register with this registrar (e.g. ``sip:pbx.bank.local``); empty: do not register."""
    username: str = ""
    password: str = field(default="", repr=False)
    realm: str = "*"
    """Digest realm the credentials are for; ``*`` answers any challenge."""
    identity: str = "sip:offercall@127.0.0.1"
    """Our From address (the bank's calling line)."""
    agent_uri: str = "sip:agents@127.0.0.1"
    """Where transfers go: the agents' queue or an extension."""
    transfer_mode: str = "refer"
    """``refer``: blind transfer (the customer's side calls the agent); ``bridge``: the bot
    calls the agent, briefs them in one sentence, then joins the two calls and drops out."""
    ring_timeout_s: float = 30.0
    """Give up (CANCEL) when nobody answers within this time: the outcome is ``no_answer``."""
    agent_ring_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if "{number}" not in self.dial_uri or not self.dial_uri.startswith(("sip:", "sips:")):
            raise SipConfigError(f"the dial URI must be a sip: URI with {{number}}, got {self.dial_uri!r}")
        if self.transfer_mode not in TRANSFER_MODES:
            raise SipConfigError(
                f"transfer mode must be one of {', '.join(TRANSFER_MODES)}, got {self.transfer_mode!r}")
        if self.ring_timeout_s <= 0 or self.agent_ring_timeout_s <= 0:
            raise SipConfigError("ring timeouts must be positive")

    def uri_for(self, number: str) -> str:
        """The request URI for a phone number (digits and a leading + only)."""
        digits = number.strip()
        if not digits or not digits.lstrip("+").isdigit():
            raise SipConfigError(f"not a dialable number: {number!r}")
        return self.dial_uri.replace("{number}", digits)


@dataclass(frozen=True)
class SipConfig:
    """The user agent: where it listens, its media ports, codecs and jitter buffer."""

    host: str = "127.0.0.1"
    """Address to bind SIP and RTP to (and to put in Contact and SDP)."""
    port: int = 5060
    """SIP UDP port; 0 picks a free one."""
    rtp_port: int = 40000
    rtp_port_range: int = 2000
    codecs: tuple[str, ...] = CODECS
    """G.711 codecs in order of preference."""
    max_calls: int = PJSIP_MAX_CALLS
    """Calls at once in this process (SIP legs: a bridged transfer holds two)."""
    jitter_max_ms: int = 500
    """The adaptive jitter buffer grows up to this delay before it drops late packets."""
    trunk: TrunkConfig = field(default_factory=TrunkConfig)

    def __post_init__(self) -> None:
        unknown = [c for c in self.codecs if c not in CODECS]
        if unknown or not self.codecs:
            raise SipConfigError(f"codecs must be among {', '.join(CODECS)}, got {self.codecs!r}")
        if not 0 <= self.port < 65536 or not 0 < self.rtp_port < 65536:
            raise SipConfigError("SIP and RTP ports must be valid UDP ports")
        if not 1 <= self.max_calls <= PJSIP_MAX_CALLS:
            raise SipConfigError(
                f"max_calls must be 1 to {PJSIP_MAX_CALLS} (PJSIP's build holds {PJSIP_MAX_CALLS} calls "
                f"per process; run more dialer processes for more), got {self.max_calls}")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SipConfig:
        """``OFFERCALL_SIP_HOST``, ``_PORT``, ``_RTP_PORT``, ``_CODECS`` (e.g. ``PCMA,PCMU``),
        ``_MAX_CALLS``, ``_JITTER_MAX_MS``; the trunk: ``_DIAL_URI``, ``_PROXY``,
        ``_REGISTRAR``, ``_USERNAME``, ``_PASSWORD``, ``_REALM``, ``_IDENTITY``, ``_AGENT_URI``,
        ``_TRANSFER`` (refer or bridge), ``_RING_TIMEOUT_S``."""
        env = os.environ if environ is None else environ

        def get(name: str, default: str) -> str:
            return env.get(f"OFFERCALL_SIP_{name}", default)

        def number(name: str, default: str, kind: type = int):  # type: ignore[no-untyped-def]
            raw = get(name, default)
            try:
                return kind(raw)
            except ValueError:
                raise SipConfigError(f"OFFERCALL_SIP_{name} must be a number, got {raw!r}") from None

        host = get("HOST", "127.0.0.1")
        trunk = TrunkConfig(
            dial_uri=get("DIAL_URI", f"sip:{{number}}@{host}"),
            proxy=get("PROXY", ""),
            registrar=get("REGISTRAR", ""),
            username=get("USERNAME", ""),
            password=get("PASSWORD", ""),
            realm=get("REALM", "*"),
            identity=get("IDENTITY", f"sip:offercall@{host}"),
            agent_uri=get("AGENT_URI", f"sip:agents@{host}"),
            transfer_mode=get("TRANSFER", "refer"),
            ring_timeout_s=number("RING_TIMEOUT_S", "30", float),
            agent_ring_timeout_s=number("AGENT_RING_TIMEOUT_S", "30", float),
        )
        return cls(
            host=host,
            port=number("PORT", "5060"),
            rtp_port=number("RTP_PORT", "40000"),
            codecs=tuple(c.strip().upper() for c in get("CODECS", "PCMU,PCMA").split(",") if c.strip()),
            max_calls=number("MAX_CALLS", str(PJSIP_MAX_CALLS)),
            jitter_max_ms=number("JITTER_MAX_MS", "500"),
            trunk=trunk,
        )
