"""SIPp as a scripted SIP peer for tests: the far end of our calls, on 127.0.0.1.

``SippPeer`` runs ``sipp`` with one of the UAS scenarios in ``scenarios/`` (or any scenario file)
on ``127.0.0.1:<free port>``; the transport under test calls ``peer.uri()``.  ``SippCaller`` runs
sipp as the calling side (``uac_call.xml`` / ``uac_cancel.xml``), used to check the UAS scenarios
themselves and usable as a load generator.

UAS scenarios (see the comment at the top of each file for the exact message flow)::

    busy.xml             100, 180, [ring_ms], 486 Busy Here              <- ACK
    decline.xml          100, 180, [ring_ms], 603 Decline                <- ACK
    unavailable.xml      100, 180, [ring_ms], 480 Temporarily Unavailable <- ACK
    not_found.xml        100, 180, [ring_ms], 404 Not Found              <- ACK
    no_answer.xml        100, 180, rings until CANCEL -> 200 (CANCEL), 487 <- ACK
                         (480 after 120 s without CANCEL)
    auth_answer.xml      407 Proxy-Authenticate <- ACK; INVITE + Proxy-Authorization:
                         right -> 100, 180, [ring_ms], 200 + SDP <- ACK, plays the audio once,
                         waits for the caller's BYE; wrong -> 403 <- ACK
    auth_answer_www.xml  the same with 401 / WWW-Authenticate / Authorization (<verifyauth>)
    answer_then_bye.xml  100, 180, [ring_ms], 200 + SDP <- ACK, plays the audio in a loop,
                         after talk_ms sends BYE itself (remote hang-up mid-sentence)
    answer_stream.xml    100, 180, [ring_ms], 200 + SDP <- ACK, plays the audio in a loop
                         until the caller's BYE (load benchmark: any number of calls)

Every UAS scenario answers a CANCEL during its ringing with 200 (CANCEL) + 487 (INVITE) <- ACK,
and answer_then_bye.xml a BYE of the caller before talk_ms with 200.  The answering ones pick
PCMA when the offer lists 8 before 0, else PCMU, answer with that one codec plus telephone-event
at the offer's payload type (pjsua offers 120; 101 if the offer has none), and stream the audio
given as ``wav`` (default: ``speech_like_signal()``, 2 s) from the RTP port ``media_port``; the
stream stops at the BYE.  Checked with sipp as the caller (tests/test_sipp_peer.py) and with a
pjsua2 2.15 caller (407 digest, PCMA + telephone-event 120 without re-INVITE, CANCEL -> 487,
486, remote BYE with its Reason text).

What SIPp 3.6.1 (Debian ``sip-tester``) does, as found by running it on this machine
-------------------------------------------------------------------------------------
* **rtp_stream plays a raw file.**  ``<exec rtp_stream="file,loops,pt"/>`` sends the file byte
  for byte, 160 bytes per 20 ms packet (PT 0 PCMU, 8 PCMA; default 8); a WAV header is *not*
  skipped: the first packet of a WAV carries ``RIFF....WAVEfmt`` as audio.  So the harness writes
  headerless G.711 (``stream.ulaw`` / ``stream.alaw``), 8 kHz mono.  ``loops`` -1 repeats until the
  call ends.  The file name is taken literally (no ``[keyword]`` substitution) and the file is
  read when the scenario is loaded (a missing file is a fatal error), relative to sipp's working
  directory, which is why every peer runs in its own directory.  All streams of one sipp are sent
  from the ``-mp`` port (3.6.0 dropped per-call RTP ports), each with its own SSRC; the target is
  the c=/m= address of the caller's SDP.
* **verifyauth reads only ``Authorization:``.**  ``<verifyauth assign_to="ok" username="[..]"
  password="[..]"/>`` checks the Digest (MD5, method from the request line, the uri of the
  header) of an ``Authorization:`` header; with a 407 challenge the client answers with
  ``Proxy-Authorization:``, which verifyauth never finds (always false).  ``auth_answer.xml``
  (407) therefore compares the username and the ``response=`` of the Proxy-Authorization with
  values the harness computes for the digest-uri ``sip:<callee>@127.0.0.1:<port>`` (pjsip's
  digest-uri is the Request-URI), using a regex back-reference (``^([^|]+)[|]\\1$`` over
  ``"got|expected"``); ``auth_answer_www.xml`` (401) uses verifyauth and accepts any URI.
* **Parameters.**  ``-key name value`` defines the keyword ``[name]`` in messages, ``assignstr``
  values, ``log`` and ``verifyauth`` attributes (not in ``rtp_stream`` or ``pause`` attributes).
  ``-set name value`` sets a global variable that the scenario must declare with ``<Global
  variables="name"/>`` (else sipp refuses to start); ``<todouble>`` + ``<pause variable=..>``
  makes it a pause length.  ``-d`` sets the length of ``<pause/>`` without attributes.  A
  variable used only once is a load error; a ``-set`` variable left out gives a warning
  ("Invalid double conversion") and 0.  The harness passes ``-set`` only for declared globals.
* **Regexes** are POSIX extended (glibc: back-references work); ``search_in="hdr"`` values start
  with the space after the colon.  ``&quot;`` works in attributes, ``&#13;`` does not.
* ``[last_cseq_number]`` works in messages (not in ``log``); ``[routes]`` disappears when there is
  no Record-Route.
* **Waiting while listening.**  A ``<pause>`` receives nothing: a CANCEL or BYE arriving during
  it is an unexpected message (default: 200 OK and the call is aborted, i.e. no 487).  The
  ``_unexp.main`` label does catch it, but there the ``[last_*]`` keywords still hold the
  *previous* message (a 200 "to the CANCEL" would carry ``CSeq: n INVITE``), so it is unusable.
  The scenarios therefore wait (ring_ms, talk_ms, the caller's hold_ms) as a loop of
  ``<recv request="CANCEL|BYE" timeout="50" ontimeout=...>`` with one ``<nop>`` per round that
  tests and decrements the remaining time (``<test>``/``<subtract>``).  A ``<recv>`` timeout
  with ``ontimeout`` does not fail the call.  SIPp executes one scenario step per main-loop
  round and matches an arriving message against the step it is at, so a response that comes
  right after a ``<send>`` must find a ``<recv>`` as the next step, not a ``<nop>`` jump
  (uac_call.xml lists the responses twice for that reason).
* **Running it.**  ``-nostdin`` exists; with stdout not a terminal sipp prints its screens there.
  SIGUSR1 = soft stop (no new calls, waits for running calls, then writes the final statistics
  and ``-trace_screen``); SIGINT/SIGTERM quit at once (the statistics still get a last line).
  ``-m N`` exits after N calls with status 0 if all succeeded, 1 if any failed (255/254 =
  fatal error / cannot bind); after a signal the status was 0 here, even with a call running.
  ``-bind_local`` keeps the SIP socket on 127.0.0.1; ``-cp`` (control socket, default 8888) is
  given a free port too.  100 concurrent answer_stream calls (5 s each, 100 RTP streams from
  one sipp) ran without loss here.
* **Logs** (all in the peer's directory): ``-trace_stat`` CSV (``;``-separated, one line every
  ``-fd`` seconds and at exit: ``TotalCallCreated``, ``SuccessfulCall(C)``, ``FailedCall(C)``,
  ``Failed<Reason>(C)``...), ``-trace_shortmsg`` (one tab-separated line per SIP message:
  date, time, epoch, S/R, Call-ID, CSeq, first line), ``-trace_msg`` (full messages),
  ``-trace_err`` (unexpected messages, warnings), ``-trace_logs`` (the scenarios' ``<log>``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import random
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import wave
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOOPBACK = "127.0.0.1"
SAMPLE_RATE = 8000
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
STREAM_FILES = {"ulaw": "stream.ulaw", "alaw": "stream.alaw"}
DEFAULT_AUTH = ("offercall", "offercall-secret")

_ports_lock = threading.Lock()
_handed_out: set[int] = set()
_live: weakref.WeakSet[_Sipp] = weakref.WeakSet()


def sipp_binary() -> str | None:
    """Path of the sipp executable, or None when it is not installed."""
    return shutil.which("sipp")


def sipp_version() -> str | None:
    """E.g. ``"3.6.1"``, or None when sipp is not installed."""
    binary = sipp_binary()
    if not binary:
        return None
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=False)
    m = re.search(r"SIPp v(\d+(?:\.\d+)*)", out.stdout + out.stderr)
    return m.group(1) if m else None


# --------------------------------------------------------------------------------------- ports


def _udp_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _udp_bound(port: int) -> bool:
    """True if some socket is bound to UDP ``port`` (from /proc/net/udp*, without binding)."""
    found_table = False
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for line in lines:
            fields = line.split()
            if len(fields) > 1 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return not _udp_free(port) if not found_table else False


def _claim(ports: Sequence[int]) -> bool:
    with _ports_lock:
        if any(p in _handed_out for p in ports) or not all(_udp_free(p) for p in ports):
            return False
        _handed_out.update(ports)
        return True


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free now and was not handed out before by this module."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((LOOPBACK, 0))
            port = sock.getsockname()[1]
        if _claim([port]):
            return port
    raise RuntimeError("no free UDP port on 127.0.0.1")


def free_rtp_port(span: int = 4) -> int:
    """An even UDP port P with P..P+span-1 free (RTP, RTCP, and sipp's echo ports +2/+3)."""
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(20000, 60000 - span, 2)
        if _claim(range(port, port + span)):
            return port
    raise RuntimeError("no free RTP port range on 127.0.0.1")


# --------------------------------------------------------------------------------------- audio


def _ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    # G.711 mu-law on the 14-bit sample (as Sun's g711.c / CPython's audioop).
    x = pcm.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21
    seg = np.searchsorted(np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]), mag)
    uval = np.where(seg >= 8, 0x7F, (seg << 4) | ((mag >> (seg + 1)) & 0x0F))
    return ((uval ^ mask) & 0xFF).astype(np.uint8)


