"""The campaign managers' workspace in a real browser (Debian's Chromium, driven by
Playwright) against the real app, the real bot and an in-process dialer worker: a manager
uploads a whitelist with bad rows, confirms it, creates a campaign over those customers,
starts it and watches the funnel move as the simulated calls end (pushed, not polled),
pauses it, reads the audit trail and a call's transcript; an agent is refused.

Screenshots of every page go to ``test-artifacts/workspace-*.png``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, expect
from sqlalchemy import select

from core.clock import utcnow
from core.settings import PROJECT_ROOT
from handoff import agents
from offercall.call_placing import CallPlacing
from offercall.web.app import init_app
from offercall.worker import Worker
from outbound import campaigns
from outbound.simulated_network import Persona, Personas
from outbound.whitelist import COLUMNS
from persistence import branches
from persistence.engine import session_scope
from persistence.schema import Customer
from tests.stack import free_port
from tests.test_browser import ARTIFACTS, DESKTOP, browser, open_page  # noqa: F401  (a fixture)

pytestmark = pytest.mark.model

PASSWORD = "workspace-pass-2026"
MANAGER, AGENT = "ws_mgr", "ws_agent"
RUN = uuid.uuid4().hex[:6]
"""This run's mark on what it makes in the session's shared database."""
CAMPAIGN_PREFIX = "ws-"
SEGMENT = f"浏览器测试客群{RUN}"

expect.set_options(timeout=20_000)


def whitelist_csv() -> tuple[bytes, list[str]]:
    """Four good customers (lines 2, 3, 5, 7) and two bad rows: line 4's phone is a digit
    short, line 6 has no amount. Returns the file and the good customers' ids."""
    phone = lambda n: f"139{int(RUN, 16) % 10**7:07d}{n}"  # noqa: E731  (this run's numbers)
    row = lambda n, phone_no, amount: [  # noqa: E731
        f"WS{RUN}{n}", f"测试客户{n}", phone_no, "金堂县", SEGMENT, "邮享贷", amount,
        "3.6", "7.2", "12", "2099-12-31", "1", "M"]
    rows = [row(1, phone(1), "50000"), row(2, phone(2), "30000"),
            row(3, phone(3)[:-1], "50000"),  # line 4: ten digits
            row(4, phone(4), "80000"),
            row(5, phone(5), ""),  # line 6: no amount
            row(6, phone(6), "20000")]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[*COLUMNS, "gender"], *rows])
    return out.getvalue().encode("utf-8"), [f"WS{RUN}{n}" for n in (1, 2, 4, 6)]


@pytest.fixture
async def base_url(bot_stack) -> AsyncIterator[str]:
    """The real app on a real localhost port, with a campaign manager and an agent."""
    with session_scope(bot_stack.engine) as session:
        branches.load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
        known = {account.username for account in agents.all_accounts(session, utcnow())}
        for username, role, branch in [(MANAGER, "campaign_manager", None), (AGENT, "agent", "JT")]:
            if username not in known:
                agents.add_agent(session, username=username, password=PASSWORD,
                                 display_name={"ws_mgr": "周经理", "ws_agent": "小陈"}[username],
                                 role=role, branch_id=branch, products=["*"], now=utcnow())
    runner = web.AppRunner(init_app(bot_stack.settings))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


class _OnlyThisTests:
    """The worker's placing, for this test's campaigns only: the session's database is
    shared, and a campaign another test left running is not this test's to dial."""

    def __init__(self, placing: CallPlacing) -> None:
        self.placing = placing

    async def dialer(self, campaign: campaigns.CampaignInfo, **options: Any):
        if not campaign.id.startswith(CAMPAIGN_PREFIX + RUN):
            raise campaigns.CampaignError(f"{campaign.id} is not this test's campaign")
        return await self.placing.dialer(campaign, **options)


