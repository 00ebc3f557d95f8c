"""Kannel, the SMS gateway offercall runs: the configuration its bearerbox and smsbox share
and the commands that start them (pure: settings in, text and argv out; ``write_config``
writes the file).

Ports from ``kannel_port`` (P), all on loopback: bearerbox's admin and status page on P, its
link to smsbox on P+1, the fake SMSC (the tests' and demos' phone network) on P+10 and
smsbox's sendsms interface on P+13. Under ``var/kannel``: ``kannel.conf``, the two boxes'
logs, and ``store/``, bearerbox's spool of messages not yet delivered, which survives a
restart. Customers' replies go to ``/api/sms/inbound`` on offercall's web server (UTF-8: smsbox
recodes UCS-2), delivery reports to ``/api/sms/dlr``; both carry the shared key, which is
also the sendsms and admin password. smsbox takes a callback as done on a 200 or 202 answer
only; one that fails (the web server restarting) is fetched again every
``HTTP_RETRY_DELAY_S`` up to ``HTTP_RETRIES`` times.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from core.settings import Settings
from offercall.balancer import local_address
from outbound.sms_gateway import KannelGateway

BEARERBOX = Path("/usr/sbin/bearerbox")
SMSBOX = Path("/usr/sbin/smsbox")
FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
"""Kannel's fake SMSC client (package kannel-extras): the tests' phone network."""
USERNAME = "offercall"
FAKE_SMSC_ID = "fake"
SMSBOX_PORT, FAKE_SMSC_PORT, SENDSMS_PORT = 1, 10, 13
"""Offsets from the admin port."""
INFO, WARNING = 1, 2
SMSBOX_LOG_LEVEL = WARNING
"""smsbox logs every message's phone number and text at info level; bearerbox does not."""
SENDSMS_MAX_PARTS = 10
"""A long message goes as up to this many concatenated parts (70 Chinese characters each)."""
HTTP_RETRIES, HTTP_RETRY_DELAY_S = 30, 10
"""A callback (reply, delivery report) that fails is tried again for five minutes."""
BEARERBOX_WAIT_S = 60.0
SMSBOX_NAME = "smsbox-run-by-offercall"
"""smsbox's ``argv[0]``: no program by that name exists (see :func:`smsbox_command`)."""

_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')
_GROUP = re.compile(r'^group\s*=\s*"?([a-z-]+)"?\s*$', re.IGNORECASE)
_KEY = re.compile(r"^([a-z0-9-]+)\s*=", re.IGNORECASE)


@dataclass(frozen=True)
class KannelSetup:
    """One Kannel installation: where it keeps its files, its ports, its sendsms account and
    where it calls offercall back."""

    var_dir: Path
    """``var/kannel``: the configuration, the logs and the message store."""
    port: int
    """The admin port; the others follow it (module docstring)."""
    password: str = field(repr=False)
    """The shared secret: sendsms and admin password, and the ``key`` of the callbacks."""
    callback_base: str
    """offercall's web server (or its balancer) as Kannel reaches it: ``http://127.0.0.1:8080``."""
    username: str = USERNAME
    smsc: str | None = None
    """The operator's ``group = smsc`` text; None: the fake SMSC."""
    throughput: float | None = None
    """Messages a second each SMSC link sends at most; None: as fast as it can. (Kannel 1.4.5's
    SMPP links measure their rate; its fake SMSC cuts its pause short for each new message.)"""

    def __post_init__(self) -> None:
        if not 1024 <= self.port <= 65535 - SENDSMS_PORT:
            raise ValueError(f"Kannel's admin port must be 1024 to {65535 - SENDSMS_PORT}, "
                             f"got {self.port}")
        if self.throughput is not None and not self.throughput > 0:
            raise ValueError(f"Kannel's throughput must be above 0, got {self.throughput}")

    @classmethod
    def from_settings(cls, settings: Settings) -> KannelSetup:
        """The installation's Kannel (reads the operator's SMSC file when one is set)."""
        smsc = None
        if settings.sms_smsc_conf is not None:
            try:
                smsc = settings.sms_smsc_conf.read_text("utf-8")
            except OSError as exc:
                raise ValueError(f"OFFERCALL_SMS_SMSC_CONF: cannot read "
                                 f"{settings.sms_smsc_conf}: {exc.strerror}") from None
        return cls(
            var_dir=settings.var_dir / "kannel",
            port=settings.kannel_port,
            password=settings.sms_key,
            callback_base=f"http://{_url_host(local_address(settings.web_host))}:{settings.web_port}",
            smsc=smsc,
            throughput=settings.sms_rate,
        )

    @property
    def admin_port(self) -> int:
        return self.port

    @property
    def smsbox_port(self) -> int:
        return self.port + SMSBOX_PORT

    @property
    def fake_smsc_port(self) -> int:
        return self.port + FAKE_SMSC_PORT

    @property
    def sendsms_port(self) -> int:
        return self.port + SENDSMS_PORT

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.sendsms_port}/cgi-bin/sendsms"

    @property
    def status_url(self) -> str:
        """bearerbox's status page (plain text; no password on loopback)."""
        return f"http://127.0.0.1:{self.admin_port}/status.txt"

    @property
    def config_path(self) -> Path:
        return self.var_dir / "kannel.conf"

    @property
    def store_dir(self) -> Path:
        return self.var_dir / "store"

    @property
    def mo_url(self) -> str:
        """smsbox's get-url for a customer's message (``%p`` sender, ``%P`` our number, ``%a``
        the text, ``%T`` its Unix time, ``%I`` Kannel's id of it, the same on every retry)."""
        return (f"{self.callback_base}/api/sms/inbound?key={quote(self.password, safe='')}"
                "&from=%p&to=%P&text=%a&ts=%T&ref=%I")

    @property
    def dlr_url(self) -> str:
        """Where delivery reports go (the gateway adds the message id and Kannel's fields)."""
        return f"{self.callback_base}/api/sms/dlr?key={quote(self.password, safe='')}"


