"""The workspace pages are checked on the server: nobody logged in is sent to the login
page (asked to come back), an agent gets the refusal page, the campaign managers' roles
get the page, never cached; the login page and the pages' assets are public and hold no data."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from offercall.web.app import init_app
from outbound.web.pages import ASSETS, PAGES
from tests.conftest import AGENT_PASSWORD
from tests.stack import stack_settings
from tests.test_whitelist_api import add_admin

SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
"""The pages' checks are the same on either database."""

PAGE_PATHS = ("/workspace", "/workspace/whitelists/new", "/workspace/campaigns/new",
              "/workspace/campaigns/dec-2026", "/workspace/calls")
ALLOWED = ("mgr", "boss", "jt_mgr", "root")  # campaign manager, supervisor, branch manager, admin


@pytest.fixture
async def client(aiohttp_client, staffed, db_url, tmp_path):
    add_admin(staffed)
    return await aiohttp_client(init_app(stack_settings(tmp_path / "var", db_url)))


async def cookie_of(client, username: str) -> dict[str, str]:
    """The session cookie a browser would send after logging in as ``username``."""
    response = await client.post("/api/staff/login",
                                 json={"username": username, "password": AGENT_PASSWORD})
    assert response.status == 200, await response.text()
    client.session.cookie_jar.clear()  # each request names its session itself
    return {"Cookie": f"oc_staff={response.cookies['oc_staff'].value}"}


@SQLITE
@pytest.mark.parametrize("path", PAGE_PATHS)
async def test_a_page_sends_nobody_to_the_login_page_and_refuses_an_agent(client, path):
    for headers in ({}, {"Cookie": "oc_staff=forged"}):
        anonymous = await client.get(f"{path}?tab=2", headers=headers, allow_redirects=False)
        assert anonymous.status == 302
        target = urlsplit(anonymous.headers["Location"])
        assert target.path == "/workspace/login"
        assert parse_qs(target.query) == {"next": [f"{path}?tab=2"]}
        assert anonymous.headers["Cache-Control"] == "no-store"

    agent = await client.get(path, headers=await cookie_of(client, "jt"), allow_redirects=False)
    page = await agent.text()
    assert agent.status == 403 and agent.content_type == "text/html"
    assert "营销活动工作台仅供" in page and "坐席" in page and 'href="/console"' in page
    assert agent.headers["Cache-Control"] == "no-store"
    api = await client.get("/api/campaigns", headers=await cookie_of(client, "jt"))
    assert api.status == 403  # the API refuses them as well


@SQLITE
@pytest.mark.parametrize("path", PAGE_PATHS)
async def test_a_page_is_served_uncached_to_each_campaign_managers_role(client, path):
    for username in ALLOWED:
        bearer = await client.post("/api/staff/login",
                                   json={"username": username, "password": AGENT_PASSWORD})
        token = (await bearer.json())["token"]
        for headers in (await cookie_of(client, username), {"Authorization": f"Bearer {token}"}):
            answer = await client.get(path, headers=headers, allow_redirects=False)
            assert answer.status == 200, (username, path)
            assert answer.content_type == "text/html"
            assert answer.headers["Cache-Control"] == "no-store"
            assert '<html lang="zh-CN">' in await answer.text()


@SQLITE
async def test_the_login_page_and_the_assets_are_public_and_a_bad_campaign_id_is_no_page(client):
    login = await client.get("/workspace/login?next=/workspace/calls")
    assert login.status == 200 and login.headers["Cache-Control"] == "no-store"
    assert 'for="login-username"' in await login.text()
    for asset in sorted(ASSETS.iterdir()):
        served = await client.get(f"/workspace/static/{asset.name}")
        assert served.status == 200, asset.name
    assert (await client.get("/workspace/static/../pages/campaign.html")).status in (403, 404)
    assert (await client.get("/workspace/static/")).status in (403, 404)  # no listing

    mgr = await cookie_of(client, "mgr")
    assert (await client.get("/workspace/campaigns/..%2F..%2Fetc", headers=mgr)).status == 404
    assert (await client.get("/workspace/campaigns/bad%20id", headers=mgr)).status == 404
    assert (await client.get("/workspace/campaigns/bad%20id", allow_redirects=False)).status == 302


def test_every_page_loads_its_own_script_and_the_shared_stylesheet():
    """The pages' HTML names assets that exist (a typo would only show in a browser)."""
    names = {asset.name for asset in ASSETS.iterdir()}
    for page in PAGES.iterdir():
        html = page.read_text(encoding="utf-8")
        linked = set(re.findall(r'/workspace/static/([\w.]+)', html))
        assert "workspace.css" in linked and linked <= names, page.name
        for script in re.findall(r'src="/workspace/static/([\w.]+)"', html):
            imported = set(re.findall(r'from "\./([\w.]+)"', (ASSETS / script).read_text("utf-8")))
            assert imported <= names, script
