"""The SMS channel end to end: offercall's web server, real Kannel (bearerbox and smsbox) and
Kannel's fake SMSC standing in for the phone network, and the real bot answering replies."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from core.customer_tokens import verify
from core.vocabulary import SmsStatus
from handoff import tickets
from offercall.web.app import init_app
from outbound import popups
from outbound.campaigns import CampaignConfig, create_campaign
from outbound.web.sms_api import SMS_CHANNEL
from outbound.whitelist import import_whitelist_file
from persistence import store
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import SmsMessage
from tests.kannel_network import kannel_network
from tests.stack import free_port

pytestmark = pytest.mark.model

HEADER = ("customer_id,name,phone,region,segment,product,amount,rate_min,rate_max,term_months,"
          "valid_until,consent,gender,address,org_name,org_address\n")
ALL_DAY = CampaignConfig(window_start="00:00", window_end="00:00")


@dataclasses.dataclass
class SmsWorld:
    server: object
    network: object
    engine: object
    campaign_id: str
    customer_id: str
    phone: str
    secret_key: str

    @property
    def channel(self):
        return self.server.app[SMS_CHANNEL]

    def messages(self, direction: str = "out") -> list[SmsMessage]:
        with session_scope(self.engine) as session:
            return list(session.scalars(select(SmsMessage).where(
                SmsMessage.phone == self.phone, SmsMessage.direction == direction)
                .order_by(SmsMessage.id)))

    async def settled(self, check, timeout: float = 10.0):
        """Waits until ``check()`` is true (the gateway's callbacks arrive in their own time)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.05)

    async def reply(self, text: str) -> str:
        """The customer texts ``text``; returns the next text they get back."""
        await asyncio.to_thread(self.network.phones.send_from_phone, self.phone, text)
        message = await asyncio.to_thread(self.network.phones.wait_for_message, self.phone, 20)
        return message.text


def _new_customer(engine, tmp_path: Path) -> tuple[str, str]:
    """A customer of their own (an opt-out is forever; the shared bot stack outlives the test)."""
    number = uuid.uuid4().int % 10**8
    customer_id, phone = f"S{number:08d}", f"137{number:08d}"
    csv = tmp_path / "one.csv"
    csv.write_text(HEADER + f"{customer_id},王芳,{phone},金堂县,农户,邮享贷,50000,3.6,7.2,12,"
                            "2027-12-31,1,F,,,\n", "utf-8")
    report = import_whitelist_file(engine, csv)
    assert report.loaded_customer_ids == [customer_id], report.summary()
    return customer_id, phone


@pytest.fixture
async def world(aiohttp_server, bot_stack, tmp_path):
    customer_id, phone = _new_customer(bot_stack.engine, tmp_path)
    campaign_id = f"sms-{uuid.uuid4().hex[:8]}"
    with session_scope(bot_stack.engine) as session:
        create_campaign(session, campaign_id, "短信", "simulated", ALL_DAY,
                        datetime.now(timezone.utc), actor=Actor.command_line())
    port = free_port()
    with kannel_network(tmp_path / "kannel", f"http://127.0.0.1:{port}",
                        password=bot_stack.settings.sms_key) as network:
        settings = dataclasses.replace(bot_stack.settings, sms_gateway="kannel",
                                       kannel_port=network.setup.port, web_port=port,
                                       sms_sender=network.sender, var_dir=tmp_path / "var")
        server = await aiohttp_server(init_app(settings), port=port)
        yield SmsWorld(server, network, bot_stack.engine, campaign_id, customer_id, phone,
                       settings.secret_key)
        await server.close()


async def test_a_campaign_message_reaches_the_phone_with_its_link_and_its_delivery_is_recorded(world):
    sent = await world.channel.send_offer(world.campaign_id, world.customer_id)
    assert sent.status == "submitted"
    received = await asyncio.to_thread(world.network.phones.wait_for_message, world.phone)
    assert received.text.startswith("【邮储银行】") and received.text.endswith("回复TD退订")
    link = re.search(r"https?://\S+", received.text).group()
    token = parse_qs(urlsplit(link).query)["t"][0]
    assert verify(token, world.secret_key) == world.customer_id  # their own chat, no login
    (message,) = world.messages()
    assert message.id == sent.message_id and message.campaign_id == world.campaign_id
    await world.settled(lambda: world.messages()[0].status == SmsStatus.DELIVERED)
    (message,) = world.messages()
    assert message.dlr_code == 1 and message.sent_at and message.delivered_at
    again = await world.channel.send_offer(world.campaign_id, world.customer_id)
    assert (again.status, again.reason) == ("skip", "already_sent")


async def test_td_puts_the_number_on_the_do_not_contact_list_at_once_and_for_good(world):
    with session_scope(world.engine) as session:
        popup_id = popups.create_popup(session, customer_id=world.customer_id, title="专属额度",
                                       body="点击查看", now=datetime.now(timezone.utc),
                                       ttl=timedelta(days=1))
    await world.channel.send_offer(world.campaign_id, world.customer_id)
    await asyncio.to_thread(world.network.phones.wait_for_message, world.phone)

    confirmation = await world.reply("TD")
    assert "退订" in confirmation and "不再" in confirmation
    with session_scope(world.engine) as session:
        assert store.is_do_not_contact(session, phone=world.phone)
        assert store.is_do_not_contact(session, customer_id=world.customer_id)
        assert popups.pending_popup(session, world.customer_id, datetime.now(timezone.utc)) is None
    (reply,) = world.messages("in")
    assert (reply.text, reply.detail, reply.customer_id) == ("TD", "opt_out", world.customer_id)
    assert popup_id and reply.gateway_ref  # Kannel's id of the delivery (%I)

    # Kannel delivers it again (its answer was lost): handled once, no second confirmation
    base, key = f"http://127.0.0.1:{world.server.port}", world.channel.gateway.password
    confirmations = len(world.messages())
    async with world.channel.http.get(f"{base}/api/sms/inbound", params={
            "key": key, "from": world.phone, "text": "TD", "ref": reply.gateway_ref}) as again:
        assert (again.status, again.headers["X-Offercall-Reply"]) == (200, "duplicate")
    assert len(world.messages("in")) == 1 and len(world.messages()) == confirmations

    other_campaign = f"sms-{uuid.uuid4().hex[:8]}"
    with session_scope(world.engine) as session:
        create_campaign(session, other_campaign, "再来一次", "simulated", ALL_DAY,
                        datetime.now(timezone.utc), actor=Actor.command_line())
    refused = await world.channel.send_offer(other_campaign, world.customer_id)
    assert (refused.status, refused.reason) == ("skip", "do_not_contact")
    marketing = [m for m in world.messages() if m.campaign_id]
    assert len(marketing) == 1  # nothing more was sent


async def test_a_reply_goes_to_the_bot_which_checks_the_person_before_any_offer_detail(world):
    await world.channel.send_offer(world.campaign_id, world.customer_id)
    await asyncio.to_thread(world.network.phones.wait_for_message, world.phone)

    first = await world.reply("你好，这是什么")
    assert "智能" in first and "王" in first  # the assistant says what it is, asks who it is
    assert "五万" not in first and "万元" not in first

    offer = await world.reply("是我")
    assert "五万" in offer

    handed = await world.reply("我想办")
    assert "回电" in handed
    (reply, *_) = world.messages("in")
    with session_scope(world.engine) as session:
        ticket = tickets.ticket_for_conversation(session, reply.conversation_id)
    assert (ticket.channel, ticket.kind, ticket.customer_id) == ("sms", "callback", world.customer_id)
    assert all(m.detail == "bot" for m in world.messages("in"))


async def test_the_gateway_callbacks_refuse_a_caller_without_the_key_and_bad_input(world):
    base = f"http://127.0.0.1:{world.server.port}"
    http = world.channel.http
    key = world.channel.gateway.password
    for query, status in [
        ("id=1&status=1", 403),
        ("key=wrong&id=1&status=1", 403),
        (f"key={key}&id=x&status=1", 400),
        (f"key={key}&id=1&status=3", 400),
    ]:
        async with http.get(f"{base}/api/sms/dlr?{query}") as response:
            assert response.status == status, query
    async with http.get(f"{base}/api/sms/dlr?key={key}&id=999999&status=1") as response:
        assert (response.status, await response.text()) == (200, "unknown message")
    for query, status in [
        ("from=13700000000&text=TD", 403),
        (f"key={key}&from=abc&text=TD", 400),
        (f"key={key}&from=13700000000&text=", 400),
        (f"key={key}&from=13700000000&text=TD&ref=" + "x" * 65, 400),
    ]:
        async with http.get(f"{base}/api/sms/inbound?{query}") as response:
            assert response.status == status, query
    assert world.messages("in") == []
