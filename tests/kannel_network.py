"""Real Kannel with a fake phone network, for tests and benchmarks.

:func:`kannel_network` writes a :class:`offercall.kannel.KannelSetup` configuration in a
directory of the caller's on free ports, starts bearerbox, smsbox and Kannel's ``fakesmsc``
(the phones, connected to the fake SMSC), waits until smsbox takes messages and the phones
are connected (well under a second), and stops everything (whole process groups) when the
block ends, failed or not.

fakesmsc's protocol is one line a message, ``sender receiver type data``. The phones send
with fakesmsc's interactive mode, one line on its stdin: ASCII in GSM's alphabet as
``text``, anything else (Chinese) as ``ucs2``, UTF-16BE with the bytes that would break the
line (``%``, ``+``, CR, LF, NUL) percent-encoded; fakesmsc reads at most 255 bytes a line,
about 110 Chinese characters. It prints what Kannel delivers (``Got message N: <line>``) as
``text``, ``ucs-2`` or ``data`` lines, and a long message as ``udh``/``data`` parts, which
:class:`FakePhoneNetwork` joins as a phone does. fakesmsc checks its stdin once a second and
reads the network only then, so a thread nudges it with an empty line every
``NUDGE_S``. Limits of the fake: a 7-bit message holding a line break arrives cut in two
(fakesmsc's own protocol); parts of a long message carry no coding on fakesmsc's line and are
read as UCS-2 when a NUL or a byte above 0x7f is among them, else as text.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote_to_bytes

from offercall import kannel
from offercall.kannel import KannelSetup
from offercall.processes import answers_http, child_argv
from outbound.sms_gateway import GSM_SAFE, KannelGateway
from tests.stack import free_port_block

DEFAULT_SENDER = "10690001"
"""The bank's number in the harness: messages come from it and the phones reply to it."""
KEY = "test-kannel-key-0123456789abcdef"
NUDGE_S = 0.05
MAX_LINE = 255
"""fakesmsc's fgets() buffer holds 255 bytes and the NUL."""
_GOT = re.compile(rb"Got message \d+: <(.*)>$")
_SENT = re.compile(rb"fakesmsc: sent message (\d+)$")
_NUMBER = re.compile(r"^\+?[0-9]{1,20}$")
T = TypeVar("T")
_ESCAPED = {ord(c): f"%{ord(c):02X}".encode() for c in "%+\r\n\0"}


@dataclass(frozen=True)
class PhoneMessage:
    """A text message as the phone shows it."""

    sender: str
    receiver: str
    text: str


@dataclass(frozen=True)
class _Part:
    sender: str
    receiver: str
    key: tuple[int, int] | None
    """(reference, parts) of a concatenated message; None: a whole message."""
    seq: int
    data: bytes
    coding: str
    """``text``, ``ucs-2`` or ``guess`` (a part's coding is not on fakesmsc's line)."""


def mo_line(sender: str, receiver: str, text: str) -> bytes:
    """fakesmsc's line for a message a phone sends (:class:`ValueError` if it does not fit)."""
    for number in (sender, receiver):
        if not _NUMBER.match(number):
            raise ValueError(f"a phone number is digits, got {number!r}")
    if set(text) <= GSM_SAFE - {"\r", "\n"}:
        line = f"{sender} {receiver} text {text}".encode()
    else:
        data = b"".join(_ESCAPED.get(byte, bytes([byte])) for byte in text.encode("utf-16-be"))
        line = f"{sender} {receiver} ucs2 ".encode() + data
    if len(line) + 1 > MAX_LINE:
        raise ValueError(f"fakesmsc reads {MAX_LINE} bytes a line; this message needs "
                         f"{len(line) + 1} (about 110 Chinese characters fit)")
    return line + b"\n"


def _unquote(data: bytes) -> bytes:
    """Kannel's URL encoding: ``+`` is a space (a plus sign comes as ``%2B``)."""
    return unquote_to_bytes(data.replace(b"+", b" "))


def _decode(data: bytes, coding: str) -> str:
    if coding == "guess":
        ucs2 = len(data) % 2 == 0 and any(byte == 0 or byte > 0x7F for byte in data)
        coding = "ucs-2" if ucs2 else "text"
    if coding == "ucs-2":
        return data.decode("utf-16-be", "replace")
    return data.decode("utf-8", "replace")


