"""The agent console's API and live websocket, on SQLite and real PostgreSQL: login, who may
see and do what, masking, live pushes, and bad frames."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSMsgType

from core.clock import utcnow
from offercall.web.app import init_app
from persistence import audit, handoffs, store
from persistence.engine import session_scope
from tests.conftest import AGENT_PASSWORD
from tests.stack import stack_settings


@pytest.fixture
async def client(aiohttp_client, staffed, db_url, tmp_path):
    return await aiohttp_client(init_app(stack_settings(tmp_path / "var", db_url)))


async def login(client, username):
    response = await client.post("/api/agent/login", json={"username": username, "password": AGENT_PASSWORD})
    assert response.status == 200, await response.text()
    return {"Authorization": f"Bearer {(await response.json())['token']}"}


def enqueue(engine, customer="C0001", channel="voice", conversation=None):
    """A ticket as the action server (another process) writes it."""
    with session_scope(engine) as session:
        offer_id = store.get_customer_offer(session, customer).offer_id
        return handoffs.create_ticket(
            session, conversation_id=conversation or f"call-{customer}", customer_id=customer,
            offer_id=offer_id, channel=channel, reason="customer_requested",
            transcript=[{"speaker": "customer", "text": "我要申请，电话13800138001"}],
            intents=["affirm", "request_handoff"], now=utcnow(),
        )


async def next_of(ws, kind, timeout=3.0):
    while True:
        frame = await asyncio.wait_for(ws.receive_json(), timeout)
        if frame["type"] == kind:
            return frame


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/agent/me"), ("GET", "/api/agent/tickets"), ("GET", "/api/agent/tickets/1"),
    ("POST", "/api/agent/tickets/1/claim"), ("POST", "/api/agent/tickets/next"),
    ("POST", "/api/agent/tickets/1/messages"), ("POST", "/api/agent/tickets/1/close"),
    ("GET", "/api/supervisor/stats"), ("GET", "/ws/agent"),
])
async def test_every_agent_endpoint_refuses_the_unauthenticated(client, method, path):
    anonymous = await client.request(method, path, json={})
    forged = await client.request(method, path, json={}, headers={"Authorization": "Bearer forged"})
    assert anonymous.status == 401 and forged.status == 401


async def test_a_wrong_password_is_refused_and_logout_ends_the_session(client):
    wrong = await client.post("/api/agent/login", json={"username": "jt", "password": "guess-guess"})
    assert wrong.status == 401
    headers = await login(client, "jt")
    assert (await client.get("/api/agent/me", headers=headers)).status == 200
    assert (await client.post("/api/agent/logout", headers=headers)).status == 200
    assert (await client.get("/api/agent/me", headers=headers)).status == 401


@pytest.mark.parametrize("manager", ["mgr", "jt_mgr"])
async def test_managers_accounts_cannot_work_the_agents_console(client, staffed, manager):
    enqueue(staffed, "C0001")
    response = await client.post("/api/agent/login", json={"username": manager, "password": AGENT_PASSWORD})
    assert response.status == 403 and "agents and supervisors" in (await response.json())["error"]
    assert "token" not in await response.json()
    agent = await login(client, "jt")  # and the queue goes on as before for the agents
    assert len((await (await client.get("/api/agent/tickets", headers=agent)).json())["tickets"]) == 1


async def test_the_agent_who_claims_a_ticket_is_audited_as_seeing_the_customers_data(client, staffed):
    first, second = enqueue(staffed, "C0001"), enqueue(staffed, "C0001", conversation="call-again")
    jt, sl = await login(client, "jt"), await login(client, "sl")
    await client.get("/api/agent/tickets", headers=jt)  # masked views are not audited
    assert (await client.post(f"/api/agent/tickets/{first}/claim", headers=sl)).status == 403
    with session_scope(staffed) as session:
        assert audit.history(session, "customer", "C0001") == []

    assert (await client.post(f"/api/agent/tickets/{first}/claim", headers=jt)).status == 200
    assert (await client.post("/api/agent/tickets/next", headers=jt)).status == 200
    with session_scope(staffed) as session:
        entries = audit.history(session, "customer", "C0001")
    assert [(e.action, e.actor, e.actor_role, e.detail["ticket_id"]) for e in entries] == [
        ("unmasked_viewed", "jt", "agent", second), ("unmasked_viewed", "jt", "agent", first)]
    assert entries[0].detail["shown"] == ["name", "phone", "transcript"]


async def test_an_agent_sees_only_their_queue_with_personal_data_masked_until_claimed(client, staffed):
    ticket_id = enqueue(staffed, "C0001")  # 金堂县, 邮享贷
    jt, sl, boss = await login(client, "jt"), await login(client, "sl"), await login(client, "boss")
    (seen,) = (await (await client.get("/api/agent/tickets", headers=jt)).json())["tickets"]
    assert seen["customer"] == {"id": "C0001", "name": "张**", "phone": "138****8001", "region": "金堂县"}
    assert seen["offer"]["amount_yuan"] == 50000 and seen["branch"]["name"] == "金堂县支行"
    assert "13800138001" not in str(seen) and "138****8001" in seen["transcript"][0]["text"]
    assert (await (await client.get("/api/agent/tickets", headers=sl)).json())["tickets"] == []
    assert len((await (await client.get("/api/agent/tickets", headers=boss)).json())["tickets"]) == 1
    assert (await client.get(f"/api/agent/tickets/{ticket_id}", headers=sl)).status == 403
    assert (await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=sl)).status == 403

    claimed = await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=jt)
    mine = await claimed.json()
    assert claimed.status == 200 and mine["customer"]["phone"] == "13800138001" and mine["customer"]["name"] == "张伟"
    again = await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=boss)
    assert again.status == 409
    boss_view = await (await client.get(f"/api/agent/tickets/{ticket_id}", headers=boss)).json()
    assert boss_view["customer"]["phone"] == "138****8001"  # the supervisor did not claim it
    for path, body in [("messages", {"text": "您好"}), ("close", {"outcome": "applied"})]:
        assert (await client.post(f"/api/agent/tickets/{ticket_id}/{path}", json=body, headers=sl)).status == 403
    closed = await client.post(f"/api/agent/tickets/{ticket_id}/close", json={"outcome": "applied", "note": "已提交"}, headers=jt)
    assert closed.status == 200 and (await closed.json())["status"] == "closed"
    events = (await (await client.get(f"/api/agent/tickets/{ticket_id}", headers=jt)).json())["events"]
    people = [(e["to"], e["actor"].split(":")[0]) for e in events if not e["actor"].startswith("system")]
    assert people == [("queued", "bot"), ("claimed", "agent"), ("closed", "agent")]
    # the app's sweeper may have routed it meanwhile (nobody of 金堂 was online): logged too
    assert {e["to"] for e in events if e["actor"].startswith("system")} <= {"offered", "rerouted", "queued"}


async def test_a_new_ticket_is_pushed_to_the_right_consoles_without_polling(client, staffed):
    jt_ws = await client.ws_connect("/ws/agent", headers=await login(client, "jt"))
    sl_ws = await client.ws_connect("/ws/agent", headers=await login(client, "sl"))
    assert (await next_of(jt_ws, "snapshot"))["tickets"] == []
    await next_of(sl_ws, "snapshot")
    ticket_id = enqueue(staffed, "C0001")  # written by "another process": only the feed can tell us
    pushed = await next_of(jt_ws, "ticket")
    assert pushed["ticket"]["id"] == ticket_id and pushed["ticket"]["customer"]["name"] == "张**"
    with pytest.raises(asyncio.TimeoutError):
        await next_of(sl_ws, "ticket", timeout=1.0)  # 双流's agent is not offered a 金堂 ticket
    await client.post(f"/api/agent/tickets/{ticket_id}/claim", headers=await login(client, "boss"))
    gone = await next_of(jt_ws, "ticket_gone")
    assert gone["id"] == ticket_id  # someone else has it now
    await jt_ws.close()
    await sl_ws.close()


async def test_bad_console_frames_get_an_error_and_oversized_ones_close_cleanly(client):
    ws = await client.ws_connect("/ws/agent", headers=await login(client, "jt"))
    await next_of(ws, "snapshot")
    await ws.send_str("{not json")
    assert (await next_of(ws, "error"))["message"] == "frames must be JSON"
    await ws.send_json({"type": "ping"})
    assert (await next_of(ws, "pong"))["type"] == "pong"  # still alive
    await ws.send_str("x" * 100_000)
    closing = await asyncio.wait_for(ws.receive(), 3)
    while closing.type == WSMsgType.TEXT:
        closing = await asyncio.wait_for(ws.receive(), 3)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == 1009  # message too big


async def test_only_supervisors_see_the_queue_overview(client, staffed):
    enqueue(staffed, "C0001")
    assert (await client.get("/api/supervisor/stats", headers=await login(client, "jt"))).status == 403
    stats = await (await client.get("/api/supervisor/stats", headers=await login(client, "boss"))).json()
    assert stats["waiting"] == 1 and stats["longest_wait_s"] >= 0 and stats["sla_breaches_today"] == 0


async def test_a_server_restart_mid_queue_loses_no_ticket(aiohttp_client, staffed, db_url, tmp_path):
    settings = stack_settings(tmp_path / "var", db_url)
    first = await aiohttp_client(init_app(settings))
    waiting = [enqueue(staffed, c, conversation=f"restart-{c}") for c in ("C0001", "C0007")]
    boss = await login(first, "boss")
    claimed = enqueue(staffed, "C0002", conversation="restart-claimed")
    assert (await first.post(f"/api/agent/tickets/{claimed}/claim", headers=boss)).status == 200
    await first.close()  # the server goes down with tickets queued and one claimed

    second = await aiohttp_client(init_app(settings))
    ws = await second.ws_connect("/ws/agent", headers=boss)  # the session survives the restart too
    snapshot = await next_of(ws, "snapshot")
    statuses = {t["id"]: t["status"] for t in snapshot["tickets"]}
    assert set(statuses) == {*waiting, claimed} and statuses[claimed] == "claimed"
    assert {statuses[i] for i in waiting} <= {"queued", "offered", "rerouted"}  # still waiting
    await ws.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_two_server_processes_share_one_queue_on_postgres(aiohttp_client, staffed, db_url, tmp_path):
    """Two app instances (each with its own feed and sweeper) against one PostgreSQL: a claim
    through one is pushed to a console connected to the other."""
    one = await aiohttp_client(init_app(stack_settings(tmp_path / "a", db_url)))
    two = await aiohttp_client(init_app(stack_settings(tmp_path / "b", db_url)))
    watcher = await one.ws_connect("/ws/agent", headers=await login(one, "jt"))
    await next_of(watcher, "snapshot")
    ticket_id = enqueue(staffed, "C0001")
    assert (await next_of(watcher, "ticket"))["ticket"]["id"] == ticket_id
    claim = await two.post(f"/api/agent/tickets/{ticket_id}/claim", headers=await login(two, "boss"))
    assert claim.status == 200
    assert (await next_of(watcher, "ticket_gone"))["id"] == ticket_id
    await watcher.close()


def test_accounts_take_the_five_roles_and_a_branch_manager_needs_a_branch(engine, tmp_path):
    from handoff.agents import AccountError, add_agent, load_agents_csv

    with session_scope(engine) as session:
        with pytest.raises(AccountError, match="branch_manager account needs its branch"):
            add_agent(session, username="nobranch", password=AGENT_PASSWORD, display_name="x",
                      role="branch_manager", now=utcnow())
        with pytest.raises(AccountError, match="role must be one of admin, campaign_manager"):
            add_agent(session, username="root", password=AGENT_PASSWORD, display_name="x",
                      role="root", now=utcnow())
        sheet = tmp_path / "staff.csv"
        sheet.write_text("username,display_name,role,branch_id,products,languages,password\n"
                         f"hq,孙经理,campaign_manager,,*,mandarin,{AGENT_PASSWORD}\n"
                         f"jtm,刘行长,branch_manager,JT,*,mandarin,{AGENT_PASSWORD}\n"
                         f"ops,管理员,admin,,*,mandarin,{AGENT_PASSWORD}\n", encoding="utf-8")
        assert load_agents_csv(session, sheet, utcnow()) == (3, 0)
        sheet.write_text("username,display_name,role,branch_id,products,languages,password\n"
                         f"jtm,刘行长,branch_manager,,*,mandarin,{AGENT_PASSWORD}\n", encoding="utf-8")
        with pytest.raises(AccountError, match="staff.csv:2: .*needs its branch"):
            load_agents_csv(session, sheet, utcnow())
