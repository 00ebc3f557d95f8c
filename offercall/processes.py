"""Starting and stopping offercall's server processes (Rasa, the action server, the web
server), each only if it is not already answering on its port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from offercall.rasa_config import write_endpoints
from offercall.settings import PROJECT_ROOT, Settings


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the supervisor dies.

    Without this, a supervisor that is killed (SIGKILL, or SIGTERM without cleanup) leaves
    Rasa and the action server running, holding their ports.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServiceError(RuntimeError):
    """A service did not come up."""


@dataclass(frozen=True)
class Service:
    """A process offercall can start, and the URL that answers 200 once it is ready."""

    name: str
    argv: list[str]
    health_url: str
    ready_timeout_s: float = 180.0


def is_healthy(url: str, timeout_s: float = 2.0) -> bool:
    """True when ``url`` answers 200 (and, for Rasa's /status, has a model loaded)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (loopback)
            body = response.read()
            return response.status == 200 and b'"model_file":null' not in body.replace(b" ", b"")
    except (urllib.error.URLError, OSError, ValueError):
        return False


def services(settings: Settings) -> list[Service]:
    """Rasa, the action server and the web server, in start order."""
    endpoints = write_endpoints(settings)
    rasa_base = settings.rasa_url.rstrip("/")
    action_base = settings.action_server_url.rsplit("/webhook", 1)[0]
    python = sys.executable
    return [
        Service(
            "actions",
            [python, "-m", "rasa_sdk", "--actions", "bot.actions",
             "--port", str(settings.action_server_port)],
            f"{action_base}/health",
        ),
        Service(
            "rasa",
            [python, "-m", "rasa", "run", "--enable-api",
             "--auth-token", settings.rasa_token,
             "--interface", "127.0.0.1", "--port", str(settings.rasa_port),
             "--model", str(settings.models_dir),
             "--endpoints", str(endpoints),
             "--credentials", str(PROJECT_ROOT / "bot" / "credentials.yml")],
            f"{rasa_base}/status?token={settings.rasa_token}",
        ),
        Service(
            "web",
            [python, "-m", "offercall", "serve"],
            f"http://{settings.web_host}:{settings.web_port}/health",
            ready_timeout_s=60.0,
        ),
    ]


@dataclass
class Supervisor:
    """Starts the services that are not already running, and stops only those it started."""

    settings: Settings
    started: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.settings.var_dir / "logs"

    def ensure(self, names: list[str] | None = None, *, echo: bool = True) -> None:
        """Make sure the named services (all by default) answer; start the missing ones."""
        wanted = [s for s in services(self.settings) if names is None or s.name in names]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in wanted:
            if is_healthy(service.health_url):
                continue
            log_path = self.log_dir / f"{service.name}.log"
            if echo:
                print(f"starting {service.name} (log: {log_path}) ...", file=sys.stderr)
            log_file = log_path.open("ab")
            self.started[service.name] = subprocess.Popen(
                service.argv,
                cwd=PROJECT_ROOT,
                env={**os.environ, **self.settings.to_environ(), "PYTHONPATH": str(PROJECT_ROOT)},
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        for service in wanted:
            if service.name in self.started:
                self._wait_ready(service, self.log_dir / f"{service.name}.log")

    def _wait_ready(self, service: Service, log_path: Path) -> None:
        process = self.started[service.name]
        deadline = time.monotonic() + service.ready_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceError(
                    f"{service.name} exited with code {process.returncode}; see {log_path}"
                )
            if is_healthy(service.health_url):
                return
            time.sleep(0.5)
        raise ServiceError(f"{service.name} not ready after {service.ready_timeout_s:.0f} s; see {log_path}")

    def stop(self) -> None:
        """Stop what this supervisor started, newest first."""
        for name, process in reversed(list(self.started.items())):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            del self.started[name]

    def wait(self) -> None:
        """Block until one of the started processes exits (used by ``offercall run``)."""
        while all(p.poll() is None for p in self.started.values()):
            time.sleep(1.0)