def _concatenation(udh: bytes) -> tuple[tuple[int, int], int] | None:
    """((reference, parts), part number) from a UDH's concatenation element, if any."""
    index = 1
    while index + 1 < len(udh):
        element, length = udh[index], udh[index + 1]
        value = udh[index + 2:index + 2 + length]
        if element == 0x00 and length == 3:
            return (value[0], value[1]), value[2]
        if element == 0x08 and length == 4:
            return (value[0] << 8 | value[1], value[2]), value[3]
        index += 2 + length
    return None


def parse_mt(line: bytes) -> _Part | None:
    """One line fakesmsc received from Kannel (``sender receiver type data``)."""
    fields = line.split(b" ", 3)
    if len(fields) < 3:
        return None
    sender, receiver, kind = (field.decode("ascii", "replace") for field in fields[:3])
    rest = fields[3] if len(fields) == 4 else b""
    if kind == "text":
        return _Part(sender, receiver, None, 1, rest, "text")
    if kind == "ucs-2":
        return _Part(sender, receiver, None, 1, _unquote(rest), "ucs-2")
    if kind == "data":
        return _Part(sender, receiver, None, 1, _unquote(rest), "guess")
    if kind == "udh":
        udh, _, data = rest.partition(b" data ")
        found = _concatenation(_unquote(udh))
        key, seq = found if found else (None, 1)
        return _Part(sender, receiver, key, seq, _unquote(data), "guess")
    return None


