"""The post-loan alerts page in a real browser (Chromium via Playwright) against the real app:
金堂's account manager sees the alerts their customer's settlements raised, is asked for a
note, acknowledges one with it (stored with the note and who); another account manager sees
none of them; the branch manager sees it acknowledged, and the two left past their deadline
escalated to them and highlighted. Screenshots: ``test-artifacts/alerts-*.png``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from playwright.async_api import expect
from sqlalchemy import select

from core.settings import PROJECT_ROOT
from core.vocabulary import AlertRule, AlertStatus, AuditAction
from handoff.api import HANDOFF
from lending import alerts, settlements
from lending.alert_policy import AlertPolicy
from offercall.web.app import init_app
from outbound.whitelist import import_whitelist_file
from persistence.audit import Actor
from persistence.branches import load_branches
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import AuditEntry, PostLoanAlert
from tests.conftest import QUEUE_NOW
from tests.stack import free_port, stack_settings
from tests.test_alerts import T0, history, write
from tests.test_browser import ARTIFACTS, DESKTOP, browser, open_page  # noqa: F401  (a fixture)
from tests.test_campaign_api import add_staff
from tests.test_lead_page_browser import log_in
from tests.test_leads_api import Clock, open_lead
from tests.test_map_api import ACCOUNTS

expect.set_options(timeout=15_000)
LATER = T0 + timedelta(hours=50)
"""The app's clock: two days and two hours after the alerts were raised (past their deadline)."""


@pytest.fixture
async def app(tmp_path) -> AsyncIterator[tuple[str, object, dict[str, int]]]:
    """The app over a fresh SQLite database: the sample whitelist, the branches, 金堂's staff,
    C0001 a lead given to jt_am, and C0001's settlements, whose three alerts were raised at
    T0 and escalated to jt_mgr at LATER."""
    url = f"sqlite:///{tmp_path / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv",
                          today=QUEUE_NOW.date())
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    ids = add_staff(engine, ACCOUNTS)
    assert open_lead(engine, "C0001", T0 - timedelta(days=30)).manager_id == ids["jt_am"]
    settlements.import_file(engine, write(tmp_path / "s.csv", history("C0001", "b")), now=T0,
                            policy=AlertPolicy(), actor=Actor.command_line())
    with session_scope(engine) as session:
        assert len(alerts.escalate_overdue(session, LATER)) == 3
    application = init_app(stack_settings(tmp_path / "var", url))
    runner = web.AppRunner(application)
    await runner.setup()
    application[HANDOFF].clock = Clock(LATER)
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", engine, ids
    await runner.cleanup()
    engine.dispose()


async def test_an_account_manager_acknowledges_an_alert_with_a_note(browser, app):  # noqa: F811
    base_url, engine, ids = app
    with session_scope(engine) as session:
        drop_id = session.execute(select(PostLoanAlert.id).where(
            PostLoanAlert.rule == AlertRule.MONTH_DROP)).scalar_one()

    context, page = await open_page(browser, DESKTOP)
    await log_in(page, base_url, "jt_am", "/workspace/alerts?status=open")
    rows = page.get_by_test_id("alert-row")
    await expect(rows).to_have_count(3)
    drop = page.locator(f"[data-testid=alert-row][data-alert-id='{drop_id}']")
    await expect(drop.get_by_test_id("alert-summary")).to_contain_text("下降 60.0%")
    await expect(drop).to_contain_text("张** 138****8001")  # masked: the page needs no more
    await drop.get_by_test_id("ack-open").click()
    await page.get_by_test_id("ack-submit").click()
    await expect(page.get_by_test_id("ack-error")).to_have_text("请填写处理说明后再确认")
    await page.get_by_test_id("ack-note").fill("已电话联系客户：医院回款周期延长，下月恢复")
    await page.get_by_test_id("ack-submit").click()
    await expect(rows).to_have_count(2)  # the open ones left
    await page.get_by_test_id("status-filter").select_option("all")
    await expect(drop.get_by_test_id("alert-status")).to_have_text("已确认")
    await expect(drop.get_by_test_id("alert-ack")).to_contain_text("医院回款周期延长")
    await page.screenshot(path=str(ARTIFACTS / "alerts-account-manager.png"), full_page=True)
    await context.close()

    with session_scope(engine) as session:
        row = session.get(PostLoanAlert, drop_id)
        assert (row.status, row.acknowledged_by, row.acknowledged_at, row.note) == (
            AlertStatus.ACKNOWLEDGED, ids["jt_am"], LATER,
            "已电话联系客户：医院回款周期延长，下月恢复")
        audited = session.execute(select(AuditEntry.actor).where(
            AuditEntry.action == AuditAction.ALERT_ACKNOWLEDGED)).scalars().all()
        assert audited == ["jt_am"]

    context, page = await open_page(browser, DESKTOP)  # another account manager of 金堂
    await log_in(page, base_url, "jt_am2", "/workspace/alerts?status=all")
    await expect(page.get_by_test_id("no-alerts")).to_be_visible()
    await expect(page.get_by_test_id("alert-row")).to_have_count(0)
    await context.close()

    context, page = await open_page(browser, DESKTOP)
    await log_in(page, base_url, "jt_mgr", "/workspace/alerts?status=all")
    rows = page.get_by_test_id("alert-row")
    await expect(rows).to_have_count(3)
    drop = page.locator(f"[data-testid=alert-row][data-alert-id='{drop_id}']")
    await expect(drop.get_by_test_id("alert-status")).to_have_text("已确认")
    await expect(drop.get_by_test_id("alert-ack")).to_contain_text("jt_am")
    await expect(drop).not_to_have_class("escalated")  # acknowledged: no longer highlighted
    await expect(page.locator("tr.escalated")).to_have_count(2)
    await expect(page.get_by_test_id("escalated-note")).to_contain_text("有 2 条预警逾期未确认")
    await expect(rows.first.get_by_test_id("escalated")).to_have_text("已升级")
    await page.screenshot(path=str(ARTIFACTS / "alerts-branch-manager.png"), full_page=True)
    await context.close()
