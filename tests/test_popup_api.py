"""The mobile-banking app's pop-up API through the real web app (SQLite): the pending pop-up
and its chat link, the shown / clicked / dismissed reports, who may call it (app session
tokens only), bad input, opt-outs and expiry; and the repository on both databases."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from core.clock import utcnow
from core.customer_tokens import APP, CHAT, TokenError, issue, verify
from core.settings import PROJECT_ROOT
from core.vocabulary import PopupStatus
from offercall.web.app import init_app
from outbound import popups
from persistence import store
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import AppPopup
from tests.stack import stack_settings

WHITELIST = PROJECT_ROOT / "data" / "whitelist_sample.csv"


def with_whitelist(engine: Engine) -> Engine:
    from outbound.whitelist import import_whitelist_file

    import_whitelist_file(engine, WHITELIST, today=utcnow().date())
    return engine


@pytest.fixture
def db(tmp_path) -> Iterator[tuple[str, Engine]]:
    """A SQLite database of its own with the sample whitelist (C0001 … C0012)."""
    url = f"sqlite:///{tmp_path / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    yield url, with_whitelist(engine)
    engine.dispose()


@pytest.fixture
def settings(tmp_path, db):
    return stack_settings(tmp_path / "var", db[0])


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(init_app(settings))


def make_popup(engine: Engine, customer: str = "C0001", *, ago: timedelta = timedelta(0),
               ttl: timedelta = timedelta(days=1), campaign: str | None = "dec",
               title: str = "您有一笔专属预授信额度") -> int:
    with session_scope(engine) as session:
        return popups.create_popup(session, customer_id=customer, title=title,
                                   body="点击了解邮享贷，最高五万元", now=utcnow() - ago, ttl=ttl,
                                   campaign_id=campaign, variant="A")


def row(engine: Engine, popup_id: int) -> AppPopup:
    with session_scope(engine) as session:
        return session.execute(select(AppPopup).where(AppPopup.id == popup_id)).scalar_one()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def app_auth(settings, customer: str = "C0001") -> dict[str, str]:
    return bearer(issue(customer, settings.secret_key, ttl_s=600, purpose=APP))


async def fetch(client, headers) -> dict | None:
    response = await client.get("/api/app/popup", headers=headers)
    assert response.status == 200, await response.text()
    return (await response.json())["popup"]


async def report(client, headers, popup_id, event) -> tuple[int, dict]:
    response = await client.post(f"/api/app/popups/{popup_id}/events", json={"event": event},
                                 headers=headers)
    return response.status, await response.json()


# ------------------------------------------------------------------ serving
async def test_the_app_gets_the_pending_popup_whose_link_opens_the_chat(client, settings, db):
    popup_id = make_popup(db[1])
    popup = await fetch(client, app_auth(settings))
    assert popup is not None
    assert (popup["id"], popup["title"], popup["body"]) == (
        popup_id, "您有一笔专属预授信额度", "点击了解邮享贷，最高五万元")
    assert popup["expires_at"] == row(db[1], popup_id).expires_at.isoformat()

    link = urlsplit(popup["chat_url"])
    assert link.path == "/chat" and not link.netloc
    (chat_token,) = parse_qs(link.query)["t"]
    assert verify(chat_token, settings.secret_key, purpose=CHAT) == "C0001"
    with pytest.raises(TokenError):  # the chat link is no app session
        verify(chat_token, settings.secret_key, purpose=APP)
    assert (await client.get(popup["chat_url"])).status == 200  # the widget's page

    ws = await client.ws_connect("/ws/widget")
    await ws.send_json({"type": "hello", "token": chat_token})
    opened = await ws.receive_json()  # "ready" with the bot; no bot runs here: a 503
    assert opened["type"] == "ready" or opened["status"] == 503, opened
    await ws.send_json({"type": "hello", "token": app_auth(settings)["Authorization"][7:]})
    refused = await ws.receive_json()  # the app's session token opens no chat
    assert (refused["type"], refused["status"]) == ("error", 401)
    assert "not for chat" in refused["message"]
    await ws.close()


async def test_no_popup_is_null_also_for_a_customer_the_whitelist_does_not_know(client, settings,
                                                                                 db):
    make_popup(db[1], "C0001")
    assert await fetch(client, app_auth(settings, "C0002")) is None
    assert await fetch(client, app_auth(settings, "C9999")) is None  # no whitelist leak


async def test_the_newest_unexpired_popup_is_served_and_expired_ones_never(client, settings, db):
    older = make_popup(db[1], campaign="nov", ago=timedelta(hours=5))
    make_popup(db[1], campaign="dec", ago=timedelta(hours=2), ttl=timedelta(hours=1))  # expired
    assert (await fetch(client, app_auth(settings)))["id"] == older
    newest = make_popup(db[1], campaign=None)
    assert (await fetch(client, app_auth(settings)))["id"] == newest


async def test_an_expired_popup_is_not_served(client, settings, db):
    expired = make_popup(db[1], ago=timedelta(days=2), ttl=timedelta(days=1))
    assert await fetch(client, app_auth(settings)) is None
    assert row(db[1], expired).status is PopupStatus.PENDING  # it stays what it was


# ------------------------------------------------------------------ events
async def test_shown_then_clicked_is_recorded_before_the_answer_and_repeats_are_harmless(
        client, settings, db):
    auth, popup_id = app_auth(settings), make_popup(db[1])
    assert await report(client, auth, popup_id, "shown") == (
        200, {"id": popup_id, "status": "shown"})
    first_shown = row(db[1], popup_id).shown_at
    assert first_shown is not None  # committed before the answer
    assert await report(client, auth, popup_id, "shown") == (
        200, {"id": popup_id, "status": "shown"})
    assert row(db[1], popup_id).shown_at == first_shown  # a repeat keeps the first time

    assert await report(client, auth, popup_id, "clicked") == (
        200, {"id": popup_id, "status": "clicked"})
    clicked = row(db[1], popup_id)
    assert clicked.clicked_at is not None and clicked.shown_at == first_shown
    assert (await report(client, auth, popup_id, "clicked"))[0] == 200
    assert (await report(client, auth, popup_id, "shown")) == (
        200, {"id": popup_id, "status": "clicked"})  # a late report changes nothing
    assert row(db[1], popup_id).clicked_at == clicked.clicked_at

    status, body = await report(client, auth, popup_id, "dismissed")
    assert status == 409 and "clicked" in body["error"]
    assert row(db[1], popup_id).dismissed_at is None
    assert await fetch(client, auth) is None  # no longer pending


async def test_a_dismissed_popup_was_shown_and_cannot_be_clicked_afterwards(client, settings, db):
    auth, popup_id = app_auth(settings), make_popup(db[1])
    assert await report(client, auth, popup_id, "dismissed") == (
        200, {"id": popup_id, "status": "dismissed"})
    dismissed = row(db[1], popup_id)
    assert dismissed.shown_at == dismissed.dismissed_at is not None
    status, body = await report(client, auth, popup_id, "clicked")
    assert status == 409 and body["error"] == (
        "cannot record clicked on this pop-up: it was dismissed")
    assert (await report(client, auth, popup_id, "dismissed"))[0] == 200
    assert row(db[1], popup_id).clicked_at is None


async def test_a_withdrawn_popup_takes_no_event(client, settings, db):
    popup_id = make_popup(db[1])
    with session_scope(db[1]) as session:
        assert popups.withdraw_for_campaign(session, "dec", utcnow()) == 1
    for event in ("shown", "clicked", "dismissed"):
        status, body = await report(client, app_auth(settings), popup_id, event)
        assert status == 409 and "withdrawn" in body["error"]
    assert row(db[1], popup_id).status is PopupStatus.WITHDRAWN


async def test_another_customers_popup_is_not_found_like_one_that_does_not_exist(client,
                                                                                settings, db):
    popup_id = make_popup(db[1], "C0001")
    theirs = await client.post(f"/api/app/popups/{popup_id}/events", json={"event": "clicked"},
                               headers=app_auth(settings, "C0002"))
    nobodys = await client.post(f"/api/app/popups/{popup_id + 1000}/events",
                                json={"event": "clicked"}, headers=app_auth(settings, "C0002"))
    beyond = await client.post("/api/app/popups/99999999999/events", json={"event": "clicked"},
                               headers=app_auth(settings, "C0002"))
    assert theirs.status == nobodys.status == beyond.status == 404
    assert await theirs.json() == await nobodys.json() == await beyond.json()
    assert row(db[1], popup_id).status is PopupStatus.PENDING


# ------------------------------------------------------------------ who may call
def bad_headers(settings) -> dict[str, dict[str, str]]:
    secret = settings.secret_key
    return {
        "no header": {},
        "not bearer": {"Authorization": f"Basic {issue('C0001', secret, purpose=APP)}"},
        "empty bearer": {"Authorization": "Bearer "},
        "malformed": bearer("not-a-token"),
        "forged": bearer(issue("C0001", "another-secret", purpose=APP)),
        "tampered": bearer(issue("C0002", secret, purpose=APP).split(".")[0] + "."
                           + issue("C0001", secret, purpose=APP).split(".")[1]),
        "expired": bearer(issue("C0001", secret, ttl_s=60, now=utcnow().timestamp() - 120,
                                purpose=APP)),
        "chat link": bearer(issue("C0001", secret, purpose=CHAT)),
    }


CASES = ("no header", "not bearer", "empty bearer", "malformed", "forged", "tampered", "expired",
         "chat link")


@pytest.mark.parametrize("case", CASES)
async def test_only_a_valid_app_session_token_is_let_in(client, settings, db, case):
    popup_id = make_popup(db[1])
    headers = bad_headers(settings)[case]
    answers = [await client.get("/api/app/popup", headers=headers),
               await client.post(f"/api/app/popups/{popup_id}/events", json={"event": "clicked"},
                                 headers=headers)]
    for answer in answers:
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in (await answer.json())["error"]
    assert row(db[1], popup_id).status is PopupStatus.PENDING  # nothing recorded


async def test_bad_auth_is_answered_before_a_bad_id(client, settings):
    response = await client.post("/api/app/popups/abc/events", data=b"{")
    assert response.status == 401


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("path_id", "body", "why"), [
    ("{id}", b"event=shown", "JSON"),
    ("{id}", b"", "JSON"),
    ("{id}", b'["shown"]', "JSON object"),
    ("{id}", b"{}", "needs an event"),
    ("{id}", b'{"event": "opened"}', "expected one of shown, clicked, dismissed"),
    ("{id}", b'{"event": "withdrawn"}', "expected one of"),
    ("{id}", b'{"event": 1}', "expected one of"),
    ("{id}", b'{"event": null}', "expected one of"),
    ("{id}", b'{"event": "shown", "at": "2026-12-03"}', "unknown fields: at"),
    ("abc", b'{"event": "shown"}', "positive integer"),
    ("0", b'{"event": "shown"}', "positive integer"),
    ("-1", b'{"event": "shown"}', "positive integer"),
    ("1.5", b'{"event": "shown"}', "positive integer"),
    ("0x1", b'{"event": "shown"}', "positive integer"),
], ids=lambda v: v.decode() if isinstance(v, bytes) else v)
async def test_bad_input_is_a_400_that_says_what_is_wrong(client, settings, db, path_id, body,
                                                          why):
    popup_id = make_popup(db[1])
    response = await client.post(f"/api/app/popups/{path_id.format(id=popup_id)}/events",
                                 data=body, headers={**app_auth(settings),
                                                     "Content-Type": "application/json"})
    assert response.status == 400
    assert why in (await response.json())["error"]
    assert row(db[1], popup_id).status is PopupStatus.PENDING


# ------------------------------------------------------------------ opt-outs
@pytest.mark.parametrize("by", ["customer_id", "phone"])
async def test_an_opted_out_customer_gets_no_popup_and_their_pending_one_is_withdrawn(
        client, settings, db, by):
    popup_id = make_popup(db[1])
    shown = make_popup(db[1], campaign="nov")
    assert (await report(client, app_auth(settings), shown, "shown"))[0] == 200
    with session_scope(db[1]) as session:  # as the bot records an opt-out: nothing else
        store.add_do_not_contact(session, customer_id="C0001" if by == "customer_id" else None,
                                 phone="13800138001" if by == "phone" else None,
                                 utterance="以后别给我发了", conversation_id=None)
    assert await fetch(client, app_auth(settings)) is None
    assert row(db[1], popup_id).status is PopupStatus.WITHDRAWN  # at once and for good
    assert row(db[1], shown).status is PopupStatus.SHOWN  # what was shown stays what it was
    with session_scope(db[1]) as session, pytest.raises(popups.PopupRefused,
                                                        match="do-not-contact"):
        popups.create_popup(session, customer_id="C0001", title="再试一次", body="……",
                            now=utcnow(), ttl=timedelta(days=1))


async def test_an_event_on_a_popup_fetched_before_the_opt_out_is_refused_and_withdraws_it(
        client, settings, db):
    popup_id = make_popup(db[1])
    with session_scope(db[1]) as session:
        store.add_do_not_contact(session, customer_id="C0001", phone=None,
                                 utterance="不要再联系我", conversation_id=None)
    status, body = await report(client, app_auth(settings), popup_id, "clicked")
    assert status == 409 and "withdrawn" in body["error"]
    stored = row(db[1], popup_id)
    assert stored.status is PopupStatus.WITHDRAWN and stored.clicked_at is None  # committed


# ------------------------------------------------------------------ the repository
def test_the_repository_on_both_databases(engine):
    """Creating (refusals, no second pending pop-up per campaign), withdrawing and counting."""
    with_whitelist(engine)
    now, day = utcnow(), timedelta(days=1)

    def create(session, customer="C0001", **fields):
        return popups.create_popup(session, customer_id=customer, title=fields.pop("title", "额度"),
                                   body=fields.pop("body", "点击了解"), now=now,
                                   ttl=fields.pop("ttl", day), **fields)

    with session_scope(engine) as session:
        first = create(session, campaign_id="dec", variant="A")
        assert create(session, campaign_id="dec", variant="A") == first  # no second one
        other = create(session, campaign_id="nov")
        with pytest.raises(popups.PopupRefused, match="no customer"):
            create(session, "C9999", campaign_id="dec")
        for bad in ({"title": " "}, {"title": "长" * 101}, {"body": ""}, {"ttl": timedelta(0)}):
            with pytest.raises(popups.PopupError):
                create(session, **bad)
        for customer in ("C0002", "C0003", "C0004"):
            create(session, customer, campaign_id="dec")
    with session_scope(engine) as session:
        assert popups.pending_popup(session, "C0001", now).id == other  # the newest
        popups.record_event(session, first, "C0001", "clicked", now)
        popups.record_event(session, popups.pending_popup(session, "C0002", now).id, "C0002",
                            "dismissed", now)
        popups.record_event(session, popups.pending_popup(session, "C0003", now).id, "C0003",
                            "shown", now)
        with pytest.raises(popups.PopupNotFound):
            popups.record_event(session, first, "C0002", "shown", now)
        assert popups.withdraw_for_customer(session, "C0004", now) == 1
        assert popups.withdraw_for_customer(session, "C0004", now) == 0
    with session_scope(engine) as session:
        assert popups.popup_counts(session, "dec") == {
            "created": 4, "shown": 3, "clicked": 1, "dismissed": 1, "withdrawn": 1}
        assert popups.popup_counts(session, "nobody") == dict.fromkeys(popups.FUNNEL_STEPS, 0)
        assert popups.pending_popup(session, "C0001", now + day) is None  # expired


# ------------------------------------------------------------------ the demo command
def test_the_demo_command_queues_a_popup_and_prints_how_the_app_fetches_it(db, tmp_path,
                                                                          monkeypatch, capsys):
    from core.settings import Settings
    from offercall.cli import main

    monkeypatch.setenv("DATABASE_URL", db[0])
    monkeypatch.setenv("OFFERCALL_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # main() would take over SIGTERM
    assert main(["campaign", "popup", "--customer", "C0003", "--campaign", "dec"]) == 0
    printed = capsys.readouterr().out
    token = re.search(r"Authorization: Bearer (\S+)'", printed).group(1)
    assert verify(token, Settings.from_environ().secret_key, purpose=APP) == "C0003"
    with session_scope(db[1]) as session:
        popup = popups.pending_popup(session, "C0003", utcnow())
    assert popup is not None and popup.campaign_id == "dec" and f"pop-up {popup.id}" in printed

    assert main(["campaign", "popup", "--customer", "C9999"]) == 2
    assert "no customer has this id" in capsys.readouterr().err
