"""A real SIP phone for tests: baresip 1.0 on 127.0.0.1, driven over its ``ctrl_tcp`` socket.

``BaresipPhone`` runs one ``baresip`` process in its own config directory (under ``workdir``):
it listens for SIP on ``127.0.0.1:<free port>`` (UDP and TCP), takes calls to any
``sip:<anything>@127.0.0.1:<port>`` without a registrar, speaks G.711 (PCMU, PCMA) at 8 kHz,
plays a WAV file as its microphone, records what it hears, and reports every ctrl_tcp event
(``self.events``).  Several phones (and other SIP user agents) can run side by side.

What baresip 1.0.0 (Debian 1.0.0-4) does, as found by running it on this machine
-------------------------------------------------------------------------------
* **Auto-answer.**  The account parameter ``;answermode=auto`` answers inside the SIP stack, but
  then 1.0 emits *no* ``CALL_INCOMING`` event (only ``CALL_REMOTE_SDP``/``CALL_LOCAL_SDP``/
  ``CALL_ESTABLISHED``).  So the harness uses ``;answermode=manual`` and answers itself: when
  ``CALL_INCOMING`` arrives it sends the ``accept`` command (after ``answer_delay_s``).  Tests
  therefore see ``CALL_INCOMING`` then ``CALL_ESTABLISHED`` on the answering phone, and can make
  it ring for a while before answering.  ``;regint=0`` stops the account from REGISTERing (there
  is no registrar; without it 1.0 sends REGISTER to its own address and logs a 501).
* **Microphone = aufile.**  ``audio_source aufile,<wav>`` needs 16-bit mono PCM at exactly the
  source rate (``ausrc_srate 8000``); the harness converts ``play_wav`` to that.  The file is
  opened afresh for every call, so each call plays it from the start.  It does **not** loop: at
  end of file aufile reports ``AUDIO_ERROR`` (param ``"0,end of file"``) and 1.0's menu module
  then **hangs the call up** (``CALL_CLOSED`` with param ``"end of file"``).  Therefore the
  harness appends ``mic_tail_s`` seconds (default 300) of silence to the WAV; with
  ``mic_tail_s=0`` the phone hangs up as soon as its WAV has been played, which can be used to
  script a customer who says something and hangs up.  Without ``play_wav`` the mic is
  ``mic_tail_s`` seconds of digital silence (real RTP packets are sent).  ``play(wav)`` switches
  the source of the current call (menu command ``ausrc aufile,<path>``) and of later calls.
  (A source that never delivers audio, e.g. ``aubridge``, would send no RTP at all.)
* **No sound card.**  1.0's aufile is a source only (no ``audio_player``).  The harness uses
  the ``aubridge`` module as player/alert device with a device name nobody feeds from: baresip
  starts the player ("player started with sample format S16LE"), the bridge thread never runs,
  and no ALSA/pulse module is loaded, so there are no audio-device errors.
* **Recording.**  The ``sndfile`` audio filter with ``snd_path <dir>`` writes, per call,
  ``dump-YYYY-MM-DD-HH-MM-SS-enc.wav`` (what this phone sent, before encoding) and
  ``...-dec.wav`` (what it *received*, after decoding: the far end's audio), 16-bit mono 8 kHz.
  The files are opened when the audio stream starts and the WAV header sizes are only written
  by ``sf_close`` when the call is destroyed, i.e. right after ``CALL_CLOSED`` is emitted (or at
  quit).  Because the name has one-second resolution, two calls started in the same second
  would share one file; the harness therefore renames each new dump file at once (it polls the
  directory every 20 ms) to ``call-NNN-<timestamp>-dec.wav``/``-enc.wav``.
  ``received_audio()`` waits for the headers to be final when no call is active, and repairs
  the header sizes of files left unfinished by a killed baresip.
* **Incoming REFER (blind transfer) is followed by default** (account ``call_transfer``
  defaults to yes): baresip answers the REFER with 202, emits the event ``TRANSFER`` (1.0's
  name; later versions say ``CALL_TRANSFER``, and ``wait_event("CALL_TRANSFER")`` accepts
  both) with param = the Refer-To URI and ``peeruri`` = the transferor, and the menu module
  dials that URI as a new call (it becomes the current call), reporting progress to the
  transferor with NOTIFY sipfrag.  The transferee keeps the original call until the
  transferor sends BYE (a target that never answers, e.g. nothing listening, leaves both calls
  up while the INVITE is retransmitted).
* **Transfer out**: menu command ``transfer <uri>`` sends REFER on the current call
  (``transfer()``).  As transferor, baresip 1.0 hangs up its call when the NOTIFY says the
  target answered (``CALL_CLOSED`` with param ``"Call transfered"``); when the NOTIFY reports
  a failure (e.g. the target rejected with 486) it emits ``TRANSFER_FAILED`` (param
  ``"486 Rejected"``) and 1.0's menu hangs the original call up as well.
* Hanging up (``hangup``) a ringing incoming call rejects it with 486.
* **DTMF**: menu command ``sndcode <digits>`` sends each digit as an RFC 4733 telephone-event
  on the current call (``send_dtmf()``; about 0.25 s per digit); the receiving phone emits
  ``CALL_DTMF_START`` (param = the digit) and ``CALL_DTMF_END`` per digit.  (The one-key
  menu shortcuts need the stdio UI, which cannot run without a terminal.)
* Commands act on the menu's *current call* (the newest one): ``hangup``, ``sndcode``,
  ``transfer``, ``ausrc``; ``accept`` answers the ringing call.  ``listcalls`` lists calls.
* ctrl_tcp speaks netstrings: request ``{"command": ..., "params": ..., "token": ...}``, response
  ``{"response": true, "ok": bool, "data": str, "token": ...}``; events are
  ``{"event": true, "type": ..., "class": ..., "accountaor": ..., "direction": ...,
  "peeruri": ..., "id": <call id>, "param": ...}``.  The ``quit`` command stops baresip.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import wave
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from tests.ports import candidate_port

SAMPLE_RATE = 8000
LOOPBACK = "127.0.0.1"
MODULE_PATH = Path("/usr/lib/baresip/modules")
AUDIO_PATH = Path("/usr/share/baresip")

_DUMP_RE = re.compile(r"^dump-(?P<ts>.+)-(?P<kind>enc|dec)\.wav$")
_CALL_FILE_RE = re.compile(r"^call-(?P<seq>\d+)-.*-(?P<kind>enc|dec)\.wav$")
_NAME_RE = re.compile(r"^[A-Za-z0-9._~-]+$")
_CALL_ALIVE_EVENTS = {"CALL_INCOMING", "CALL_RINGING", "CALL_PROGRESS", "CALL_ESTABLISHED"}
# Later baresip versions call these CALL_TRANSFER / CALL_TRANSFER_FAILED; 1.0 does not.
EVENT_ALIASES = {"CALL_TRANSFER": "TRANSFER", "CALL_TRANSFER_FAILED": "TRANSFER_FAILED"}

_ports_lock = threading.Lock()
_handed_out_ports: set[int] = set()
_live_phones: weakref.WeakSet[BaresipPhone] = weakref.WeakSet()


def baresip_binary() -> str | None:
    """Path of the baresip executable, or None when it is not installed."""
    return shutil.which("baresip")


def _port_is_free(port: int, kinds: tuple[int, ...]) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                return False
    return True


def free_port(*, udp_and_tcp: bool = True) -> int:
    """A port on 127.0.0.1 that is free now (for UDP and TCP) and not handed out before."""
    kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM) if udp_and_tcp else (socket.SOCK_STREAM,)
    for _ in range(200):
        port = candidate_port()  # below the ephemeral range: see tests/ports.py
        # baresip also opens a TLS listener on SIP port + 1; keep that one free as well.
        if udp_and_tcp and not _port_is_free(port + 1, (socket.SOCK_STREAM,)):
            continue
        if not _port_is_free(port, kinds):
            continue
        with _ports_lock:
            if port in _handed_out_ports or (udp_and_tcp and port + 1 in _handed_out_ports):
                continue
            _handed_out_ports.add(port)
            if udp_and_tcp:
                _handed_out_ports.add(port + 1)
        return port
    raise RuntimeError("could not find a free port on 127.0.0.1")


def _netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


def read_wav_mono(path: Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A WAV file as int16 mono samples at ``rate`` (mixes channels, resamples linearly)."""
    with wave.open(str(path), "rb") as w:
        channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        raw = w.readframes(w.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints & 0x800000, ints - 0x1000000, ints)
        data = ints.astype(np.float64) / 256.0
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    else:
        raise ValueError(f"{path}: unsupported sample width {width}")
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1)
    if src_rate != rate and len(data):
        n_out = int(round(len(data) * rate / src_rate))
        t_out = np.arange(n_out) * (src_rate / rate)
        data = np.interp(t_out, np.arange(len(data)), data)
    return np.clip(np.round(data), -32768, 32767).astype(np.int16)


