"""The process's SIP user agent: PJSIP (through pjsua2) on a thread of its own.

pjsua2 allows one endpoint per process and is not safe to call from any thread, so every
pjsua2 call goes through :meth:`SipStack.run`, which hands it to the stack's thread. That
thread also runs PJSIP's event loop (SIP transactions, timers), so call-state callbacks happen
there. Audio frames are exchanged on PJMEDIA's clock thread (see :mod:`voice.transports.sip.legs`).

PJSIP does the protocol work: INVITE with digest authentication, provisional responses and
early media, CANCEL, BYE from either side, REFER, RTP with G.711 at 20 ms, its adaptive jitter
buffer with packet-loss concealment, and RFC 4733 telephone-events and SIP INFO for DTMF. Its
log goes to the ``voice.sip.pjsip`` logger.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pjsua2 as pj

from voice.errors import TransportError
from voice.transports.sip.config import SipConfig, TrunkConfig
from voice.transports.sip.legs import LIVE_OBJECTS, LegListener, MediaPort

if TYPE_CHECKING:
    from voice.transports.sip.legs import Leg

log = logging.getLogger("voice.sip")
pjsip_log = logging.getLogger("voice.sip.pjsip")
T = TypeVar("T")

_PJ_LEVELS = {0: logging.CRITICAL, 1: logging.ERROR, 2: logging.WARNING, 3: logging.INFO}
_CODEC_IDS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1"}
MAX_ACCOUNTS = 6
"""Accounts kept at once (PJSIP's build allows 8)."""


BAD_INPUT_MARKS = (
    "Bad RTP pt",  # an RTP payload type the call did not negotiate
    "RTP decode error",  # truncated header, wrong version, bad padding or extension length
    "codec parsed 0 frames",
    "Error processing packet",  # a SIP message missing required headers
    "Dropping ",  # a datagram that does not parse as SIP
)


def log_level(pj_level: int, message: str) -> int:
    """The Python level of a PJSIP log line: malformed input from the network is a warning
    (PJSIP drops it and says so only in its debug output), the rest follows PJSIP's level."""
    if any(mark in message for mark in BAD_INPUT_MARKS):
        return logging.WARNING
    return _PJ_LEVELS.get(pj_level, logging.DEBUG)


class _LogWriter(pj.LogWriter):
    """PJSIP's log lines into Python logging."""

    def write(self, entry: pj.LogEntry) -> None:
        level = log_level(entry.level, entry.msg)
        if pjsip_log.isEnabledFor(level):
            pjsip_log.log(level, entry.msg.rstrip())


class SipStack:
    """One PJSIP endpoint on its own thread: a UDP transport, an account per trunk, the calls."""

    def __init__(self, config: SipConfig, *, log_level: int = 5) -> None:
        self.config = config
        self.log_level = log_level
        """PJSIP's verbosity (0-6): 5 keeps the lines about malformed RTP, which PJSIP logs
        at its debug levels (they are promoted to warnings, see :func:`log_level`)."""
        self.port = 0
        """The SIP port actually bound (once started)."""
        self._commands: queue.SimpleQueue[tuple[Callable[[], Any], concurrent.futures.Future[Any]]]
        self._commands = queue.SimpleQueue()
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._endpoint: pj.Endpoint | None = None
        self._writer = _LogWriter()
        self._accounts: dict[tuple[str, ...], pj.Account] = {}
        self.legs: set[Leg] = set()
        """Calls PJSIP still knows about: the stack owns them until they are disconnected."""
        self._retired: list[Leg] = []
        self._free_ports: list[MediaPort] = []
        self._ports_made = 0

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Starts the thread and the endpoint; raises TransportError when PJSIP cannot start
        (say, the SIP port is taken)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="sip-stack", daemon=True)
            self._thread.start()
        try:
            await asyncio.wrap_future(self._ready)
        except pj.Error as exc:
            raise TransportError(f"the SIP stack did not start: {exc.info()}") from None
        self.register_thread()

    def register_thread(self) -> None:
        """Lets this thread drop legs and ports: PJSIP asserts on calls from unknown threads."""
        endpoint = self._endpoint
        if endpoint is not None and not endpoint.libIsThreadRegistered():
            endpoint.libRegisterThread(threading.current_thread().name)

    async def stop(self) -> None:
        """Hangs up every call and shuts PJSIP down."""
        if self._thread is None:
            return
        self._stopping.set()
        await asyncio.to_thread(self._thread.join, 10)
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._ready.done() and not self._stopping.is_set()

    def submit(self, work: Callable[[], T]) -> concurrent.futures.Future[T]:
        """Runs ``work`` on the stack's thread; the future holds its result."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        if self._stopping.is_set() or self._thread is None:
            future.set_exception(TransportError("the SIP stack is not running"))
        else:
            self._commands.put((work, future))
        return future

    async def run(self, work: Callable[[], T]) -> T:
        """Awaits ``work`` run on the stack's thread. PJSIP errors become TransportError."""
        try:
            return await asyncio.wrap_future(self.submit(work))
        except pj.Error as exc:
            raise TransportError(f"SIP: {exc.info()}") from None

    # ------------------------------------------------------------- thread
    def _main(self) -> None:
        try:
            self._create()
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            while not self._stopping.is_set():
                self._endpoint.libHandleEvents(5)  # type: ignore[union-attr]
                self._drain()
                self._retired.clear()  # freed here, outside any PJSIP callback
        finally:
            self._destroy()

    def _drain(self) -> None:
        while True:
            try:
                work, future = self._commands.get_nowait()
            except queue.Empty:
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                future.set_exception(exc)

    def _create(self) -> None:
        config = self.config
        endpoint = pj.Endpoint()
        endpoint.libCreate()
        self._endpoint = endpoint
        ep = pj.EpConfig()
        ep.uaConfig.threadCnt = 0  # our thread runs the event loop
        ep.uaConfig.mainThreadOnly = False
        ep.uaConfig.maxCalls = config.max_calls  # at most PJSUA_MAX_CALLS of the build (4)
        ep.uaConfig.userAgent = "offercall"
        ep.logConfig.writer = self._writer
        ep.logConfig.level = self.log_level
        ep.logConfig.consoleLevel = self.log_level
        ep.logConfig.decor = 0
        media = ep.medConfig
        media.clockRate = 8000
        media.sndClockRate = 8000
        media.channelCount = 1
        media.audioFramePtime = 20
        media.ptime = 20
        media.noVad = True
        media.ecTailLen = 0
        media.jbMax = config.jitter_max_ms
        media.maxMediaPorts = 64
        endpoint.libInit(ep)
        transport = pj.TransportConfig()
        transport.port = config.port
        transport.boundAddress = config.host
        transport.publicAddress = config.host
        transport_id = endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
        endpoint.libStart()
        self.port = endpoint.transportGetInfo(transport_id).localName.rsplit(":", 1)[-1]
        self.port = int(self.port)
        endpoint.audDevManager().setNullDev()  # no sound card: the conference bridge runs on a timer
        for codec in endpoint.codecEnum2():
            endpoint.codecSetPriority(codec.codecId, 0)
        for rank, name in enumerate(config.codecs):
            endpoint.codecSetPriority(_CODEC_IDS[name], 200 - rank)
        log.info("voice.sip.started", extra={"host": config.host, "port": self.port})

    def _destroy(self) -> None:
        endpoint = self._endpoint
        if endpoint is None:
            return
        try:
            endpoint.hangupAllCalls()
            for _ in range(40):  # let the BYEs go out and the calls disconnect
                endpoint.libHandleEvents(5)
                if not self.legs:
                    break
            for leg in list(self.legs) + self._retired:
                leg.release()
            self.legs.clear()
            self._retired.clear()
            self._accounts.clear()
            for thing in list(LIVE_OBJECTS):
                thing.thisown = False  # PJSIP frees them; Python must not, after it is gone
            endpoint.libDestroy()
        except pj.Error as exc:
            log.warning("voice.sip.shutdown_error", extra={"error": exc.info()})
        self._endpoint = None

    # ------------------------------------------------ on the stack's thread
    def account(self, trunk: TrunkConfig) -> pj.Account:
        """The account for ``trunk``'s identity, proxy and credentials (created, and registered
        if it has a registrar, on first use). PJSIP holds few accounts (8): the least recently
        used idle one makes way for a new one."""
        key = (trunk.identity, trunk.proxy, trunk.registrar, trunk.username, trunk.password, trunk.realm)
        account = self._accounts.pop(key, None)
        if account is None:
            self._make_room_for_account()
            account = self._new_account(trunk)
        self._accounts[key] = account  # most recently used last
        return account

    def _make_room_for_account(self) -> None:
        busy = {id(leg.account) for leg in self.legs}
        while len(self._accounts) >= MAX_ACCOUNTS:
            idle = next((k for k, a in self._accounts.items() if id(a) not in busy), None)
            if idle is None:
                raise TransportError(f"more than {MAX_ACCOUNTS} SIP trunks in use at once")
            self._accounts.pop(idle).shutdown()

    def _new_account(self, trunk: TrunkConfig) -> pj.Account:
        config = pj.AccountConfig()
        config.idUri = trunk.identity
        if trunk.registrar:
            config.regConfig.registrarUri = trunk.registrar
            config.regConfig.registerOnAdd = True
        if trunk.proxy:
            config.sipConfig.proxies.append(trunk.proxy)
        if trunk.username:
            config.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", trunk.realm, trunk.username, 0, trunk.password))
        config.mediaConfig.transportConfig.port = self.config.rtp_port
        config.mediaConfig.transportConfig.portRange = self.config.rtp_port_range
        config.mediaConfig.transportConfig.boundAddress = self.config.host
        config.mediaConfig.transportConfig.publicAddress = self.config.host
        config.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED  # trunks on the bank's network speak plain RTP
        config.mediaConfig.lockCodecEnabled = False  # no re-INVITE when the answer lists several codecs
        config.natConfig.sdpNatRewriteUse = 0
        config.natConfig.viaRewriteUse = 0
        config.natConfig.contactRewriteUse = 0
        account = pj.Account()
        account.create(config)
        return account

    def acquire_port(self, listener: LegListener | None) -> MediaPort:
        """A media port for a new leg (from the pool, or a new one)."""
        if self._free_ports:
            port = self._free_ports.pop()
        else:
            self._ports_made += 1
            port = MediaPort(f"leg{self._ports_made}")
        port.reset(listener)
        return port

    def retire(self, leg: Leg) -> None:
        """A leg is over: its port goes back to the pool, and the leg is freed on this thread
        once the current PJSIP callback has returned."""
        self.legs.discard(leg)
        leg.release()
        leg.port.reset(None)
        self._free_ports.append(leg.port)
        self._retired.append(leg)

    def calls_in_flight(self) -> int:
        """Calls not yet disconnected (any thread may ask; the answer may be a moment old)."""
        return len(self.legs)

    @property
    def max_calls(self) -> int:
        """Calls this stack can hold at once."""
        return self.config.max_calls
