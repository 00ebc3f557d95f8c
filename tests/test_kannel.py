"""The SMS gateway: Kannel's configuration as offercall writes it, and real Kannel (bearerbox,
smsbox and its fake SMSC with fakesmsc as the phones, tests/kannel_network.py) carrying
Chinese messages both ways, delivery reports, refusals and outages."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from core.settings import Settings
from offercall import kannel
from offercall.kannel import KannelSetup, render_config
from offercall.processes import RestartPolicy, Supervisor, answers_http, services
from outbound.sms_gateway import GatewayUnavailable, KannelGateway, Submission
from tests.kannel_network import DEFAULT_SENDER, KEY, KannelNetwork, PhoneMessage, kannel_network
from tests.stack import free_port, free_port_block

OFFER = "【邮储银行】尊敬的张先生，您已获得邮享贷预授信额度五万元，年化利率3.6%到7.2%。回复TD退订"
LONG_OFFER = OFFER + ("详情请登录手机银行查看，或点击链接与智能助手在线咨询："
                      "http://127.0.0.1:8080/chat?t=abc 客服热线95580。") * 2


def _setup(tmp_path: Path, **changes: object) -> KannelSetup:
    values: dict[str, object] = {"var_dir": tmp_path, "port": 13000, "password": "k3y",
                                 "callback_base": "http://127.0.0.1:8080", "throughput": 20.0}
    return KannelSetup(**{**values, **changes})  # type: ignore[arg-type]


def _groups(config: str) -> list[dict[str, str]]:
    """kannel.conf's groups as Kannel reads them: blank lines end a group, # comments."""
    groups = []
    for block in config.split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        if lines:
            groups.append(dict(line.split(" = ", 1) for line in lines))
    return groups


# ------------------------------------------------------------------ configuration
def test_the_config_quotes_every_text_and_puts_the_boxes_on_the_ports_after_admin(tmp_path):
    groups = _groups(render_config(_setup(tmp_path, port=23000)))
    assert [group["group"] for group in groups] == [
        "core", "smsc", "smsbox", "sendsms-user", "sms-service"]
    core, smsc, smsbox, user, service = groups
    assert (core["admin-port"], core["smsbox-port"], smsc["port"], smsbox["sendsms-port"]) == (
        "23000", "23001", "23010", "23013")
    for group in groups:
        for key, value in group.items():
            if key != "group":
                assert value.isdigit() or value in ("true", "false") or (
                    value.startswith('"') and value.endswith('"') and '"' not in value[1:-1]), key
    assert core["store-type"] == '"spool"' and core["store-location"] == f'"{tmp_path / "store"}"'
    assert core["log-level"] == "1" and core["log-file"] == f'"{tmp_path / "bearerbox.log"}"'
    assert service["get-url"] == ('"http://127.0.0.1:8080/api/sms/inbound?key=k3y'
                                  '&from=%p&to=%P&text=%a&ts=%T&ref=%I"')
    assert service["max-messages"] == "0"  # the callback's answer never goes out as a text
    assert user["password"] == '"k3y"' and user["max-messages"] == "10"  # long offers go whole
    assert smsc["smsc"] == '"fake"' and smsc["throughput"] == "20"
    assert smsbox["log-level"] == "2"  # its info lines carry phone numbers and texts


@pytest.mark.parametrize("change", [
    {"password": 'k3y"\ngroup = sendsms-user'},
    {"password": "k\\y"},
    {"callback_base": "http://127.0.0.1:8080\nadmin-port = 1"},
    {"var_dir": Path("/tmp/a\nb")},
])
def test_a_value_that_would_break_the_config_is_refused_without_quoting_it(tmp_path, change):
    with pytest.raises(ValueError, match="would break kannel.conf") as refused:
        render_config(_setup(tmp_path, **change))
    assert "k3y" not in str(refused.value) and "k\\y" not in str(refused.value)


def test_the_operators_smsc_replaces_the_fake_one_and_every_link_gets_the_rate(tmp_path):
    operator = ("# China Mobile, two binds\ngroup = smsc\nsmsc = smpp\nsmsc-id = cmcc\n"
                'host = "10.1.2.3"\nport = 7890\nsmsc-password = "s3cret"\n\n'
                "group = smsc\nsmsc = smpp\nsmsc-id = cmcc-2\nport = 7891\n")
    groups = _groups(render_config(_setup(tmp_path, smsc=operator, throughput=2.5)))
    smscs = [group for group in groups if group["group"] == "smsc"]
    assert [(group["smsc-id"], group["throughput"]) for group in smscs] == [
        ("cmcc", "2.5"), ("cmcc-2", "2.5")]
    assert smscs[0]["smsc-password"] == '"s3cret"'
    assert all(group["smsc"] == "smpp" for group in smscs)


