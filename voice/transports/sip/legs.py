"""One SIP call leg in PJSIP, and the audio port that connects it to Python.

Threads: a :class:`Leg`'s callbacks (call state, DTMF, transfer progress) run on the stack's
thread; a :class:`MediaPort`'s frame callbacks run on PJMEDIA's clock thread, every 20 ms.
Neither touches asyncio objects: they hand what happened to a :class:`LegListener`, which
must be thread-safe (the transport posts each call onto its event loop).

Media: while a leg talks to the bot, its audio is connected both ways to its own
:class:`MediaPort` (16-bit PCM, 8 kHz, 20 ms frames; PJSIP does the G.711 coding and the jitter
buffer). Once bridged to another leg, the two legs' audio is connected to each other in the
conference bridge and the ports are disconnected: the bot has dropped out of the media path.
"""

from __future__ import annotations

import collections
import logging
import weakref
from typing import TYPE_CHECKING, Protocol

import pjsua2 as pj

if TYPE_CHECKING:
    from voice.transports.sip.stack import SipStack

log = logging.getLogger("voice.sip")

FRAME_BYTES = 320
"""20 ms of 16-bit PCM at 8 kHz."""
SILENCE = bytes(FRAME_BYTES)
GLITCH_MAX_FRAMES = 5
"""A run of at most this many frames with no bot audio, between frames with audio, is a
glitch (the bot's audio came late), not a pause between sentences."""

CONFIRMED = "confirmed"
EARLY = "early"
DISCONNECTED = "disconnected"
_STATES = {
    pj.PJSIP_INV_STATE_CALLING: "calling",
    pj.PJSIP_INV_STATE_EARLY: EARLY,
    pj.PJSIP_INV_STATE_CONNECTING: "connecting",
    pj.PJSIP_INV_STATE_CONFIRMED: CONFIRMED,
    pj.PJSIP_INV_STATE_DISCONNECTED: DISCONNECTED,
}
LIVE_OBJECTS: weakref.WeakSet[pj.Call | pj.AudioMediaPort] = weakref.WeakSet()
"""Every leg and port still referenced from Python: disowned before PJSIP shuts down, so a
reference that outlives the library does not call into it when it is finally dropped."""
_MEDIA_FLOWING = (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD)
"""Media states with audio to hear: sendrecv, or the far end sending only (an announcement)."""
_DTMF_METHODS = {pj.PJSUA_DTMF_METHOD_RFC2833: "rfc4733", pj.PJSUA_DTMF_METHOD_SIP_INFO: "sip-info"}


class LegListener(Protocol):
    """Receives a leg's news; called from PJSIP's threads, so it must only hand work over."""

    def on_state(self, state: str, code: int, reason: str) -> None: ...

    def on_audio(self, pcm: bytes) -> None: ...

    def on_dtmf(self, digit: str, method: str) -> None: ...

    def on_transfer_status(self, code: int, reason: str, final: bool) -> None: ...

    def on_final_stats(self, stats: dict[str, int]) -> None: ...


class UnderrunCounter:
    """Counts glitches in outgoing audio: short runs of empty frames between audio frames."""

    def __init__(self) -> None:
        self.glitches = 0
        self.glitch_frames = 0
        self.frames = 0
        self._empty_run = 0
        self._had_audio = False

    def feed(self, had_audio: bool) -> None:
        """One 20 ms frame was sent: with the bot's audio, or empty (silence sent instead)."""
        self.frames += 1
        if not had_audio:
            self._empty_run += 1
            return
        if self._had_audio and 0 < self._empty_run <= GLITCH_MAX_FRAMES:
            self.glitches += 1
            self.glitch_frames += self._empty_run
        self._empty_run = 0
        self._had_audio = True


