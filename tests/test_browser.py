"""The customer's chat widget and the agents' console in a real browser (Debian's Chromium,
driven by Playwright) against the real app and the real bot: a chat handed to a human,
a claim race lost clearly, and a widget that survives a dropped connection and a reload.

Screenshots of every page go to ``test-artifacts/`` at the repository root.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    WebSocketRoute,
    async_playwright,
    expect,
)

from core.customer_tokens import issue
from core.clock import utcnow
from core.settings import PROJECT_ROOT
from handoff import agents, tickets
from offercall.web.app import init_app
from persistence import branches, handoffs
from persistence.engine import session_scope
from tests.stack import free_port

pytestmark = pytest.mark.model

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
PASSWORD = "browser-agent-pass"
AGENTS = [  # username, display name, role, branch
    ("pw_jt_wang", "小王", "agent", "JT"),
    ("pw_jt_li", "小李", "agent", "JT"),
    ("pw_boss", "赵主管", "supervisor", "CD"),
]
PHONE = {"viewport": {"width": 390, "height": 780}, "device_scale_factor": 2, "locale": "zh-CN"}
DESKTOP = {"viewport": {"width": 1400, "height": 900}, "locale": "zh-CN"}

expect.set_options(timeout=15_000)


@pytest.fixture
async def base_url(bot_stack) -> AsyncIterator[str]:
    """The real app on a real localhost port, with JT's two agents and a supervisor."""
    with session_scope(bot_stack.engine) as session:
        branches.load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        known = {account.username for account in agents.all_accounts(session, utcnow())}
        for username, name, role, branch in AGENTS:
            if username not in known:
                agents.add_agent(session, username=username, password=PASSWORD, display_name=name,
                                 role=role, branch_id=branch, products=["*"], now=utcnow())
    runner = web.AppRunner(init_app(bot_stack.settings))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup.sh (it installs Debian's chromium)")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class SocketTap:
    """Sits between a page and the server's websocket: passes frames through unless told to
    hold some back, and can drop the connection like a bad mobile network."""

    def __init__(self) -> None:
        self.routes: list[WebSocketRoute] = []
        self.hold_from_server: Callable[[dict[str, Any]], bool] = lambda frame: False
        self.hold_from_page: Callable[[dict[str, Any]], bool] = lambda frame: False
        self.held_from_page: list[dict[str, Any]] = []
        self.from_page: list[dict[str, Any]] = []

    def __call__(self, page_side: WebSocketRoute) -> None:
        server_side = page_side.connect_to_server()
        self.routes.append(page_side)

        def to_server(message: str | bytes) -> None:
            frame = json.loads(message)
            self.from_page.append(frame)
            if self.hold_from_page(frame):
                self.held_from_page.append(frame)
            else:
                server_side.send(message)

        def to_page(message: str | bytes) -> None:
            if not self.hold_from_server(json.loads(message)):
                page_side.send(message)

        page_side.on_message(to_server)
        server_side.on_message(to_page)

    async def drop(self) -> None:
        """Closes the current connection (both sides), as a network drop would."""
        await self.routes[-1].close(code=4000, reason="network drop")


async def open_page(browser: Browser, options: dict[str, Any], tap: SocketTap | None = None,
                    socket_path: str = "") -> tuple[BrowserContext, Page]:
    context = await browser.new_context(**options)
    page = await context.new_page()
    if tap is not None:
        await page.route_web_socket(re.compile(re.escape(socket_path) + "$"), tap)
    return context, page


async def log_in(page: Page, base_url: str, username: str) -> None:
    await page.goto(f"{base_url}/console")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(PASSWORD)
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("conn-status")).to_have_text("实时")


async def say(page: Page, text: str) -> None:
    await page.get_by_test_id("chat-text").fill(text)
    await page.get_by_test_id("chat-send").click()


