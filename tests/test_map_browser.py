"""The marketing map in a real browser (Debian's Chromium, driven by Playwright) against the
real app, with every request that is not to this app's own port blocked: a branch manager
logs in, the map draws the bundled county boundaries with the vendored ECharts and plots as
many points as the API gives, a status filter hides a status, and a click on a point (found
through ECharts' own ``convertToPixel``) opens that customer's panel with the masked name and
the offer; an administrator picks another branch and the map follows. No request leaves the
machine. Screenshot: ``test-artifacts/map-panel.png``.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from playwright.async_api import Page, Request, Route, expect

from core.clock import utcnow
from core.settings import PROJECT_ROOT
from offercall.web.app import init_app
from outbound.whitelist import import_whitelist_file
from persistence.branches import load_branches
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from tests.conftest import AGENT_PASSWORD
from tests.stack import free_port, stack_settings
from tests.test_browser import ARTIFACTS, DESKTOP, browser, open_page  # noqa: F401  (a fixture)
from tests.test_campaign_api import add_staff
from tests.test_leads_api import open_lead
from tests.test_map_api import ACCOUNTS, add_map_customers

expect.set_options(timeout=15_000)

PLOTTED = """() => echarts.getInstanceByDom(document.getElementById("map")).getOption().series
    .reduce((n, s) => n + s.data.length, 0)"""
PIXELS = """() => {
    const chart = echarts.getInstanceByDom(document.getElementById("map"));
    return chart.getOption().series.flatMap((s, i) => s.data.map((d) => ({
        id: d.customer_id, at: chart.convertToPixel({seriesIndex: i}, d.value)})));
}"""


@pytest.fixture
async def base_url(tmp_path) -> AsyncIterator[str]:
    """The app on a localhost port over a fresh SQLite database: the sample whitelist, the
    branches, the map tests' accounts and customers, and two of 金堂's leads (C0001's claim
    deadline passed, C0007's not)."""
    url = f"sqlite:///{tmp_path / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    now = utcnow()
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv", today=now.date())
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    add_staff(engine, ACCOUNTS)
    add_map_customers(engine)
    open_lead(engine, "C0001", now - timedelta(days=3))
    open_lead(engine, "C0007", now)
    runner = web.AppRunner(init_app(stack_settings(tmp_path / "var", url)))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
    engine.dispose()


async def log_in(page: Page, base_url: str, username: str) -> None:
    """Opens the map, is sent to log in, logs in and is back on the map, drawn."""
    await page.goto(f"{base_url}/workspace/map")
    await expect(page).to_have_url(re.compile(r"/workspace/login\?next="))
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(AGENT_PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(f"{base_url}/workspace/map")
    await expect(page.get_by_test_id("map")).to_have_attribute("data-state", "ready")


def loneliest(points: list[dict], width: float, height: float) -> dict:
    """The plotted point furthest from any other (a click there hits it alone), well inside
    the map."""
    inside = [p for p in points if 20 < p["at"][0] < width - 20 and 20 < p["at"][1] < height - 20]
    assert inside, points

    def room(p: dict) -> float:
        return min((math.dist(p["at"], q["at"]) for q in points if q is not p), default=1e9)

    return max(inside, key=room)


async def test_the_map_draws_offline_plots_the_branch_and_a_click_opens_the_customer(
        browser, base_url):  # noqa: F811
    own = urlsplit(base_url).netloc
    elsewhere: list[str] = []

    async def only_this_app(route: Route, request: Request) -> None:
        if urlsplit(request.url).netloc == own:
            await route.continue_()
        else:
            elsewhere.append(request.url)
            await route.abort("blockedbyclient")

    context, page = await open_page(browser, DESKTOP)
    await context.route("**/*", only_this_app)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    await log_in(page, base_url, "jt_mgr")
    await expect(page.locator("header.top nav a[aria-current=page]")).to_have_text("营销地图")

    api = await page.evaluate("() => fetch('/api/map').then((r) => r.json())")
    assert api["branch"]["id"] == "JT" and len(api["points"]) == 5
    assert await page.evaluate(PLOTTED) == len(api["points"])
    regions = await page.evaluate("""() => echarts.getInstanceByDom(document.getElementById("map"))
        .getModel().getComponent("geo").coordinateSystem.regions.length""")
    assert regions == 183  # the bundled counties, drawn
    await expect(page.get_by_test_id("map")).to_have_attribute("data-points", "5")

    # A status filter hides its points, and brings them back.
    customers = sum(point["status"] == "customer" for point in api["points"])
    await page.get_by_test_id("status-customer").uncheck()
    assert await page.evaluate(PLOTTED) == len(api["points"]) - customers
    await page.get_by_test_id("status-customer").check()
    assert await page.evaluate(PLOTTED) == len(api["points"])

    # A click on a point opens that customer's panel.
    box = await page.get_by_test_id("map").bounding_box()
    chosen = loneliest(await page.evaluate(PIXELS), box["width"], box["height"])
    point = next(p for p in api["points"] if p["customer_id"] == chosen["id"])
    await page.mouse.click(box["x"] + chosen["at"][0], box["y"] + chosen["at"][1])
    panel = page.get_by_test_id("map-panel")
    await expect(panel).to_have_attribute("data-customer", point["customer_id"])
    await expect(page.get_by_test_id("panel-name")).to_have_text(
        f"{point['name']} {point['phone']}")
    assert "**" in point["name"] and "****" in point["phone"]
    detail = await page.evaluate(
        f"() => fetch('/api/map/customers/{point['customer_id']}').then((r) => r.json())")
    offer = page.get_by_test_id("panel-offer")
    await expect(offer).to_contain_text(detail["offer"]["product"])
    await expect(offer).to_contain_text(f"{detail['offer']['amount_yuan']:,} 元")
    await expect(page.get_by_test_id("panel-customer")).to_contain_text(
        detail["customer"]["address"])
    await page.mouse.move(box["x"] + 5, box["y"] + 5)  # the tooltip off the picture
    await page.screenshot(path=str(ARTIFACTS / "map-panel.png"), animations="disabled")

    # An administrator picks among the branches; the map follows the pick.
    admin = await context.browser.new_context(**DESKTOP)
    await admin.route("**/*", only_this_app)
    other = await admin.new_page()
    other.on("request", lambda request: requested.append(request.url))
    await log_in(other, base_url, "root")
    picker = other.get_by_test_id("branch-picker")
    await expect(picker.locator("option")).to_have_count(5)
    await expect(picker).to_have_value("CD")
    await expect(other.get_by_test_id("map")).to_have_attribute("data-points", "2")
    await picker.select_option("JT")
    await expect(other.get_by_test_id("map")).to_have_attribute("data-points", "5")
    await expect(other).to_have_url(f"{base_url}/workspace/map?branch=JT")
    await admin.close()

    assert elsewhere == [], f"requests beyond the app were attempted: {elsewhere}"
    assert all(urlsplit(url).netloc == own for url in requested if url.startswith("http"))
    assert any(url.endswith("/map-assets/vendor/echarts/echarts.min.js") for url in requested)
    assert any(url.endswith("/map-assets/counties.geojson") for url in requested)
    await context.close()
