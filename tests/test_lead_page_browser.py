"""A lead's page in a real browser (Chromium via Playwright) against the real app: 金堂's
account manager claims the lead, asks for a one-click call (一键外呼) and is told why it cannot
be placed while their account has no phone, then, with one, sees the call asked for; 金堂's
branch manager moves another lead to 营业部 by hand with the reason, recorded in its history,
and is told it is no longer theirs.
The app's clock stands at 10:00 in Shanghai, inside the calling window. Screenshot:
``test-artifacts/lead-click-call.png``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from playwright.async_api import Page, expect
from sqlalchemy import select

from branches import click_calls
from core.settings import PROJECT_ROOT
from handoff.api import HANDOFF
from offercall.web.app import init_app
from outbound.whitelist import import_whitelist_file
from persistence.branches import load_branches
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import Agent, BranchLead, BranchLeadEvent, ClickCall
from tests.conftest import AGENT_PASSWORD, QUEUE_NOW
from tests.stack import free_port, stack_settings
from tests.test_browser import ARTIFACTS, DESKTOP, browser, open_page  # noqa: F401  (a fixture)
from tests.test_campaign_api import add_staff
from tests.test_leads_api import Clock, open_lead
from tests.test_map_api import ACCOUNTS

expect.set_options(timeout=15_000)


@pytest.fixture
async def app(tmp_path) -> AsyncIterator[tuple[str, object, dict[str, int]]]:
    """The app on a localhost port over a fresh SQLite database with the sample whitelist,
    the branches, 金堂's staff, and two of 金堂's leads (C0001 and C0007) given to jt_am."""
    url = f"sqlite:///{tmp_path / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv",
                          today=QUEUE_NOW.date())
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    add_staff(engine, ACCOUNTS)
    opened = QUEUE_NOW - timedelta(hours=1)
    lead_ids = {c: open_lead(engine, c, opened).id for c in ("C0001", "C0007")}
    application = init_app(stack_settings(tmp_path / "var", url))
    runner = web.AppRunner(application)
    await runner.setup()
    application[HANDOFF].clock = Clock(QUEUE_NOW)  # 10:00 in Shanghai
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", engine, lead_ids
    await runner.cleanup()
    engine.dispose()


async def log_in(page: Page, base_url: str, username: str, path: str) -> None:
    await page.goto(f"{base_url}{path}")
    await expect(page).to_have_url(re.compile(r"/workspace/login\?next="))
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(AGENT_PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(f"{base_url}{path}")


async def test_an_account_manager_calls_a_claimed_lead_and_a_branch_manager_moves_one(
        browser, app):  # noqa: F811
    base_url, engine, lead_ids = app
    context, page = await open_page(browser, DESKTOP)
    page.on("dialog", lambda dialog: dialog.accept())
    lead_path = f"/workspace/leads/{lead_ids['C0001']}"
    await log_in(page, base_url, "jt_am", lead_path)

    await expect(page.get_by_test_id("click-call-row")).to_be_hidden()  # not claimed yet
    await expect(page.get_by_test_id("reroute")).to_be_hidden()  # account managers move nothing
    await page.get_by_test_id("step-claim").click()
    await expect(page.get_by_test_id("lead-status")).to_contain_text("已认领")
    await page.get_by_test_id("click-call").click()
    await expect(page.get_by_test_id("click-call-state")).to_contain_text("未能发起外呼")
    with session_scope(engine) as session:
        assert session.execute(select(ClickCall)).first() is None  # refused: nothing written
        account = session.execute(select(Agent).where(Agent.username == "jt_am")).scalar_one()
        click_calls.set_phone(session, account.id, "13980001010")

    await page.get_by_test_id("click-call").click()
    await expect(page.get_by_test_id("click-call-state")).to_have_text("正在发起…")
    await page.screenshot(path=str(ARTIFACTS / "lead-click-call.png"), full_page=True)
    with session_scope(engine) as session:
        [call] = session.execute(select(ClickCall)).scalars().all()
        assert (call.lead_id, call.status) == (lead_ids["C0001"], "requested")
    await context.close()

    context, page = await open_page(browser, DESKTOP)
    page.on("dialog", lambda dialog: dialog.accept())
    other = f"/workspace/leads/{lead_ids['C0007']}"
    await log_in(page, base_url, "jt_mgr", other)
    await expect(page.get_by_test_id("reroute")).to_be_visible()
    await page.get_by_test_id("reroute-submit").click()
    await expect(page.locator("#reroute-error")).to_contain_text("请填写改派原因")
    await page.get_by_test_id("reroute-branch").select_option("CD")
    await page.get_by_test_id("reroute-reason").fill("客户已搬到锦江区")
    await page.get_by_test_id("reroute-submit").click()
    await expect(page.get_by_test_id("load-error")).to_have_text(
        "线索已改派至成都分行营业部，本支行不再跟进。")  # no longer 金堂's to see
    with session_scope(engine) as session:
        assert session.get(BranchLead, lead_ids["C0007"]).branch_id == "CD"
        reasons = session.execute(select(BranchLeadEvent.reason).where(
            BranchLeadEvent.lead_id == lead_ids["C0007"])).scalars().all()
        assert any("人工改派：客户已搬到锦江区" in reason for reason in reasons)
    await context.close()
