"""The systemd deployment for several machines (deploy/README.md): a unit for every process
kind offercall runs, each restarting, reading the settings file and checking its health;
what ``systemd-analyze verify`` and ``haproxy -c`` say about the files; the example settings
and balancer against offercall's own; and the helper the units run (deploy/bin/offercall-unit).

Nothing here starts a unit: systemd is not PID 1 on the machines this suite runs on."""

from __future__ import annotations

import http.server
import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from core.settings import PROJECT_ROOT, Settings
from offercall import balancer
from offercall.processes import services
from offercall.rasa_config import endpoints_config
from voice.transports.sip.config import SipConfig

DEPLOY = PROJECT_ROOT / "deploy"
UNITS = DEPLOY / "systemd"
HELPER = DEPLOY / "bin" / "offercall-unit"
HAPROXY_EXAMPLE = DEPLOY / "haproxy" / "haproxy.cfg.example"
INSTALL_ROOT = "/opt/offercall"
VENV_PYTHON = f"{INSTALL_ROOT}/.venv/bin/python"

UNIT_OF_KIND = {
    "rasa": "offercall-rasa@.service",
    "actions": "offercall-actions@.service",
    "web": "offercall-web.service",
    "worker": "offercall-worker@.service",
    "redis": "redis-server.service",  # Debian's own
    "balancer": "haproxy.service",  # Debian's own, with deploy/haproxy/haproxy.cfg.example
}
DEBIANS = {"redis-server.service", "haproxy.service"}
SERVERS = [UNIT_OF_KIND[kind] for kind in ("rasa", "actions", "web", "worker")]
"""The long-running offercall units."""
VERIFIED = ("offercall-rasa@5006.service", "offercall-actions@5056.service",
            "offercall-web.service", "offercall-worker@2.service", "offercall-migrate.service",
            "offercall.target", "offercall-healthcheck@offercall-rasa@5006.service",
            "offercall-healthcheck@offercall-rasa@5006.timer",
            "offercall-healthcheck@haproxy.timer", "offercall-kannel-bearerbox.service",
            "offercall-kannel-smsbox.service")
"""What systemd-analyze verify is given: templates through an instance."""
NEWER_THAN_252 = ("RestartSteps", "RestartMaxDelaySec", "OpenFile", "SurviveFinalKillSignal")
"""Settings Debian 12's systemd 252 does not know (it would ignore them with a warning)."""


def env_file(path: Path) -> dict[str, str]:
    """NAME=value lines, as systemd's EnvironmentFile= reads the simple ones used here."""
    found = {}
    for line in path.read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", name), f"{path.name}: {line!r}"
            found[name] = value
    return found


SHARED = env_file(DEPLOY / "offercall.env.example")
LOCAL = env_file(DEPLOY / "offercall.local.env.example")
PROFILE = {**SHARED, **LOCAL}
"""The app machine's environment in the multi-machine profile."""


def read_unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file, each a list of (key, value) in order (keys repeat)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in (UNITS / name).read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{name}: {line!r}"
        current.append((key, value))
    return sections


def values(name: str, section: str, key: str) -> list[str]:
    return [v for k, v in read_unit(name).get(section, []) if k == key]


def one(name: str, section: str, key: str) -> str:
    found = values(name, section, key)
    assert len(found) == 1, f"{name}: [{section}] {key}= {found}"
    return found[0]


def settings_of(environ: dict[str, str], var_dir: Path) -> Settings:
    return Settings.from_environ({**environ, "OFFERCALL_VAR_DIR": str(var_dir)})