class MediaPort(pj.AudioMediaPort):
    """A conference port: frames for the far end come from :attr:`outgoing` (silence when
    it is empty); frames from the far end go to the listener.

    Ports are pooled by the stack and never freed while PJSIP runs: PJMEDIA's clock thread may
    be inside a callback of a port at any moment, and freeing it then would crash."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.listener: LegListener | None = None
        self.outgoing: collections.deque[bytes] = collections.deque()
        self.underruns = UnderrunCounter()
        self.frames_in = 0
        fmt = pj.MediaFormatAudio()
        fmt.init(pj.PJMEDIA_FORMAT_PCM, 8000, 1, 20000, 16)
        self.createPort(name, fmt)
        LIVE_OBJECTS.add(self)

    def reset(self, listener: LegListener | None) -> None:
        """Ready for a new call."""
        self.outgoing = collections.deque()
        self.underruns = UnderrunCounter()
        self.frames_in = 0
        self.listener = listener

    def stats(self) -> dict[str, int]:
        return {"frames_out": self.underruns.frames, "glitches": self.underruns.glitches,
                "glitch_frames": self.underruns.glitch_frames, "frames_in": self.frames_in}

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2's name
        try:
            data = self.outgoing.popleft()
        except IndexError:
            data = SILENCE
            self.underruns.feed(False)
        else:
            self.underruns.feed(True)
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(data)
        frame.size = len(data)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 - pjsua2's name
        self.frames_in += 1
        listener = self.listener
        if listener is None:
            return
        if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size == FRAME_BYTES:
            listener.on_audio(bytes(tuple(frame.buf)))
        else:  # nothing decoded this tick: the call's clock still moves on
            listener.on_audio(SILENCE)


class Leg(pj.Call):
    """A pjsua2 call with its media port; owned by the stack and freed on its thread (the
    transport holds only a weak reference)."""

    def __init__(self, stack: SipStack, account: pj.Account, listener: LegListener | None, name: str) -> None:
        super().__init__(account)
        self.stack = stack
        self.account = account
        self.listener = listener
        self.name = name
        self.uri = ""
        self.port = stack.acquire_port(listener)
        self.audio: pj.AudioMedia | None = None
        self.partner: Leg | None = None
        """The leg this one is bridged to (audio flows between them, not to the bot)."""
        self.tapped = False
        """Bridged with a tap: the far end's audio also reaches this leg's port (a recording)."""
        self.state = "null"
        self.last_code = 0
        self.stream_stats: dict[str, int] = {}
        stack.legs.add(self)
        LIVE_OBJECTS.add(self)

    # ------------------------------------------------------ PJSIP callbacks
    def onCallState(self, prm: pj.OnCallStateParam) -> None:  # noqa: N802 - pjsua2's name
        info = self.getInfo()
        self.state = _STATES.get(info.state, "null")
        self.last_code = info.lastStatusCode
        listener = self.listener
        if self.state != DISCONNECTED:
            if listener is not None:
                listener.on_state(self.state, info.lastStatusCode, info.lastReason)
            return
        if not self.stream_stats:
            self.collect_stats()
        if listener is not None:  # heard before the partner's end: who hung up first comes first
            listener.on_final_stats({**self.port.stats(), **self.stream_stats})
            listener.on_state(self.state, info.lastStatusCode, info.lastReason)
        partner, self.partner = self.partner, None
        if partner is not None and partner.state != DISCONNECTED:
            partner.partner = None
            partner.hang_up(200)
        self.stack.retire(self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:  # noqa: N802
        info = self.getInfo()
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status in _MEDIA_FLOWING:
                self.audio = self.getAudioMedia(media.index)
                self._route()
                return

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:  # noqa: N802
        if self.listener is not None:
            self.listener.on_dtmf(prm.digit, _DTMF_METHODS.get(prm.method, str(prm.method)))

    def onCallTransferStatus(self, prm: pj.OnCallTransferStatusParam) -> None:  # noqa: N802
        if self.listener is not None:
            self.listener.on_transfer_status(prm.statusCode, prm.reason, bool(prm.finalNotify))

    # ------------------------------------------------------------- control
    def _route(self) -> None:
        if self.audio is None:
            return
        partner = self.partner
        if partner is not None and partner.audio is not None:
            self.audio.startTransmit(partner.audio)
            partner.audio.startTransmit(self.audio)
            for leg in (self, partner):
                if leg.tapped and leg.audio is not None:
                    leg.audio.startTransmit(leg.port)
        else:
            self.audio.startTransmit(self.port)
            self.port.startTransmit(self.audio)

    def bridge(self, other: Leg, *, tap: bool = False) -> None:
        """Joins this leg's audio to ``other``'s and takes both ports out of the path. With
        ``tap``, each far end's audio still reaches its leg's port and listener (one way: to
        record the call), and the listeners still hear of the legs' states."""
        self.partner, other.partner = other, self
        for leg in (self, other):
            leg.tapped = tap
            if leg.audio is not None:
                leg.port.stopTransmit(leg.audio)
                if not tap:
                    leg.audio.stopTransmit(leg.port)
            if not tap:
                leg.port.listener = None
                leg.listener = None
        self._route()

    def hang_up(self, code: int = 200) -> None:
        """Ends the leg (CANCEL while ringing, BYE once answered); no-op once disconnected."""
        if self.state == DISCONNECTED:
            return
        self.collect_stats()
        param = pj.CallOpParam(True)
        param.statusCode = code
        try:
            self.hangup(param)
        except pj.Error as exc:
            log.info("voice.sip.hangup_failed", extra={"leg": self.name, "error": exc.info()})

    def collect_stats(self) -> None:
        """Keeps the RTP stream's counters (call while the media is still up)."""
        if self.audio is None:
            return
        try:
            stat = self.getStreamStat(0).rtcp
        except pj.Error:
            return
        self.stream_stats = {
            "rx_packets": stat.rxStat.pkt, "rx_lost": stat.rxStat.loss,
            "rx_discarded": stat.rxStat.discard, "rx_reordered": stat.rxStat.reorder,
            "tx_packets": stat.txStat.pkt, "rx_jitter_ms": stat.rxStat.jitterUsec.max // 1000,
        }

    def release(self) -> None:
        """Drops the links to Python objects (the leg is over, or PJSIP shuts down)."""
        self.listener = None
        self.port.listener = None
        self.partner = None
        self.tapped = False
