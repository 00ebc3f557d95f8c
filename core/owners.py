"""Which process does a piece of work, and whether it still can.

Work that outlives a request (a whitelist upload being checked, a chat turn waiting for the
bot) is tagged with its owner, ``host@pid:run``: the machine, the process and a random id of
the run inside it. Another process that finds the work unfinished asks :func:`is_orphaned`:
on the same machine a process that has ended (``kill -9``, a crash) can be told for certain;
another machine's processes cannot, so their work is left to them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """One run of one process on one machine."""

    host: str
    pid: int
    run: str

    @property
    def tag(self) -> str:
        """``host@pid:run``, as stored with the work."""
        return f"{self.host}@{self.pid}:{self.run}"

    @classmethod
    def of_this_process(cls, run: str | None = None) -> Owner:
        """This process, with a fresh run id unless one is given."""
        return cls(socket.gethostname(), os.getpid(), run or os.urandom(4).hex())


def is_orphaned(tag: str | None, *, me: Owner, pid_alive: bool) -> bool:
    """Whether the owner ``tag`` can no longer finish its work (pure): nobody owns it, or it
    ran on this host in a process that has ended (``pid_alive`` says whether the tag's pid
    still runs) or in this process under an earlier run. Another host's owner is never
    judged gone: we cannot tell whether it lives."""
    if not tag:
        return True
    their_host, _, rest = tag.rpartition("@")
    their_pid, _, their_run = rest.partition(":")
    if their_host != me.host or not their_pid.isdigit():
        return False
    if int(their_pid) == me.pid:
        return their_run != me.run
    return not pid_alive


def pid_alive(tag: str | None) -> bool:
    """Whether the process of the owner ``tag`` (on this host) is running."""
    pid = (tag or "").rpartition("@")[2].partition(":")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except PermissionError:
        return True  # somebody else's process
    except (ProcessLookupError, OverflowError):
        return False
    return True