def test_without_a_rate_no_link_is_held_back(tmp_path):
    assert "throughput" not in render_config(_setup(tmp_path, throughput=None))


@pytest.mark.parametrize(("operator", "refusal"), [
    ('group = core\nadmin-password = "x"\n', "only 'group = smsc'"),
    ('smsc-password = "s3cret"\ngroup = smsc\n', "got 'smsc-password'"),
    ("group = smsc\nsmsc = smpp\nthroughput = 100\n", "OFFERCALL_SMS_RATE"),
    ('group = smsc\ninclude = "/etc/other.conf"\n', "may not include"),
    ("# nothing here\n", "has no 'group = smsc'"),
])
def test_an_operators_file_kannel_would_read_differently_is_refused(tmp_path, operator, refusal):
    with pytest.raises(ValueError, match=refusal) as refused:
        render_config(_setup(tmp_path, smsc=operator))
    assert "s3cret" not in str(refused.value)


def test_the_installation_s_kannel_comes_from_its_settings(tmp_path):
    operator = tmp_path / "smsc.conf"
    operator.write_text("group = smsc\nsmsc = smpp\n", "utf-8")
    settings = Settings.from_environ({
        "OFFERCALL_VAR_DIR": str(tmp_path), "OFFERCALL_HOST": "0.0.0.0", "OFFERCALL_PORT": "8088",
        "OFFERCALL_KANNEL_PORT": "14000", "OFFERCALL_SMS_SMSC_CONF": str(operator),
        "OFFERCALL_SMS_RATE": "5", "OFFERCALL_SECRET_KEY": "a-secret-key-for-the-test",
    })
    setup = KannelSetup.from_settings(settings)
    assert setup.var_dir == tmp_path / "kannel" and setup.sendsms_url == "http://127.0.0.1:14013/cgi-bin/sendsms"
    assert setup.mo_url.startswith(f"http://127.0.0.1:8088/api/sms/inbound?key={settings.sms_key}&")
    assert setup.smsc == "group = smsc\nsmsc = smpp\n" and setup.throughput == 5.0
    assert settings.sms_key not in repr(setup)
    gateway = kannel.gateway(setup, settings.sms_sender)
    assert gateway.dlr_url == f"http://127.0.0.1:8088/api/sms/dlr?key={settings.sms_key}"
    assert settings.sms_key not in repr(gateway)
    missing = Settings.from_environ({"OFFERCALL_SMS_SMSC_CONF": str(tmp_path / "none.conf")})
    with pytest.raises(ValueError, match="cannot read"):
        KannelSetup.from_settings(missing)


def test_kannel_runs_only_when_the_sms_channel_is_on(tmp_path):
    environ = {"OFFERCALL_VAR_DIR": str(tmp_path), "OFFERCALL_KANNEL_PORT": "14000"}
    assert not [s for s in services(Settings.from_environ(environ)) if s.of_kind == "kannel"]
    on = Settings.from_environ({**environ, "OFFERCALL_SMS_GATEWAY": "kannel"})
    found = [s for s in services(on) if s.of_kind == "kannel"]
    assert [s.name for s in found] == ["kannel-bearerbox", "kannel-smsbox"]
    assert found[0].health_url == "http://127.0.0.1:14000/status.txt"
    assert (tmp_path / "kannel" / "kannel.conf").stat().st_mode & 0o777 == 0o600  # passwords


def test_the_sendsms_query_sends_chinese_as_ucs2_and_asks_for_every_report():
    gateway = KannelGateway("http://127.0.0.1:13013/cgi-bin/sendsms", "offercall", "k3y",
                            "10690001", "http://127.0.0.1:8080/api/sms/dlr?key=k3y")
    query = gateway.sendsms_query(41, "13800000002", "您好 100%")
    assert query["coding"] == "2" and query["charset"] == "UTF-8" and query["dlr-mask"] == "31"
    assert query["dlr-url"] == "http://127.0.0.1:8080/api/sms/dlr?key=k3y&id=41&status=%d&answer=%A"
    assert (query["from"], query["to"], query["text"]) == ("10690001", "13800000002", "您好 100%")
    assert gateway.sendsms_query(1, "1", "TD 退订")["coding"] == "2"
    assert gateway.sendsms_query(1, "1", "Reply TD to stop {ok}")["coding"] == "0"
    assert gateway.sendsms_query(1, "1", "a `b`")["coding"] == "2"  # GSM has no backquote
    url = str(gateway.request_url(41, "13800000002", "您好 100%"))
    assert "status%3D%25d%26answer%3D%25A" in url and "text=%E6%82%A8%E5%A5%BD%20100%25" in url


