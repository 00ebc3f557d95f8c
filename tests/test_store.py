"""Persistence on SQLite and on a real PostgreSQL server: the writes the bot relies on."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from core.settings import PROJECT_ROOT
from outbound.whitelist import import_whitelist_file
from persistence import store
from persistence.engine import session_scope

SAMPLE = PROJECT_ROOT / "data" / "whitelist_sample.csv"
TODAY = date(2026, 11, 22)


@pytest.fixture
def loaded(engine):
    import_whitelist_file(engine, SAMPLE, today=TODAY)
    return engine


def test_sample_customer_c0001_has_a_50000_yuan_offer_and_a_masked_name(loaded):
    with session_scope(loaded) as session:
        customer = store.get_customer_offer(session, "C0001")
    assert customer.masked_name == "张**" and customer.gender == "M"
    assert (customer.product, customer.amount_yuan, customer.term_months) == ("邮享贷", 50000, 12)
    assert (customer.rate_min, customer.rate_max) == (3.6, 7.2)


def test_unknown_customer_is_none(loaded):
    with session_scope(loaded) as session:
        assert store.get_customer_offer(session, "C9999") is None


def test_outcome_is_recorded_and_unknown_outcomes_are_refused(loaded):
    with session_scope(loaded) as session:
        store.start_conversation(session, "conv-1", "C0001", "chat", offer_id=None)
        store.record_outcome(session, "conv-1", "not_interested", reason="利息太高")
    with session_scope(loaded) as session:
        assert store.latest_outcome(session, "conv-1") == "not_interested"
        with pytest.raises(ValueError, match="unknown outcome"):
            store.record_outcome(session, "conv-1", "maybe")


def test_do_not_contact_is_found_by_customer_or_phone(loaded):
    with session_scope(loaded) as session:
        store.add_do_not_contact(session, customer_id="C0002", phone="13900139002",
                                 utterance="以后别给我打电话了", conversation_id="conv-2")
    with session_scope(loaded) as session:
        assert store.is_do_not_contact(session, customer_id="C0002")
        assert store.is_do_not_contact(session, phone="13900139002")
        assert not store.is_do_not_contact(session, customer_id="C0001")
        with pytest.raises(ValueError):
            store.add_do_not_contact(session, customer_id=None, phone=None, utterance="",
                                     conversation_id=None)


def test_callback_keeps_its_time_zone_aware_due_time(loaded):
    due = datetime(2026, 11, 23, 7, 0, tzinfo=timezone.utc)
    with session_scope(loaded) as session:
        store.book_callback(session, conversation_id="conv-3", customer_id="C0001", due_at=due,
                            requested_text="明天下午三点")
    with session_scope(loaded) as session:
        (callback,) = store.callbacks_for(session, "conv-3")
    assert callback.due_at == due and callback.status == "scheduled"
