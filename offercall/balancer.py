"""The scaled-out profile's layout: which port each Rasa, action and web server listens on,
and the haproxy configuration that spreads requests over them (pure: settings in, text out).

With one server of each kind (the embedded default) each listens on the port of its URL and
there is no balancer. With more, haproxy listens on those ports and the servers elsewhere:
Rasa servers on ``rasa_port + 1 … + N``, action servers on ``action_server_port + 1 … + M``,
web servers on ``web_backend_port … + K - 1`` (the ports after ``web_port`` are the workers').

Any Rasa server can take any turn of any conversation: the tracker is in the shared SQL
tracker store and Redis's lock store serialises turns of one conversation across servers,
as Rasa documents for horizontal scaling. Any web server can take any request or websocket,
because sessions, conversations and the handoff feed live in the database. So haproxy sends
each request to the server with the fewest in flight, checks every server each second, and
sends a request whose connection was refused (a server just killed) to another one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from chat.widget import UNAVAILABLE
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


def web_ports(settings: Settings) -> list[int]:
    """The ports the web servers listen on (their own, behind the balancer, when several)."""
    if settings.web_servers == 1:
        return [settings.web_port]
    return [settings.web_backend_port + i for i in range(settings.web_servers)]


@dataclass(frozen=True)
class _Kind:
    """One balanced kind of server: where haproxy listens for it and where its servers are."""

    name: str
    host: str
    port: int
    servers: list[int]
    check_path: str


def _kinds(settings: Settings) -> list[_Kind]:
    """The kinds that run as more than one process, in a fixed order."""
    kinds = [
        _Kind("rasa", "127.0.0.1", settings.rasa_port, rasa_ports(settings), "/"),
        _Kind("actions", "127.0.0.1", settings.action_server_port,
              action_server_ports(settings), "/health"),
        _Kind("web", settings.web_host, settings.web_port, web_ports(settings), "/health"),
    ]
    return [kind for kind in kinds if len(kind.servers) > 1]


def local_address(host: str) -> str:
    """An address that reaches, from this machine, a server bound to ``host`` (a server bound
    to every interface is reached on loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def health_url(settings: Settings) -> str:
    """The balancer's own health URL (on the first balanced kind's port)."""
    first = _kinds(settings)[0]
    return f"http://{local_address(first.host)}:{first.port}{HEALTH_PATH}"


def web_unavailable_response() -> str:
    """What haproxy answers when no web server can (a server killed mid-request, or none up):
    a raw HTTP 503 with the chat's apology, as the web servers' own outage answer has it."""
    body = json.dumps({"error": "the service is briefly unavailable, please try again",
                       "texts": [UNAVAILABLE]}, ensure_ascii=False).encode("utf-8")
    head = ("HTTP/1.0 503 Service Unavailable\r\n"
            "Cache-Control: no-cache\r\n"
            "Connection: close\r\n"
            "Retry-After: 1\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head + body.decode("utf-8")


def _section(kind: _Kind, monitor: str | None, error_page: Path | None) -> list[str]:
    lines = [f"frontend {kind.name}", f"    bind {kind.host}:{kind.port}"]
    if monitor is not None:
        lines += [f"    monitor-uri {HEALTH_PATH}", f"    monitor fail if {monitor}"]
    if kind.name == "web":
        lines += [
            # the customer's and the staff's address reach the web servers (audit, logs)
            "    option forwardfor",
            # each web server's metrics are scraped on its own port, never through here
            # (a remote scraper would look local to the server behind the balancer)
            "    http-request deny deny_status 404 if { path /metrics }",
        ]
    lines += [
        f"    default_backend {kind.name}_servers",
        f"backend {kind.name}_servers",
        "    balance leastconn",
        f"    option httpchk GET {kind.check_path}",
        "    http-check expect status 200",
        "    default-server inter 1s fall 2 rise 1",
        "    retry-on conn-failure",
        "    option redispatch 1",
        "    retries 3",
    ]
    if kind.name == "web":
        # chat widgets and consoles hold websockets for as long as they are open
        lines.append("    timeout tunnel 1h")
        if error_page is not None:  # a server killed mid-request: the customer gets an apology
            lines += [f"    errorfile {status} {error_page}" for status in (502, 503, 504)]
    lines += [f"    server {kind.name}-{i + 1} 127.0.0.1:{port} check"
              for i, port in enumerate(kind.servers)]
    return lines


def haproxy_config(settings: Settings, error_page: Path | None = None) -> str:
    """haproxy.cfg for the balanced server kinds (``settings.scaled_out`` must be true);
    ``error_page`` holds :func:`web_unavailable_response` (the web servers' 5xx answer)."""
    if not settings.scaled_out:
        raise ValueError("one server of each kind needs no balancer")
    kinds = _kinds(settings)
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
    # healthy once every balanced kind has a server up (haproxy checks them each second)
    down = " || ".join(f"{{ nbsrv({kind.name}_servers) lt 1 }}" for kind in kinds)
    for index, kind in enumerate(kinds):
        lines += _section(kind, down if index == 0 else None, error_page)
    return "\n".join(lines) + "\n"