@pytest.fixture
async def worker(bot_stack) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """The always-on scheduler in this process and event loop, with simulated customers who
    confirm who they are and decline (the last two: the wrong person, a shorter call, so the
    calls in flight when the test pauses end sooner). Its voice warms while the manager works
    in the browser; yields ``warm()``, which returns once it is dialling (or raises why not)."""
    wrong = (Persona(script=("不是，你打错了",)),)
    personas = Personas(by_customer={f"WS{RUN}4": wrong, f"WS{RUN}6": wrong},
                        default=Persona(script=("是我", "不用了，谢谢")))
    ready, stop = asyncio.Event(), asyncio.Event()

    async def run() -> None:
        async with CallPlacing(bot_stack.settings, bot_stack.engine, personas=personas,
                               sweep=False) as placing:
            ready.set()
            await Worker(bot_stack.engine, _OnlyThisTests(placing), poll_s=0.2,
                         dialer_poll_s=0.2).run(stop)

    task = asyncio.create_task(run())

    async def warm() -> None:
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({waiting, task}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done():
            task.result()  # raises what stopped it
            pytest.fail("the worker ended before it was ready")
        assert ready.is_set(), "the worker's voice did not warm within 2 minutes"

    yield warm
    stop.set()
    # The campaign is paused by now and nothing after this test dials it: the calls still in
    # flight (in real time, 10 s and more) are hung up rather than waited for.
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


def segment_customers(engine) -> list[str]:
    """The customers of this run's whitelist segment in the database."""
    with session_scope(engine) as session:
        return sorted(session.execute(
            select(Customer.customer_id).where(Customer.segment == SEGMENT)).scalars())


async def shoot(page: Page, name: str) -> None:
    """A full-page screenshot with the bars' and progress' transitions finished."""
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True,
                          animations="disabled")


async def log_in(page: Page, username: str) -> None:
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()