def said(page: Page | Locator, testid: str, text: str) -> Locator:
    """The elements with ``testid`` that contain ``text``."""
    return page.get_by_test_id(testid).filter(has_text=text)


def bubbles(page: Page, testid: str) -> Locator:
    """The text bubbles of one kind of chat message (without the sender's label)."""
    return page.get_by_test_id(testid).locator(".bubble")


async def all_messages(page: Page) -> list[str]:
    """Every bubble in the chat log as ``sender:text``."""
    return await page.locator("#log .msg").evaluate_all(
        "rows => rows.map(r => r.dataset.testid + ':' + r.querySelector('.bubble').textContent)")


async def settled(page: Page) -> list[str]:
    """The chat log once no bubble has arrived for a second (a bot turn can be several)."""
    shown = await all_messages(page)
    while True:
        await page.wait_for_timeout(1000)
        now = await all_messages(page)
        if now == shown:
            return now
        shown = now


def ticket_of(bot_stack, conversation_id: str) -> tickets.Ticket:
    with session_scope(bot_stack.engine) as session:
        ticket = tickets.ticket_for_conversation(session, conversation_id)
    assert ticket is not None, f"no ticket for {conversation_id}"
    return ticket


def agent_id(bot_stack, username: str) -> int:
    with session_scope(bot_stack.engine) as session:
        return next(a.id for a in agents.all_accounts(session, utcnow()) if a.username == username)


