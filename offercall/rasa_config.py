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


def endpoints_config(settings: Settings) -> dict[str, Any]:
    """The whole endpoints file: action server and tracker store."""
    return {
        "action_endpoint": {"url": settings.action_server_url},
        "tracker_store": tracker_store_config(settings.database_url),
    }


def write_endpoints(settings: Settings) -> Path:
    """Write ``<var_dir>/endpoints.yml`` and return its path."""
    path = settings.var_dir / "endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints_config(settings), allow_unicode=True), "utf-8")
    return path
