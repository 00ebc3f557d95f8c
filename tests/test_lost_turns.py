"""A chat turn whose web server died before answering: told apart from one still being
answered (pure), and apologised for once when the customer's widget reconnects."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from chat.lost_turns import TURN_OWNER, is_lost
from core.clock import utcnow
from core.owners import Owner
from handoff.messages import LoggedMessage

ME = Owner("app-1", 100, "now")
NOW = utcnow()


def message(sender="customer", owner="app-1@200:x", age_s=1.0):
    data = {TURN_OWNER: owner} if owner is not None else {}
    return LoggedMessage(7, "chat-1", sender, "利率多少", "c-1", None, None, data,
                         NOW - timedelta(seconds=age_s))


@pytest.mark.parametrize(("last", "alive", "lost"), [
    (message(), False, True),                          # its server on this host has died
    (message(), True, False),                          # ... or is still answering it
    (message(owner="app-1@100:now"), False, False),    # this very server is answering it
    (message(owner="app-1@100:old"), False, True),     # this process, a stopped earlier app
    (message(owner="app-2@200:x"), False, False),      # another host's: it may still answer
    (message(owner="app-2@200:x", age_s=31), True, True),  # ... but not after 30 s
    (message(owner=None), False, False),               # sent while an agent had the chat
    (message(sender="bot"), False, False),             # the bot has answered
])
def test_a_turn_is_lost_only_when_its_server_can_no_longer_answer(last, alive, lost):
    assert is_lost(last, me=ME, pid_alive=lambda _: alive, now=NOW) is lost


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