async def shoot(page: Page, name: str) -> None:
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_a_chat_goes_live_to_the_branch_agent_and_a_late_claim_is_refused(
    browser, base_url, bot_stack
):
    customer_ctx, customer = await open_page(browser, PHONE)
    wang_ctx, wang = await open_page(browser, DESKTOP)
    li_tap = SocketTap()  # 小李's console lags: it will not hear that 小王 took the ticket
    li_ctx, li = await open_page(browser, DESKTOP, li_tap, "/ws/agent")
    boss_ctx, boss = await open_page(browser, DESKTOP)
    for page, (username, *_) in zip((wang, li, boss), AGENTS):
        await log_in(page, base_url, username)
    await expect(boss.get_by_test_id("stats")).to_be_visible()
    await expect(wang.get_by_test_id("stats")).to_be_hidden()  # agents get no overview

    # The customer opens the link from the app and talks to the bot until it hands over.
    await customer.goto(f"{base_url}/chat?t={issue('C0001', bot_stack.settings.secret_key)}")
    await expect(customer.get_by_test_id("msg-bot").first).to_contain_text("张**")
    await say(customer, "是我")
    await expect(said(customer, "msg-bot", "五万元")).to_have_count(1)
    await say(customer, "我想申请")
    await expect(customer.get_by_test_id("chat-state")).to_have_text("正在为您转接客户经理…")
    conversation_id = await customer.evaluate("document.body.dataset.conversationId")
    ticket_id = ticket_of(bot_stack, conversation_id).id

    # The ticket appears live (no reload) in both JT consoles and the supervisor's, masked.
    item = f'[data-testid="queue-item"][data-ticket-id="{ticket_id}"]'
    for page in (wang, li, boss):
        await expect(page.locator(item)).to_be_visible()
    queued = wang.locator(item)
    for shown in ("张**", "金堂县", "在线", "邮享贷", "5万元", "3.6% – 7.2%", "客户要求转人工"):
        await expect(queued).to_contain_text(shown)
    ticking = re.compile(r"等待 00:(0[1-9]|[1-5]\d)")  # counts up in the page
    await expect(queued.get_by_test_id("wait")).to_have_text(ticking)
    await expect(boss.get_by_test_id("stat-waiting")).to_have_text(re.compile(r"[1-9]\d*"))
    li_tap.hold_from_server = lambda frame: (
        frame.get("type") == "ticket_gone" and frame.get("id") == ticket_id
        or frame.get("type") == "ticket" and frame["ticket"]["id"] == ticket_id)

    # 小王 opens it: the bot's transcript, then claims it and sees the customer unmasked.
    await queued.click()
    conversation = wang.get_by_test_id("conversation")
    await expect(said(conversation, "transcript-line", "我想申请")).to_have_count(1)
    await wang.get_by_test_id("claim").click()
    await expect(wang.get_by_test_id("detail-name")).to_have_text("张伟")
    await expect(wang.get_by_test_id("detail-phone")).to_have_text("13800138001")
    await expect(wang.get_by_test_id("claim")).to_be_hidden()
    await expect(customer.get_by_test_id("chat-state")).to_have_text("客户经理已接入")
    await expect(said(customer, "msg-system", "小王")).to_have_count(1)

    # They talk: Enter sends the agent's reply; the customer's answer shows in the console live.
    hello = "您好，我是金堂县支行客户经理小王"
    await wang.get_by_test_id("reply-text").fill(hello)
    await wang.get_by_test_id("reply-text").press("Enter")
    await expect(bubbles(customer, "msg-agent")).to_have_text([hello])
    await expect(wang.get_by_test_id("reply-text")).to_have_value("")
    await say(customer, "好的，需要带什么材料？")
    await expect(said(conversation, "live-message", "需要带什么材料")).to_have_count(1)
    await expect(customer.locator(".msg.pending")).to_have_count(0)

    # 小李's console still offers the ticket; claiming it says clearly that it is taken.
    await expect(li.locator(item)).to_be_visible()
    await li.locator(item).click()
    await li.get_by_test_id("claim").click()
    await expect(li.get_by_test_id("claim-error")).to_have_text("该工单已被其他客户经理领取")
    await expect(li.get_by_test_id("claim")).to_be_hidden()
    await expect(li.locator(item)).to_have_count(0)  # gone from the queue, the error stays
    taken = ticket_of(bot_stack, conversation_id)
    assert (taken.status, taken.claimed_by) == ("connected", agent_id(bot_stack, "pw_jt_wang"))
    await expect(wang.get_by_test_id("detail-name")).to_have_text("张伟")  # still 小王's

    # The supervisor sees it being served by someone else, masked, with no claim button.
    await boss.locator(item).click()
    await expect(boss.get_by_test_id("detail-status")).to_have_text("已被其他客户经理领取")
    await expect(boss.get_by_test_id("detail-name")).to_have_text("张**")
    await expect(boss.get_by_test_id("claim")).to_be_hidden()
    await expect(said(boss, "live-message", "需要带什么材料")).to_have_count(1)
    await expect(boss.get_by_test_id("stat-with-agents")).to_have_text(re.compile(r"[1-9]\d*"))

    await shoot(customer, "widget-with-agent")
    await shoot(wang, "console-agent-claimed")
    await shoot(li, "console-agent-claim-refused")
    await shoot(boss, "console-supervisor")

    # 小王 closes the ticket; the customer is told and is back with the bot.
    await wang.get_by_test_id("close-outcome").select_option("applied")
    await wang.get_by_test_id("close-note").fill("客户明天到网点办理")
    await wang.get_by_test_id("close-submit").click()
    await expect(wang.get_by_test_id("final-note")).to_have_text("服务已结束：客户已申请")
    await expect(customer.get_by_test_id("chat-state")).to_be_hidden()
    await expect(said(customer, "msg-system", "人工服务已结束")).to_have_count(1)
    assert ticket_of(bot_stack, conversation_id).agent_outcome == "applied"

    for context in (customer_ctx, wang_ctx, li_ctx, boss_ctx):
        await context.close()


