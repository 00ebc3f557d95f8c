"""Smoke tests of the sipp peers of ``tests/sip_peers`` (the harness, not offercall): every UAS
scenario loads, and a rejecting, a streaming and an authenticating peer behave, with sipp as
the caller. The SIP tests of offercall (test_sip_trunk, test_sip_calls) use all of them.

``SippCaller`` (sipp with ``uac_call.xml`` / ``uac_cancel.xml``) calls a ``SippPeer``; the RTP the
peer streams goes to a UDP socket of the test (``RtpSink``).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from tests.sip_peers.sipp import (
    SCENARIO_DIR,
    SippCaller,
    SippPeer,
    digest_response,
    free_rtp_port,
    sipp_version,
    speech_like_signal,
    write_pcm_wav,
)

pytestmark = pytest.mark.usefixtures("sipp")


class RtpSink:
    """A UDP socket on 127.0.0.1 that records the RTP packets it gets."""

    def __init__(self) -> None:
        self.port = free_rtp_port()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.settimeout(0.1)
        self.packets: list[tuple[float, tuple[str, int], bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.packets.append((time.time(), addr, data))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()

    def payload_types(self) -> set[int]:
        return {data[1] & 0x7F for _, _, data in self.packets}

    def sources(self) -> set[tuple[str, int]]:
        return {addr for _, addr, _ in self.packets}

    def ssrcs(self) -> set[bytes]:
        return {data[8:12] for _, _, data in self.packets}

    def payload(self, ssrc: bytes | None = None) -> bytes:
        """The payloads of one stream (the first SSRC by default) in sequence-number order."""
        ssrc = ssrc if ssrc is not None else self.packets[0][2][8:12]
        stream = [d for _, _, d in self.packets if d[8:12] == ssrc]
        stream.sort(key=lambda d: int.from_bytes(d[2:4], "big"))
        return b"".join(d[12:] for d in stream)


@pytest.fixture
def sink():
    s = RtpSink()
    yield s
    s.close()


def _call(workdir: Path, peer: SippPeer, *, timeout_s: float = 20, **kw) -> SippCaller:
    """Run one caller against ``peer`` (which exits after its max_calls) and check both ends."""
    caller = SippCaller(workdir, peer, **kw)
    rc = caller.run(timeout_s=timeout_s)
    assert rc == 0, caller.diagnostics()
    assert peer.wait(timeout_s=10) == 0, peer.diagnostics()
    return caller


def _gap(messages, first: str, then: str) -> float:
    t = {m.label: m.time for m in messages}
    return t[then] - t[first]


def test_sipp_version():
    assert sipp_version() is not None


@pytest.mark.parametrize(
    ("scenario", "code", "cause"),
    [("busy", 486, "cause=17")],
)
def test_rejecting_peers(tmp_path, scenario, code, cause):
    with SippPeer(tmp_path, scenario, max_calls=1, ring_ms=300) as peer:
        caller = _call(tmp_path, peer)
        expected = [">INVITE", "<100", "<180", f"<{code}", ">ACK"]
        assert caller.flow() == expected, caller.diagnostics()
        assert peer.flow() == ["<INVITE", ">100", ">180", f">{code}", "<ACK"]
        assert _gap(peer.messages(), "180", str(code)) >= 0.25  # ring_ms
        assert f"Reason: Q.850;{cause}" in peer.message_log.read_text()
        stats = peer.stats()
        assert (stats["created"], stats["successful"], stats["failed"]) == (1, 1, 0)


@pytest.mark.parametrize(("offer", "pt", "law"), [("8 0 101", 8, "alaw")])
def test_answer_stream_plays_the_wav_in_the_offered_codec(tmp_path, sink, offer, pt, law):
    wav = write_pcm_wav(tmp_path / "prompt.wav", speech_like_signal(1.0))
    with SippPeer(tmp_path, "answer_stream", wav=wav, max_calls=1) as peer:
        caller = _call(tmp_path, peer, rtp_port=sink.port, offer=offer, hold_ms=1500)
        assert caller.flow() == [">INVITE", "<100", "<180", "<200", ">ACK", ">BYE", "<200"]
        assert peer.flow() == ["<INVITE", ">100", ">180", ">200", "<ACK", "<BYE", ">200"]
        answer = peer.message_log.read_text()
        assert f"m=audio {peer.media_port} RTP/AVP {pt} 101" in answer
        time.sleep(0.2)
        assert sink.payload_types() == {pt}
        assert sink.sources() == {("127.0.0.1", peer.media_port)}
        assert all(len(d) == 12 + 160 for _, _, d in sink.packets)
        # ~1.5 s held (75 packets); the 1 s file loops, byte for byte, with no WAV header.
        assert 55 <= len(sink.packets) <= 100, len(sink.packets)
        streamed = sink.payload()
        source = peer.stream_files[law].read_bytes()
        assert b"RIFF" not in streamed
        assert streamed[: len(source)] == source
        assert streamed[len(source) : 2 * len(source)] == source[: len(streamed) - len(source)]


@pytest.mark.parametrize("scenario", ["auth_answer"])
def test_auth_answer_right_password(tmp_path, sink, scenario):
    challenge = 407 if scenario == "auth_answer" else 401
    with SippPeer(tmp_path, scenario, auth=("bank-trunk", "pa55word"), max_calls=1) as peer:
        caller = _call(tmp_path, peer, auth=("bank-trunk", "pa55word"), rtp_port=sink.port,
                       hold_ms=1000)
        assert caller.flow() == [">INVITE", f"<{challenge}", ">ACK", ">INVITE", "<100", "<180",
                                 "<200", ">ACK", ">BYE", "<200"], caller.diagnostics()
        assert peer.flow()[:4] == ["<INVITE", f">{challenge}", "<ACK", "<INVITE"]
        log = peer.message_log.read_text()
        header = "Proxy-Authenticate" if challenge == 407 else "WWW-Authenticate"
        assert f'{header}: Digest realm="{peer.realm}", nonce="{peer.nonce}", algorithm=MD5' in log
        if challenge == 407:
            expected = digest_response("bank-trunk", peer.realm, "pa55word", peer.nonce,
                                       peer.uri())
            assert expected == peer.expected_digest()
            assert f'response="{expected}"' in log
        time.sleep(0.2)
        assert len(sink.packets) >= 40
        assert sink.payload_types() == {0}


def test_every_scenario_loads(tmp_path):
    """Each UAS scenario starts (sipp parses it and binds) and stops cleanly."""
    for path in sorted(SCENARIO_DIR.glob("*.xml")):
        if path.name.startswith("uac_"):
            continue
        with SippPeer(tmp_path, path) as peer:
            assert peer.running, peer.diagnostics()
        assert peer.returncode in (0, 99), peer.diagnostics()
