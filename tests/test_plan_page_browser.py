"""The contact plan's editor in a real browser (Chromium via Playwright) against the real app
on a fresh SQLite database: a campaign manager builds a plan with three channels (a text with
its template, an app pop-up, a call, with waits; one stop condition left out) on a new
campaign, reorders its steps, is told the server's reason for a wait over 60 days with every
step kept, and saves it; the campaign as stored has exactly that plan and the draft's page
(reloaded) shows it. On the draft's page a second refusal and a change go through the change
API; once started, the plan is shown read-only with the customers waiting at its first step.
Screenshots: ``test-artifacts/plan-*.png``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.settings import PROJECT_ROOT
from offercall.web.app import init_app
from outbound.whitelist import import_whitelist_file
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import Campaign, CampaignTarget
from tests.conftest import AGENT_PASSWORD, QUEUE_NOW
from tests.stack import free_port, stack_settings
from tests.test_browser import ARTIFACTS, DESKTOP, browser, open_page  # noqa: F401  (a fixture)
from tests.test_campaign_api import add_staff

expect.set_options(timeout=15_000)

MANAGER = "plan_mgr"
THREE_CHANNELS = {
    "steps": [{"channel": "sms", "wait_hours": 0, "template": "reminder"},
              {"channel": "popup", "wait_hours": 4},
              {"channel": "call", "wait_hours": 24}],
    "stop_on": ["opt_out", "applied"],
}
"""The plan the manager builds: a reminder text at once, a pop-up four hours on, a call a day
after that; a refusal does not stop it."""


@pytest.fixture
async def app(tmp_path) -> AsyncIterator[tuple[str, Engine]]:
    """The app on a localhost port over a fresh SQLite database with the sample whitelist and
    a campaign manager."""
    url = f"sqlite:///{tmp_path / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv",
                          today=QUEUE_NOW.date())
    add_staff(engine, [(MANAGER, "campaign_manager", None)])
    runner = web.AppRunner(init_app(stack_settings(tmp_path / "var", url)))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", engine
    await runner.cleanup()
    engine.dispose()


def stored(engine: Engine, campaign_id: str) -> dict[str, Any] | None:
    """The campaign's row as the database holds it: its plan and its targets' statuses."""
    with session_scope(engine) as session:
        row = session.get(Campaign, campaign_id)
        if row is None:
            return None
        statuses = session.execute(select(CampaignTarget.status).where(
            CampaignTarget.campaign_id == campaign_id)).scalars().all()
        return {"plan": row.config.get("plan"), "targets": sorted(statuses)}


async def expect_steps(page: Page, channels: list[str], waits: list[tuple[str, str]]) -> None:
    """The editor's steps, in order: their channels and (days, hours) waits."""
    await expect(page.get_by_test_id("plan-step")).to_have_count(len(channels))
    for n, (channel, (days, hours)) in enumerate(zip(channels, waits, strict=True), 1):
        await expect(page.get_by_label(f"第 {n} 步渠道")).to_have_value(channel)
        await expect(page.get_by_label(f"第 {n} 步等待天数")).to_have_value(days)
        await expect(page.get_by_label(f"第 {n} 步等待小时数")).to_have_value(hours)