# ------------------------------------------------------------------ real Kannel
@dataclass
class Callbacks:
    """offercall's side of Kannel's calls back: every request's path and query."""

    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((request.path, dict(request.query)))
        self.arrived.set()
        return web.Response(text="")

    async def wait_for(self, path: str, count: int, timeout: float = 10.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [query for called, query in self.calls if called == path]
            if len(found) >= count:
                return found
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), max(0.0, deadline - time.monotonic()))


@pytest.fixture
def callback_port() -> int:
    return free_port()


@pytest.fixture
async def callbacks(aiohttp_server, callback_port) -> Callbacks:
    recorder = Callbacks()
    app = web.Application()
    app.router.add_get("/{path:.*}", recorder.handle)
    await aiohttp_server(app, port=callback_port)
    return recorder


@pytest.fixture
def network(tmp_path, callback_port) -> Iterator[KannelNetwork]:
    with kannel_network(tmp_path, f"http://127.0.0.1:{callback_port}") as running:
        yield running


async def _submit(gateway: KannelGateway, message_id: int, phone: str, text: str) -> Submission:
    async with aiohttp.ClientSession() as http:
        return await gateway.submit(http, message_id, phone, text)


async def test_a_chinese_offer_reaches_the_phone_whole_and_both_reports_return(network, callbacks):
    result = await _submit(network.gateway(), 41, "13800000002", OFFER)
    assert result == Submission(accepted=True, detail="0: Accepted for delivery")
    message = await asyncio.to_thread(network.phones.wait_for_message, "13800000002")
    assert message == PhoneMessage(DEFAULT_SENDER, "13800000002", OFFER)
    reports = await callbacks.wait_for("/api/sms/dlr", 2)
    # 8: the SMSC took it, 1: delivered; Kannel fetches them concurrently, in either order
    assert sorted(report["status"] for report in reports) == ["1", "8"]
    assert all(report["id"] == "41" and report["key"] == KEY for report in reports)
    assert {report["answer"] for report in reports} == {"ACK/", ""}


async def test_a_long_offer_arrives_as_one_message(network, callbacks):
    assert len(LONG_OFFER) > 2 * 67  # three concatenated UCS-2 parts
    assert (await _submit(network.gateway(), 42, "13800000003", LONG_OFFER)).accepted
    message = await asyncio.to_thread(network.phones.wait_for_message, "13800000003")
    assert message.text == LONG_OFFER
    assert network.phones.received() == [message]


async def test_customers_replies_reach_the_inbound_url_as_utf8(network, callbacks):
    before = int(time.time())
    question = "我想了解一下，上限利率是多少？100% + 吗"  # 上 is 4E 0A in UCS-2: a line feed byte
    for text in (question, "TD"):
        await asyncio.to_thread(network.phones.send_from_phone, "13800000001", text)
    replies = await callbacks.wait_for("/api/sms/inbound", 2)
    assert [(reply["from"], reply["to"], reply["text"], reply["key"]) for reply in replies] == [
        ("13800000001", DEFAULT_SENDER, question, KEY),
        ("13800000001", DEFAULT_SENDER, "TD", KEY),
    ]
    assert all(before - 5 <= int(reply["ts"]) <= time.time() + 5 for reply in replies)


@pytest.mark.parametrize(("changes", "phone", "answer"), [
    ({"password": "wrong-password"}, "13800000002", "Authorization failed for sendsms"),
    ({}, "not-a-number", "Number(s) has/have been denied by white- and/or black-lists."),
])
async def test_a_message_kannel_refuses_is_not_accepted(network, changes, phone, answer):
    result = await _submit(network.gateway(**changes), 43, phone, "您好")
    assert result == Submission(accepted=False, detail=answer)


async def test_a_message_sent_while_the_operator_link_is_down_waits_in_kannel(network, callbacks):
    network.phones.stop()
    await asyncio.to_thread(_wait_until, lambda: "(online" not in network.status(),
                            "bearerbox without its SMSC link")
    result = await _submit(network.gateway(), 44, "13800000004", "您好")
    assert result == Submission(accepted=True, detail="3: Queued for later delivery")
    network.phones.start()
    message = await asyncio.to_thread(network.phones.wait_for_message, "13800000004")
    assert message.text == "您好"