def _spawn(argv: list[str], log: Path, stdin: int | None = None,
           stdout: int | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as file:
        return subprocess.Popen(child_argv(argv), stdin=stdin,
                                stdout=stdout if stdout is not None else file,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _stop(process: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
    """SIGTERM to the process's group, SIGKILL after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace_s)
    process.wait()


@dataclass
class FakePhoneNetwork:
    """Kannel's fakesmsc connected to the fake SMSC on ``port``: phones that send
    (:meth:`send_from_phone`) and receive (:meth:`received`, :meth:`wait_for_message`)."""

    port: int
    log_path: Path
    default_to: str = DEFAULT_SENDER
    _process: subprocess.Popen[bytes] | None = None
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _write_lock: threading.Lock = field(default_factory=threading.Lock)
    _messages: list[PhoneMessage] = field(default_factory=list)
    _parts: dict[tuple[str, str, tuple[int, int]], dict[int, _Part]] = field(default_factory=dict)
    _handed_out: dict[str, int] = field(default_factory=dict)
    _mo_written: int = 0
    _mo_sent: int = 0
    _tail: list[str] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Starts fakesmsc (it exits at once if the fake SMSC does not listen yet)."""
        with self._write_lock, self._changed:
            self._mo_written = self._mo_sent = 0  # fakesmsc counts from 1 again
        self._stopping.clear()
        self._process = _spawn(
            [str(kannel.FAKESMSC), "-H", "127.0.0.1", "-r", str(self.port), "-i", "0"],
            self.log_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        process = self._process
        threading.Thread(target=self._read, args=(process,), name="fakesmsc-out",
                         daemon=True).start()
        threading.Thread(target=self._nudge, args=(process,), name="fakesmsc-nudge",
                         daemon=True).start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        self._stopping.set()
        if self._process is not None:
            _stop(self._process)

    def send_from_phone(self, phone: str, text: str, to: str | None = None,
                        timeout: float = 5.0) -> None:
        """The phone ``phone`` texts ``text`` to ``to`` (the bank's number by default);
        returns once fakesmsc has handed it to Kannel."""
        line = mo_line(phone, to or self.default_to, text)
        with self._write_lock:
            self._write(line)
            self._mo_written += 1
            wanted = self._mo_written
        self._wait(lambda: self._mo_sent >= wanted or None, timeout,
                   f"fakesmsc to send {phone}'s message")

    def received(self) -> list[PhoneMessage]:
        """Every message the phones have received, whole (a long one once all its parts are)."""
        with self._changed:
            return list(self._messages)

    def wait_for_message(self, receiver: str, timeout: float = 10) -> PhoneMessage:
        """The next message to ``receiver`` not yet returned by this method."""
        def next_one() -> PhoneMessage | None:
            seen = self._handed_out.get(receiver, 0)
            mine = [message for message in self._messages if message.receiver == receiver]
            if len(mine) > seen:
                self._handed_out[receiver] = seen + 1
                return mine[seen]
            return None
        return self._wait(next_one, timeout, f"a message to {receiver}")

    def wait_for_total(self, count: int, timeout: float = 60) -> list[PhoneMessage]:
        """Every message received, once there are ``count``."""
        self._wait(lambda: len(self._messages) >= count or None, timeout, f"{count} messages")
        return self.received()

    def _wait(self, found: Callable[[], T | None], timeout: float, what: str) -> T:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found()
                if result is not None:
                    return result
                if not self.running:
                    raise RuntimeError(f"fakesmsc exited while waiting for {what}: "
                                       f"{self._tail[-5:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} after {timeout:g} s "
                                       f"({len(self._messages)} messages received)")
                self._changed.wait(min(left, 0.5))

    def _write(self, data: bytes) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(data)
        self._process.stdin.flush()

    def _nudge(self, process: subprocess.Popen[bytes]) -> None:
        """fakesmsc waits up to a second for its stdin before it reads the network: an empty
        line (which it skips) every NUDGE_S makes it read the network at once."""
        while not self._stopping.wait(NUDGE_S) and process.poll() is None:
            with self._write_lock, contextlib.suppress(OSError, ValueError):
                self._write(b"\n")

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with self.log_path.open("ab") as log:
            for raw in process.stdout:
                log.write(raw)
                self._take(raw.rstrip(b"\n"))
        with self._changed:
            self._changed.notify_all()

    def _take(self, line: bytes) -> None:
        got, sent = _GOT.search(line), _SENT.search(line)
        with self._changed:
            if sent:
                self._mo_sent = int(sent.group(1))
            elif got:
                part = parse_mt(got.group(1))
                if part is not None:
                    self._add(part)
            else:
                self._tail = [*self._tail[-19:], line.decode("utf-8", "replace")]
            self._changed.notify_all()

    def _add(self, part: _Part) -> None:
        if part.key is None:
            self._messages.append(PhoneMessage(part.sender, part.receiver,
                                               _decode(part.data, part.coding)))
            return
        key = (part.sender, part.receiver, part.key)
        parts = self._parts.setdefault(key, {})
        parts[part.seq] = part
        if len(parts) == part.key[1]:
            del self._parts[key]
            data = b"".join(parts[seq].data for seq in sorted(parts))
            self._messages.append(PhoneMessage(part.sender, part.receiver, _decode(data, "guess")))


@dataclass
class KannelNetwork:
    """A running Kannel and its phones."""

    setup: KannelSetup
    phones: FakePhoneNetwork
    sender: str
    processes: dict[str, subprocess.Popen[bytes]]

    def gateway(self, **changes: str | float) -> KannelGateway:
        """The sendsms client for this Kannel, sending from ``sender`` (``changes``: other
        fields, e.g. a wrong password)."""
        return replace(kannel.gateway(self.setup, self.sender), **changes)

    def status(self) -> str:
        """bearerbox's status page ("" when it does not answer)."""
        try:
            with urllib.request.urlopen(self.setup.status_url, timeout=2.0) as response:
                return response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError):
            return ""

    def stop_box(self, name: str) -> None:
        """Stops ``bearerbox`` or ``smsbox``."""
        _stop(self.processes[name])

    def _ready(self) -> bool:
        status = self.status()
        return ("(online" in status and "smsbox:" in status
                and answers_http(self.setup.sendsms_url, timeout_s=1.0))


@contextlib.contextmanager
def kannel_network(directory: Path, callback_base: str, *, throughput: float | None = None,
                   sender: str = DEFAULT_SENDER, startup_timeout_s: float = 15.0,
                   password: str = KEY) -> Iterator[KannelNetwork]:
    """Kannel on free ports with its files in ``directory``, calling ``callback_base``
    (``/api/sms/inbound``, ``/api/sms/dlr``) back, and its fake phones, ready."""
    setup = KannelSetup(var_dir=directory, port=free_port_block(kannel.SENDSMS_PORT + 1, set()),
                        password=password, callback_base=callback_base, throughput=throughput)
    kannel.write_config(setup)
    phones = FakePhoneNetwork(setup.fake_smsc_port, directory / "fakesmsc.log", sender)
    network = KannelNetwork(setup, phones, sender, {})
    try:
        network.processes["bearerbox"] = _spawn(kannel.bearerbox_command(setup),
                                                directory / "bearerbox.out")
        network.processes["smsbox"] = _spawn(kannel.smsbox_command(setup), directory / "smsbox.out")
        deadline = time.monotonic() + startup_timeout_s
        while not network._ready():
            for name, process in network.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {process.returncode}: see "
                                       f"{directory / (name + '.out')} and {name}.log")
            if not phones.running and network.status():
                phones.start()  # again if the fake SMSC was not listening yet
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kannel not ready after {startup_timeout_s:g} s; "
                                   f"status:\n{network.status()}")
            time.sleep(0.02)
        yield network
    finally:
        phones.stop()
        for process in reversed(network.processes.values()):
            _stop(process, grace_s=1.0)  # smsbox lingers over callbacks nobody answers