async def test_a_manager_imports_a_whitelist_runs_a_campaign_live_and_an_agent_is_refused(
        browser, base_url, worker, bot_stack):  # noqa: F811
    data, customers = whitelist_csv()
    campaign_id = f"{CAMPAIGN_PREFIX}{RUN}-yxd"
    context, page = await open_page(browser, DESKTOP)
    campaign_reads: list[str] = []
    page.on("request", lambda request: campaign_reads.append(request.url)
            if request.url.endswith(f"/api/campaigns/{campaign_id}") else None)

    # Not logged in: the workspace sends the manager to log in, then back.
    await page.goto(f"{base_url}/workspace")
    await expect(page).to_have_url(re.compile(r"/workspace/login\?next=(%2F|/)workspace$"))
    await shoot(page, "workspace-login")
    await log_in(page, MANAGER)
    await expect(page).to_have_url(f"{base_url}/workspace")
    await expect(page.get_by_test_id("who")).to_have_text("周经理（营销活动经理）")
    await expect(page.get_by_test_id("new-campaign")).to_be_visible()
    await expect(page.get_by_role("heading", name="营销活动", exact=True)).to_be_visible()

    # The whitelist: checked (progress pushed), the bad rows listed by line, loaded on confirm.
    await page.get_by_test_id("import-whitelist").click()
    await page.get_by_label("白名单文件").set_input_files(
        files=[{"name": "十二月名单.csv", "mimeType": "text/csv", "buffer": data}])
    await expect(page.get_by_test_id("file-chosen")).to_contain_text("十二月名单.csv")
    await page.get_by_role("button", name="上传并校验").click()
    await expect(page.get_by_test_id("upload-state")).to_have_attribute("data-state", "parsed")
    await expect(page.get_by_test_id("progress-text")).to_have_text("6 / 6 行")
    await expect(page.get_by_test_id("good-count")).to_have_text("4")
    await expect(page.get_by_test_id("bad-count")).to_have_text("2")
    bad = page.get_by_test_id("bad-row")
    await expect(bad).to_have_count(2)
    await expect(bad.nth(0)).to_contain_text("not a mainland mobile")
    await expect(bad.nth(1)).to_contain_text("amount")
    assert [await row.get_attribute("data-line") for row in await bad.all()] == ["4", "6"]
    await expect(page.get_by_test_id("errors-csv")).to_have_attribute(
        "href", re.compile(r"^/api/whitelists/[0-9a-f]{32}/errors\.csv$"))
    await shoot(page, "workspace-whitelist-checked")
    assert segment_customers(bot_stack.engine) == []  # checked, not loaded
    await page.get_by_role("button", name="确认导入").click()
    await expect(page.get_by_test_id("loaded")).to_contain_text("新增 4 位")
    await expect(page.get_by_test_id("upload-state")).to_have_attribute("data-state", "loaded")
    assert segment_customers(bot_stack.engine) == customers
    await shoot(page, "workspace-whitelist-loaded")

    # The campaign: a refusal from the server is shown beside the form, then it is made.
    await page.get_by_test_id("to-new-campaign").click()
    await expect(page.get_by_test_id("campaign-form")).to_be_visible()
    await page.get_by_label("活动编号 ID").fill(campaign_id)
    await page.get_by_label("活动名称").fill("十二月邮享贷预授信（测试）")
    await page.get_by_label("外呼线路").select_option("simulated")
    await page.get_by_label("产品").fill("邮享贷")
    await page.get_by_label("客群", exact=True).fill(SEGMENT)
    await page.get_by_label("每日开始时间").fill("00:00")
    await page.get_by_label("每日结束时间").fill("23:59:59")
    await page.get_by_label("最大并发通话数").fill("64")
    await page.get_by_label("两次拨打最短间隔（秒）").fill("0")
    await page.get_by_label("每位客户最多拨打次数").fill("1")
    await page.get_by_label("有空闲坐席时才拨打（坐席联动 agent gating）").uncheck()
    await page.get_by_label("模拟客户语速倍数").fill("3")
    await page.get_by_role("button", name="创建活动").click()
    await expect(page.get_by_test_id("form-error")).to_contain_text(
        "max_concurrency 64 is more than the")
    await expect(page.get_by_label("最大并发通话数")).to_have_attribute("aria-invalid", "true")
    await shoot(page, "workspace-campaign-new-refused")
    await page.get_by_label("最大并发通话数").fill("2")
    await page.get_by_role("button", name="创建活动").click()

    # Its live page: a draft with nobody dialled; started, the pushed frames move the funnel.
    await expect(page).to_have_url(f"{base_url}/workspace/campaigns/{campaign_id}")
    status = page.get_by_test_id("campaign-status")
    await expect(status).to_have_text("草稿")
    await expect(page.get_by_test_id("conn-status")).to_contain_text("实时")
    await expect(page.get_by_test_id("stat-targets")).to_have_text("4")
    await expect(page.get_by_test_id("stat-dialled")).to_have_text("0")
    await expect(page.get_by_test_id("funnel-dialed")).to_have_text("0")
    await expect(page.get_by_test_id("cmd-pause")).to_be_disabled()
    settings = page.get_by_test_id("settings")
    for shown in ("00:00 – 23:59:59（Asia/Shanghai）", "2 路", "A 50%，B 50%", "否", "× 3"):
        await expect(settings).to_contain_text(shown)
    await shoot(page, "workspace-campaign-draft")
    await worker()
    await page.get_by_test_id("cmd-start").click()
    await expect(status).to_have_text("进行中")
    some = re.compile(r"^[1-9]\d*$")
    await expect(page.get_by_test_id("stat-dialled")).to_have_text(some)
    await expect(page.get_by_test_id("stat-in-flight")).to_have_text(re.compile(r"^[12]$"))
    await expect(page.get_by_test_id("stat-finished")).to_have_text(some, timeout=60_000)
    await expect(page.get_by_test_id("funnel-dialed")).to_have_text(some)
    await expect(page.get_by_test_id("funnel-answered")).to_have_text(some)
    await expect(page.get_by_test_id("outcomes").locator(".chip")).not_to_have_count(0)
    width = await page.get_by_test_id("funnel-bar-dialed").evaluate("bar => bar.style.width")
    assert width == "100%"
    await shoot(page, "workspace-campaign-live")
    assert len(campaign_reads) == 1, campaign_reads  # the page read it once; the rest was pushed

    # Paused: the status says so, resume is offered, and the trail has who did what.
    await page.get_by_test_id("cmd-pause").click()
    await expect(status).to_have_text("已暂停")
    await expect(page.get_by_test_id("cmd-resume")).to_be_enabled()
    await expect(page.get_by_test_id("cmd-pause")).to_be_disabled()
    trail = page.get_by_test_id("audit-row")
    await expect(trail).to_have_count(3)
    assert [await row.get_attribute("data-action") for row in await trail.all()] == [
        "campaign_paused", "campaign_started", "campaign_created"]
    for row in await trail.all():
        await expect(row).to_contain_text("ws_mgr")
        await expect(row).to_contain_text("营销活动经理")
    await shoot(page, "workspace-campaign-paused")
    # A command the lifecycle forbids is disabled; forced anyway, the API's reason shows.
    await expect(page.get_by_test_id("cmd-start")).to_be_disabled()
    await page.get_by_test_id("cmd-start").evaluate(
        "button => { button.disabled = false; button.click(); }")
    await expect(page.get_by_test_id("command-error")).to_contain_text(
        "cannot start the campaign: it is paused")
    await expect(page.get_by_test_id("cmd-start")).to_be_disabled()
    await expect(status).to_have_text("已暂停")
    await expect(trail).to_have_count(3)

    # The call log: this campaign's calls, one call's transcript with intents and its recording.
    await page.goto(f"{base_url}/workspace/calls?campaign={campaign_id}")
    finished = page.get_by_test_id("call-row").filter(has_text=re.compile("不感兴趣|非本人")).first
    await expect(finished).to_be_visible()
    listed_text = await page.get_by_test_id("call-list").inner_text()
    assert "139****" in listed_text and not re.search(r"\d{11}", listed_text)  # masked
    await finished.click()
    transcript = page.get_by_test_id("transcript")
    await expect(transcript.locator(".turn.customer")).not_to_have_count(0)
    await expect(transcript.locator(".turn.bot")).not_to_have_count(0)
    await expect(transcript.get_by_test_id("intent").first).to_be_visible()
    recording = page.get_by_test_id("recording")
    await expect(recording).to_be_visible()
    assert await recording.evaluate(
        "audio => fetch(audio.src).then(r => r.headers.get('content-type'))") == "audio/wav"
    await shoot(page, "workspace-calls")

    # The list shows the campaign with its counters.
    await page.goto(f"{base_url}/workspace")
    listed = page.locator(f'[data-testid="campaign-row"][data-campaign-id="{campaign_id}"]')
    await expect(listed).to_contain_text("已暂停")
    await shoot(page, "workspace-campaigns")

    # An agent is refused: the page (403) and the API.
    agent_ctx, agent = await open_page(browser, DESKTOP)
    await agent.goto(f"{base_url}/workspace/login")
    await log_in(agent, AGENT)
    await expect(agent.get_by_test_id("forbidden")).to_be_visible()
    refused = await agent.goto(f"{base_url}/workspace/campaigns/{campaign_id}")
    assert refused is not None and refused.status == 403
    await expect(agent.get_by_test_id("forbidden")).to_contain_text("仅供营销活动经理")
    await expect(agent.get_by_test_id("forbidden-role")).to_have_text("坐席")
    assert await agent.evaluate("fetch('/api/campaigns').then(r => r.status)") == 403
    await shoot(agent, "workspace-forbidden")

    for opened in (context, agent_ctx):
        with contextlib.suppress(Exception):
            await opened.close()
