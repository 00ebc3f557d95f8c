"""Starting, supervising and stopping offercall's server processes (Rasa, the action server,
the web server, the dialer worker, and Kannel's boxes when the SMS channel is on), each only
if it is not already answering on its port.

A supervised process that exits on its own (a crash, an OOM kill, ``kill -9``) is started
again after a back-off that doubles with every crash in a row (1 s, 2 s, 4 s … 30 s) and
starts over once the process has stayed up for a minute."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from core.settings import PROJECT_ROOT, Settings
from offercall import balancer, kannel
from offercall.rasa_config import write_endpoints

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")
RTP_PORTS_PER_WORKER = 2000
"""The RTP range each worker's PJSIP takes (SipConfig.rtp_port_range)."""


def child_argv(argv: list[str], niceness: int = 0) -> list[str]:
    """``argv`` run so that Linux SIGTERMs it when the supervisor dies (``setpriv
    --pdeathsig``), at the wanted priority (``nice``).

    Without the first, a supervisor that is killed (SIGKILL, or SIGTERM without cleanup) leaves
    Rasa and the action server running, holding their ports. Both are programs exec'd in the
    child, not Python run there between fork and exec (``preexec_fn``): in a process with
    threads that can deadlock the child on a lock another thread held at the fork.
    """
    wrapped = list(argv)
    if niceness:
        wrapped = ["nice", "-n", str(niceness), *wrapped]
    if sys.platform.startswith("linux") and shutil.which("setpriv"):
        wrapped = ["setpriv", "--pdeathsig", "TERM", *wrapped]
    return wrapped


class ServiceError(RuntimeError):
    """A service did not come up."""


@dataclass(frozen=True)
class Service:
    """A process offercall can start, and the URL that answers 200 once it is ready."""

    name: str
    argv: list[str]
    health_url: str
    ready_timeout_s: float = 180.0
    kind: str = ""
    """What it is (``rasa`` for ``rasa-2``); the name when empty."""
    probe: Callable[[], bool] | None = field(default=None, compare=False)
    """How to tell it is ready when it speaks no HTTP (Redis)."""
    env: dict[str, str] = field(default_factory=dict, compare=False)
    """Its own settings over the shared ones (worker N's ports)."""

    @property
    def of_kind(self) -> str:
        return self.kind or self.name

    def healthy(self) -> bool:
        """True when the service answers (its probe, or 200 on its health URL)."""
        return self.probe() if self.probe is not None else is_healthy(self.health_url)


