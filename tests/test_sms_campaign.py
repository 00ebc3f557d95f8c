"""Texting a whole campaign (``offercall campaign sms``) through real Kannel to its fake phones:
everyone the rules allow gets one message, an opted-out customer none, and a second run
sends nothing again."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from core.clock import utcnow
from offercall.cli.campaign import cmd_sms
from offercall.sms import send_campaign
from outbound.campaigns import CampaignConfig, add_targets, create_campaign
from outbound.whitelist import import_whitelist_file
from persistence import store
from persistence.audit import Actor
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from tests.kannel_network import kannel_network
from tests.stack import free_port, stack_settings
from tests.test_popup_api import WHITELIST

CUSTOMERS = ["C0001", "C0002", "C0003", "C0004", "C0005"]


@pytest.fixture
def db(tmp_path) -> Iterator[tuple[str, Engine]]:
    url = f"sqlite:///{tmp_path / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, WHITELIST, today=utcnow().date())
    with session_scope(engine) as session:
        create_campaign(session, "dec-sms", "十二月短信", "simulated",
                        CampaignConfig(window_start="00:00", window_end="00:00"), utcnow(),
                        actor=Actor.command_line())
        add_targets(session, "dec-sms", CUSTOMERS, utcnow())
        store.add_do_not_contact(session, customer_id="C0003", phone=None, utterance="别再联系我",
                                 conversation_id=None)
    yield url, engine
    engine.dispose()


def test_a_campaign_is_texted_once_to_everyone_but_who_opted_out(tmp_path, db):
    url, engine = db
    base = stack_settings(tmp_path / "var", url)
    with kannel_network(tmp_path / "kannel", f"http://127.0.0.1:{free_port()}",
                        password=base.sms_key) as network:
        settings = dataclasses.replace(base, sms_gateway="kannel", kannel_port=network.setup.port,
                                       sms_sender=network.sender)
        seen: list[tuple[int, int]] = []
        outcomes = asyncio.run(send_campaign(settings, engine, "dec-sms",
                                             progress=lambda done, total: seen.append((done, total))))
        assert outcomes == {"submitted": 4, "do_not_contact": 1}
        assert seen[-1] == (5, 5)
        received = network.phones.wait_for_total(4)
        with session_scope(engine) as session:
            phones = {store.get_customer_offer(session, c).phone for c in CUSTOMERS if c != "C0003"}
        assert {m.receiver for m in received} == phones
        assert all(m.text.endswith("回复TD退订") for m in received)

        again = asyncio.run(send_campaign(settings, engine, "dec-sms"))
        assert again == {"already_sent": 4, "do_not_contact": 1}
        assert len(network.phones.received()) == 4


def test_the_command_refuses_when_the_sms_channel_is_off(tmp_path, db, capsys):
    settings = stack_settings(tmp_path / "var", db[0])
    args = type("Args", (), {"campaign": "dec-sms", "template": "offer", "quiet": True})()
    assert cmd_sms(settings, args) == 2
    assert "OFFERCALL_SMS_GATEWAY=kannel" in capsys.readouterr().err
