"""Servers started by offercall never outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from offercall.settings import PROJECT_ROOT
from tests.stack import free_port

SUPERVISE_ACTIONS = """
import sys, time
from offercall.processes import Supervisor
from offercall.settings import Settings
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
