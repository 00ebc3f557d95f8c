"""The scaled-out profile's layout: which port each Rasa and action server listens on, and the
haproxy configuration that spreads requests over them (pure: settings in, text out).

With one Rasa server and one action server (the embedded default) each listens on the port
of its URL and there is no balancer. With more, haproxy listens on those ports and the
servers on the ports just above: Rasa servers on ``rasa_port + 1 … + N``, action servers on
``action_server_port + 1 … + M``.

Any Rasa server can take any turn of any conversation: the tracker is in the shared SQL
tracker store and Redis's lock store serialises turns of one conversation across servers,
as Rasa documents for horizontal scaling. So haproxy sends each request to the server with
the fewest in flight, checks every server each second, and sends a request whose connection
was refused (a server just killed) to another one.
"""

from __future__ import annotations

from core.settings import Settings

HEALTH_PATH = "/balancer/health"
"""Answered by haproxy itself (``monitor-uri``) on its first frontend while it runs."""


def rasa_ports(settings: Settings) -> list[int]:
    """The ports the Rasa servers listen on."""
    if settings.rasa_servers == 1:
        return [settings.rasa_port]
    return [settings.rasa_port + 1 + i for i in range(settings.rasa_servers)]


def action_server_ports(settings: Settings) -> list[int]:
    """The ports the action servers listen on."""
    if settings.action_servers == 1:
        return [settings.action_server_port]
    return [settings.action_server_port + 1 + i for i in range(settings.action_servers)]


def health_url(settings: Settings) -> str:
    """The balancer's own health URL (on the first balanced port)."""
    port = settings.rasa_port if settings.rasa_servers > 1 else settings.action_server_port
    return f"http://127.0.0.1:{port}{HEALTH_PATH}"


def _section(name: str, kind: str, port: int, backends: list[int], check_path: str,
             monitor: bool) -> list[str]:
    lines = [f"frontend {name}", f"    bind 127.0.0.1:{port}", f"    default_backend {name}_servers"]
    if monitor:
        lines.insert(2, f"    monitor-uri {HEALTH_PATH}")
    lines += [
        f"backend {name}_servers",
        "    balance leastconn",
        f"    option httpchk GET {check_path}",
        "    http-check expect status 200",
        "    default-server inter 1s fall 2 rise 1",
        "    retry-on conn-failure",
        "    option redispatch 1",
        "    retries 3",
    ]
    lines += [f"    server {kind}-{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(backends)]
    return lines


def haproxy_config(settings: Settings) -> str:
    """haproxy.cfg for the balanced server kinds (``settings.scaled_out`` must be true)."""
    if not settings.scaled_out:
        raise ValueError("one Rasa server and one action server need no balancer")
    lines = [
        "# Written by offercall from its settings at start-up (offercall/balancer.py).",
        "global",
        "    maxconn 4096",
        "    log stdout format raw local0 notice",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout check 2s",
        "    log stdout format raw local0",
        "    option httplog",
        # one request per connection on both sides: a kept-alive connection whose server is
        # killed is closed by haproxy under the client, who would then lose its next request
        "    option httpclose",
    ]
    monitor = True
    if settings.rasa_servers > 1:
        lines += _section("rasa", "rasa", settings.rasa_port, rasa_ports(settings), "/", monitor)
        monitor = False
    if settings.action_servers > 1:
        lines += _section("actions", "actions", settings.action_server_port,
                          action_server_ports(settings), "/health", monitor)
    # healthy once every balanced kind has a server up (haproxy checks them each second)
    kinds = [name for name, count in (("rasa", settings.rasa_servers),
                                      ("actions", settings.action_servers)) if count > 1]
    down = " || ".join(f"{{ nbsrv({kind}_servers) lt 1 }}" for kind in kinds)
    first = next(i for i, line in enumerate(lines) if line.startswith("    monitor-uri"))
    lines.insert(first + 1, f"    monitor fail if {down}")
    return "\n".join(lines) + "\n"
