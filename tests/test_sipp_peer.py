"""The sipp peers of ``tests/sip_peers``: every UAS scenario, checked with sipp as the caller.

``SippCaller`` (sipp with ``uac_call.xml`` / ``uac_cancel.xml``) calls a ``SippPeer``; the RTP the
peer streams goes to a UDP socket of the test (``RtpSink``).
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.sip_peers.sipp import (
    SCENARIO_DIR,
    SippCaller,
    SippPeer,
    digest_response,
    free_rtp_port,
    g711_decode,
    g711_encode,
    read_audio,
    sipp_version,
    speech_like_signal,
    write_g711_raw,
    write_g711_wav,
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


def test_g711_helpers(tmp_path):
    pcm = speech_like_signal(1.0)
    for law in ("ulaw", "alaw"):
        back = g711_decode(g711_encode(pcm, law), law).astype(np.int32)
        # G.711 keeps ~ 2-3 % of the amplitude as quantisation error (log companding).
        assert np.max(np.abs(back - pcm) - np.abs(pcm.astype(np.int32)) * 0.07) <= 16
        raw = write_g711_raw(tmp_path / f"s.{law}", pcm[:1000], law)
        assert raw.stat().st_size == 1120  # padded to whole 160-byte (20 ms) packets
        wav = write_g711_wav(tmp_path / f"s-{law}.wav", pcm, law)
        assert wav.read_bytes()[:4] == b"RIFF"
        np.testing.assert_array_equal(read_audio(wav), g711_decode(g711_encode(pcm, law), law))
    loud = write_pcm_wav(tmp_path / "16k.wav", np.repeat(pcm, 2), rate=16000)
    assert abs(len(read_audio(loud)) - len(pcm)) <= 1


@pytest.mark.parametrize(
    ("scenario", "code", "cause"),
    [("busy", 486, "cause=17"), ("decline", 603, "cause=21"), ("unavailable", 480, "cause=20"),
     ("not_found", 404, "cause=1;")],
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


def test_cancel_while_a_rejecting_peer_rings(tmp_path):
    with SippPeer(tmp_path, "busy", max_calls=1, ring_ms=5000) as peer:
        caller = _call(tmp_path, peer, scenario="uac_cancel", hold_ms=300)
        assert caller.flow() == [">INVITE", "<100", "<180", ">CANCEL", "<200", "<487", ">ACK"]
        assert peer.flow() == ["<INVITE", ">100", ">180", "<CANCEL", ">200", ">487", "<ACK"]


def test_no_answer_then_cancel(tmp_path):
    with SippPeer(tmp_path, "no_answer", max_calls=1) as peer:
        caller = _call(tmp_path, peer, scenario="uac_cancel", hold_ms=800)
        assert caller.flow() == [">INVITE", "<100", "<180", ">CANCEL", "<200", "<487", ">ACK"]
        assert peer.flow() == ["<INVITE", ">100", ">180", "<CANCEL", ">200", ">487", "<ACK"]
        assert _gap(peer.messages(), "180", "CANCEL") >= 0.7
        assert peer.stats()["successful"] == 1


@pytest.mark.parametrize(("offer", "pt", "law"), [("0 8 101", 0, "ulaw"), ("8 0 101", 8, "alaw")])
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


def test_answer_then_bye_hangs_up_itself(tmp_path, sink):
    with SippPeer(tmp_path, "answer_then_bye", max_calls=1, talk_ms=800) as peer:
        caller = _call(tmp_path, peer, rtp_port=sink.port, hold_ms=10_000)
        assert caller.flow() == [">INVITE", "<100", "<180", "<200", ">ACK", "<BYE", ">200"]
        assert peer.flow() == ["<INVITE", ">100", ">180", ">200", "<ACK", ">BYE", "<200"]
        gap = _gap(peer.messages(), "ACK", "BYE")
        assert 0.75 <= gap <= 1.5, gap
        bye = peer.sent("BYE")[0]
        # The BYE is in the caller's dialog: to its Contact, From = its To (with our tag).
        log = peer.message_log.read_text()
        assert f"BYE sip:caller@127.0.0.1:{caller.port};transport=UDP SIP/2.0" in log
        assert bye.call_id == caller.messages()[0].call_id
        # Mid-sentence: audio until the BYE, none after it.
        assert len(sink.packets) >= 30
        assert max(t for t, _, _ in sink.packets) <= bye.time + 0.1


def test_answer_then_bye_when_the_caller_hangs_up_first(tmp_path):
    with SippPeer(tmp_path, "answer_then_bye", max_calls=1, talk_ms=5000) as peer:
        caller = _call(tmp_path, peer, hold_ms=500)
        assert caller.flow()[-2:] == [">BYE", "<200"]
        assert peer.flow() == ["<INVITE", ">100", ">180", ">200", "<ACK", "<BYE", ">200"]


@pytest.mark.parametrize("scenario", ["auth_answer", "auth_answer_www"])
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


@pytest.mark.parametrize("scenario", ["auth_answer", "auth_answer_www"])
@pytest.mark.parametrize("creds", [("bank-trunk", "wrong"), ("someone-else", "pa55word")])
def test_auth_answer_wrong_credentials_get_403(tmp_path, scenario, creds):
    challenge = 407 if scenario == "auth_answer" else 401
    with SippPeer(tmp_path, scenario, auth=("bank-trunk", "pa55word"), max_calls=1) as peer:
        caller = _call(tmp_path, peer, auth=creds)
        assert caller.flow() == [">INVITE", f"<{challenge}", ">ACK", ">INVITE", "<100", "<403",
                                 ">ACK"], caller.diagnostics()
        assert peer.flow()[-2:] == [">403", "<ACK"]


def test_auth_answer_is_bound_to_its_callee(tmp_path):
    peer = SippPeer(tmp_path, "auth_answer", callee="13800138000")
    assert peer.uri() == f"sip:13800138000@127.0.0.1:{peer.port}"
    with pytest.raises(ValueError):
        peer.uri("someone-else")
    assert SippPeer(tmp_path, "auth_answer_www").uri("anyone").startswith("sip:anyone@")


def test_answer_stream_handles_five_concurrent_calls(tmp_path, sink):
    with SippPeer(tmp_path, "answer_stream", max_calls=5, trace_messages=False) as peer:
        caller = _call(tmp_path, peer, calls=5, rate=50, hold_ms=2000, rtp_port=sink.port)
        stats = peer.stats()
        assert (stats["created"], stats["successful"], stats["failed"]) == (5, 5, 0)
        assert caller.stats()["successful"] == 5
        # All five were up at once: each call's 200 OK came before any BYE.
        answers = [m.time for m in peer.sent(200) if m.method == "INVITE"]
        byes = [m.time for m in peer.received("BYE")]
        assert len(answers) == len(byes) == 5
        assert max(answers) < min(byes)
        time.sleep(0.2)
        assert len(sink.ssrcs()) == 5  # one RTP stream per call, all from the -mp port
        assert sink.sources() == {("127.0.0.1", peer.media_port)}
        assert len(sink.packets) >= 5 * 80


def test_peer_without_max_calls_is_stopped_with_final_stats(tmp_path):
    peer = SippPeer(tmp_path, "busy")
    with peer:
        assert peer.running
        assert peer.uri("13900000000") == f"sip:13900000000@127.0.0.1:{peer.port}"
        for _ in range(2):
            SippCaller(tmp_path, peer).run(timeout_s=10)
    assert not peer.running
    assert peer.returncode == 0
    stats = peer.stats()
    assert (stats["created"], stats["successful"], stats["failed"]) == (2, 2, 0)
    assert peer.screen_log.exists()
    assert [m.label for m in peer.received("INVITE")] == ["INVITE", "INVITE"]


def test_every_scenario_loads(tmp_path):
    """Each UAS scenario starts (sipp parses it and binds) and stops cleanly."""
    for path in sorted(SCENARIO_DIR.glob("*.xml")):
        if path.name.startswith("uac_"):
            continue
        with SippPeer(tmp_path, path) as peer:
            assert peer.running, peer.diagnostics()
        assert peer.returncode in (0, 99), peer.diagnostics()