def load_helper() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("offercall_unit", str(HELPER))
    spec = importlib.util.spec_from_loader("offercall_unit", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


helper = load_helper()


# --- the settings files --------------------------------------------------------------------

def test_the_example_settings_are_the_scaled_out_profile_on_postgresql(tmp_path: Path) -> None:
    settings = settings_of(PROFILE, tmp_path)
    assert settings.database_url.startswith("postgresql")
    assert settings.scaled_out and settings.rasa_servers == 4 and settings.action_servers == 2
    assert "lock_store" in endpoints_config(settings)
    assert settings.dial_lines == 4 * 2  # two workers on the app machine, 4 lines each
    SipConfig.from_environ(PROFILE)  # the SIP settings are usable too


def test_the_example_lists_every_setting_with_values_systemd_reads_as_written() -> None:
    settings_names = set(Settings.from_environ({}).to_environ())
    sip_source = (PROJECT_ROOT / "voice" / "transports" / "sip" / "config.py").read_text("utf-8")
    sip_names = {f"OFFERCALL_SIP_{name}"
                 for name in re.findall(r'(?:get|number)\("([A-Z_]+)"', sip_source)}
    assert len(sip_names) >= 10  # the patterns still find them
    missing = (settings_names | sip_names | {"SANIC_HOST"}) - set(PROFILE)
    assert not missing, f"not in deploy/offercall*.env.example: {sorted(missing)}"
    for name, value in PROFILE.items():
        assert not re.search(r"[\s\"'$\\]", value), f"{name}: quote, space or $ in {value!r}"


# --- a unit for every process kind ---------------------------------------------------------

def test_every_process_kind_of_a_scaled_profile_has_a_unit(tmp_path: Path) -> None:
    remote_redis = services(settings_of(PROFILE, tmp_path / "a"))
    local_redis = services(settings_of(
        {**PROFILE, "OFFERCALL_REDIS_URL": "redis://127.0.0.1:6379/1"}, tmp_path / "b"))
    kinds = {service.of_kind for service in remote_redis + local_redis}
    assert kinds == set(UNIT_OF_KIND), "a new process kind needs a unit (and deploy/README.md)"
    for name in set(UNIT_OF_KIND.values()) - DEBIANS:
        assert (UNITS / name).is_file(), name
    readme = (DEPLOY / "README.md").read_text("utf-8")
    for name in DEBIANS:
        assert name in readme
    assert "redis-server.service" in " ".join(values("offercall-rasa@.service", "Unit", "After"))
    assert "haproxy.service" in " ".join(values("offercall-web.service", "Unit", "After"))


def _exec_words(name: str, key: str = "ExecStart") -> list[str]:
    return shlex.split(one(name, "Service", key))


def test_the_units_run_the_command_lines_of_offercall_processes(tmp_path: Path) -> None:
    settings = settings_of(PROFILE, tmp_path)
    by_kind: dict[str, list[str]] = {}
    for service in services(settings):  # the first of each kind
        by_kind.setdefault(service.of_kind, service.argv)

    def ours(argv: list[str]) -> list[str]:
        return [VENV_PYTHON if word == sys.executable else word for word in argv]

    port = str(balancer.action_server_ports(settings)[0])
    assert _exec_words("offercall-actions@.service") == [
        word.replace(port, "%i") for word in ours(by_kind["actions"])]
    assert _exec_words("offercall-web.service") == ours(by_kind["web"])
    worker = _exec_words("offercall-worker@.service")
    assert worker[:4] == [VENV_PYTHON, f"{INSTALL_ROOT}/deploy/bin/offercall-unit",
                          "exec-worker", "%i"]
    assert worker[4:] == ours(by_kind["worker"])
    rasa = _exec_words("offercall-rasa@.service")
    expected = ours(by_kind["rasa"])
    assert rasa[:4] == expected[:4] == [VENV_PYTHON, "-m", "rasa", "run"]
    assert [w for w in rasa if w.startswith("--")] == [w for w in expected if w.startswith("--")]
    assert rasa[rasa.index("--port") + 1] == "%i"
    assert rasa[rasa.index("--auth-token") + 1] == "${RASA_TOKEN}"
    assert rasa[rasa.index("--credentials") + 1] == f"{INSTALL_ROOT}/bot/credentials.yml"


@pytest.mark.parametrize("name", SERVERS)
def test_every_server_unit_restarts_reads_the_settings_and_checks_its_health(name: str) -> None:
    assert one(name, "Service", "Restart") == "always"
    assert re.fullmatch(r"\d+s?", one(name, "Service", "RestartSec"))
    assert int(one(name, "Unit", "StartLimitIntervalSec")) >= 60
    assert int(one(name, "Unit", "StartLimitBurst")) >= 3
    assert values(name, "Service", "EnvironmentFile") == [
        "/etc/offercall/offercall.env", "-/etc/offercall/offercall.local.env"]
    assert one(name, "Service", "User") == "offercall"
    assert one(name, "Service", "WorkingDirectory") == INSTALL_ROOT
    post = _exec_words(name, "ExecStartPost")
    assert post[:3] == [VENV_PYTHON, f"{INSTALL_ROOT}/deploy/bin/offercall-unit", "wait-healthy"]
    assert post[-1] == "%n" and "--pid=${MAINPID}" in post
    wait_s = float(post[post.index("--timeout") + 1])
    assert float(one(name, "Service", "TimeoutStartSec")) > wait_s
    wants = " ".join(values(name, "Unit", "Wants"))
    assert "offercall-healthcheck@%N.timer" in wants and "offercall-migrate.service" in wants
    assert "offercall-migrate.service" in " ".join(values(name, "Unit", "After"))
    assert one(name, "Unit", "PartOf") == "offercall.target"
    assert one(name, "Install", "WantedBy") == "offercall.target"
    for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert one(name, "Service", hardening) == "yes"
    assert one(name, "Service", "ProtectSystem") in ("full", "strict")


def test_the_migration_runs_once_before_the_servers_and_the_target_groups_them() -> None:
    name = "offercall-migrate.service"
    assert one(name, "Service", "Type") == "oneshot"
    assert one(name, "Service", "RemainAfterExit") == "yes"
    assert _exec_words(name) == [VENV_PYTHON, "-m", "offercall", "migrate"]
    assert one(name, "Service", "Restart") == "on-failure"  # a oneshot may not say always
    assert values(name, "Service", "EnvironmentFile")[0] == "/etc/offercall/offercall.env"
    assert one("offercall.target", "Install", "WantedBy") == "multi-user.target"
    timer = "offercall-healthcheck@.timer"
    assert one(timer, "Unit", "PartOf") == "%i.service"
    assert one(timer, "Timer", "OnUnitActiveSec")
    check = _exec_words("offercall-healthcheck@.service")
    assert check[1:] == [f"{INSTALL_ROOT}/deploy/bin/offercall-unit", "healthcheck", "%i"]


def test_no_unit_uses_a_setting_debian_12s_systemd_lacks() -> None:
    for path in UNITS.iterdir():
        text = path.read_text("utf-8")
        for key in NEWER_THAN_252:
            assert not re.search(rf"^{key}=", text, re.M), f"{path.name}: {key}="


def test_the_units_and_the_helper_agree_on_where_rasa_listens() -> None:
    default = "OFFERCALL_RASA_INTERFACE=127.0.0.1"
    assert default in values("offercall-rasa@.service", "Service", "Environment")
    assert default in values("offercall-healthcheck@.service", "Service", "Environment")
    assert helper.health_url("offercall-rasa@5006", {}).startswith("http://127.0.0.1:5006/")


NEEDS_SYSTEMD_ANALYZE = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed")


@pytest.fixture
def install_root(tmp_path: Path) -> Path:
    """A stand-in for /opt/offercall: this checkout's .venv and deploy/."""
    root = tmp_path / "opt-offercall"
    root.mkdir()
    (root / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    (root / "deploy").symlink_to(DEPLOY)
    return root


@NEEDS_SYSTEMD_ANALYZE
def test_systemd_analyze_verify_accepts_every_unit(tmp_path: Path, install_root: Path) -> None:
    """verify insists that commands exist: the units are checked with /opt/offercall pointing
    at this checkout. Any line it prints (an unknown key, a bad value) fails the test."""
    units = tmp_path / "units"
    units.mkdir()
    for path in UNITS.iterdir():
        (units / path.name).write_text(
            path.read_text("utf-8").replace(f"{INSTALL_ROOT}/", f"{install_root}/"), "utf-8")
    names = [*VERIFIED]
    for path in UNITS.iterdir():  # every file is verified, a template through an instance
        prefix = path.name.split("@")[0] + "@" if "@." in path.name else path.name
        assert any(n.startswith(prefix) and n.endswith(path.suffix) for n in names), path.name
    done = subprocess.run(["systemd-analyze", "verify", *names], cwd=units, capture_output=True,
                          text=True, timeout=30, check=False)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@NEEDS_SYSTEMD_ANALYZE
def test_systemd_analyze_verify_would_see_a_broken_unit(tmp_path: Path, install_root: Path) -> None:
    text = (UNITS / "offercall-web.service").read_text("utf-8")
    broken = text.replace(f"{INSTALL_ROOT}/", f"{install_root}/").replace(
        "Restart=always", "Restart=always\nRestartSteps=5")
    (tmp_path / "offercall-web.service").write_text(broken, "utf-8")
    done = subprocess.run(["systemd-analyze", "verify", "offercall-web.service"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30, check=False)
    assert "Unknown key 'RestartSteps'" in done.stdout + done.stderr


# --- the balancer ------------------------------------------------------------------------

HAPROXY = shutil.which("haproxy") or next(
    (path for path in ("/usr/sbin/haproxy",) if Path(path).exists()), None)


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_haproxy_accepts_the_example_configuration() -> None:
    done = subprocess.run([HAPROXY, "-c", "-f", str(HAPROXY_EXAMPLE)], capture_output=True,
                          text=True, timeout=30, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "valid" in output, output
    assert "WARNING" not in output and "ALERT" not in output, output


def _sections(config: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in config.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            current = found.setdefault(line.strip(), [])
        else:
            current.append(line.strip())
    return found


def test_the_balancer_example_matches_the_settings_and_balancer_py(tmp_path: Path) -> None:
    example = _sections(HAPROXY_EXAMPLE.read_text("utf-8"))
    settings = settings_of(PROFILE, tmp_path)
    written = _sections(balancer.haproxy_config(settings))
    for backend, count in (("rasa_servers", settings.rasa_servers),
                           ("actions_servers", settings.action_servers)):
        lines = example[f"backend {backend}"]
        assert len([line for line in lines if line.startswith("server ")]) == count
        for line in written[f"backend {backend}"]:
            if not line.startswith("server "):
                assert line in lines, f"backend {backend} lacks {line!r}"
    for frontend, url in (("rasa", settings.rasa_url), ("actions", settings.action_server_url)):
        host_port = url.split("//")[1].split("/")[0]
        assert f"bind {host_port}" in example[f"frontend {frontend}"]
    assert "option httpclose" in example["defaults"]
    monitor = example["frontend rasa"]
    assert f"monitor-uri {balancer.HEALTH_PATH}" in monitor
    assert any("nbsrv(rasa_servers)" in line and "nbsrv(actions_servers)" in line
               for line in monitor)
    assert helper.health_url("haproxy", PROFILE) == f"http://10.0.0.10:5005{balancer.HEALTH_PATH}"


# --- the helper: health URLs, waiting, the health check, worker ports ------------------------

def test_the_helper_knows_every_units_health_url() -> None:
    token = PROFILE["RASA_TOKEN"]
    assert helper.health_url("offercall-rasa@5006.service", PROFILE) == \
        f"http://10.0.0.10:5006/status?token={token}"
    assert helper.health_url("offercall-actions@5056", PROFILE) == "http://10.0.0.10:5056/health"
    assert helper.health_url("offercall-web", PROFILE) == "http://127.0.0.1:8080/health"
    assert helper.health_url("offercall-worker@1", PROFILE) == "http://127.0.0.1:8081/health"
    assert helper.health_url("offercall-worker@3", PROFILE) == "http://127.0.0.1:8083/health"
    assert helper.health_url("offercall-actions@5056", {"SANIC_HOST": "::"}) == "http://[::1]:5056/health"
    kannel = {"OFFERCALL_KANNEL_PORT": "14000"}
    assert helper.health_url("offercall-kannel-bearerbox", kannel) == \
        "http://127.0.0.1:14000/status.txt"
    assert helper.health_url("offercall-kannel-smsbox.service", kannel) == \
        "http://127.0.0.1:14013/cgi-bin/sendsms"
    for unknown in ("offercall-rasa", "offercall-rasa@x", "offercall-worker@0",
                    "offercall-worker@13", "sshd"):
        with pytest.raises(helper.UnitError):
            helper.health_url(unknown, PROFILE)


def test_each_worker_on_a_machine_gets_ports_of_its_own() -> None:
    ports = [helper.worker_environ(str(i), PROFILE) for i in (1, 2, 12)]
    assert ports[0] == {"OFFERCALL_WORKER_PORT": "8081", "OFFERCALL_SIP_PORT": "5060",
                        "OFFERCALL_SIP_RTP_PORT": "40000"}
    assert ports[1] == {"OFFERCALL_WORKER_PORT": "8082", "OFFERCALL_SIP_PORT": "5061",
                        "OFFERCALL_SIP_RTP_PORT": "42000"}
    assert int(ports[2]["OFFERCALL_SIP_RTP_PORT"]) + helper.RTP_RANGE <= 65536
    assert helper.worker_environ("2", {"OFFERCALL_SIP_PORT": "0"})["OFFERCALL_SIP_PORT"] == "0"


def test_exec_worker_gives_the_worker_its_ports_and_the_health_url_follows(tmp_path: Path) -> None:
    show = ("import json, os; "
            "print(json.dumps({k: v for k, v in os.environ.items() "
            "if k.startswith('OFFERCALL_')}))")
    env = {**os.environ, **PROFILE}
    done = subprocess.run([sys.executable, str(HELPER), "exec-worker", "2",
                           sys.executable, "-c", show],
                          env=env, capture_output=True, text=True, timeout=30, check=True)
    seen = json.loads(done.stdout)
    assert seen["OFFERCALL_WORKER_PORT"] == "8082" and seen["OFFERCALL_SIP_RTP_PORT"] == "42000"
    assert settings_of({**PROFILE, **seen}, tmp_path).worker_port == 8082
    url = subprocess.run([sys.executable, str(HELPER),
                          "--env", str(DEPLOY / "offercall.env.example"),
                          "--env", str(DEPLOY / "offercall.local.env.example"),
                          "--env", "/nonexistent",
                          "health-url", "offercall-worker@2"], env={"PATH": os.environ["PATH"]},
                         capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    assert url == "http://127.0.0.1:8082/health"
    refused = subprocess.run([sys.executable, str(HELPER), "exec-worker", "0", "true"], env=env,
                             capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode == 2 and "between 1 and 12" in refused.stderr


class _Server:
    """A local HTTP server whose answer the test sets: (status, body)."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes] = (200, b'{"status": "ok"}')
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                status, body = outer.answer
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    yield running
    running.httpd.shutdown()
    running.httpd.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wait_healthy_waits_for_200_and_for_rasa_to_have_its_model(server: _Server) -> None:
    url = f"http://127.0.0.1:{server.port}/status?token=t"
    assert helper.wait_healthy(url, timeout_s=2) is None
    server.answer = (200, b'{"model_file": null, "model_id": null}')
    loaded = (200, b'{"model_file": "m.tar.gz"}')
    threading.Timer(0.2, lambda: setattr(server, "answer", loaded)).start()
    started = time.monotonic()
    assert helper.wait_healthy(url, timeout_s=5, interval_s=0.1) is None
    assert 0.15 < time.monotonic() - started < 2
    server.answer = (503, b"")
    assert "HTTP 503" in helper.wait_healthy(url, timeout_s=0.1, interval_s=0.05)
    refused = helper.wait_healthy(f"http://127.0.0.1:{_free_port()}/health", timeout_s=0.1,
                                  interval_s=0.05)
    assert "no answer" in refused


def test_wait_healthy_gives_up_at_once_when_the_main_process_is_gone() -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    started = time.monotonic()
    why = helper.wait_healthy(f"http://127.0.0.1:{_free_port()}/health", timeout_s=30,
                              pid=int(gone.stdout), interval_s=0.1)
    assert "exited" in why and time.monotonic() - started < 2


def test_the_wait_command_exits_1_without_printing_the_token(server: _Server) -> None:
    server.answer = (503, b"")
    env = {**os.environ, "OFFERCALL_RASA_INTERFACE": "127.0.0.1",
           "RASA_TOKEN": "s3cret-token-value"}
    done = subprocess.run([sys.executable, str(HELPER), "wait-healthy", "--timeout", "0.2",
                           "--pid=", f"offercall-rasa@{server.port}.service"],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1 and "HTTP 503" in done.stderr
    assert "s3cret" not in done.stdout + done.stderr
    server.answer = (200, b'{"model_file": "m.tar.gz"}')
    done = subprocess.run([sys.executable, str(HELPER), "wait-healthy", "--timeout", "5", "--pid=",
                           f"offercall-rasa@{server.port}.service"],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake systemctl first on PATH: is-active answers $FAKE_STATE; every call is logged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "systemctl.log"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n'
                    '[ "$1" = is-active ] && echo "$FAKE_STATE"\nexit 0\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_the_health_check_restarts_an_active_unit_that_stopped_answering(
        systemctl: Path, server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SANIC_HOST": "127.0.0.1"}
    monkeypatch.setenv("FAKE_STATE", "active")
    assert helper.healthcheck(f"offercall-actions@{server.port}", env, gap_s=0.01) == 0
    assert systemctl.read_text().splitlines() == [f"is-active offercall-actions@{server.port}"]
    dead = _free_port()
    assert helper.healthcheck(f"offercall-actions@{dead}", env, tries=2, gap_s=0.01) == 1
    assert systemctl.read_text().splitlines()[-1] == f"restart --no-block offercall-actions@{dead}"
    monkeypatch.setenv("FAKE_STATE", "activating")  # still loading: ExecStartPost is waiting
    assert helper.healthcheck(f"offercall-actions@{dead}", env, gap_s=0.01) == 0
    assert systemctl.read_text().splitlines()[-1] == f"is-active offercall-actions@{dead}"


# --- Rasa's endpoints, written as the unit writes them -------------------------------------

def test_the_rasa_units_pre_start_writes_offercalls_endpoints(tmp_path: Path) -> None:
    words = _exec_words("offercall-rasa@.service", "ExecStartPre")
    assert words[0] == VENV_PYTHON
    runtime = tmp_path / "run"
    (runtime / "offercall-rasa-5006").mkdir(parents=True)
    argv = [sys.executable,
            *[w.replace("%t", str(runtime)).replace("%i", "5006") for w in words[1:]]]
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT_ROOT), **PROFILE,
           "OFFERCALL_VAR_DIR": str(tmp_path / "var")}
    subprocess.run(argv, cwd=PROJECT_ROOT, env=env, check=True, timeout=60)
    written = yaml.safe_load((runtime / "offercall-rasa-5006" / "endpoints.yml").read_text("utf-8"))
    assert written == endpoints_config(settings_of(PROFILE, tmp_path / "var"))
    assert written["action_endpoint"]["url"] == "http://10.0.0.10:5055/webhook"
    assert written["lock_store"]["url"] == "10.0.0.10"
    rasa = _exec_words("offercall-rasa@.service")
    assert rasa[rasa.index("--endpoints") + 1] == "%t/offercall-rasa-%i/endpoints.yml"
    assert one("offercall-rasa@.service", "Service", "RuntimeDirectory") == "offercall-rasa-%i"


def test_the_operators_guide_names_every_unit_and_says_what_was_tested() -> None:
    readme = (DEPLOY / "README.md").read_text("utf-8")
    for path in UNITS.iterdir():
        assert path.name in readme, path.name
    assert "## What was tested" in readme and "tests/test_deploy.py" in readme


KANNEL_UNITS = {"bearerbox": "offercall-kannel-bearerbox.service",
                "smsbox": "offercall-kannel-smsbox.service"}


@pytest.mark.parametrize("box", sorted(KANNEL_UNITS))
def test_kannels_units_restart_read_the_settings_and_check_their_health(box: str) -> None:
    name = KANNEL_UNITS[box]
    assert one(name, "Service", "Restart") == "always"
    assert values(name, "Service", "EnvironmentFile") == [
        "/etc/offercall/offercall.env", "-/etc/offercall/offercall.local.env"]
    assert _exec_words(name) == [VENV_PYTHON, "-m", "offercall", "kannel", box]
    post = _exec_words(name, "ExecStartPost")
    assert post[2:4] == ["wait-healthy", "--timeout"] and post[-1] == "%n"
    assert float(one(name, "Service", "TimeoutStartSec")) > float(post[4])
    assert "offercall-healthcheck@%N.timer" in " ".join(values(name, "Unit", "Wants"))
    assert one(name, "Install", "WantedBy") == "offercall.target"
    if box == "smsbox":
        assert "offercall-kannel-bearerbox.service" in one(name, "Unit", "After")


@pytest.mark.skipif(not Path("/usr/sbin/bearerbox").exists(), reason="needs Debian's kannel")
def test_offercall_kannel_becomes_the_boxes_the_units_health_checks_find(tmp_path: Path) -> None:
    from tests.stack import free_port

    port = free_port()
    env = {**os.environ, "OFFERCALL_SMS_GATEWAY": "kannel", "OFFERCALL_KANNEL_PORT": str(port),
           "OFFERCALL_VAR_DIR": str(tmp_path)}
    off = subprocess.run([sys.executable, "-m", "offercall", "kannel", "bearerbox"],
                         env={**env, "OFFERCALL_SMS_GATEWAY": "off"}, capture_output=True,
                         text=True, timeout=60, check=False)
    assert off.returncode == 2 and "SMS channel is off" in off.stderr
    boxes = [subprocess.Popen([sys.executable, "-m", "offercall", "kannel", box], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for box in ("bearerbox", "smsbox")]
    try:
        for box, process in zip(("bearerbox", "smsbox"), boxes):
            url = helper.health_url(KANNEL_UNITS[box], {"OFFERCALL_KANNEL_PORT": str(port)})
            assert helper.wait_healthy(url, 30, pid=process.pid, interval_s=0.2) is None, box
        assert (tmp_path / "kannel" / "kannel.conf").exists()
        assert Path(f"/proc/{boxes[0].pid}/exe").resolve() == Path("/usr/sbin/bearerbox")
    finally:
        for process in boxes:
            process.terminate()
        for process in boxes:
            process.wait(timeout=30)