def write_wav_mono(path: Path, samples: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return path


def _wav_is_complete(path: Path) -> bool:
    """True when the RIFF and data chunk sizes of a canonical 44-byte-header WAV match the file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(44)
    except OSError:
        return False
    if len(head) < 44 or head[:4] != b"RIFF" or head[36:40] != b"data":
        return True  # not the layout we know; nothing to check
    riff = int.from_bytes(head[4:8], "little")
    data = int.from_bytes(head[40:44], "little")
    return riff == size - 8 and data == size - 44


def _repair_wav_header(path: Path) -> None:
    """Write the chunk sizes of an unfinished (never closed) canonical WAV file."""
    if _wav_is_complete(path):
        return
    size = path.stat().st_size
    data_len = (size - 44) & ~1
    with path.open("r+b") as f:
        f.seek(4)
        f.write((data_len + 36).to_bytes(4, "little"))
        f.seek(40)
        f.write(data_len.to_bytes(4, "little"))


class BaresipPhone:
    """A baresip user agent on 127.0.0.1 in its own config dir: auto-answers incoming calls,
    plays a WAV file as its microphone, records what it hears, and takes commands over ctrl_tcp.

    ``workdir/name/`` holds ``config/`` (config, accounts), the mic WAVs (``mic-NNN.wav``),
    ``recordings/`` and ``baresip.log``.  Each event dict is ctrl_tcp's JSON plus
    ``received_at`` (time.time() when the harness read it).  ``auto_answer`` answers after
    ``answer_delay_s``; ``mic_tail_s`` is the silence appended to the mic WAV (see the module
    docstring for why).  See the module docstring for how baresip 1.0 behaves.
    """

    def __init__(
        self,
        workdir: Path,
        name: str,
        *,
        play_wav: Path | None = None,
        auto_answer: bool = True,
        sip_port: int | None = None,
        ctrl_port: int | None = None,
        answer_delay_s: float = 0.0,
        mic_tail_s: float = 300.0,
        codecs: tuple[str, ...] = ("pcmu", "pcma"),
        baresip_bin: str | None = None,
    ) -> None:
        if not _NAME_RE.match(name):
            raise ValueError(f"phone name must be a plain SIP user part, got {name!r}")
        self.name = name
        self.dir = Path(workdir) / name
        self.config_dir = self.dir / "config"
        self.recordings_dir = self.dir / "recordings"
        self.log_path = self.dir / "baresip.log"
        self.play_wav = Path(play_wav) if play_wav is not None else None
        self.auto_answer = auto_answer
        self.answer_delay_s = answer_delay_s
        self.mic_tail_s = mic_tail_s
        self.codecs = tuple(codecs)
        self._fixed_sip_port = sip_port
        self._fixed_ctrl_port = ctrl_port
        self.sip_port: int | None = sip_port
        self.ctrl_port: int | None = ctrl_port
        self._bin = baresip_bin or baresip_binary()

        self.events: list[dict[str, Any]] = []
        self._consumed: set[int] = set()
        self._responses: dict[str, dict[str, Any]] = {}
        self._active_calls: set[str] = set()
        self._cond = threading.Condition()
        self._send_lock = threading.Lock()
        self._token_seq = 0
        self._mic_seq = 0
        self._rec_seq = {"enc": 0, "dec": 0}
        self._rec_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conn_closed = False

    # ------------------------------------------------------------------ properties

    @property
    def uri(self) -> str:
        if self.sip_port is None:
            raise RuntimeError("phone not started: no SIP port yet")
        return f"sip:{self.name}@{LOOPBACK}:{self.sip_port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        port = self.sip_port if self.sip_port is not None else "?"
        return f"<BaresipPhone {self.name} {state} sip:{LOOPBACK}:{port}>"

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> BaresipPhone:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout_s: float = 10) -> None:
        """Launch baresip and wait until ctrl_tcp answers and the UA is ready."""
        if self.running:
            raise RuntimeError(f"{self!r} already started")
        if not self._bin:
            raise RuntimeError("baresip is not installed")
        attempts = 1 if (self._fixed_sip_port or self._fixed_ctrl_port) else 3
        for attempt in range(attempts):
            self._prepare_files()
            try:
                self._launch(timeout_s)
                return
            except BaseException as exc:
                self._teardown()  # never leave a half-started baresip behind
                in_use = "Address already in use" in self.log_tail(200)
                if not isinstance(exc, RuntimeError) or not in_use or attempt == attempts - 1:
                    raise

    def stop(self, timeout_s: float = 5) -> None:
        """Quit baresip cleanly (``quit`` over ctrl_tcp), terminate/kill it if it does not exit."""
        proc = self._proc
        if proc is None:
            return
        self._stopping.set()
        if proc.poll() is None and self._sock is not None and not self._conn_closed:
            try:
                self._send({"command": "quit", "params": "", "token": "quit"})
            except OSError:
                pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        # baresip 1.0: the first SIGTERM starts a graceful stop, the second exits at once.
        for sig_wait in (1.0, 1.0):
            if proc.poll() is not None:
                break
            proc.terminate()
            try:
                proc.wait(timeout=sig_wait)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        self._teardown()
        self._collect_recordings()
        for path in self._recordings("dec") + self._recordings("enc"):
            _repair_wav_header(path)

    def _teardown(self) -> None:
        self._stopping.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        for thread in (self._reader, self._watcher):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=2)
        self._sock = self._reader = self._watcher = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        _live_phones.discard(self)

    def _prepare_files(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(exist_ok=True)
        self.recordings_dir.mkdir(exist_ok=True)
        self.sip_port = self._fixed_sip_port or free_port(udp_and_tcp=True)
        self.ctrl_port = self._fixed_ctrl_port or free_port(udp_and_tcp=False)
        mic = self._make_mic_wav(self.play_wav, self.mic_tail_s)
        (self.config_dir / "config").write_text(self._config_text(mic))
        answermode = "manual"  # the harness answers itself, see module docstring
        codecs = ",".join(self.codecs)
        (self.config_dir / "accounts").write_text(
            f"<sip:{self.name}@{LOOPBACK}:{self.sip_port}>"
            f";answermode={answermode};audio_codecs={codecs};regint=0;ptime=20\n"
        )
        (self.config_dir / "contacts").write_text("")

    def _config_text(self, mic: Path) -> str:
        spk = f"{self.name}-{self.sip_port}-speaker"
        lines = [
            "poll_method\t\tepoll",
            f"sip_listen\t\t{LOOPBACK}:{self.sip_port}",
            f"net_interface\t\t{LOOPBACK}",
            "call_local_timeout\t120",
            "call_max_calls\t\t4",
            f"audio_path\t\t{AUDIO_PATH}",
            f"audio_player\t\taubridge,{spk}",
            f"audio_alert\t\taubridge,{spk}-alert",
            f"audio_source\t\taufile,{mic}",
            f"ausrc_srate\t\t{SAMPLE_RATE}",
            f"auplay_srate\t\t{SAMPLE_RATE}",
            "ausrc_channels\t\t1",
            "auplay_channels\t\t1",
            "ausrc_format\t\ts16",
            "auplay_format\t\ts16",
            "auenc_format\t\ts16",
            "audec_format\t\ts16",
            "audio_buffer\t\t20-160",
            "audio_level\t\tno",
            "rtcp_mux\t\tno",
            "jitter_buffer_delay\t5-10",
            "rtp_stats\t\tno",
            f"module_path\t\t{MODULE_PATH}",
            "module\t\t\tg711.so",
            "module\t\t\tsndfile.so",
            "module\t\t\taufile.so",
            "module\t\t\taubridge.so",
            "module_tmp\t\taccount.so",
            "module_app\t\tmenu.so",
            "module_app\t\tctrl_tcp.so",
            f"ctrl_tcp_listen\t\t{LOOPBACK}:{self.ctrl_port}",
            f"snd_path\t\t{self.recordings_dir}",
            "statmode_default\toff",
            "ringback_disabled\tyes",
            "menu_bell\t\tno",
            "redial_attempts\t\t0",
        ]
        return "\n".join(lines) + "\n"

    def _make_mic_wav(self, wav: Path | None, tail_s: float) -> Path:
        """The mic file: ``wav`` at 8 kHz mono s16, followed by ``tail_s`` s of silence."""
        parts = []
        if wav is not None:
            parts.append(read_wav_mono(Path(wav)))
        tail = int(round(max(tail_s, 0.0) * SAMPLE_RATE))
        if wav is None:
            tail = max(tail, SAMPLE_RATE // 50)  # aufile cannot play an empty file
        parts.append(np.zeros(tail, dtype=np.int16))
        self._mic_seq += 1
        return write_wav_mono(self.dir / f"mic-{self._mic_seq:03d}.wav", np.concatenate(parts))

    def _launch(self, timeout_s: float) -> None:
        self._stopping.clear()
        self._conn_closed = False
        self._log_file = self.log_path.open("ab")
        self._log_file.write(
            f"\n===== harness: starting baresip for {self.name}: sip {self.sip_port}, "
            f"ctrl {self.ctrl_port} =====\n".encode()
        )
        self._log_file.flush()
        self._log_start = self.log_path.stat().st_size
        self._proc = subprocess.Popen(
            [str(self._bin), "-f", str(self.config_dir)],
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=str(self.dir),
            start_new_session=True,  # no terminal signals from the test runner's session
        )
        _live_phones.add(self)
        deadline = time.monotonic() + timeout_s
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"baresip {self.name} exited during start-up "
                    f"(code {self._proc.returncode}); log {self.log_path}:\n{self.log_tail()}"
                )
            if self._sock is None:
                try:
                    self._sock = socket.create_connection((LOOPBACK, self.ctrl_port), timeout=1)
                    self._sock.settimeout(None)
                    self._reader = threading.Thread(
                        target=self._read_loop, name=f"baresip-{self.name}-ctrl", daemon=True
                    )
                    self._reader.start()
                except OSError:
                    self._sock = None
            if self._sock is not None and "baresip is ready." in self._current_log():
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"baresip {self.name} not ready after {timeout_s} s "
                    f"(ctrl_tcp {'up' if self._sock else 'not answering'}); "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        # A round trip proves that commands work.
        response = self.command("reginfo", timeout_s=max(1.0, deadline - time.monotonic()))
        if not response.get("ok"):
            raise RuntimeError(f"baresip {self.name}: ctrl_tcp probe failed: {response}")
        self._watcher = threading.Thread(
            target=self._watch_recordings, name=f"baresip-{self.name}-rec", daemon=True
        )
        self._watcher.start()

    # ------------------------------------------------------------------ ctrl_tcp

    def _send(self, obj: dict[str, Any]) -> None:
        if self._sock is None:
            raise RuntimeError(f"{self!r}: not connected")
        data = _netstring(json.dumps(obj).encode())
        with self._send_lock:
            self._sock.sendall(data)

    def command(self, command: str, params: str = "", timeout_s: float = 5) -> dict:
        """Run a baresip command over ctrl_tcp; returns the response ``{"ok", "data", ...}``."""
        with self._cond:
            self._token_seq += 1
            token = f"{self.name}-{self._token_seq}"
        self._send({"command": command, "params": params, "token": token})
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while token not in self._responses:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._conn_closed:
                    why = "connection closed" if self._conn_closed else f"{timeout_s} s"
                    raise TimeoutError(
                        f"baresip {self.name}: no response to {command!r} {params!r} ({why}); "
                        f"log:\n{self.log_tail()}"
                    )
                self._cond.wait(remaining)
            return self._responses.pop(token)

    def _checked(self, command: str, params: str = "") -> dict:
        response = self.command(command, params)
        if not response.get("ok"):
            raise RuntimeError(f"baresip {self.name}: {command} {params!r} failed: {response}")
        return response

    def _read_loop(self) -> None:
        sock = self._sock
        buf = b""
        try:
            while sock is not None:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    colon = buf.find(b":")
                    if colon < 0:
                        break
                    length = int(buf[:colon])
                    end = colon + 1 + length
                    if len(buf) < end + 1:
                        break
                    payload, buf = buf[colon + 1 : end], buf[end + 1 :]
                    try:
                        self._dispatch(json.loads(payload))
                    except ValueError:
                        continue
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._conn_closed = True
                self._cond.notify_all()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        answer = False
        with self._cond:
            if msg.get("event"):
                msg.setdefault("received_at", time.time())
                self.events.append(msg)
                kind, call_id = msg.get("type"), msg.get("id")
                if call_id and kind in _CALL_ALIVE_EVENTS:
                    self._active_calls.add(call_id)
                elif call_id and kind == "CALL_CLOSED":
                    self._active_calls.discard(call_id)
                answer = kind == "CALL_INCOMING" and self.auto_answer
            elif msg.get("response"):
                self._responses[str(msg.get("token"))] = msg
            self._cond.notify_all()
        if answer and not self._stopping.is_set():
            if self.answer_delay_s > 0:
                timer = threading.Timer(self.answer_delay_s, self._auto_accept)
                timer.daemon = True
                timer.start()
            else:
                self._auto_accept()

    def _auto_accept(self) -> None:
        # Fire and forget: this runs on the reader thread, which must not wait for responses.
        if self._stopping.is_set():
            return
        try:
            self._send({"command": "accept", "params": "", "token": "auto-accept"})
        except (OSError, RuntimeError):
            pass

    def wait_event(self, kind: str, timeout_s: float = 10, **match: Any) -> dict:
        """The oldest event of type ``kind`` not yet returned by wait_event (waits for it).

        Events that arrived before the call count, so there is no race with the action that
        triggers them.  ``match`` filters on event fields, e.g. ``peeruri=...``, ``param="1"``.
        ``CALL_TRANSFER``/``CALL_TRANSFER_FAILED`` also match 1.0's ``TRANSFER``/``TRANSFER_FAILED``.
        Raises TimeoutError (with the events seen and the log tail) when none comes.
        """
        kinds = {kind, EVENT_ALIASES.get(kind, kind)}
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                for index, event in enumerate(self.events):
                    if index in self._consumed or event.get("type") not in kinds:
                        continue
                    if all(event.get(k) == v for k, v in match.items()):
                        self._consumed.add(index)
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._conn_closed:
                    seen = [e.get("type") for e in self.events]
                    why = "ctrl_tcp connection closed" if self._conn_closed else f"{timeout_s} s"
                    raise TimeoutError(
                        f"baresip {self.name}: no {kind} event {match or ''} ({why});"
                        f" events so far: {seen}; log {self.log_path}:\n{self.log_tail()}"
                    )
                self._cond.wait(min(remaining, 0.5))

    def events_of(self, kind: str) -> list[dict]:
        """All events of type ``kind`` so far (consumed or not)."""
        kinds = {kind, EVENT_ALIASES.get(kind, kind)}
        with self._cond:
            return [e for e in self.events if e.get("type") in kinds]

    @property
    def active_calls(self) -> set[str]:
        """Call ids seen alive (incoming/ringing/established) and not yet closed."""
        with self._cond:
            return set(self._active_calls)

    # ------------------------------------------------------------------ call control

    def dial(self, uri: str) -> None:
        """Place a call (``dial``); follow it with wait_event("CALL_ESTABLISHED")."""
        self._checked("dial", uri)

    def answer(self) -> None:
        """Answer the ringing incoming call (for ``auto_answer=False``)."""
        self._checked("accept")

    def hangup(self) -> None:
        """Hang up the current call."""
        self._checked("hangup")

    def send_dtmf(self, digits: str) -> None:
        """Send DTMF (RFC 4733 telephone-event) on the current call (menu command ``sndcode``)."""
        if not re.fullmatch(r"[0-9A-Da-d*#]+", digits):
            raise ValueError(f"not DTMF digits: {digits!r}")
        self._checked("sndcode", digits)

    def transfer(self, uri: str) -> None:
        """Blind-transfer the current call: send REFER with Refer-To ``uri``."""
        self._checked("transfer", uri)

    def play(self, wav: Path, tail_s: float | None = None) -> Path:
        """Switch the microphone to ``wav`` (+ ``tail_s`` s of silence) now and for later calls.

        Uses ``ausrc aufile,<file>``, which restarts the source of the current call, so the
        WAV starts playing at once.  Returns the converted mic file.
        """
        mic = self._make_mic_wav(Path(wav), self.mic_tail_s if tail_s is None else tail_s)
        self._checked("ausrc", f"aufile,{mic}")
        return mic

    # ------------------------------------------------------------------ recordings

    def _watch_recordings(self) -> None:
        while not self._stopping.wait(0.02):
            try:
                self._collect_recordings()
            except OSError:
                pass

    def _collect_recordings(self) -> None:
        """Give each new sndfile dump a unique, ordered name (see module docstring)."""
        with self._rec_lock:
            try:
                names = sorted(os.listdir(self.recordings_dir))
            except FileNotFoundError:
                return
            for name in names:
                m = _DUMP_RE.match(name)
                if not m:
                    continue
                kind = m.group("kind")
                self._rec_seq[kind] += 1
                target = f"call-{self._rec_seq[kind]:03d}-{m.group('ts')}-{kind}.wav"
                os.rename(self.recordings_dir / name, self.recordings_dir / target)

    def _recordings(self, kind: str) -> list[Path]:
        files = []
        for path in self.recordings_dir.glob(f"call-*-{kind}.wav"):
            m = _CALL_FILE_RE.match(path.name)
            if m:
                files.append((int(m.group("seq")), path))
        return [path for _, path in sorted(files)]

    def _finished_recordings(self, kind: str, wait_s: float) -> list[Path]:
        self._collect_recordings()
        if not self.running:
            files = self._recordings(kind)
            for path in files:
                _repair_wav_header(path)
            return files
        deadline = time.monotonic() + wait_s
        while True:
            files = self._recordings(kind)
            if self.active_calls or all(_wav_is_complete(p) for p in files):
                return files
            if time.monotonic() > deadline:
                return files
            time.sleep(0.02)
            self._collect_recordings()

    def received_audio(self, wait_s: float = 3.0) -> list[Path]:
        """WAV files of what this phone heard (decoded far-end audio), one per call, newest last.

        When no call is active, waits up to ``wait_s`` for baresip to finish (close) the files.
        A call still in progress has a file whose header says 0 frames (use the raw bytes).
        """
        return self._finished_recordings("dec", wait_s)

    def sent_audio(self, wait_s: float = 3.0) -> list[Path]:
        """WAV files of what this phone sent (its mic, before encoding), one per call."""
        return self._finished_recordings("enc", wait_s)

    # ------------------------------------------------------------------ diagnostics

    def _current_log(self) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(getattr(self, "_log_start", 0))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of baresip's output (ANSI colours stripped), for failure messages."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self._current_log())
        return "\n".join(text.splitlines()[-lines:])


@atexit.register
def _stop_leftover_phones() -> None:
    for phone in list(_live_phones):
        try:
            phone.stop(timeout_s=1)
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
