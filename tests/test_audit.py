"""The audit trail, on SQLite and PostgreSQL: who created, started, paused and stopped a
campaign and who imported a whitelist, written with the change itself; a refused command
changes nothing and writes nothing; the command line audits as its user."""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from core.vocabulary import AuditAction, CampaignStatus
from outbound import campaigns
from outbound.campaigns import CampaignConfig
from outbound.whitelist import WhitelistFormatError, import_whitelist_file
from persistence import audit
from persistence.audit import Actor
from offercall.cli import main
from persistence.engine import make_engine, session_scope
from tests.conftest import PROJECT_ROOT

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
WANG = Actor("wang_mgr", "campaign_manager", account_id=7)
LI = Actor("li_sup", "supervisor", account_id=9)
HEADER = "customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,term_months,valid_until,consent\n"


def whitelist(tmp_path, rows: str, name: str = "list.csv"):
    path = tmp_path / name
    path.write_text(HEADER + rows, encoding="utf-8")
    return path


def history(engine, kind="campaign", subject="c1"):
    with session_scope(engine) as session:
        return audit.history(session, kind, subject)


def status(engine, campaign_id="c1") -> str:
    with session_scope(engine) as session:
        return campaigns.get_campaign(session, campaign_id).status


@pytest.fixture
def draft(engine):
    with session_scope(engine) as session:
        campaigns.create_campaign(session, "c1", "金堂十二月", "simulated",
                                  CampaignConfig.from_json({"max_concurrency": 2}), NOW, actor=WANG)
    return engine


def test_a_campaigns_life_is_audited_with_who_when_and_what_changed(draft, db_url):
    steps = [("start", WANG), ("pause", LI), ("resume", WANG), ("stop", WANG)]
    for minutes, (command, actor) in enumerate(steps, 1):
        with session_scope(draft) as session:
            campaigns.command(session, "c1", command, actor, NOW + timedelta(minutes=minutes))
    assert status(draft) == CampaignStatus.STOPPED

    other = make_engine(db_url)  # what another process reads: committed with the change
    try:
        entries = list(reversed(history(other)))
    finally:
        other.dispose()
    assert [(e.action, e.actor, e.actor_role) for e in entries] == [
        (AuditAction.CAMPAIGN_CREATED, "wang_mgr", "campaign_manager"),
        (AuditAction.CAMPAIGN_STARTED, "wang_mgr", "campaign_manager"),
        (AuditAction.CAMPAIGN_PAUSED, "li_sup", "supervisor"),
        (AuditAction.CAMPAIGN_RESUMED, "wang_mgr", "campaign_manager"),
        (AuditAction.CAMPAIGN_STOPPED, "wang_mgr", "campaign_manager"),
    ]
    assert [e.at for e in entries] == [NOW + timedelta(minutes=m) for m in range(5)]
    assert entries[0].detail["name"] == "金堂十二月" and entries[0].detail["config"]["max_concurrency"] == 2
    assert entries[2].detail == {"before": "running", "after": "paused"}


@pytest.mark.parametrize(("before", "command", "why"), [
    ("running", "start", "already running"),
    ("done", "pause", "it is done"),
    ("stopped", "resume", "it was stopped"),
])
def test_a_refused_command_changes_nothing_and_writes_no_entry(draft, before, command, why):
    with session_scope(draft) as session:
        if before in ("running", "done", "stopped"):
            campaigns.command(session, "c1", "start", WANG, NOW)
        if before == "done":
            assert campaigns.mark_done(session, "c1", NOW)
        if before == "stopped":
            campaigns.command(session, "c1", "stop", WANG, NOW)
    entries = len(history(draft))
    with pytest.raises(campaigns.CampaignError, match=why), session_scope(draft) as session:
        campaigns.command(session, "c1", command, WANG, NOW)
    assert status(draft) == before and len(history(draft)) == entries


def test_only_a_running_campaign_is_marked_done(draft):
    with session_scope(draft) as session:
        assert not campaigns.mark_done(session, "c1", NOW)  # a draft stays a draft
        campaigns.command(session, "c1", "start", WANG, NOW)
        campaigns.command(session, "c1", "pause", WANG, NOW)
        assert not campaigns.mark_done(session, "c1", NOW)
    assert status(draft) == CampaignStatus.PAUSED


def test_commands_on_an_unknown_campaign_name_the_ones_there_are(draft):
    with pytest.raises(campaigns.CampaignError, match="no campaign 'c9' .*c1"), session_scope(draft) as session:
        campaigns.command(session, "c9", "start", WANG, NOW)


def test_a_whitelist_import_is_audited_with_its_counts_and_a_broken_file_writes_nothing(engine, tmp_path):
    good = whitelist(tmp_path, "K1,客户一,13800000001,金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1\n"
                               "K2,客户二,not-a-phone,金堂县,农户,邮享贷,50000,3.6,7.2,12,2027-12-31,1\n",
                     "十二月白名单.csv")
    import_whitelist_file(engine, good, today=NOW.date(), actor=WANG)
    (entry,) = history(engine, "whitelist", "十二月白名单.csv")
    assert (entry.action, entry.actor) == (AuditAction.WHITELIST_IMPORTED, "wang_mgr")
    assert entry.detail == {"rows": 1, "inserted": 1, "updated": 0, "unchanged": 0, "rejected": 1}

    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(WhitelistFormatError):
        import_whitelist_file(engine, broken, today=NOW.date(), actor=WANG)
    assert history(engine, "whitelist", "broken.csv") == []


def test_the_command_line_audits_as_its_user_and_shows_the_trail(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"DATABASE_URL": url, "OFFERCALL_VAR_DIR": str(tmp_path / "var")}
    migrated = subprocess.run(  # the real entry point, once
        [sys.executable, "-m", "offercall", "migrate"], env={**os.environ, **env,
                                                         "PYTHONPATH": str(PROJECT_ROOT)},
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0 and (tmp_path / "cli.db").exists(), migrated.stderr
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # main() would take over SIGTERM

    def offercall(*args: str) -> subprocess.CompletedProcess:
        """The rest in this process (a process each cost the suite 3 s), as the console would."""
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    path = whitelist(tmp_path, "K1,客户一,13800000001,金堂县,农户,邮享贷,50000,3.6,7.2,12,2030-12-31,1\n")
    assert offercall("campaign", "import", str(path)).returncode == 0
    assert offercall("campaign", "create", "c1").returncode == 0
    refused = offercall("campaign", "pause", "c1")
    assert refused.returncode == 2 and "has not been started" in refused.stderr
    stopped = offercall("campaign", "stop", "c1")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    again = offercall("campaign", "stop", "c1")
    assert again.returncode == 2 and "it was stopped" in again.stderr

    trail = offercall("campaign", "audit", "c1")
    lines = trail.stdout.splitlines()
    assert trail.returncode == 0 and len(lines) == 2, trail.stdout
    assert f"cli:{getpass.getuser()} (admin)  campaign_stopped  before=draft after=stopped" in lines[0]
    assert "campaign_created" in lines[1]
