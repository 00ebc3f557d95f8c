"""Settings are strict and have embedded defaults."""

import pytest

from core.settings import Settings, SettingsError


def test_defaults_run_on_embedded_sqlite():
    settings = Settings.from_environ({})
    assert settings.database_url.startswith("sqlite:///")
    assert settings.rasa_port == 5005 and settings.action_server_port == 5055


def test_database_url_switches_database_and_is_hidden_from_repr():
    settings = Settings.from_environ({"DATABASE_URL": "postgresql://u:secret@h/db"})
    assert settings.database_url == "postgresql://u:secret@h/db"
    assert "secret" not in repr(settings)


@pytest.mark.parametrize(("name", "value"), [("OFFERCALL_PORT", "eighty"), ("OFFERCALL_DEBUG", "yes")])
def test_bad_values_fail_at_start_up(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_environ({name: value})


def test_vosk_model_path_comes_from_the_environment():
    assert str(Settings.from_environ({"VOSK_MODEL_PATH": "/m/vosk"}).vosk_model_path) == "/m/vosk"


def test_to_environ_round_trips_so_child_processes_share_the_settings():
    settings = Settings.from_environ({"DATABASE_URL": "sqlite:////tmp/a.db", "OFFERCALL_PORT": "9090", "OFFERCALL_DEBUG": "true"})
    assert Settings.from_environ(settings.to_environ()) == settings
