"""Ports for the test servers, taken below the kernel's ephemeral range.

``bind(port 0)`` hands out a port from the same range the kernel takes the source ports of
outgoing connections from; haproxy's health checks and the many short HTTP connections of a
run churn through that range, so a port found free there can be taken by an outgoing
connection before the server meant for it binds it. Ports below the range are never used that
way: only by what the tests start themselves, and each is handed out once per run.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

SPAN = 12000
_handed_out: set[int] = set()
_lock = threading.Lock()
_random = random.SystemRandom()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def bindable(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound now, for TCP and for UDP."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def candidate_port() -> int:
    """A port free now for TCP and UDP on 127.0.0.1, not handed out before in this run."""
    low = _ephemeral_low()
    first = max(1024, low - SPAN)
    for _ in range(500):
        if low - first < 1000:  # no room below the range on this machine: let the kernel pick
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
        else:
            port = _random.randrange(first, low)
        with _lock:
            if port in _handed_out or not bindable(port):
                continue
            _handed_out.add(port)
        return port
    raise RuntimeError("could not find a free port on 127.0.0.1")


def reserve(ports: set[int]) -> None:
    """Never hand these out (a block a test server and its neighbours will bind)."""
    with _lock:
        _handed_out.update(ports)
