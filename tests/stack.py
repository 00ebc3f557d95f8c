"""The real bot for end-to-end tests: the trained Rasa model, the Rasa server and the action
server, started on free ports against a test database loaded with the sample whitelist."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from core.settings import PROJECT_ROOT, Settings
from offercall.processes import Service, Supervisor
from outbound.whitelist import import_whitelist_file
from persistence.engine import make_engine
from persistence.migrator import migrate
from tests.ports import bindable, candidate_port, reserve

SAMPLE = PROJECT_ROOT / "data" / "whitelist_sample.csv"


def free_port() -> int:
    """A free port for a test server (below the ephemeral range: see tests/ports.py)."""
    return candidate_port()


def free_port_block(size: int, taken: set[int]) -> int:
    """A free port P with P+1 … P+size-1 free too and none of them in ``taken`` (a balancer
    on P, its servers just above: offercall/balancer.py); the block is added to ``taken``."""
    while True:
        first = free_port()
        block = set(range(first, first + size))
        if not block & taken and all(bindable(port) for port in block):
            taken |= block
            reserve(block)
            return first


@dataclass
class BotStack:
    settings: Settings
    engine: Engine
    supervisor: Supervisor
    launched: list[Service] = field(default_factory=list)
    """Services started but not yet known to be ready."""

    def wait_ready(self) -> BotStack:
        """Returns the stack once its servers answer (stopping it if they never do)."""
        try:
            self.supervisor.wait_ready(self.launched)
        except Exception:
            self.stop()
            raise
        self.launched = []
        return self

    @property
    def env(self) -> dict[str, str]:
        """An environment for subprocesses that talk to this stack."""
        return {**os.environ, **self.settings.to_environ()}

    def stop(self) -> None:
        self.supervisor.stop()
        self.engine.dispose()


def stack_settings(var_dir: Path, database_url: str,
                   extra: Mapping[str, str] | None = None) -> Settings:
    """Settings for a private stack: its own database, var dir and free ports (the servers
    behind a balancer take the ports just above its own: see offercall/balancer.py)."""
    extra = dict(extra or {})
    taken: set[int] = set()
    rasa = free_port_block(1 + int(extra.get("OFFERCALL_RASA_SERVERS", "1")), taken)
    actions = free_port_block(1 + int(extra.get("OFFERCALL_ACTION_SERVERS", "1")), taken)
    web, worker, redis = (free_port_block(1, taken) for _ in range(3))
    web_servers = free_port_block(int(extra.get("OFFERCALL_WEB_SERVERS", "1")), taken)
    return Settings.from_environ({
        **os.environ,
        "OFFERCALL_VAR_DIR": str(var_dir),
        "DATABASE_URL": database_url,
        "RASA_URL": f"http://127.0.0.1:{rasa}",
        "ACTION_SERVER_URL": f"http://127.0.0.1:{actions}/webhook",
        "OFFERCALL_PORT": str(web),
        "OFFERCALL_WEB_BACKEND_PORT": str(web_servers),
        "OFFERCALL_WORKER_PORT": str(worker),
        "OFFERCALL_REDIS_URL": f"redis://127.0.0.1:{redis}/1",
        "OFFERCALL_WORKERS": "1",  # one worker (4 lines) unless a test asks for more
        **extra,
    })


def launch_stack(var_dir: Path, database_url: str, services: list[str],
                 extra: Mapping[str, str] | None = None, *, niceness: int = 0) -> BotStack:
    """Loads the sample whitelist into ``database_url`` and starts ``services`` without waiting
    for them (Rasa takes most of a minute to load its model: other tests run meanwhile).
    ``extra`` settings (environment variables) choose, for example, how many Rasa servers."""
    settings = stack_settings(var_dir, database_url, extra)
    engine = make_engine(settings.database_url)
    migrate(engine)
    import_whitelist_file(engine, SAMPLE)
    supervisor = Supervisor(settings, niceness=niceness)
    try:
        launched = supervisor.launch(services, echo=False)
    except Exception:
        supervisor.stop()
        raise
    return BotStack(settings, engine, supervisor, launched)


def start_stack(var_dir: Path, database_url: str, services: list[str],
                extra: Mapping[str, str] | None = None) -> BotStack:
    """Loads the sample whitelist into ``database_url`` and starts ``services``, ready."""
    return launch_stack(var_dir, database_url, services, extra).wait_ready()