def _ulaw_decode(codes: np.ndarray) -> np.ndarray:
    u = ~codes.astype(np.int32) & 0xFF
    sign, exp, mant = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    mag = (((mant << 3) + 0x84) << exp) - 0x84
    return np.where(sign, -mag, mag).astype(np.int16)


def _alaw_encode(pcm: np.ndarray) -> np.ndarray:
    x = pcm.astype(np.int32) >> 3  # 13-bit
    sign = np.where(x >= 0, 0x80, 0)
    mag = np.minimum(np.where(x >= 0, x, -x - 1), 0x0FFF)
    exp = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    exp = np.clip(exp, 0, 7)
    mant = np.where(exp == 0, mag >> 1, mag >> exp) & 0x0F
    return ((sign | (exp << 4) | mant) ^ 0x55).astype(np.uint8)


def _alaw_decode(codes: np.ndarray) -> np.ndarray:
    a = codes.astype(np.int32) ^ 0x55
    sign, exp, mant = a & 0x80, (a >> 4) & 0x07, a & 0x0F
    mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
    return np.where(sign, mag, -mag).astype(np.int16)


def g711_encode(pcm: np.ndarray, law: str = "ulaw") -> bytes:
    """16-bit linear PCM samples -> G.711 bytes (``law`` "ulaw" = PCMU, "alaw" = PCMA)."""
    pcm = np.asarray(pcm, dtype=np.int16)
    if law == "ulaw":
        return _ulaw_encode(pcm).tobytes()
    if law == "alaw":
        return _alaw_encode(pcm).tobytes()
    raise ValueError(f"law must be 'ulaw' or 'alaw', not {law!r}")