def gateway(setup: KannelSetup, sender: str) -> KannelGateway:
    """The sendsms client for ``setup``'s smsbox, sending from ``sender``."""
    return KannelGateway(sendsms_url=setup.sendsms_url, username=setup.username,
                         password=setup.password, sender=sender, dlr_url=setup.dlr_url)


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _quoted(name: str, value: str | Path) -> str:
    """``"value"`` for kannel.conf; a quote, backslash or control character (a line break
    would start a setting of its own) is refused."""
    text = str(value)
    bad = _UNSAFE.search(text)
    if bad:
        raise ValueError(f"Kannel's {name} cannot hold {bad.group()!r} "
                         "(a quote, backslash or control character would break kannel.conf)")
    return f'"{text}"'


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _group(name: str, settings: list[tuple[str, str | int | Path | bool]]) -> str:
    lines = [f"group = {name}"]
    for key, value in settings:
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"{key} = {value}")
        else:
            lines.append(f"{key} = {_quoted(key, value)}")
    return "\n".join(lines)


def _operator_smsc(text: str, throughput: float | None) -> list[str]:
    """The operator's SMSC groups, each with offercall's throughput added. Only ``smsc``
    groups are taken, and none may set its own throughput (``OFFERCALL_SMS_RATE`` does)."""
    blocks = [block.strip("\n") for block in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))]
    groups = []
    for block in blocks:
        lines = [line.strip() for line in block.splitlines()]
        settings = [line for line in lines if line and not line.startswith("#")]
        if not settings:
            continue
        group = _GROUP.match(settings[0])
        if group is None or group.group(1).lower() != "smsc":
            # quote the group's name or the line's setting, never a value (a password)
            first = group.group(0) if group else settings[0].split("=")[0].strip()
            raise ValueError("the operator's SMSC file (OFFERCALL_SMS_SMSC_CONF) may hold only "
                             f"'group = smsc' groups, each starting with it; got {first!r}")
        keys = [match.group(1).lower() for line in settings[1:] if (match := _KEY.match(line))]
        if len(keys) != len(settings) - 1:
            raise ValueError("the operator's SMSC file has a line that is not 'name = value'")
        if "throughput" in keys:
            raise ValueError("the operator's SMSC file sets its own throughput: set "
                             "OFFERCALL_SMS_RATE instead (offercall adds it to every SMSC)")
        if "include" in keys:
            raise ValueError("the operator's SMSC file may not include other files")
        if throughput is not None:
            lines.append(f"throughput = {_number(throughput)}")
        groups.append("\n".join(lines))
    if not groups:
        raise ValueError("the operator's SMSC file (OFFERCALL_SMS_SMSC_CONF) has no 'group = smsc'")
    return groups


def _fake_smsc(setup: KannelSetup) -> str:
    settings: list[tuple[str, str | int | Path | bool]] = [
        ("smsc", "fake"), ("smsc-id", FAKE_SMSC_ID), ("port", setup.fake_smsc_port),
        ("our-host", "127.0.0.1"), ("connect-allow-ip", "127.0.0.1"),
    ]
    text = _group("smsc", settings)
    if setup.throughput is not None:
        text += f"\nthroughput = {_number(setup.throughput)}"
    return text