def is_healthy(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` answers 200 (and, for Rasa's /status, has a model loaded)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (loopback)
            body = response.read()
            return response.status == 200 and b'"model_file":null' not in body.replace(b" ", b"")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def answers_http(url: str, timeout_s: float = 2.0) -> bool:
    """True when an HTTP server answers at ``url``, whatever the status (smsbox's sendsms
    answers a request without a user with 403)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):  # noqa: S310 (loopback)
            return True
    except urllib.error.HTTPError as exc:
        exc.close()
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def redis_answers(redis_url: str) -> bool:
    """True when the Redis server at ``redis_url`` answers PING."""
    import redis

    try:
        return bool(redis.Redis.from_url(redis_url, socket_timeout=1.0,
                                         socket_connect_timeout=1.0).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def _numbered(kind: str, count: int, index: int) -> str:
    return kind if count == 1 else f"{kind}-{index + 1}"


def scale_out_services(settings: Settings) -> tuple[list[Service], list[Service]]:
    """Redis (for Rasa's lock store, when it is on this machine) and haproxy (when any kind
    runs as several processes); neither on the embedded default."""
    redis: list[Service] = []
    haproxy: list[Service] = []
    redis_url = make_url(settings.redis_url)
    if settings.rasa_servers > 1 and redis_url.host in LOOPBACK:
        redis_dir = settings.var_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        redis.append(Service(
            "redis",
            [shutil.which("redis-server") or "/usr/bin/redis-server",
             "--bind", redis_url.host, "--port", str(redis_url.port or 6379),
             "--save", "", "--appendonly", "no", "--dir", str(redis_dir)],
            settings.redis_url, ready_timeout_s=30.0,
            probe=lambda: redis_answers(settings.redis_url)))
    if settings.scaled_out:
        config = settings.var_dir / "haproxy.cfg"
        config.parent.mkdir(parents=True, exist_ok=True)
        error_page = settings.var_dir / "haproxy-503.http"
        error_page.write_text(balancer.web_unavailable_response(), "utf-8")
        config.write_text(balancer.haproxy_config(settings, error_page), "utf-8")
        program = shutil.which("haproxy") or "/usr/sbin/haproxy"
        haproxy.append(Service("balancer", [program, "-db", "-f", str(config)],
                               balancer.health_url(settings)))
    return redis, haproxy


def kannel_services(settings: Settings) -> list[Service]:
    """Kannel's bearerbox and smsbox when the SMS channel is on (``sms_gateway = kannel``),
    from the kannel.conf written here. smsbox waits for bearerbox (``kannel.smsbox_command``)
    when it starts and when it is started again (it exits 10 s after bearerbox goes)."""
    if settings.sms_gateway != "kannel":
        return []
    setup = kannel.KannelSetup.from_settings(settings)
    kannel.write_config(setup)
    return [
        Service("kannel-bearerbox", kannel.bearerbox_command(setup), setup.status_url,
                ready_timeout_s=30.0, kind="kannel"),
        Service("kannel-smsbox", kannel.smsbox_command(setup), setup.sendsms_url,
                ready_timeout_s=kannel.BEARERBOX_WAIT_S + 30.0, kind="kannel",
                probe=lambda: answers_http(setup.sendsms_url)),
    ]


def services(settings: Settings) -> list[Service]:
    """Redis (scaled out only), the action servers, the Rasa servers, the web servers, the
    balancer (scaled out only), Kannel (SMS on only) and the dialer workers, in start order
    (the balancer is ready once every balanced kind has a server up)."""
    endpoints = write_endpoints(settings)
    python = sys.executable
    actions = [
        Service(
            _numbered("actions", settings.action_servers, i),
            [python, "-m", "bot.action_server", "--actions", "bot.actions", "--port", str(port)],
            f"http://127.0.0.1:{port}/health",
            kind="actions",
        )
        for i, port in enumerate(balancer.action_server_ports(settings))
    ]
    rasas = [
        Service(
            _numbered("rasa", settings.rasa_servers, i),
            [python, "-m", "rasa", "run", "--enable-api",
             "--auth-token", settings.rasa_token,
             "--interface", "127.0.0.1", "--port", str(port),
             "--model", str(settings.models_dir),
             "--endpoints", str(endpoints),
             "--credentials", str(PROJECT_ROOT / "bot" / "credentials.yml")],
            f"http://127.0.0.1:{port}/status?token={settings.rasa_token}",
            kind="rasa",
        )
        for i, port in enumerate(balancer.rasa_ports(settings))
    ]
    webs = [
        Service(
            _numbered("web", settings.web_servers, i),
            [python, "-m", "offercall", "serve",
             *(["--port", str(port)] if settings.web_servers > 1 else [])],
            f"http://{balancer.local_address(settings.web_host)}:{port}/health",
            ready_timeout_s=60.0,
            kind="web",
        )
        for i, port in enumerate(balancer.web_ports(settings))
    ]
    redis, haproxy = scale_out_services(settings)
    return [*redis, *actions, *rasas, *webs, *haproxy, *kannel_services(settings),
            *worker_services(settings)]


def worker_services(settings: Settings) -> list[Service]:
    """The dialer/voice workers: ``settings.workers`` of them, worker N on the health port, SIP
    port and RTP range after worker N-1's (they share the campaigns through PostgreSQL)."""
    sip_port = int(os.environ.get("OFFERCALL_SIP_PORT", "5060"))
    rtp_port = int(os.environ.get("OFFERCALL_SIP_RTP_PORT", "40000"))
    found = []
    for i in range(settings.workers):
        port = settings.worker_port + i
        env = {} if settings.workers == 1 else {
            "OFFERCALL_WORKER_PORT": str(port),
            "OFFERCALL_SIP_PORT": str(sip_port + i if sip_port else 0),
            "OFFERCALL_SIP_RTP_PORT": str(rtp_port + i * RTP_PORTS_PER_WORKER),
        }
        found.append(Service(
            _numbered("worker", settings.workers, i),
            [sys.executable, "-m", "offercall", "worker"],
            f"http://{balancer.local_address(settings.web_host)}:{port}/health", kind="worker", env=env))
    return found


def _wanted(service: Service, names: list[str] | None) -> bool:
    """Whether ``names`` (service names or kinds; None: all) asks for ``service``. Redis, the
    balancer and Kannel (the web server's SMS gateway) come with the servers they serve."""
    if names is None or service.name in names or service.of_kind in names:
        return True
    if service.of_kind == "kannel":
        return "web" in names
    if service.name == "redis":
        return "rasa" in names
    return service.name == "balancer" and bool({"rasa", "actions", "web"} & set(names))


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before starting a crashed process again (pure)."""

    first_delay_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0
    """A process that ran this long before it crashed counts as a first crash again."""

    def crashes_in_a_row(self, before: int, ran_for_s: float) -> int:
        """The crash count after one more crash of a process that had run ``ran_for_s``."""
        return 1 if ran_for_s >= self.stable_after_s else before + 1

    def delay_s(self, crashes_in_a_row: int) -> float:
        """The wait before restarting after the ``crashes_in_a_row``-th crash in a row."""
        if crashes_in_a_row < 1:
            raise ValueError(f"crashes_in_a_row counts this crash too, got {crashes_in_a_row}")
        return min(self.max_delay_s, self.first_delay_s * self.factor ** (crashes_in_a_row - 1))


@dataclass
class _Watched:
    service: Service
    process: subprocess.Popen[bytes]
    started_at: float
    crashes: int = 0
    restarts: int = 0
    restart_at: float | None = None


@dataclass
class Supervisor:
    """Starts the services that are not already running, restarts them when they crash (see
    the module docstring), and stops only those it started."""

    settings: Settings
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    echo: bool = True
    niceness: int = 0
    """Added to the processes' nice value (a test suite's background servers: 19)."""
    _watched: dict[str, _Watched] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None

    @property
    def log_dir(self) -> Path:
        return self.settings.var_dir / "logs"

    @property
    def started(self) -> dict[str, subprocess.Popen[bytes]]:
        """The processes this supervisor runs now, by service name."""
        with self._lock:
            return {name: watched.process for name, watched in self._watched.items()}

    def restarts(self, name: str) -> int:
        """How many times ``name`` was started again after a crash."""
        with self._lock:
            watched = self._watched.get(name)
            return watched.restarts if watched else 0

    def ensure(self, names: list[str] | None = None, *, echo: bool = True) -> None:
        """Make sure the named services (all by default) answer; start the missing ones and
        keep them running until :meth:`stop`."""
        self.wait_ready(self.launch(names, echo=echo))

    def launch(self, names: list[str] | None = None, *, echo: bool = True) -> list[Service]:
        """Starts the named services (all by default) that do not answer yet, without waiting
        for them to be ready (:meth:`wait_ready`); returns those it started."""
        self.echo = echo
        wanted = [s for s in services(self.settings) if _wanted(s, names)]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        fresh = []
        for service in wanted:
            if service.healthy():
                continue
            if echo:
                print(f"starting {service.name} (log: {self._log_path(service)}) ...", file=sys.stderr)
            self._start(service)
            fresh.append(service)
        return fresh

    def supervise(self, service: Service) -> None:
        """Starts ``service``, one not among offercall's own (a test's stand-in for a worker),
        and restarts it after a crash like the others."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._start(service)

    def release(self, name: str, grace_s: float = 10.0) -> None:
        """Stops supervising ``name`` and stops its process (SIGTERM, then SIGKILL)."""
        with self._lock:
            watched = self._watched.pop(name, None)
        if watched is not None:
            _terminate([watched.process], grace_s)

    def _start(self, service: Service) -> None:
        with self._lock:
            self._watched[service.name] = _Watched(service, self._spawn(service), time.monotonic())
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="supervisor", daemon=True)
            self._watcher.start()

    def wait_ready(self, launched: list[Service]) -> None:
        """Returns once every service of ``launched`` answers (:class:`ServiceError` if one
        exits or is not ready in time)."""
        for service in launched:
            self._wait_ready(service)

    def _log_path(self, service: Service) -> Path:
        return self.log_dir / f"{service.name}.log"

    def _spawn(self, service: Service) -> subprocess.Popen[bytes]:
        log_file = self._log_path(service).open("ab")
        try:
            return subprocess.Popen(
                child_argv(service.argv, self.niceness),
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.settings.to_environ(), **service.env,
                     "PYTHONPATH": str(PROJECT_ROOT)},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log_file.close()  # the child has its own copy

    def _wait_ready(self, service: Service) -> None:
        deadline = time.monotonic() + service.ready_timeout_s
        while time.monotonic() < deadline:
            process = self.started[service.name]
            if process.poll() is not None:
                raise ServiceError(
                    f"{service.name} exited with code {process.returncode}; see {self._log_path(service)}"
                )
            if service.healthy():
                return
            time.sleep(0.5)
        raise ServiceError(
            f"{service.name} not ready after {service.ready_timeout_s:.0f} s; see {self._log_path(service)}")

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            with self._lock:
                for name, watched in self._watched.items():
                    self._check(name, watched, time.monotonic())

    def _check(self, name: str, watched: _Watched, now: float) -> None:
        if watched.restart_at is None:
            code = watched.process.poll()
            if code is None:
                return
            watched.crashes = self.policy.crashes_in_a_row(watched.crashes, now - watched.started_at)
            delay = self.policy.delay_s(watched.crashes)
            watched.restart_at = now + delay
            log.error("offercall.process.crashed",
                      extra={"service": name, "exit_code": code, "restart_in_s": delay})
            if self.echo:
                print(f"{name} exited with code {code}; restarting in {delay:g} s "
                      f"(log: {self._log_path(watched.service)})", file=sys.stderr)
        elif now >= watched.restart_at:
            watched.process = self._spawn(watched.service)
            watched.started_at, watched.restart_at = now, None
            watched.restarts += 1
            log.warning("offercall.process.restarted", extra={"service": name, "restarts": watched.restarts})

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop what this supervisor started: all at once (SIGTERM), then SIGKILL whatever has
        not exited after ``grace_s``."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        with self._lock:
            processes = [entry.process for entry in self._watched.values()]
            self._watched.clear()
        _terminate(processes, grace_s)
        self._stopping.clear()

    def wait(self) -> None:
        """Block while supervising, until interrupted (``offercall run --no-chat``)."""
        while True:
            time.sleep(1.0)


def _terminate(processes: list[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM to every running process's group at once, then SIGKILL to those still running
    after ``grace_s``."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running:
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
