"""Rasa's runtime configuration, derived from offercall's settings.

Rasa reads its tracker store and action server from an endpoints file; offercall writes
one from ``DATABASE_URL`` so Rasa's SQL tracker store lives in the same database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.engine import make_url

from core.settings import Settings


def tracker_store_config(database_url: str) -> dict[str, Any]:
    """Rasa's ``tracker_store`` section for a SQLAlchemy database URL."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return {"type": "SQL", "dialect": "sqlite", "db": url.database}
    if url.get_backend_name() == "postgresql":
        config: dict[str, Any] = {
            "type": "SQL",
            "dialect": "postgresql",
            "url": url.host or "localhost",
            "db": url.database,
        }
        if url.port:
            config["port"] = url.port
        if url.username:
            config["username"] = url.username
        if url.password:
            config["password"] = url.password
        return config
    raise ValueError(f"unsupported database for Rasa's tracker store: {url.get_backend_name()}")


def lock_store_config(redis_url: str) -> dict[str, Any]:
    """Rasa's ``lock_store`` section for a ``redis://[user:password@]host:port/db`` URL."""
    url = make_url(redis_url)
    if url.drivername not in ("redis", "rediss"):
        raise ValueError(f"OFFERCALL_REDIS_URL must be a redis:// URL, got {url.drivername}://")
    config: dict[str, Any] = {
        "type": "redis",
        "url": url.host or "localhost",
        "port": url.port or 6379,
        "db": int(url.database or 1),
        "key_prefix": "offercall",
    }
    if url.username:
        config["username"] = url.username
    if url.password:
        config["password"] = url.password
    if url.drivername == "rediss":
        config["use_ssl"] = True
    return config


def endpoints_config(settings: Settings) -> dict[str, Any]:
    """The whole endpoints file: action server, tracker store and, when several Rasa servers
    share the conversations, Redis's lock store (one Rasa server keeps its locks in memory)."""
    config = {
        "action_endpoint": {"url": settings.action_server_url},
        "tracker_store": tracker_store_config(settings.database_url),
    }
    if settings.rasa_servers > 1:
        config["lock_store"] = lock_store_config(settings.redis_url)
    return config


def write_endpoints(settings: Settings) -> Path:
    """Write ``<var_dir>/endpoints.yml`` and return its path."""
    path = settings.var_dir / "endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints_config(settings), allow_unicode=True), "utf-8")
    return path
