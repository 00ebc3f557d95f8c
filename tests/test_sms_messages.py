"""Text messages in the database, on SQLite and PostgreSQL: delivery reports in any order,
resending what the gateway could not take, who a reply is from, and an opt-out by reply."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.vocabulary import SmsStatus
from outbound import sms_messages
from persistence import store
from persistence.engine import session_scope
from persistence.schema import Customer

T0 = datetime(2026, 12, 3, 4, 0, tzinfo=timezone.utc)
PHONE = "13900000042"


def _customer(engine, customer_id: str = "C0042", phone: str = PHONE) -> str:
    with session_scope(engine) as session:
        session.add(Customer(customer_id=customer_id, name="测试客户", masked_name="测**",
                             phone=phone, region="金堂县", consent=True, created_at=T0,
                             updated_at=T0))
    return customer_id


def _queue(engine, **fields) -> int:
    with session_scope(engine) as session:
        return sms_messages.queue(session, phone=PHONE, text="【邮储银行】… 回复TD退订",
                                  gateway="kannel", now=T0, **fields)


def _run(engine, change, *args):
    with session_scope(engine) as session:
        return change(session, *args)


def test_reports_in_any_order_end_delivered_and_the_late_submission_does_not_undo_them(engine):
    message_id = _queue(engine)
    assert _run(engine, sms_messages.apply_report, message_id, 1, "", T0) == SmsStatus.DELIVERED
    assert _run(engine, sms_messages.apply_report, message_id, 8, "ACK/", T0) == SmsStatus.DELIVERED
    _run(engine, sms_messages.mark_submitted, message_id, "0: Accepted for delivery", T0)
    record = _run(engine, sms_messages.get, message_id)
    assert (record.status, record.dlr_code) == (SmsStatus.DELIVERED, 1)


def test_a_report_about_a_message_that_is_not_ours_changes_nothing(engine):
    assert _run(engine, sms_messages.apply_report, 12345, 1, "", T0) is None


def test_a_queued_message_is_taken_for_resending_by_one_process_once(engine):
    first, second = _queue(engine), _queue(engine)
    _run(engine, sms_messages.mark_submitted, second, "0: Accepted", T0)
    later = T0 + timedelta(minutes=1)
    taken = _run(engine, sms_messages.claim_queued, T0 + timedelta(seconds=30), later)
    assert [record.id for record in taken] == [first]
    assert _run(engine, sms_messages.claim_queued, T0 + timedelta(seconds=30), later) == []


def test_a_reply_is_from_the_customer_last_texted_and_td_opts_them_out_for_good(engine):
    customer_id = _customer(engine)
    _queue(engine, customer_id=customer_id, campaign_id="spring", variant="B")

    def reply(session):
        sender = sms_messages.sender_of(session, PHONE, T0)
        reply_id = sms_messages.record_reply(session, phone=PHONE, text="TD", gateway="kannel",
                                             now=T0, sender=sender)
        sms_messages.opt_out(session, reply_id, T0)
        return sender

    sender = _run(engine, reply)
    assert (sender.customer_id, sender.campaign_id, sender.variant) == (customer_id, "spring", "B")
    with session_scope(engine) as session:
        assert store.is_do_not_contact(session, customer_id=customer_id)
        assert store.is_do_not_contact(session, phone=PHONE)
        assert sms_messages.counts(session, "spring") == {"queued": 1, "received": 1}


def test_a_number_shared_by_two_customers_is_nobody_in_particular(engine):
    _customer(engine, "C0001", "13700000001")
    _customer(engine, "C0002", "13700000001")
    _customer(engine, "C0003", "13700000003")
    with session_scope(engine) as session:
        assert sms_messages.sender_of(session, "13700000001", T0).customer_id is None
        assert sms_messages.sender_of(session, "13700000003", T0).customer_id == "C0003"


def test_a_reply_the_gateway_delivers_again_is_handled_once(engine):
    customer_id = _customer(engine)
    _queue(engine, customer_id=customer_id, campaign_id="spring", variant="B")

    def reply(session):
        sender = sms_messages.sender_of(session, PHONE, T0)
        return sms_messages.record_reply(session, phone=PHONE, text="你好", gateway="kannel",
                                         now=T0, sender=sender, gateway_ref="kannel-id-1")

    first = _run(engine, reply)
    assert _run(engine, reply) == first  # not handled yet (the process died): again, same row
    _run(engine, lambda session: sms_messages.note(session, first, "bot", T0))
    assert _run(engine, reply) is None  # handled: a duplicate
    with session_scope(engine) as session:
        assert sms_messages.counts(session, "spring") == {"queued": 1, "received": 1}