async def test_a_stopped_smsbox_makes_the_gateway_unavailable_naming_no_secret(network):
    network.stop_box("smsbox")
    with pytest.raises(GatewayUnavailable) as away:
        await _submit(network.gateway(), 45, "13800000005", "您好")
    assert KEY not in str(away.value) and "13800000005" not in str(away.value)
    assert "ClientConnectorError" in str(away.value)


async def test_a_5xx_or_silence_from_the_gateway_means_send_again_later(aiohttp_server):
    async def overloaded(request: web.Request) -> web.Response:
        return web.Response(status=503, text="Service temporarily unavailable")

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(status=202, text="0: Accepted for delivery")

    app = web.Application()
    app.router.add_get("/busy", overloaded)
    app.router.add_get("/slow", silent)
    server = await aiohttp_server(app)
    for path, timeout_s in (("/busy", 10.0), ("/slow", 0.3)):
        gateway = KannelGateway(str(server.make_url(path)), "offercall", "k3y", "1069", "http://x/dlr",
                                timeout_s=timeout_s)
        with pytest.raises(GatewayUnavailable):
            await _submit(gateway, 46, "13800000006", "您好")


def test_bearerbox_takes_the_rate_as_written(tmp_path, callback_port):
    with kannel_network(tmp_path, f"http://127.0.0.1:{callback_port}", throughput=2.5):
        log = (tmp_path / "bearerbox.log").read_text()
    assert f"Set throughput to 2.500 for smsc id <{kannel.FAKE_SMSC_ID}>" in log


def test_offercall_runs_kannel_and_brings_both_boxes_back_when_bearerbox_dies(tmp_path):
    port = free_port_block(kannel.SENDSMS_PORT + 1, set())
    settings = Settings.from_environ({
        **os.environ, "OFFERCALL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "OFFERCALL_SMS_GATEWAY": "kannel", "OFFERCALL_KANNEL_PORT": str(port),
    })
    setup = KannelSetup.from_settings(settings)
    # restarts after 2 s: smsbox's own restart (a forked copy, 1 s after it gives up) would
    # win the ports if it could run
    supervisor = Supervisor(settings, policy=RestartPolicy(first_delay_s=2.0), echo=False)
    try:
        supervisor.ensure(["kannel"], echo=False)
        assert answers_http(setup.sendsms_url)
        os.kill(supervisor.started["kannel-bearerbox"].pid, signal.SIGKILL)
        # smsbox closes sendsms at once, gives up on bearerbox after 10 s and is started again
        _wait_until(lambda: supervisor.restarts("kannel-bearerbox") == 1
                    and supervisor.restarts("kannel-smsbox") == 1
                    and answers_http(setup.sendsms_url),
                    "both boxes started again and smsbox answering", timeout=30)
        # only the supervised boxes run: no copy of smsbox holds its ports
        _wait_until(lambda: set(_running_with(setup.config_path)) == {
            process.pid for process in supervisor.started.values()}, "the supervised boxes alone",
            timeout=3)
        gateway = kannel.gateway(setup, settings.sms_sender)
        with urllib.request.urlopen(str(gateway.request_url(1, "13800000008", "您好"))) as answer:
            assert answer.status == 202  # no operator link in this test: queued in Kannel's store
            assert answer.read() == b"3: Queued for later delivery"
    finally:
        supervisor.stop()
    _wait_until(lambda: not _running_with(setup.config_path), "every box stopped", timeout=5)
    # smsbox logs warnings only: at info it writes every message's number and text
    assert "13800000008" not in (tmp_path / "kannel" / "smsbox.log").read_text()


def _running_with(config: Path) -> list[int]:
    """The processes whose command line names ``config``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if str(config).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not {what} after {timeout:g} s"
        time.sleep(0.05)


def test_the_fake_phones_send_what_fits_on_one_of_fakesmsc_s_lines():
    from tests.kannel_network import mo_line

    assert mo_line("13800000001", "10690001", "TD") == b"13800000001 10690001 text TD\n"
    # UTF-16BE with the bytes that would end or garble the line escaped: 上 is 4E 0A
    assert mo_line("13800000001", "10690001", "上%") == b"13800000001 10690001 ucs2 N%0A%00%25\n"
    with pytest.raises(ValueError, match="255 bytes"):
        mo_line("13800000001", "10690001", "您" * 120)
