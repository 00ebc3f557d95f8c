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


@pytest.mark.parametrize(("name", "value"), [("OFFERCALL_PORT", "eighty"), ("OFFERCALL_DEBUG", "yes"),
                                           ("OFFERCALL_VAD", "webrtc")])
def test_bad_values_fail_at_start_up(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_environ({name: value})


def test_vosk_model_path_comes_from_the_environment():
    assert str(Settings.from_environ({"VOSK_MODEL_PATH": "/m/vosk"}).vosk_model_path) == "/m/vosk"


def test_to_environ_round_trips_so_child_processes_share_the_settings():
    settings = Settings.from_environ({"DATABASE_URL": "sqlite:////tmp/a.db", "OFFERCALL_PORT": "9090", "OFFERCALL_DEBUG": "true"})
    assert Settings.from_environ(settings.to_environ()) == settings


def test_branch_lead_policies_come_from_the_settings():
    from datetime import timedelta

    from branches.policies import lead_policies

    defaults = lead_policies(Settings.from_environ({}))
    assert (defaults.deadlines.claim_within, defaults.deadlines.verify_within) == (
        timedelta(days=2), timedelta(days=2))
    assert (defaults.scorecard.window_days, defaults.scorecard.min_claim_rate,
            defaults.scorecard.min_verify_rate, defaults.scorecard.min_judged) == (30, 0.8, 0.8, 10)
    chosen = lead_policies(Settings.from_environ({
        "OFFERCALL_LEAD_CLAIM_DAYS": "1", "OFFERCALL_LEAD_VERIFY_DAYS": "5",
        "OFFERCALL_SCORECARD_WINDOW_DAYS": "14", "OFFERCALL_SCORECARD_MIN_CLAIM_PCT": "95",
        "OFFERCALL_SCORECARD_MIN_VERIFY_PCT": "0", "OFFERCALL_SCORECARD_MIN_JUDGED": "3"}))
    assert (chosen.deadlines.claim_within, chosen.deadlines.verify_within) == (
        timedelta(days=1), timedelta(days=5))
    assert (chosen.scorecard.window_days, chosen.scorecard.min_claim_rate,
            chosen.scorecard.min_verify_rate, chosen.scorecard.min_judged) == (14, 0.95, 0.0, 3)


@pytest.mark.parametrize(("name", "value"), [
    ("OFFERCALL_LEAD_CLAIM_DAYS", "0"), ("OFFERCALL_LEAD_VERIFY_DAYS", "-1"),
    ("OFFERCALL_SCORECARD_WINDOW_DAYS", "0"), ("OFFERCALL_SCORECARD_MIN_CLAIM_PCT", "101"),
    ("OFFERCALL_SCORECARD_MIN_VERIFY_PCT", "-5"), ("OFFERCALL_SCORECARD_MIN_JUDGED", "0"),
    ("OFFERCALL_LEAD_CLAIM_DAYS", "two"),
])
def test_a_lead_policy_out_of_range_is_refused_by_name(name, value):
    from branches.policies import lead_policies

    with pytest.raises(SettingsError, match=name):
        lead_policies(Settings.from_environ({name: value}))


def test_one_click_call_hours_and_holidays_come_from_the_settings():
    from datetime import date, datetime, time, timezone

    from branches.click_calls import ClickCallPolicy, Refusal, refusal

    assert Settings.from_environ({}).click_call_hours == (time(9, 0), time(20, 0))
    settings = Settings.from_environ({"OFFERCALL_CLICK_CALL_HOURS": "10:00-18:30",
                                      "OFFERCALL_HOLIDAYS": "2026-11-24, 2027-01-01"})
    assert settings.holidays == {date(2026, 11, 24), date(2027, 1, 1)}
    assert Settings.from_environ(settings.to_environ()) == settings
    window = ClickCallPolicy.from_settings(settings).window

    def shanghai(day: int, hour: int, minute: int = 0) -> datetime:  # November 2026, UTC+8
        return datetime(2026, 11, day, hour - 8, minute, tzinfo=timezone.utc)

    assert refusal(False, window, shanghai(23, 10)) is None
    assert refusal(False, window, shanghai(23, 9, 30)) is Refusal.OUTSIDE_WINDOW
    assert refusal(False, window, shanghai(23, 18, 30)) is Refusal.OUTSIDE_WINDOW
    assert refusal(False, window, shanghai(24, 11)) is Refusal.OUTSIDE_WINDOW  # a holiday
    assert refusal(True, window, shanghai(23, 10)) is Refusal.DO_NOT_CONTACT


@pytest.mark.parametrize(("name", "value"), [
    ("OFFERCALL_CLICK_CALL_HOURS", "9-20"), ("OFFERCALL_CLICK_CALL_HOURS", "20:00-09:00"),
    ("OFFERCALL_HOLIDAYS", "2027-13-01"), ("OFFERCALL_HOLIDAYS", "元旦"),
])
def test_bad_calling_hours_or_holidays_are_refused_by_name(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_environ({name: value})
