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

    def __init__(self, tone_hz: float = 440.0, jitter_ms: float = 0.0, seed: int = 7) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sip.bind(("127.0.0.1", 0))
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.port = self.sip.getsockname()[1]
        self.rtp_port = self.rtp.getsockname()[1]
        self.tone_hz = tone_hz
        self.jitter_ms = jitter_ms
        """Each RTP packet leaves up to this much later than its time (so some overtake others)."""
        self._random = np.random.default_rng(seed)
        self.sent_out_of_order = 0
        """RTP packets sent after one with a higher sequence number (jitter reorders them)."""
        self._invite = ""
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
                self._invite = message
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
            "v=0", "o=raw 1 1 IN IP4 127.0.0.1", "s=raw", "c=IN IP4 127.0.0.1", "t=0 0",
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
        """Streams the tone at 20 ms per packet; with jitter, each packet waits a random extra
        delay in a small scheduler, so packets arrive late and out of order."""
        self.answered.wait()
        start, n = time.monotonic(), 0
        pending: list[tuple[float, bytes]] = []
        highest_sent = -1
        while not self._stop.is_set() and not self.bye.is_set() and self.peer_rtp is not None:
            now = time.monotonic()
            if now >= start + n * 0.02:
                t = (np.arange(160) + n * 160) / 8000
                pcm = (0.3 * 32767 * np.sin(2 * np.pi * self.tone_hz * t)).astype("<i2").tobytes()
                packet = self.rtp_packet(0, self._seq, self._ts, encode(pcm, "mulaw"))
                delay = float(self._random.uniform(0, self.jitter_ms)) / 1000 if self.jitter_ms else 0.0
                pending.append((now + delay, packet))
                self._seq, self._ts, n = self._seq + 1, self._ts + 160, n + 1
            due = [p for p in pending if p[0] <= now]
            pending = [p for p in pending if p[0] > now]
            for _, packet in sorted(due):
                seq = struct.unpack("!H", packet[2:4])[0]
                if seq < highest_sent:
                    self.sent_out_of_order += 1
                highest_sent = max(highest_sent, seq)
                try:
                    self.rtp.sendto(packet, self.peer_rtp)
                except OSError:
                    return
            time.sleep(0.002)

    def send_info_dtmf(self, digit: str) -> None:
        """Sends ``digit`` as a SIP INFO (application/dtmf-relay) inside the call's dialog."""
        invite = self._invite
        contact = re.search(r"^Contact:\s*<([^>]+)>", invite, re.MULTILINE | re.IGNORECASE)
        assert contact, invite
        body = f"Signal={digit}\r\nDuration=160\r\n"
        lines = [
            f"INFO {contact.group(1)} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bKraw{time.monotonic_ns()}",
            "Max-Forwards: 70",
            f"From: {_header(invite, 'To')};tag=raw1", f"To: {_header(invite, 'From')}",
            f"Call-ID: {_header(invite, 'Call-ID')}", "CSeq: 2 INFO",
            f"Contact: <sip:raw@127.0.0.1:{self.port}>",
            "Content-Type: application/dtmf-relay", f"Content-Length: {len(body)}", "", body,
        ]
        self.send_sip(CRLF.join(lines).encode())

    def next_seq_ts(self) -> tuple[int, int]:
        """The sequence number and timestamp a packet sent now would carry."""
        return self._seq, self._ts
