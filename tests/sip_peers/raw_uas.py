"""A deliberately small SIP user agent over a raw UDP socket, for tests that need to send what a
real phone never would: it answers one INVITE, streams G.711 μ-law from its own RTP socket,
and lets the test inject malformed SIP and RTP from the very addresses the call uses."""

from __future__ import annotations

import re
import socket
import struct
import threading
import time

import numpy as np

from voice.audio import encode

CRLF = "\r\n"


def _header(message: str, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*)$", message, re.MULTILINE | re.IGNORECASE)
    return match.group(1).strip() if match else ""


class RawUas:
    """Answers the first INVITE on 127.0.0.1:<port> with PCMU, then streams a tone over RTP."""

    def __init__(self, tone_hz: float = 440.0) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.port = self.sip.getsockname()[1]
        self.rtp_port = self.rtp.getsockname()[1]
        self.tone_hz = tone_hz
        self.peer_sip: tuple[str, int] | None = None
        self.peer_rtp: tuple[str, int] | None = None
        self.received: list[str] = []
        self.answered = threading.Event()
        self.bye = threading.Event()
        self._stop = threading.Event()
        self._seq, self._ts = 1, 0
        self._threads = [threading.Thread(target=self._sip_loop, daemon=True),
                         threading.Thread(target=self._rtp_loop, daemon=True)]

    @property
    def uri(self) -> str:
        return f"sip:raw@127.0.0.1:{self.port}"

    def __enter__(self) -> RawUas:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.sip.close()
        self.rtp.close()

    # ------------------------------------------------------------ injection
    def send_sip(self, data: bytes) -> None:
        """Sends raw bytes to the caller's SIP port, from ours."""
        assert self.peer_sip is not None
        self.sip.sendto(data, self.peer_sip)

    def send_rtp(self, data: bytes) -> None:
        """Sends raw bytes to the caller's RTP port, from ours."""
        assert self.peer_rtp is not None
        self.rtp.sendto(data, self.peer_rtp)

    @staticmethod
    def rtp_packet(payload_type: int, seq: int, ts: int, payload: bytes, ssrc: int = 0x0FFC0001) -> bytes:
        return struct.pack("!BBHII", 0x80, payload_type & 0x7F, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload

    # --------------------------------------------------------------- loops
    def _sip_loop(self) -> None:
        self.sip.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data, source = self.sip.recvfrom(65535)
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            message = data.decode("utf-8", "replace")
            self.received.append(message)
            method = message.split(" ", 1)[0]
            if method == "INVITE" and not self.answered.is_set():
                self.peer_sip = source
                self._answer(message)
            elif method == "BYE":
                self._reply(message, "200 OK")
                self.bye.set()
            elif method in ("OPTIONS", "INFO", "NOTIFY", "UPDATE"):
                self._reply(message, "200 OK")

    def _answer(self, invite: str) -> None:
        media = re.search(r"^m=audio (\d+)", invite, re.MULTILINE)
        address = re.search(r"^c=IN IP4 (\S+)", invite, re.MULTILINE)
        assert media and address, invite
        self.peer_rtp = (address.group(1), int(media.group(1)))
        sdp = CRLF.join([
            "v=0", f"o=raw 1 1 IN IP4 127.0.0.1", "s=raw", "c=IN IP4 127.0.0.1", "t=0 0",
            f"m=audio {self.rtp_port} RTP/AVP 0 101", "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=sendrecv", "",
        ])
        self._reply(invite, "100 Trying")
        self._reply(invite, "200 OK", sdp)
        self.answered.set()

    def _reply(self, request: str, status: str, sdp: str = "") -> None:
        to = _header(request, "To")
        if status.startswith("200") and ";tag=" not in to:
            to += ";tag=raw1"
        lines = [f"SIP/2.0 {status}"]
        lines += [f"Via: {v.strip()}" for v in re.findall(r"^Via:\s*(.*)$", request, re.MULTILINE | re.IGNORECASE)]
        lines += [f"From: {_header(request, 'From')}", f"To: {to}",
                  f"Call-ID: {_header(request, 'Call-ID')}", f"CSeq: {_header(request, 'CSeq')}",
                  f"Contact: <sip:raw@127.0.0.1:{self.port}>"]
        if sdp:
            lines += ["Content-Type: application/sdp", f"Content-Length: {len(sdp.encode())}", "", sdp]
        else:
            lines += ["Content-Length: 0", "", ""]
        assert self.peer_sip is not None
        self.sip.sendto(CRLF.join(lines).encode(), self.peer_sip)

    def _rtp_loop(self) -> None:
        self.answered.wait()
        start, n = time.monotonic(), 0
        while not self._stop.is_set() and not self.bye.is_set() and self.peer_rtp is not None:
            t = (np.arange(160) + n * 160) / 8000
            pcm = (0.3 * 32767 * np.sin(2 * np.pi * self.tone_hz * t)).astype("<i2").tobytes()
            try:
                self.rtp.sendto(self.rtp_packet(0, self._seq, self._ts, encode(pcm, "mulaw")), self.peer_rtp)
            except OSError:
                return
            self._seq, self._ts, n = self._seq + 1, self._ts + 160, n + 1
            time.sleep(max(0.0, start + n * 0.02 - time.monotonic()))

    def next_seq_ts(self) -> tuple[int, int]:
        """The sequence number and timestamp a packet sent now would carry."""
        return self._seq, self._ts