async def test_the_widget_survives_a_dropped_connection_and_a_reload(
    browser, base_url, bot_stack
):
    tap = SocketTap()
    context, page = await open_page(browser, PHONE, tap, "/ws/widget")
    await page.goto(f"{base_url}/chat?t={issue('C0003', bot_stack.settings.secret_key)}")
    await expect(page.get_by_test_id("msg-bot").first).to_contain_text("王**")
    await say(page, "是我")
    await expect(said(page, "msg-bot", "十万元")).to_have_count(1)

    # The network drops just as the customer sends: the message never reached the server.
    tap.hold_from_page = lambda frame: frame.get("type") == "message"
    await say(page, "利率是多少")
    await expect(page.locator(".msg.pending")).to_have_count(1)
    await tap.drop()
    tap.hold_from_page = lambda frame: False
    # The page reconnects by itself, resends with the same client id, and the bot answers.
    await expect(page.locator(".msg.pending")).to_have_count(0)
    await expect(bubbles(page, "msg-customer")).to_have_text(["是我", "利率是多少"])
    await expect(said(page, "msg-bot", "按日计息")).to_have_count(1)
    assert len(tap.routes) == 2 and [f["text"] for f in tap.held_from_page] == ["利率是多少"]
    first, again = (f for f in tap.from_page if f["type"] == "hello")
    conversation_id = await page.evaluate("document.body.dataset.conversationId")
    assert "conversation_id" not in first and again["conversation_id"] == conversation_id
    assert again["after"] > 0  # only what it missed
    (held,) = tap.held_from_page
    after_drop = tap.from_page[tap.from_page.index(again):]
    (resent,) = (f for f in after_drop if f["type"] == "message")
    assert resent == held  # the same client id: stored once whatever reached the server
    before = await settled(page)
    await shoot(page, "widget-after-reconnect")

    # A reload replays the whole conversation from the server, once.
    await page.reload()
    await expect(bubbles(page, "msg-customer")).to_have_text(["是我", "利率是多少"])
    await expect(said(page, "msg-bot", "按日计息")).to_have_count(1)
    await expect(page.locator("#log .msg")).to_have_count(len(before))
    assert await all_messages(page) == before
    await expect(page.get_by_test_id("chat-error")).to_be_hidden()
    await context.close()


async def test_a_forged_link_shows_a_clear_error(browser, base_url):
    context, page = await open_page(browser, PHONE)
    await page.goto(f"{base_url}/chat?t=e30.forged-signature")
    invalid = "链接无效或已过期，请从App重新打开"
    await expect(page.get_by_test_id("chat-error")).to_have_text(invalid)
    await expect(page.get_by_test_id("chat-text")).to_be_disabled()
    await shoot(page, "widget-invalid-link")
    await context.close()


async def test_the_console_shows_a_phone_transfer_and_offers_no_claim(bot_stack, base_url, browser):
    from handoff.sla import SlaPolicy
    from persistence import store

    now = utcnow()
    with session_scope(bot_stack.engine) as session:
        offer = store.get_customer_offer(session, "C0001")
        ticket_id = handoffs.create_ticket(
            session, conversation_id=f"call-browser-{now.timestamp()}", customer_id="C0001",
            offer_id=offer.offer_id, channel="voice", reason="accepted_offer", transcript=[],
            intents=["request_handoff"], now=now)
        tickets.record_transfer(session, ticket_id, mode="refer", target="sip:agents@pbx.bank.local",
                                status="accepted", detail="200 OK", at=now, callback_promised=False,
                                policy=SlaPolicy())
    context, page = await open_page(browser, DESKTOP)
    try:
        await log_in(page, base_url, "pw_boss")
        await page.locator(f'[data-ticket-id="{ticket_id}"]').first.click()
        await expect(page.get_by_test_id("detail-transfer")).to_contain_text("sip:agents@pbx.bank.local")
        await expect(page.get_by_test_id("detail-transfer")).to_contain_text("已接通")
        await expect(page.get_by_test_id("detail-status")).to_contain_text("服务中")
        await expect(page.get_by_test_id("claim")).to_be_hidden()
        await shoot(page, "console-phone-transfer")
    finally:
        await context.close()
