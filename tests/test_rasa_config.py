"""Rasa's tracker store follows DATABASE_URL."""

import pytest

from core.settings import Settings
from offercall.rasa_config import endpoints_config, tracker_store_config


def test_sqlite_url_becomes_a_sqlite_tracker_store():
    assert tracker_store_config("sqlite:////tmp/x/offercall.db") == {
        "type": "SQL", "dialect": "sqlite", "db": "/tmp/x/offercall.db",
    }


def test_postgres_url_keeps_host_port_credentials_and_database():
    config = tracker_store_config("postgresql+psycopg2://bank:s3cret@db.internal:6543/offers")
    assert config == {
        "type": "SQL", "dialect": "postgresql", "url": "db.internal", "port": 6543,
        "db": "offers", "username": "bank", "password": "s3cret",
    }


def test_unsupported_database_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported database"):
        tracker_store_config("mysql://u@h/db")


def test_endpoints_point_at_the_action_server_and_the_same_database():
    settings = Settings.from_environ({"DATABASE_URL": "sqlite:////tmp/oc.db", "ACTION_SERVER_URL": "http://127.0.0.1:6055/webhook"})
    config = endpoints_config(settings)
    assert config["action_endpoint"] == {"url": "http://127.0.0.1:6055/webhook"}
    assert config["tracker_store"]["db"] == "/tmp/oc.db"
