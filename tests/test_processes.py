"""Servers started by offercall never outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from core.settings import PROJECT_ROOT
from tests.stack import free_port

SUPERVISE_ACTIONS = """
import sys, time
from offercall.processes import Supervisor
from core.settings import Settings
settings = Settings.from_environ()
supervisor = Supervisor(settings)
supervisor.ensure(["actions"], echo=False)
print(supervisor.started["actions"].pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_a_killed_supervisor_takes_its_servers_with_it(tmp_path):
    env = {**os.environ, "OFFERCALL_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
           "ACTION_SERVER_URL": f"http://127.0.0.1:{free_port()}/webhook", "PYTHONPATH": str(PROJECT_ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", SUPERVISE_ACTIONS], env=env, cwd=PROJECT_ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)  # no cleanup code can run
        parent.wait()
        deadline = time.monotonic() + 20
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child)
    finally:
        parent.kill()


def test_a_crashed_server_is_started_again_and_answers(tmp_path):
    from core.settings import Settings
    from offercall.processes import RestartPolicy, Supervisor, is_healthy

    port = free_port()
    settings = Settings.from_environ({
        **os.environ, "OFFERCALL_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "ACTION_SERVER_URL": f"http://127.0.0.1:{port}/webhook",
    })
    supervisor = Supervisor(settings, policy=RestartPolicy(first_delay_s=0.5))
    try:
        supervisor.ensure(["actions"], echo=False)
        first = supervisor.started["actions"].pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (supervisor.restarts("actions") == 1 and is_healthy(f"http://127.0.0.1:{port}/health")):
            assert time.monotonic() < deadline, "the action server was not started again"
            time.sleep(0.2)
        assert supervisor.started["actions"].pid != first
    finally:
        supervisor.stop()
    assert not is_healthy(f"http://127.0.0.1:{port}/health"), "stop() stops the restarted process too"


def test_restarts_back_off_while_a_server_keeps_crashing_and_start_over_once_it_stays_up():
    from offercall.processes import RestartPolicy

    policy = RestartPolicy(first_delay_s=1, factor=2, max_delay_s=30, stable_after_s=60)
    crashes, delays = 0, []
    for ran_for_s in [2, 1, 0.5, 3, 1, 1, 1]:  # crashing soon after every start
        crashes = policy.crashes_in_a_row(crashes, ran_for_s)
        delays.append(policy.delay_s(crashes))
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert policy.crashes_in_a_row(crashes, 60) == 1  # it had stayed up: a first crash again
    assert policy.delay_s(policy.crashes_in_a_row(crashes, 3600)) == 1
    with pytest.raises(ValueError):
        policy.delay_s(0)