def render_config(setup: KannelSetup) -> str:
    """kannel.conf for both boxes (:class:`ValueError` for a value that would break it)."""
    var = setup.var_dir
    core = _group("core", [
        ("admin-port", setup.admin_port), ("admin-interface", "127.0.0.1"),
        ("admin-password", setup.password),
        ("smsbox-port", setup.smsbox_port), ("smsbox-interface", "127.0.0.1"),
        ("box-deny-ip", "*.*.*.*"), ("box-allow-ip", "127.0.0.1"),
        ("log-file", var / "bearerbox.log"), ("log-level", INFO),
        ("dlr-storage", "internal"),
        ("store-type", "spool"), ("store-location", setup.store_dir),
    ])
    smscs = ([_fake_smsc(setup)] if setup.smsc is None
             else _operator_smsc(setup.smsc, setup.throughput))
    smsbox = _group("smsbox", [
        ("bearerbox-host", "127.0.0.1"), ("bearerbox-port", setup.smsbox_port),
        ("sendsms-port", setup.sendsms_port), ("sendsms-interface", "127.0.0.1"),
        ("log-file", var / "smsbox.log"), ("log-level", SMSBOX_LOG_LEVEL),
        ("mo-recode", True),
        ("http-request-retry", HTTP_RETRIES), ("http-queue-delay", HTTP_RETRY_DELAY_S),
    ])
    user = _group("sendsms-user", [
        ("username", setup.username), ("password", setup.password),
        ("max-messages", SENDSMS_MAX_PARTS), ("concatenation", True),
    ])
    # max-messages = 0: the answer to a reply's get-url is not sent back as a text message
    # (offercall sends its own replies through sendsms)
    service = _group("sms-service", [
        ("keyword", "default"), ("catch-all", True), ("get-url", setup.mo_url),
        ("max-messages", 0),
    ])
    head = "# Written by offercall from its settings at start-up (offercall/kannel.py)."
    return "\n\n".join([head, core, *smscs, smsbox, user, service]) + "\n"


def write_config(setup: KannelSetup) -> Path:
    """Writes kannel.conf (readable by its owner only: it holds the passwords) and makes the
    log and store directories; returns its path."""
    text = render_config(setup)
    setup.store_dir.mkdir(parents=True, exist_ok=True)
    path = setup.config_path
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    temporary.replace(path)
    return path


def bearerbox_command(setup: KannelSetup) -> list[str]:
    """Starts bearerbox in the foreground (its stderr at the level of its log file)."""
    return [str(BEARERBOX), "-v", str(INFO), str(setup.config_path)]


_WAIT_THEN_EXEC = """\
import os, sys, time
port, wait_s, program, name, *args = sys.argv[1:]
suffix = ":%04X" % int(port)

def listening():
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as rows:
                if any(row.split()[1].endswith(suffix) and row.split()[3] == "0A"
                       for row in list(rows)[1:]):
                    return True
        except OSError:
            pass
    return False

deadline = time.monotonic() + float(wait_s)
while not listening():
    if time.monotonic() > deadline:
        sys.exit(f"bearerbox is not listening on port {port} for boxes after {wait_s} s")
    time.sleep(0.05)
os.execv(program, [name, *args])
"""


def smsbox_command(setup: KannelSetup, python: str = sys.executable) -> list[str]:
    """Starts smsbox once bearerbox takes boxes: smsbox gives up at once when it cannot
    connect, so a small Python waits until bearerbox listens on the smsbox port, then becomes
    smsbox (same process: a supervisor's signals and process group reach smsbox). It looks
    in /proc/net/tcp rather than connecting: bearerbox takes no other box for a second after
    each connection.

    When bearerbox goes, smsbox closes its sendsms port, waits 10 s and restarts itself:
    it forks a copy that runs ``argv[0]`` again and exits. That copy would race the
    supervisor's own restart for the ports and outlive the supervisor, so smsbox runs under
    ``SMSBOX_NAME``, which is no program: the copy's exec fails, it exits, and only the
    supervisor starts smsbox again."""
    return [python, "-c", _WAIT_THEN_EXEC, str(setup.smsbox_port), str(BEARERBOX_WAIT_S),
            str(SMSBOX), SMSBOX_NAME, "-v", str(SMSBOX_LOG_LEVEL), str(setup.config_path)]
