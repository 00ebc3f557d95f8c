"""Rasa scaled out as Rasa documents it: two Rasa servers and two action servers behind
haproxy, sharing the SQL tracker store on PostgreSQL and Redis's lock store (the
``bot_stack_postgres`` profile). A conversation goes on when the server that served it is
killed; settings and configuration say clearly what the profile needs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid

import aiohttp
import pytest
from sqlalchemy import text

from bot.client import RasaClient, RasaUnavailable
from chat.widget import UNAVAILABLE
from core.settings import Settings, SettingsError
from offercall import balancer
from offercall.processes import services
from offercall.rasa_config import endpoints_config, lock_store_config
from persistence.engine import session_scope

ANSWER_WITHIN_S = 5.0


def _settings(**environ: str) -> Settings:
    return Settings.from_environ({"DATABASE_URL": "postgresql://bank@db/offers",
                                  "RASA_URL": "http://127.0.0.1:5005",
                                  "ACTION_SERVER_URL": "http://127.0.0.1:5055/webhook", **environ})


def test_the_balancer_spreads_each_kind_over_its_servers_on_the_ports_above_its_own():
    settings = _settings(OFFERCALL_RASA_SERVERS="3", OFFERCALL_ACTION_SERVERS="2")
    config = balancer.haproxy_config(settings)
    assert "bind 127.0.0.1:5005" in config and "bind 127.0.0.1:5055" in config
    for port in (5006, 5007, 5008, 5056, 5057):
        assert f"127.0.0.1:{port} check" in config
    assert "retry-on conn-failure" in config  # a request refused by a killed server goes elsewhere
    names = [service.name for service in services(settings)]
    assert names[0] == "redis" and names.index("balancer") > names.index("rasa-3")
    assert {"rasa-1", "rasa-2", "rasa-3", "actions-1", "actions-2"} <= set(names)


def test_several_web_servers_share_the_web_port_behind_the_balancer(tmp_path):
    settings = _settings(OFFERCALL_WEB_SERVERS="2", OFFERCALL_PORT="8080",
                         OFFERCALL_WEB_BACKEND_PORT="8180", OFFERCALL_WORKERS="1",
                         OFFERCALL_VAR_DIR=str(tmp_path))
    assert settings.scaled_out and "lock_store" not in endpoints_config(settings)
    found = services(settings)
    names = [service.name for service in found]
    assert names == ["actions", "rasa", "web-1", "web-2", "balancer", "worker"]  # no Redis
    webs = {service.name: service for service in found if service.of_kind == "web"}
    assert webs["web-2"].argv[-2:] == ["--port", "8181"]
    assert webs["web-2"].health_url == "http://127.0.0.1:8181/health"
    config = balancer.haproxy_config(settings, tmp_path / "503.http")
    web = config[config.index("frontend web"):]
    assert "bind 127.0.0.1:8080" in web and "127.0.0.1:8180 check" in web and "127.0.0.1:8181 check" in web
    assert "timeout tunnel 1h" in web  # the widget's and consoles' websockets stay open
    assert "deny deny_status 404 if { path /metrics }" in web  # scraped on each server's own port
    assert f"errorfile 502 {tmp_path / '503.http'}" in web  # a server killed mid-request: an apology
    assert "monitor fail if { nbsrv(web_servers) lt 1 }" in config
    with pytest.raises(SettingsError, match="OFFERCALL_WEB_SERVERS above 1 needs"):
        _settings(OFFERCALL_WEB_SERVERS="2", DATABASE_URL="sqlite:////tmp/oc.db")


def test_the_balancers_answer_for_a_failed_web_server_is_an_apology_in_http():
    raw = balancer.web_unavailable_response().encode("utf-8")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.0 503 Service Unavailable"
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body)["texts"] == [UNAVAILABLE]


def test_one_of_each_needs_no_balancer_and_no_redis():
    settings = _settings(OFFERCALL_WORKERS="1")
    assert not settings.scaled_out
    names = [service.name for service in services(settings)]
    assert names == ["actions", "rasa", "web", "worker"]
    assert "lock_store" not in endpoints_config(settings)
    with pytest.raises(ValueError, match="no balancer"):
        balancer.haproxy_config(settings)


def test_several_rasa_servers_lock_conversations_in_redis():
    settings = _settings(OFFERCALL_RASA_SERVERS="2", OFFERCALL_REDIS_URL="redis://:pw@cache:6380/3")
    assert endpoints_config(settings)["lock_store"] == {
        "type": "redis", "url": "cache", "port": 6380, "db": 3, "key_prefix": "offercall",
        "password": "pw"}
    assert "redis" not in [s.name for s in services(settings)], "a remote Redis is not ours to start"
    with pytest.raises(ValueError, match="redis://"):
        lock_store_config("http://cache:6379")


@pytest.mark.parametrize("environ, problem", [
    ({"OFFERCALL_RASA_SERVERS": "2", "DATABASE_URL": "sqlite:////tmp/oc.db"}, "PostgreSQL"),
    ({"OFFERCALL_RASA_SERVERS": "0"}, "between 1 and 16"),
    ({"OFFERCALL_ACTION_SERVERS": "many"}, "integer"),
])
def test_a_profile_that_cannot_work_stops_start_up_naming_the_setting(environ, problem):
    with pytest.raises(SettingsError, match=problem) as error:
        Settings.from_environ({"DATABASE_URL": "postgresql://bank@db/offers", **environ})
    assert "OFFERCALL_" in str(error.value)


async def _turn(client: RasaClient, conversation: str, said: str) -> tuple[list[str], float, int]:
    """The bot's answer, how long it took, and how often the customer had to say it: a turn
    caught on the server as it was killed is refused at once (the chat and the call then
    apologise, and the customer says it again), never left hanging."""
    started, refused = time.monotonic(), 0
    while True:
        try:
            turn = await asyncio.wait_for(client.send(conversation, said), timeout=30)
            return turn.texts, time.monotonic() - started, refused
        except RasaUnavailable:
            refused += 1
            if refused > 1 or time.monotonic() - started > ANSWER_WITHIN_S:
                raise


@pytest.mark.postgres
def test_a_conversation_goes_on_when_its_rasa_server_is_killed(bot_stack_postgres):
    stack = bot_stack_postgres
    running = stack.supervisor.started
    assert {"redis", "balancer", "rasa-1", "rasa-2", "actions-1", "actions-2"} <= set(running)
    conversation = f"scale-{uuid.uuid4().hex[:10]}"

    async def talk() -> list[tuple[list[str], float]]:
        async with aiohttp.ClientSession() as session:
            client = RasaClient(stack.settings.rasa_url, session)
            opening = await client.start(conversation, "C0001", "chat")
            assert "张**先生" in opening.texts[0]
            said = [await _turn(client, conversation, "是我")]
            os.kill(running["rasa-1"].pid, signal.SIGKILL)  # no matter which served so far
            os.kill(running["actions-1"].pid, signal.SIGKILL)
            for words in ("利率多少", "多久到账"):
                said.append(await _turn(client, conversation, words))
            return said

    confirmed, rate, disbursement = asyncio.run(talk())
    assert any("邮享贷" in reply for reply in confirmed[0])
    assert any("年化利率" in reply for reply in rate[0]), "the survivor knows the customer was confirmed"
    assert any("放款" in reply for reply in disbursement[0])
    assert max(took for _, took, _ in (rate, disbursement)) < ANSWER_WITHIN_S
    assert rate[2] + disbursement[2] <= 1, "only a turn on the dying server may be refused"
    with session_scope(stack.engine) as session:
        said_in_store = session.execute(text(
            "SELECT data FROM events WHERE sender_id = :id AND type_name = 'user' ORDER BY id"),
            {"id": conversation}).scalars().all()
    texts = [json.loads(row)["text"] for row in said_in_store]
    assert [words for words in texts if words in ("是我", "利率多少", "多久到账")] == [
        "是我", "利率多少", "多久到账"], "every turn is in the shared tracker store, once and in order"
    deadline = time.monotonic() + 10
    while stack.supervisor.restarts("rasa-1") < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert stack.supervisor.restarts("rasa-1") == 1 and stack.supervisor.restarts("actions-1") == 1


def test_workers_are_chosen_from_the_cores_each_on_its_own_ports():
    settings = _settings(OFFERCALL_WORKERS="auto")
    assert settings.workers == min(16, os.cpu_count() or 1)
    assert settings.dial_lines == 4 * settings.workers  # PJSIP holds 4 calls in each
    assert _settings(OFFERCALL_WORKERS="auto", DATABASE_URL="sqlite:////tmp/oc.db").workers == 1
    three = [s for s in services(_settings(OFFERCALL_WORKERS="3", OFFERCALL_WORKER_PORT="8081"))
             if s.of_kind == "worker"]
    assert [s.name for s in three] == ["worker-1", "worker-2", "worker-3"]
    assert [s.health_url.rsplit(":", 1)[1] for s in three] == ["8081/health", "8082/health", "8083/health"]
    assert [s.env["OFFERCALL_SIP_PORT"] for s in three] == ["5060", "5061", "5062"]
    assert [s.env["OFFERCALL_SIP_RTP_PORT"] for s in three] == ["40000", "42000", "44000"]
    with pytest.raises(SettingsError, match="OFFERCALL_WORKERS above 1 needs"):
        _settings(OFFERCALL_WORKERS="2", DATABASE_URL="sqlite:////tmp/oc.db")
