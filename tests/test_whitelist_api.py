"""The whitelist upload API, on SQLite and real PostgreSQL: who may upload, read and
confirm; bad rows reported and downloadable; nothing loaded until confirmed; XLSX; broken
files; the size limit; progress over a websocket; and a restart mid-job."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import socket
from datetime import date, datetime
from pathlib import Path
from unittest import mock

import pytest
from aiohttp import FormData, WSServerHandshakeError
from sqlalchemy import func, select

from core.access import ROLE_PERMISSIONS, Permission
from core.owners import Owner, is_orphaned
from core.vocabulary import AuditAction, Role
from handoff.agents import add_agent
from offercall.web.app import init_app
from outbound.web.whitelist_api import WHITELIST_UPLOADS
from outbound.whitelist import COLUMNS
from persistence import audit
from persistence.engine import session_scope
from persistence.schema import Customer
from tests.conftest import AGENT_PASSWORD, QUEUE_NOW, _one_hash
from tests.stack import stack_settings

ACCOUNTS = {Role.ADMIN: "root", Role.CAMPAIGN_MANAGER: "mgr", Role.SUPERVISOR: "boss",
            Role.BRANCH_MANAGER: "jt_mgr", Role.ACCOUNT_MANAGER: "jt_am", Role.AGENT: "jt"}
"""One account of each role (the ``staffed`` fixture's, an administrator and an account manager)."""
HEADER = [*COLUMNS, "gender"]
GOOD = [row.split(",") for row in (
    "W0001,钱多多,13911112222,金堂县,农户,邮享贷,50000,3.6,7.2,12,2099-12-31,1,M",
    "W0002,孙小美,15822223333,双流区,医保客户,医保贷,30000,3.85,6.5,12,2099-12-31,是,女",
    "W0003,阿土伯,18633334444,郫都区,农户,邮享贷,80000,3.6,7.2,24,2099-06-30,Y,",
)]
BAD = {line: row.split(",") for line, row in (  # a phone one digit short, an amount, a repeat
    (3, "W0101,赵大钱,1380013800,金堂县,农户,邮享贷,50000,3.6,7.2,12,2099-12-31,1,M"),
    (5, "W0102,周小四,13944445555,金堂县,农户,邮享贷,abc,3.6,7.2,12,2099-12-31,1,M"),
    (6, "W0001,钱重复,13955556666,金堂县,农户,邮享贷,50000,3.6,7.2,12,2099-12-31,1,M"),
)}


def add_admin(engine) -> None:
    """Adds the roles the ``staffed`` fixture lacks: an administrator and 金堂's account manager."""
    with session_scope(engine) as session, mock.patch("handoff.agents.hash_password", _one_hash):
        add_agent(session, username="root", password=AGENT_PASSWORD, display_name="root",
                  role="admin", now=QUEUE_NOW)
        add_agent(session, username="jt_am", password=AGENT_PASSWORD, display_name="jt_am",
                  role="account_manager", branch_id="JT", now=QUEUE_NOW)


async def login(client, username: str) -> dict[str, str]:
    response = await client.post("/api/staff/login",
                                 json={"username": username, "password": AGENT_PASSWORD})
    assert response.status == 200, await response.text()
    client.session.cookie_jar.clear()  # each request says who it is by its token alone
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


async def every_role(client) -> dict[Role | str, dict[str, str]]:
    """Headers for each role's account, nobody, and a forged token."""
    assert set(ACCOUNTS) == set(ROLE_PERMISSIONS), "an account for every role"
    headers: dict[Role | str, dict[str, str]] = {
        role: await login(client, name) for role, name in ACCOUNTS.items()}
    return {**headers, "anonymous": {}, "forged": {"Authorization": "Bearer forged-token"}}


def expected(who: Role | str, *needs: Permission, allowed: tuple[int, ...]) -> tuple[int, ...]:
    if not isinstance(who, Role):
        return (401,)
    return allowed if all(p in ROLE_PERMISSIONS[who] for p in needs) else (403,)


def csv_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([HEADER, *rows])
    return out.getvalue().encode("utf-8")


def mixed_csv() -> bytes:
    """Lines 2, 4, 7 good; 3 (a phone one digit short), 5 (amount), 6 (duplicate id) bad."""
    rows = [GOOD[0], BAD[3], GOOD[1], BAD[5], BAD[6], GOOD[2]]
    return csv_bytes(rows)


def form(data: bytes, name: str = "whitelist.csv") -> FormData:
    body = FormData()
    body.add_field("file", data, filename=name, content_type="application/octet-stream")
    return body


async def streamed_form(data: bytes):
    """A multipart body sent in chunks, without a Content-Length."""
    yield b'--cut\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
    for start in range(0, len(data), 1000):
        yield data[start:start + 1000]
    yield b"\r\n--cut--\r\n"


async def upload(client, headers, data: bytes, name: str = "whitelist.csv") -> dict:
    response = await client.post("/api/whitelists", data=form(data, name), headers=headers)
    assert response.status == 202, await response.text()
    return await response.json()


async def settled(client, headers, upload_id: str) -> dict:
    """The upload once its background job is done."""
    await client.server.app[WHITELIST_UPLOADS].idle()
    response = await client.get(f"/api/whitelists/{upload_id}", headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def customer_ids(engine, prefix: str = "W") -> list[str]:
    with session_scope(engine) as session:
        return sorted(session.execute(
            select(Customer.customer_id).where(Customer.customer_id.like(f"{prefix}%"))).scalars())


@pytest.fixture
async def client(aiohttp_client, staffed, db_url, tmp_path):
    add_admin(staffed)
    return await aiohttp_client(init_app(stack_settings(tmp_path / "var", db_url)))


async def test_bad_rows_are_reported_and_nothing_loads_until_a_manager_confirms(client, staffed):
    mgr = await login(client, "mgr")
    sent = await upload(client, mgr, mixed_csv())
    assert sent["state"] == "parsing" and sent["filename"] == "whitelist.csv"

    status = await settled(client, mgr, sent["id"])
    assert (status["state"], status["good"], status["bad"]) == ("parsed", 3, 3)
    assert status["rows_read"] == status["rows_total"] == 6
    assert [(r["line"], r["customer_id"]) for r in status["bad_rows"]] == [
        (3, "W0101"), (5, "W0102"), (6, "W0001")]
    reasons = [r["reason"] for r in status["bad_rows"]]
    assert "not a mainland mobile" in reasons[0] and "1380013800" not in reasons[0]
    assert "amount 'abc' is not a number" in reasons[1]
    assert "duplicate customer_id (first on line 2)" in reasons[2]
    assert customer_ids(staffed) == []  # checked, not loaded

    report = await client.get(f"/api/whitelists/{sent['id']}/errors.csv", headers=mgr)
    assert report.status == 200 and report.content_type == "text/csv"
    lines = list(csv.DictReader(io.StringIO((await report.read()).decode("utf-8-sig"))))
    assert [(r["line"], r["customer_id"], r["name"], r["phone"]) for r in lines] == [
        ("3", "W0101", "赵**", "********00"), ("5", "W0102", "周**", "139****5555"),
        ("6", "W0001", "钱**", "139****6666")]
    assert lines[1]["amount"] == "abc" and "not a number" in lines[1]["reason"]

    confirmed = await client.post(f"/api/whitelists/{sent['id']}/confirm", headers=mgr)
    assert confirmed.status == 202 and (await confirmed.json())["state"] == "loading"
    done = await settled(client, mgr, sent["id"])
    assert done["state"] == "loaded" and done["confirmed_by"]["name"] == "mgr"
    assert done["loaded"] == {"inserted": 3, "updated": 0, "unchanged": 0, "rejected": 3}
    assert customer_ids(staffed) == ["W0001", "W0002", "W0003"]
    with session_scope(staffed) as session:
        assert session.get(Customer, "W0001").name == "钱多多"  # the first of the duplicates
        (entry,) = audit.history(session, "whitelist", f"upload:{sent['id']}")
    assert (entry.action, entry.actor, entry.actor_role) == (
        AuditAction.WHITELIST_IMPORTED, "mgr", "campaign_manager")
    assert (entry.detail["inserted"], entry.detail["rejected"]) == (3, 3)

    again = await client.post(f"/api/whitelists/{sent['id']}/confirm", headers=mgr)
    assert again.status == 409 and "already" in (await again.json())["error"]
    with session_scope(staffed) as session:
        assert len(audit.history(session, "whitelist", f"upload:{sent['id']}")) == 1


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_xlsx_workbook_is_checked_and_loaded_like_a_csv(client, staffed):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    sheet.append(["W0201", "冯一", 13911110001, "金堂县", "农户", "邮享贷", 50000, 3.6, 7.2, 12,
                  datetime(2099, 12, 31), 1, "M"])
    sheet.append(["W0202", "冯二", 139111, "金堂县", "农户", "邮享贷", 50000, 3.6, 7.2, 12,
                  datetime(2099, 12, 31), 1, "M"])
    sheet.append(["W0203", "冯三", "13911110003", "双流区", "农户", "邮享贷", 20000, 0.0385,
                  0.065, 6, date(2099, 1, 1), "是", "F"])
    sheet["H4"].number_format = sheet["I4"].number_format = "0.00%"
    data = io.BytesIO()
    book.save(data)

    mgr = await login(client, "mgr")
    sent = await upload(client, mgr, data.getvalue(), "名单.xlsx")
    status = await settled(client, mgr, sent["id"])
    assert (status["state"], status["good"], status["filename"]) == ("parsed", 2, "名单.xlsx")
    assert [(r["line"], r["customer_id"]) for r in status["bad_rows"]] == [(3, "W0202")]
    assert customer_ids(staffed) == []
    assert (await client.post(f"/api/whitelists/{sent['id']}/confirm", headers=mgr)).status == 202
    assert (await settled(client, mgr, sent["id"]))["state"] == "loaded"
    assert customer_ids(staffed) == ["W0201", "W0203"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_file_that_is_no_whitelist_fails_with_the_reason_and_loads_nothing(client, staffed):
    mgr = await login(client, "mgr")
    with session_scope(staffed) as session:
        before = session.scalar(select(func.count()).select_from(Customer))
    cases = [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "photo.png", "neither UTF-8 nor GBK text"),
        (b"id,phone\nW1,13911112222\n", "list.csv", "missing columns: customer_id, name"),
        (csv_bytes(GOOD), "list.xlsx", "named like an XLSX workbook but is not one"),
        (b"", "empty.csv", "the file is empty"),
    ]
    for data, name, message in cases:
        sent = await upload(client, mgr, data, name)
        status = await settled(client, mgr, sent["id"])
        assert status["state"] == "failed" and message in status["error"], (name, status)
        refused = await client.post(f"/api/whitelists/{sent['id']}/confirm", headers=mgr)
        assert refused.status == 409 and message in (await refused.json())["error"]
        report = await client.get(f"/api/whitelists/{sent['id']}/errors.csv", headers=mgr)
        assert report.status == 409
    with session_scope(staffed) as session:
        assert session.scalar(select(func.count()).select_from(Customer)) == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_file_over_the_size_limit_is_refused_with_413_and_not_kept(client, tmp_path):
    mgr = await login(client, "mgr")
    client.server.app[WHITELIST_UPLOADS].max_bytes = 4096
    too_big = csv_bytes(GOOD * 40)
    response = await client.post("/api/whitelists", data=form(too_big), headers=mgr)
    assert response.status == 413 and "limit" in (await response.json())["error"]
    streamed = await client.post("/api/whitelists", data=streamed_form(too_big), headers={
        **mgr, "Content-Type": "multipart/form-data; boundary=cut"})
    assert streamed.status == 413  # no Content-Length: the limit holds while streaming
    assert list((tmp_path / "var" / "uploads").glob("*/source")) == []
    small = await client.post("/api/whitelists", data=streamed_form(csv_bytes(GOOD[:1])), headers={
        **mgr, "Content-Type": "multipart/form-data; boundary=cut"})
    assert small.status == 202
    not_a_form = await client.post("/api/whitelists", data=too_big[:100], headers=mgr)
    assert not_a_form.status == 400 and "multipart" in (await not_a_form.json())["error"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_who_may_upload_read_and_confirm_follows_the_role_permissions(client):
    heads = await every_role(client)
    mine = (await upload(client, heads[Role.ADMIN], mixed_csv()))["id"]
    await settled(client, heads[Role.ADMIN], mine)
    for who, headers in heads.items():
        calls = [
            ("POST", "/api/whitelists", Permission.IMPORT_WHITELIST, (202,)),
            ("GET", f"/api/whitelists/{mine}", Permission.VIEW_WHITELIST, (200,)),
            ("GET", f"/api/whitelists/{mine}/errors.csv", Permission.VIEW_WHITELIST, (200,)),
            ("POST", f"/api/whitelists/{mine}/confirm", Permission.IMPORT_WHITELIST, (202, 409)),
        ]
        for method, path, needs, allowed in calls:
            body = form(csv_bytes(GOOD[:1])) if path == "/api/whitelists" else None
            response = await client.request(method, path, data=body, headers=headers)
            assert response.status in expected(who, needs, allowed=allowed), (
                who, method, path, response.status)
        try:
            ws = await client.ws_connect(f"/ws/whitelists/{mine}", headers=headers)
        except WSServerHandshakeError as exc:
            status = exc.status
        else:
            status = 101
            await ws.close()
        assert status in expected(who, Permission.VIEW_WHITELIST, allowed=(101,)), (who, status)
    await client.server.app[WHITELIST_UPLOADS].idle()
    for unknown in ("0" * 32, "..%2F..%2Fstate"):
        missing = await client.get(f"/api/whitelists/{unknown}", headers=heads[Role.ADMIN])
        assert missing.status == 404 and "no whitelist upload" in (await missing.json())["error"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_page_watches_parsing_and_loading_over_a_websocket(client, staffed):
    mgr = await login(client, "mgr")
    sent = await upload(client, mgr, mixed_csv())
    async with client.ws_connect(f"/ws/whitelists/{sent['id']}", headers=mgr) as ws:
        frame = await asyncio.wait_for(ws.receive_json(), 3)
        while frame["state"] != "parsed":
            assert frame["type"] == "upload" and frame["state"] == "parsing"
            frame = await asyncio.wait_for(ws.receive_json(), 3)
        assert (frame["good"], frame["bad"], frame["rows_read"]) == (3, 3, 6)
        confirmed = await client.post(f"/api/whitelists/{sent['id']}/confirm", headers=mgr)
        assert confirmed.status == 202
        while frame["state"] != "loaded":
            frame = await asyncio.wait_for(ws.receive_json(), 5)
        assert frame["loaded"]["inserted"] == 3
        assert (await asyncio.wait_for(ws.receive(), 3)).type.name in ("CLOSE", "CLOSED")
    assert customer_ids(staffed) == ["W0001", "W0002", "W0003"]


def _orphan(uploads: Path, upload_id: str, data: bytes, **state) -> None:
    """An upload a crashed server was working on (same host, a runner that is gone)."""
    folder = uploads / upload_id
    folder.mkdir(parents=True)
    (folder / "source").write_bytes(data)
    (folder / "state.json").write_text(json.dumps({
        "id": upload_id, "filename": "crashed.csv", "size": len(data), "uploaded_by": "mgr",
        "uploaded_at": "2026-11-23T02:00:00+00:00",
        "worker": f"{socket.gethostname()}@{os.getpid()}:gone", **state}), encoding="utf-8")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_uploads_survive_a_restart_and_interrupted_jobs_resume(aiohttp_client, staffed,
                                                                       db_url, tmp_path):
    add_admin(staffed)
    settings = stack_settings(tmp_path / "var", db_url)
    first = await aiohttp_client(init_app(settings))
    mgr = await login(first, "mgr")
    parsed = (await upload(first, mgr, mixed_csv()))["id"]
    await settled(first, mgr, parsed)
    await first.close()

    uploads = settings.var_dir / "uploads"
    _orphan(uploads, "a" * 32, csv_bytes(GOOD[:1]), state="parsing")
    second_rows = [[f"W09{i}", *GOOD[1][1:]] for i in range(2)]
    _orphan(uploads, "b" * 32, csv_bytes(second_rows), state="loading", good=2,
            confirmed_by={"name": "root", "role": "admin", "account_id": None})
    (uploads / ("b" * 32) / "confirmed").touch()

    second = await aiohttp_client(init_app(settings))
    mgr = await login(second, "mgr")
    assert (await settled(second, mgr, parsed))["state"] == "parsed"
    assert (await settled(second, mgr, "a" * 32))["state"] == "parsed"
    assert (await settled(second, mgr, "b" * 32))["state"] == "loaded"
    assert customer_ids(staffed) == ["W090", "W091"]
    with session_scope(staffed) as session:
        (entry,) = audit.history(session, "whitelist", f"upload:{'b' * 32}")
    assert entry.actor == "root"
    assert (await second.post(f"/api/whitelists/{parsed}/confirm", headers=mgr)).status == 202
    assert (await settled(second, mgr, parsed))["state"] == "loaded"
    assert customer_ids(staffed) == ["W0001", "W0002", "W0003", "W090", "W091"]


@pytest.mark.parametrize(("worker", "pid_alive", "resume"), [
    (None, False, True),                      # nobody was working on it
    ("here@100:old", False, True),            # this process, an earlier app (stopped)
    ("here@100:now", False, False),           # this very app: still running
    ("here@200:any", False, True),            # another process on this host that died
    ("here@200:any", True, False),            # ... or that is still running it
    ("there@200:any", False, False),          # another host's: we cannot tell, leave it
])
def test_a_starting_server_resumes_only_uploads_whose_worker_is_gone(worker, pid_alive, resume):
    assert is_orphaned(worker, me=Owner("here", 100, "now"), pid_alive=pid_alive) is resume