def g711_decode(data: bytes, law: str = "ulaw") -> np.ndarray:
    """G.711 bytes -> int16 samples."""
    codes = np.frombuffer(data, dtype=np.uint8)
    if law == "ulaw":
        return _ulaw_decode(codes)
    if law == "alaw":
        return _alaw_decode(codes)
    raise ValueError(f"law must be 'ulaw' or 'alaw', not {law!r}")


def _resample(data: np.ndarray, src_rate: int, rate: int) -> np.ndarray:
    if src_rate == rate or not len(data):
        return data
    n_out = int(round(len(data) * rate / src_rate))
    return np.interp(np.arange(n_out) * (src_rate / rate), np.arange(len(data)), data)


def read_audio(path: Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A WAV file as int16 mono samples at ``rate``.

    Reads PCM (8/16/24/32-bit), IEEE float, mu-law and A-law WAVs (incl. WAVE_FORMAT_EXTENSIBLE),
    mixes channels down and resamples linearly.
    """
    raw = Path(path).read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, data = 12, None, None
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        body = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    tag, channels, src_rate, _, _, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]
    if tag == 7:
        samples = g711_decode(data, "ulaw").astype(np.float64)
    elif tag == 6:
        samples = g711_decode(data, "alaw").astype(np.float64)
    elif tag == 3 and bits == 32:
        samples = np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4").astype(np.float64) * 32767
    elif tag == 1 and bits == 8:
        samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif tag == 1 and bits == 16:
        samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float64)
    elif tag == 1 and bits == 24:
        b = np.frombuffer(data[: len(data) // 3 * 3], dtype=np.uint8).reshape(-1, 3)
        b = b.astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        samples = np.where(ints & 0x800000, ints - 0x1000000, ints).astype(np.float64) / 256.0
    elif tag == 1 and bits == 32:
        samples = np.frombuffer(data[: len(data) // 4 * 4], dtype="<i4").astype(np.float64) / 65536
    else:
        raise ValueError(f"{path}: unsupported WAV format tag {tag} / {bits} bits")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    samples = _resample(samples, src_rate, rate)
    return np.clip(np.round(samples), -32768, 32767).astype(np.int16)


def write_pcm_wav(path: Path, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    """16-bit mono PCM WAV."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return Path(path)


def write_g711_wav(path: Path, pcm: np.ndarray, law: str = "ulaw") -> Path:
    """A G.711 WAV (format 7 mu-law / 6 A-law, 8 kHz mono, with a ``fact`` chunk) from PCM.

    For tools that want G.711 WAV files.  Not for SIPp's rtp_stream, which would play the header.
    """
    payload = g711_encode(pcm, law)
    fmt = struct.pack("<HHIIHHH", 7 if law == "ulaw" else 6, 1, SAMPLE_RATE, SAMPLE_RATE, 1, 8, 0)
    body = (
        b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"fact" + struct.pack("<II", 4, len(payload))
        + b"data" + struct.pack("<I", len(payload)) + payload
        + (b"\0" if len(payload) & 1 else b"")
    )
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return Path(path)


def write_g711_raw(path: Path, pcm: np.ndarray, law: str = "ulaw") -> Path:
    """Headerless G.711 (8 kHz mono), padded to whole 20 ms packets: what rtp_stream plays."""
    pcm = np.asarray(pcm, dtype=np.int16)
    pad = (-len(pcm)) % 160
    if pad:
        pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
    Path(path).write_bytes(g711_encode(pcm, law))
    return Path(path)


def speech_like_signal(seconds: float = 2.0, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A speech-like test signal: 1.5 s of a syllable-modulated harmonic tone, then silence."""
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 720), 1))
    envelope = np.clip(np.sin(2 * np.pi * 3 * t), 0, None) * (t < min(1.5, seconds * 0.75))
    return np.round(6000 * voiced * envelope).astype(np.int16)


def digest_response(user: str, realm: str, password: str, nonce: str, uri: str,
                    method: str = "INVITE") -> str:
    """RFC 2617 digest response without qop (what a client answers to our challenge)."""
    def md5(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    return md5(f"{md5(f'{user}:{realm}:{password}')}:{nonce}:{md5(f'{method}:{uri}')}")


# ------------------------------------------------------------------------------------ messages


@dataclass(frozen=True)
class SipMessage:
    """One line of sipp's -trace_shortmsg log."""

    time: float  # epoch seconds
    direction: str  # "S" sent by sipp, "R" received by sipp
    call_id: str
    cseq: str  # e.g. "1 INVITE"
    first_line: str  # "INVITE sip:... SIP/2.0" or "SIP/2.0 486 Busy Here"

    @property
    def sent(self) -> bool:
        return self.direction == "S"

    @property
    def status(self) -> int | None:
        """The status code of a response, None for a request."""
        m = re.match(r"SIP/2\.0 (\d{3})", self.first_line)
        return int(m.group(1)) if m else None

    @property
    def method(self) -> str:
        """The request method, or the CSeq method of a response."""
        if self.status is None:
            return self.first_line.split(" ", 1)[0]
        return self.cseq.split()[-1] if self.cseq else ""

    @property
    def label(self) -> str:
        """``"INVITE"`` for a request, ``"486"`` for a response."""
        return self.method if self.status is None else str(self.status)


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# -------------------------------------------------------------------------------------- process


class _Sipp:
    """One sipp process in its own directory, with all its traces there."""

    role = "sipp"

    def __init__(
        self,
        workdir: Path,
        scenario: str | Path,
        *,
        name: str | None,
        extra_args: Sequence[str],
        max_calls: int | None,
        trace_messages: bool,
    ) -> None:
        self.scenario = _resolve_scenario(scenario)
        self.port = free_udp_port()
        self.control_port = free_udp_port()
        self.media_port = free_rtp_port()
        self.host = LOOPBACK
        self.name = name or f"{self.role}-{self.scenario.stem}-{self.port}"
        self.dir = Path(workdir) / self.name
        self.extra_args = list(extra_args)
        self.max_calls = max_calls
        self.trace_messages = trace_messages
        self.stdout_path = self.dir / "sipp.out"
        self.stat_path = self.dir / "stats.csv"
        self.short_log = self.dir / "messages.tsv"
        self.message_log = self.dir / "messages.log"
        self.error_log = self.dir / "errors.log"
        self.log_path = self.dir / "scenario.log"
        self.screen_log = self.dir / "screen.log"
        self._proc: subprocess.Popen | None = None
        self._out = None
        self._scenario_text = self.scenario.read_text(encoding="latin-1")

    # -- to be filled in by the subclasses
    def _role_args(self) -> list[str]:
        raise NotImplementedError

    def _global_values(self) -> dict[str, int]:
        """Values for -set, passed for the global variables the scenario declares."""
        return {}

    def _globals(self) -> set[str]:
        """The variables the scenario declares with <Global variables="..."/>."""
        names: set[str] = set()
        for m in re.finditer(r'<Global\s+variables="([^"]*)"', self._scenario_text):
            names.update(n.strip() for n in m.group(1).split(",") if n.strip())
        return names

    def _set_args(self) -> list[str]:
        values = self._global_values()
        args: list[str] = []
        for name in sorted(self._globals() & values.keys()):
            args += ["-set", name, str(values[name])]
        return args

    def _prepare(self) -> None:
        pass

    # -- process
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """sipp's exit status once it has exited (0: all calls successful, 1: some failed)."""
        return self._proc.poll() if self._proc else None

    def __repr__(self) -> str:
        state = "running" if self.running else f"exit {self.returncode}"
        return f"<{type(self).__name__} {self.scenario.name} {self.host}:{self.port} {state}>"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def command(self) -> list[str]:
        """The sipp command line (without the binary)."""
        args = [
            *self._role_args(),
            *self._set_args(),
            "-sf", str(self.scenario),
            "-i", self.host, "-p", str(self.port), "-bind_local",
            "-mi", self.host, "-mp", str(self.media_port),
            "-cp", str(self.control_port),
            "-t", "u1",
            "-nostdin",
            "-aa",
            "-f", "5",
            "-trace_err", "-error_file", str(self.error_log),
            "-trace_logs", "-log_file", str(self.log_path),
            "-trace_shortmsg", "-shortmessage_file", str(self.short_log),
            "-trace_stat", "-stf", str(self.stat_path), "-fd", "1",
            "-trace_screen", "-screen_file", str(self.screen_log),
        ]
        if self.trace_messages:
            args += ["-trace_msg", "-message_file", str(self.message_log)]
        if self.max_calls is not None:
            args += ["-m", str(self.max_calls)]
        return args + self.extra_args

    def _launch(self) -> None:
        binary = sipp_binary()
        if not binary:
            raise RuntimeError("sipp is not installed (Debian package sip-tester)")
        if self.running:
            raise RuntimeError(f"{self!r} already started")
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in (self.stat_path, self.short_log, self.message_log, self.error_log,
                     self.log_path, self.screen_log):
            path.unlink(missing_ok=True)
        self._prepare()
        self._out = self.stdout_path.open("wb")
        self._proc = subprocess.Popen(
            [binary, *self.command()],
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _live.add(self)

    def _wait_bound(self, timeout_s: float) -> None:
        """Until sipp holds its SIP port (seen in /proc/net/udp) or exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(
                    f"sipp exited at start ({self.returncode})\n{self.diagnostics()}")
            if _udp_bound(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"sipp did not bind {self.host}:{self.port}\n{self.diagnostics()}")

    def wait(self, timeout_s: float = 30) -> int:
        """Wait for sipp to exit by itself (``max_calls`` reached); returns its exit status."""
        if self._proc is None:
            raise RuntimeError("not started")
        try:
            rc = self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"{self!r} still running after {timeout_s} s\n"
                               f"{self.diagnostics()}") from None
        self._close()
        return rc

    def stop(self, timeout_s: float = 2) -> int | None:
        """Soft stop (SIGUSR1: no new calls, running ones finish), then SIGINT, then SIGKILL.

        Returns sipp's exit status.  The statistics and screen files are complete afterwards
        unless it had to be killed.
        """
        proc = self._proc
        if proc is None:
            return None
        # A soft stop waits for running calls (a ringing no_answer call would never end).
        soft_s = timeout_s if not self.stats().get("current") else min(timeout_s, 0.5)
        for sig, wait_s in ((signal.SIGUSR1, soft_s), (signal.SIGINT, 2.0),
                            (signal.SIGKILL, 5.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait_s)
        self._close()
        return proc.poll()

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        _live.discard(self)

    # -- results
    def stats(self) -> dict:
        """The last line of sipp's -trace_stat CSV (written every second and at exit).

        Every column is a key (ints where numeric), plus: ``created`` (total calls created),
        ``incoming``, ``outgoing``, ``current``, ``successful``, ``failed`` (cumulative), and
        ``failed_<reason>`` for each ``Failed<Reason>(C)`` column (e.g. ``failed_max_udp_retrans``,
        ``failed_unexpected_message``, ``failed_call_rejected``, ``failed_regexp_doesnt_match``).
        Empty dict before the first line is written.
        """
        try:
            lines = [ln for ln in self.stat_path.read_text(errors="replace").splitlines() if ln]
        except FileNotFoundError:
            return {}
        if len(lines) < 2:
            return {}
        head, last = lines[0].split(";"), lines[-1].split(";")
        out: dict = {}
        for key, value in zip(head, last, strict=False):
            if not key:
                continue
            try:
                out[key] = int(value)
            except ValueError:
                try:
                    out[key] = float(value)
                except ValueError:
                    out[key] = value
        for key, value in list(out.items()):
            m = re.fullmatch(r"Failed(\w+)\(C\)", key)
            if m:
                out[f"failed_{_snake(m.group(1))}"] = value
        aliases = {"created": "TotalCallCreated", "incoming": "IncomingCall(C)",
                   "outgoing": "OutgoingCall(C)", "current": "CurrentCall",
                   "successful": "SuccessfulCall(C)", "failed": "FailedCall(C)",
                   "retransmissions": "Retransmissions(C)"}
        for alias, key in aliases.items():
            if key in out:
                out[alias] = out[key]
        return out

    def messages(self) -> list[SipMessage]:
        """Every SIP message sipp sent or received so far (from -trace_shortmsg)."""
        try:
            text = self.short_log.read_text(errors="replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) < 7:
                continue
            try:
                epoch = float(parts[2])
            except ValueError:
                continue
            out.append(SipMessage(epoch, parts[3], parts[4], parts[5].removeprefix("CSeq:").strip(),
                                  "\t".join(parts[6:]).strip()))
        return out

    def sent(self, label: str | int | None = None) -> list[SipMessage]:
        """Messages sipp sent; ``label`` filters: a method ("BYE") or a status code (486)."""
        return [m for m in self.messages() if m.sent and (label is None or m.label == str(label))]

    def received(self, label: str | int | None = None) -> list[SipMessage]:
        """Messages sipp received; ``label`` filters as in ``sent``."""
        return [m for m in self.messages()
                if not m.sent and (label is None or m.label == str(label))]

    def flow(self) -> list[str]:
        """The message flow as short strings: ``["<INVITE", ">100", ">180", ">486", "<ACK"]``
        (``<`` = received by sipp, ``>`` = sent by sipp)."""
        return [(">" if m.sent else "<") + m.label for m in self.messages()]

    def scenario_log(self) -> str:
        """What the scenario's ``<log>`` actions wrote (e.g. the auth check details)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def diagnostics(self, lines: int = 40) -> str:
        """Tails of sipp's error log, scenario log, output and the message flow, for failures."""
        parts = [f"{self!r} in {self.dir}", "flow: " + " ".join(self.flow())]
        for title, path in (("errors", self.error_log), ("scenario log", self.log_path),
                            ("output", self.stdout_path)):
            try:
                text = path.read_text(errors="replace")
            except FileNotFoundError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            if tail.strip():
                parts.append(f"--- {title} ({path.name}):\n{tail}")
        return "\n".join(parts)


def _resolve_scenario(scenario: str | Path) -> Path:
    """A bare name ("busy", "busy.xml") is looked up in ``SCENARIO_DIR``, anything else is a path."""
    path = Path(scenario)
    if len(path.parts) == 1:
        bundled = SCENARIO_DIR / (path.name if path.suffix == ".xml" else f"{path.name}.xml")
        if bundled.exists():
            return bundled
    if not path.exists():
        raise FileNotFoundError(f"no sipp scenario {scenario!r} (nor in {SCENARIO_DIR})")
    return path.resolve()


class SippPeer(_Sipp):
    """sipp running a scenario on 127.0.0.1:<free port> as the far end of our calls.

    ``scenario`` is a file name in ``scenarios/`` ("busy", "busy.xml") or a path.  ``wav`` is
    the audio the answering scenarios stream (any PCM/G.711 WAV, converted to 8 kHz mono
    G.711); default ``speech_like_signal()``.  ``auth`` = (username, password) the auth scenarios
    accept (default ``DEFAULT_AUTH``, also in ``self.auth``).  ``max_calls`` makes sipp exit
    after that many calls (``wait()``).  ``ring_ms`` is the ringing time before the final
    response / answer, ``talk_ms`` the time answer_then_bye.xml talks before its BYE.
    ``callee`` is the user part of ``uri()`` and of the digest-uri auth_answer.xml expects.
    """

    role = "uas"

    def __init__(
        self,
        workdir: Path,
        scenario: str | Path,
        *,
        wav: Path | None = None,
        auth: tuple[str, str] | None = None,
        extra_args: Sequence[str] = (),
        max_calls: int | None = None,
        ring_ms: int = 0,
        talk_ms: int = 2000,
        callee: str = "customer",
        realm: str = "sipp.trunk.test",
        name: str | None = None,
        trace_messages: bool = True,
    ) -> None:
        super().__init__(workdir, scenario, name=name, extra_args=extra_args,
                         max_calls=max_calls, trace_messages=trace_messages)
        self.wav = Path(wav) if wav is not None else None
        self.auth = tuple(auth) if auth is not None else DEFAULT_AUTH
        self.ring_ms = int(ring_ms)
        self.talk_ms = int(talk_ms)
        self.callee = callee
        self.realm = realm
        self.nonce = secrets.token_hex(16)
        self.stream_files = {law: self.dir / fname for law, fname in STREAM_FILES.items()}
        self.stream_pcm: np.ndarray | None = None  # the audio as streamed (8 kHz int16)

    @property
    def checks_digest_uri(self) -> bool:
        """True for scenarios (auth_answer.xml) whose expected digest is bound to ``uri()``."""
        return "[auth_response]" in self._scenario_text

    def uri(self, user: str | None = None) -> str:
        """``sip:<user>@127.0.0.1:<port>`` (user defaults to ``callee``)."""
        user = self.callee if user is None else user
        if user != self.callee and self.checks_digest_uri:
            raise ValueError(
                f"{self.scenario.name} only accepts the digest-uri of {self.callee!r}; "
                f"create the peer with callee={user!r}")
        return f"sip:{user}@{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>`` (e.g. an outbound proxy / trunk address)."""
        return f"{self.host}:{self.port}"

    def expected_digest(self) -> str:
        user, password = self.auth
        return digest_response(user, self.realm, password, self.nonce, self.uri(self.callee))

    def _role_args(self) -> list[str]:
        user, password = self.auth
        args = [
            "-key", "auth_realm", self.realm,
            "-key", "auth_nonce", self.nonce,
            "-key", "auth_user", user,
            "-key", "auth_pass", password,
            "-key", "auth_response", self.expected_digest(),
        ]
        return args

    def _global_values(self) -> dict[str, int]:
        return {"ring_ms": self.ring_ms, "talk_ms": self.talk_ms}

    def _prepare(self) -> None:
        pcm = read_audio(self.wav) if self.wav is not None else speech_like_signal()
        if not len(pcm):
            raise ValueError(f"{self.wav}: no audio")
        self.stream_pcm = pcm
        for law, path in self.stream_files.items():
            write_g711_raw(path, pcm, law)

    def start(self, timeout_s: float = 10) -> None:
        """Launch sipp and wait until it listens on its SIP port."""
        self._launch()
        self._wait_bound(timeout_s)


class SippCaller(_Sipp):
    """sipp as the calling side (UAC): ``uac_call.xml`` by default, ``uac_cancel.xml`` to CANCEL.

    ``target`` is a ``SippPeer`` or ``"host:port"``; ``service`` the user part of the
    Request-URI.  ``calls`` calls are placed at ``rate`` per second with at most ``limit`` at once;
    ``hold_ms`` is how long an answered call lasts before the BYE (uac_cancel.xml: how long it
    rings before the CANCEL).  ``auth`` answers 401/407 challenges (digest-uri
    ``sip:<service>@<target>``).  ``rtp_port`` is the m=audio port of the offer (default: its
    own -mp port, where nothing listens); ``offer`` the payload types offered ("0 8 101").
    """

    role = "uac"

    def __init__(
        self,
        workdir: Path,
        target: SippPeer | str,
        scenario: str | Path = "uac_call",
        *,
        service: str = "customer",
        calls: int = 1,
        rate: float = 10,
        limit: int | None = None,
        hold_ms: int = 1000,
        auth: tuple[str, str] | None = None,
        rtp_port: int | None = None,
        offer: str = "0 8 101",
        extra_args: Sequence[str] = (),
        name: str | None = None,
        trace_messages: bool = True,
    ) -> None:
        super().__init__(workdir, scenario, name=name, extra_args=extra_args, max_calls=calls,
                         trace_messages=trace_messages)
        self.target = target.address if isinstance(target, SippPeer) else str(target)
        self.service = service
        self.rate = rate
        self.limit = limit
        self.hold_ms = int(hold_ms)
        self.auth = auth
        self.rtp_port = rtp_port
        self.offer = offer

    def _role_args(self) -> list[str]:
        args = [
            self.target,
            "-s", self.service,
            "-r", f"{self.rate:g}",
            "-d", str(self.hold_ms),
            "-key", "rtp_port", str(self.rtp_port or self.media_port),
            "-key", "offer_pts", self.offer,
        ]
        if self.limit is not None:
            args += ["-l", str(self.limit)]
        if self.auth is not None:
            args += ["-au", self.auth[0], "-ap", self.auth[1],
                     "-auth_uri", f"{self.service}@{self.target}"]
        return args

    def _global_values(self) -> dict[str, int]:
        return {"hold_ms": self.hold_ms}

    def start(self) -> None:
        self._launch()

    def run(self, timeout_s: float = 30) -> int:
        """Place the calls and wait until sipp has finished them; returns sipp's exit status."""
        self.start()
        try:
            return self.wait(timeout_s)
        except TimeoutError:
            self.stop()
            raise


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live):
        with contextlib.suppress(Exception):
            proc.stop(timeout_s=0.5)


__all__ = [
    "DEFAULT_AUTH",
    "SCENARIO_DIR",
    "SipMessage",
    "SippCaller",
    "SippPeer",
    "digest_response",
    "free_rtp_port",
    "free_udp_port",
    "g711_decode",
    "g711_encode",
    "read_audio",
    "sipp_binary",
    "sipp_version",
    "speech_like_signal",
    "write_g711_raw",
    "write_g711_wav",
    "write_pcm_wav",
]