async def test_a_manager_builds_a_three_channel_plan_the_server_checks_and_stores(
        browser, app):  # noqa: F811
    base_url, engine = app
    campaign_id = f"plan-{uuid.uuid4().hex[:8]}"
    context, page = await open_page(browser, DESKTOP)
    page.on("dialog", lambda dialog: dialog.accept())
    await page.goto(f"{base_url}/workspace/campaigns/new")
    await page.get_by_label("用户名").fill(MANAGER)
    await page.get_by_label("密码").fill(AGENT_PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page.get_by_test_id("campaign-form")).to_be_visible()

    await page.get_by_label("活动编号 ID").fill(campaign_id)
    await page.get_by_label("活动名称").fill("十二月多渠道触达（测试）")
    await page.get_by_label("外呼线路").select_option("simulated")
    await page.get_by_label("指定客户编号（可选）").fill("C0001, C0002")

    # Calls only is the default; the plan: a text, then a call and a pop-up, reordered.
    await expect(page.get_by_test_id("plan-mode-calls")).to_be_checked()
    await expect(page.get_by_test_id("plan-steps")).to_be_hidden()
    await page.get_by_test_id("plan-mode-plan").check()
    await page.get_by_label("第 1 步短信模板").select_option("reminder")
    await expect(page.get_by_test_id("plan-step").first).to_contain_text("即将到期")
    await page.get_by_test_id("add-step").click()
    await page.get_by_label("第 2 步渠道").select_option("call")
    await expect(page.get_by_label("第 2 步短信模板")).to_be_hidden()  # only a text has one
    await page.get_by_test_id("add-step").click()
    await page.get_by_label("第 3 步渠道").select_option("popup")
    await page.get_by_label("第 3 步等待天数").fill("0")
    await page.get_by_label("第 3 步等待小时数").fill("4")
    await page.get_by_label("上移第 3 步").click()
    await page.get_by_test_id("add-step").click()
    await page.get_by_label("删除第 4 步").click()
    opt_out = page.get_by_test_id("plan-stops").get_by_label(re.compile("客户退订"))
    await expect(opt_out).to_be_checked()
    await expect(opt_out).to_be_disabled()
    await page.get_by_test_id("plan-stops").get_by_label(re.compile("客户明确拒绝")).uncheck()

    # A wait over 60 days: the server's reason beside the editor, every step as it was.
    await page.get_by_label("第 3 步等待天数").fill("61")
    await page.get_by_role("button", name="创建活动").click()
    await expect(page.get_by_test_id("plan-error")).to_contain_text(
        "bad contact plan: step 3: a step waits 0 to 60 days")
    await expect(page.get_by_test_id("plan-step").nth(2)).to_have_class(re.compile("invalid"))
    await expect_steps(page, ["sms", "popup", "call"], [("0", "0"), ("0", "4"), ("61", "0")])
    await expect(page.get_by_label("第 1 步短信模板")).to_have_value("reminder")
    await page.screenshot(path=str(ARTIFACTS / "plan-new-refused.png"), full_page=True)
    assert stored(engine, campaign_id) is None

    await page.get_by_label("第 3 步等待天数").fill("1")
    await page.get_by_role("button", name="创建活动").click()
    await expect(page).to_have_url(f"{base_url}/workspace/campaigns/{campaign_id}")
    assert stored(engine, campaign_id) == {"plan": THREE_CHANNELS,
                                          "targets": ["planned", "planned"]}

    # The draft's page shows the plan in its editor, reloaded too.
    for reload in (False, True):
        if reload:
            await page.reload()
        await expect(page.get_by_test_id("plan-mode-plan")).to_be_checked()
        await expect_steps(page, ["sms", "popup", "call"], [("0", "0"), ("0", "4"), ("1", "0")])
        await expect(page.get_by_label("第 1 步短信模板")).to_have_value("reminder")
        refused = page.get_by_test_id("plan-stops").get_by_label(re.compile("客户明确拒绝"))
        await expect(refused).not_to_be_checked()
        await expect(page.get_by_test_id("settings")).to_contain_text("3 步：短信 → App弹窗 → 外呼")
    await page.screenshot(path=str(ARTIFACTS / "plan-draft.png"), full_page=True)

    # Changed on the draft's page: refused with the reason and kept, then saved.
    await page.get_by_label("第 2 步等待小时数").fill("1441")
    await expect(page.get_by_test_id("plan-state")).to_have_text("有未保存的修改")
    await page.get_by_test_id("plan-save").click()
    await expect(page.get_by_test_id("plan-error")).to_contain_text("step 2: a step waits 0 to 60")
    await expect(page.get_by_label("第 2 步等待小时数")).to_have_value("1441")
    assert stored(engine, campaign_id)["plan"] == THREE_CHANNELS
    await page.get_by_label("第 2 步等待小时数").fill("6")
    await page.get_by_test_id("plan-save").click()
    await expect(page.get_by_test_id("plan-state")).to_have_text("已保存")
    await expect(page.get_by_test_id("plan-error")).to_be_hidden()
    changed = {**THREE_CHANNELS, "steps": [THREE_CHANNELS["steps"][0],
                                           {"channel": "popup", "wait_hours": 6},
                                           THREE_CHANNELS["steps"][2]]}
    assert stored(engine, campaign_id)["plan"] == changed

    # Started: read-only, with both customers waiting for the first step.
    await page.get_by_test_id("cmd-start").click()
    await expect(page.get_by_test_id("campaign-status")).to_have_text("进行中")
    await expect(page.get_by_test_id("plan-editor")).to_be_hidden()
    view = page.get_by_test_id("plan-view-step")
    await expect(view).to_have_count(3)
    await expect(view.nth(0)).to_contain_text("短信")
    await expect(view.nth(0)).to_contain_text("到期提醒")
    await expect(view.nth(1)).to_contain_text("上一步后 6小时")
    await expect(view.nth(2)).to_contain_text("上一步后 1天")
    await expect(view.nth(0).get_by_test_id("plan-waiting")).to_have_text("2 位")
    await expect(page.get_by_test_id("plan-view-stops")).to_have_text(
        "停止条件：客户退订或拒绝再联系；客户已申请（要求转人工或申请贷款）")
    await page.screenshot(path=str(ARTIFACTS / "plan-running.png"), full_page=True)
    await context.close()
