"""The marketing map's API and page: who may call what (every map endpoint and the page, every
role), each person's reach (a branch manager their branch's leads and area customers, an
account manager only their own leads, an admin any branch), masking, points in the county the
address names (checked against the bundled boundaries), the deterministic small spread, the
customer panel (address, offer, lead and call history) and bad input. One SQLite database for
the module: the map only reads."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy.engine import Engine

from branches.geo import Point, distance_km
from branches.regions import resolve_address, resolve_region
from branches.web.lead_views import Names
from branches.web import map_api
from branches.web.map_views import (
    MAX_SPREAD_KM,
    Subject,
    locate,
    parse_branch,
    parse_customer_id,
    point_json,
    spread,
)
from branches.web.pages import MAP_ASSETS
from core.access import Permission, allows
from core.settings import PROJECT_ROOT
from core.vocabulary import Role
from outbound.whitelist import import_whitelist_file
from persistence.branches import load_branches
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import CallAttempt, Customer, DoNotContact, Offer
from tests.conftest import QUEUE_NOW
from tests.test_campaign_api import add_staff
from tests.test_leads_api import DAY, HOUR, Clock, app_client, bearer, get_json, open_lead

T0 = QUEUE_NOW
NOW = T0 + 3 * DAY
"""The app's clock: C0001's lead (opened at T0) is past its 2-day claim deadline, C0007's not."""
GEOJSON = MAP_ASSETS / "counties.geojson"
ACCOUNTS = [  # username, role, branch
    ("jt_mgr", "branch_manager", "JT"), ("jt_am", "account_manager", "JT"),
    ("jt_am2", "account_manager", "JT"), ("cd_mgr", "branch_manager", "CD"),
    ("cd_am", "account_manager", "CD"), ("root", "admin", None), ("mgr", "campaign_manager", None),
    ("boss", "supervisor", "CD"), ("jt", "agent", "JT"),
]
BY_ROLE = {Role.ADMIN: "root", Role.CAMPAIGN_MANAGER: "mgr", Role.SUPERVISOR: "boss",
           Role.BRANCH_MANAGER: "jt_mgr", Role.ACCOUNT_MANAGER: "jt_am", Role.AGENT: "jt"}
EXTRA = [  # customers of 金堂 (JT's area) beside the sample's: id, address, consent, on DNC
    ("M0001", "四川省成都市金堂县赵镇金广路1号", True, False),
    ("M0002", "四川省成都市金堂县赵镇金广路2号", False, False),  # no consent: not shown
    ("M0003", "四川省成都市金堂县赵镇金广路3号", True, True),  # opted out: not shown
    ("M0004", "四川省成都市青白江区大弯街道1号", True, False),  # the address names 青白江区
    ("M0005", "成都市高新区天府大道北段1号", True, False),  # only a city: placed by region
]


@dataclass(frozen=True)
class MapDb:
    url: str
    engine: Engine
    who: dict[str, dict[str, str]]
    leads: dict[str, int]  # customer id -> lead id


def add_map_customers(engine: Engine) -> None:
    with session_scope(engine) as session:
        for number, (customer_id, address, consent, dnc) in enumerate(EXTRA, start=1):
            session.add(Customer(customer_id=customer_id, name=f"欧阳测{number}",
                                 masked_name="欧阳**", phone=f"1351234{number:04d}",
                                 region="金堂县", consent=consent, address=address,
                                 segment="农户", created_at=T0, updated_at=T0))
            session.add(Offer(customer_id=customer_id, product="邮享贷", amount_yuan=60000,
                              rate_min=3.6, rate_max=7.2, term_months=12,
                              valid_until=date(2027, 12, 31), version=1, active=True,
                              created_at=T0))
            if dnc:
                session.add(DoNotContact(customer_id=customer_id, utterance="别再打了",
                                         source="call", created_at=T0))
        session.add(CallAttempt(
            target_id=1, campaign_id="yxd-2026-11", customer_id="C0001", attempt_no=1,
            call_id="map-test-call-1", variant="A", status="done", outcome="no_answer",
            dialer="test", lease_until=T0 - DAY, facts={}, started_at=T0 - DAY,
            ended_at=T0 - DAY + timedelta(seconds=30)))


@pytest.fixture(scope="module")
def map_db(tmp_path_factory) -> Iterator[MapDb]:
    """The sample whitelist and the branches, the accounts above, five more 金堂 customers,
    a campaign call to C0001, and three leads: C0001 (JT, jt_am's, overdue at NOW), C0007
    (JT, jt_am2's) and C0004 (新都: CD, cd_am's)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('map') / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv", today=T0.date())
    with session_scope(engine) as session:
        load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    add_staff(engine, ACCOUNTS)
    add_map_customers(engine)
    opened = {cid: open_lead(engine, cid, at)
              for cid, at in (("C0001", T0), ("C0007", T0 + 36 * HOUR), ("C0004", T0))}
    assert opened["C0001"].branch_id == "JT" and opened["C0004"].branch_id == "CD"
    who = bearer(engine, [username for username, _, _ in ACCOUNTS])
    yield MapDb(url, engine, who, {cid: lead.id for cid, lead in opened.items()})
    engine.dispose()


@pytest.fixture
async def client(aiohttp_client, tmp_path, map_db):
    return await app_client(aiohttp_client, tmp_path, map_db.url, Clock(NOW))


def ids(answer: dict[str, Any]) -> dict[str, str]:
    """Customer id -> status of the map's points."""
    return {point["customer_id"]: point["status"] for point in answer["points"]}


# ------------------------------------------------------------------ who may call what
ENDPOINTS = ("/api/map?branch=JT", "/api/map/customers/C0001", "/workspace/map")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_every_map_endpoint_and_the_page_answer_each_role_as_its_permissions_say(
        client, map_db, path):
    page = path.startswith("/workspace")
    for caller in ("anonymous", "forged", *Role):
        if caller in ("anonymous", "forged"):
            headers = {"Authorization": "Bearer forged"} if caller == "forged" else {}
            want = 302 if page else 401
        else:
            headers = map_db.who[BY_ROLE[caller]]
            want = 200 if allows(caller, Permission.WORK_LEADS) else 403
        answer = await client.get(path, headers=headers, allow_redirects=False)
        assert answer.status == want, (caller, await answer.text())
        if page or want == 200:
            assert answer.headers["Cache-Control"] == "no-store"
        if want == 302:
            target = urlsplit(answer.headers["Location"])
            assert (target.path, parse_qs(target.query)) == ("/workspace/login", {"next": [path]})
        elif page:
            assert '<html lang="zh-CN">' in await answer.text()
        elif want != 200:
            assert "error" in await answer.json()


async def test_each_person_sees_only_their_reach_on_the_map(client, map_db):
    who = map_db.who
    # A branch manager: the branch's leads and the area's customers who may be approached.
    jt = await get_json(client, "/api/map", who["jt_mgr"])  # their own branch by default
    assert jt["branch"] == {"id": "JT", "name": "金堂县支行"} and jt["scope"] == "branch"
    assert ids(jt) == {"C0001": "assigned", "C0007": "assigned", "M0001": "customer",
                       "M0004": "customer", "M0005": "customer"}
    assert jt == await get_json(client, "/api/map?branch=JT", who["jt_mgr"])
    assert [b["id"] for b in jt["branches"]] == ["JT"] and jt["unplaced"] == []
    assert jt["area"] == [{"adcode": "510121", "name": "金堂县", "city": "成都市"}]
    for other in ("CD", "XX"):  # another branch, known or not: refused before looking
        await get_json(client, f"/api/map?branch={other}", who["jt_mgr"], status=403)
    cd = await get_json(client, "/api/map", who["cd_mgr"])
    assert ids(cd) == {"C0004": "assigned", "C0011": "customer"}  # 新都 and 锦江 are CD's
    assert [county["name"] for county in cd["area"]] == ["锦江区", "新都区"]

    # An account manager: only the leads given to them, no other customers, no other branch.
    mine = await get_json(client, "/api/map", who["jt_am"])
    assert ids(mine) == {"C0001": "assigned"} and mine["scope"] == "mine"
    assert ids(await get_json(client, "/api/map?branch=JT", who["jt_am2"])) == {"C0007": "assigned"}
    assert ids(await get_json(client, "/api/map", who["cd_am"])) == {"C0004": "assigned"}
    await get_json(client, "/api/map?branch=CD", who["jt_am"], status=403)

    # An administrator: any branch (the first without ?branch=), every branch to pick from.
    first = await get_json(client, "/api/map", who["root"])
    assert first["branch"]["id"] == "CD" and ids(first) == ids(cd)
    assert [b["id"] for b in first["branches"]] == ["CD", "DY", "JT", "PD", "SL"]
    assert ids(await get_json(client, "/api/map?branch=JT", who["root"])) == ids(jt)
    assert ids(await get_json(client, "/api/map?branch=SL", who["root"])) == {
        "C0002": "customer", "C0008": "customer"}
    assert "error" in await get_json(client, "/api/map?branch=XX", who["root"], status=404)
    for bad in ("J T", "JT;drop", "x" * 33):
        await get_json(client, "/api/map?branch=" + quote(bad), who["root"], status=400)


async def test_the_customer_panel_is_within_the_same_reach(client, map_db):
    who = map_db.who
    cases = {  # customer -> who may open them (everyone else: 403)
        "C0001": {"jt_mgr", "jt_am", "root"},  # JT's lead, jt_am's
        "C0007": {"jt_mgr", "jt_am2", "root"},
        "C0004": {"cd_mgr", "cd_am", "root"},  # CD's lead
        "M0001": {"jt_mgr", "root"},  # JT's area, no lead: not an account manager's
        "M0002": {"root"},  # no consent: on no branch's map
        "C0011": {"cd_mgr", "root"},  # CD's area
    }
    for customer_id, allowed in cases.items():
        for username in ("jt_mgr", "jt_am", "jt_am2", "cd_mgr", "cd_am", "root"):
            want = 200 if username in allowed else 403
            await get_json(client, f"/api/map/customers/{customer_id}", who[username], status=want)
    await get_json(client, "/api/map/customers/C9999", who["root"], status=404)
    for bad in ("C 0001", "x" * 65, "%09C1"):
        answer = await get_json(client, f"/api/map/customers/{quote(bad, safe='%')}", who["root"],
                                status=400)
        assert "customer id" in answer["error"]


# ------------------------------------------------------------------ what the map shows
def _inside(lon: float, lat: float, polygons: list) -> bool:
    inside = False
    for polygon in polygons:
        for ring in polygon:
            for (x1, y1), (x2, y2) in zip(ring, ring[1:], strict=False):
                if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
    return inside


async def test_points_are_masked_in_their_county_and_flag_what_is_overdue(client, map_db):
    counties = {f["properties"]["adcode"]: f for f in json.loads(GEOJSON.read_text())["features"]}
    answers = [await get_json(client, f"/api/map?branch={b}", map_db.who["root"])
               for b in ("JT", "CD", "SL", "PD", "DY")]
    points = {p["customer_id"]: p for answer in answers for p in answer["points"]}
    assert len(points) == 14  # the 12 sample customers less 蒲江's C0012 (no consent), + 3
    for point in points.values():
        feature = counties[point["county"]["adcode"]]
        assert _inside(point["lon"], point["lat"], feature["geometry"]["coordinates"]), point
        assert feature["properties"]["name"] == point["county"]["name"]
        seat = Point(*reversed(feature["properties"]["point"]))
        assert distance_km(seat, Point(point["lat"], point["lon"])) <= MAX_SPREAD_KM + 0.02
    assert points["M0004"]["county"]["name"] == "青白江区"  # the address, not the region
    assert points["M0004"]["located_by"] == "address"
    assert points["M0005"]["county"]["name"] == "金堂县"  # the address names only a city
    assert points["M0005"]["located_by"] == "region"
    assert points["C0001"]["county"]["adcode"] == resolve_address(
        "四川省成都市金堂县赵镇十里大道一段120号").adcode

    assert points["C0001"]["name"] == "张**" and points["C0001"]["phone"] == "138****8001"
    text = json.dumps(answers, ensure_ascii=False)
    for full in ("张伟", "13800138001", "黄丽", "18700187008", "欧阳测1", "13512340001"):
        assert full not in text

    assert (points["C0001"]["overdue"], points["C0001"]["missed"]) == (True, "claim_overdue")
    assert points["C0007"]["overdue"] is False and points["M0001"]["overdue"] is False
    assert points["C0001"]["lead_id"] == map_db.leads["C0001"]
    assert points["C0001"]["manager"]["name"] == "jt_am"
    assert (points["M0001"]["lead_id"], points["M0001"]["manager"]) == (None, None)


async def test_the_panel_shows_address_offer_and_history_masked(client, map_db):
    detail = await get_json(client, "/api/map/customers/C0001", map_db.who["jt_am"])
    assert detail["customer"] == {
        "id": "C0001", "name": "张**", "phone": "138****8001", "region": "金堂县",
        "segment": "农户", "address": "四川省成都市金堂县赵镇十里大道一段120号",
        "org_name": None, "org_address": None}
    assert detail["county"]["name"] == "金堂县" and detail["located_by"] == "address"
    assert detail["offer"] == {"product": "邮享贷", "amount_yuan": 50000, "rate_min": 3.6,
                               "rate_max": 7.2, "term_months": 12, "valid_until": "2027-12-31"}
    lead_id = map_db.leads["C0001"]
    assert detail["status"] == "assigned" and detail["lead_url"] == f"/workspace/leads/{lead_id}"
    assert [(lead["id"], lead["overdue"]) for lead in detail["leads"]] == [(lead_id, True)]
    history = [(row["source"], row["kind"], row.get("outcome")) for row in detail["history"]]
    assert history == [("call", "call", "no_answer"), ("lead", "assigned", None),
                       ("lead", "manager", None)]
    assert detail["history"][0]["at"] == (T0 - DAY).isoformat()

    pharmacy = await get_json(client, "/api/map/customers/C0008", map_db.who["root"])
    assert pharmacy["customer"]["org_name"] == "双流区康民大药房"
    assert pharmacy["customer"]["org_address"].startswith("四川省成都市双流区")
    assert (pharmacy["status"], pharmacy["leads"], pharmacy["lead_url"]) == ("customer", [], None)
    assert "18700187008" not in json.dumps(pharmacy) and "黄丽" not in json.dumps(
        pharmacy, ensure_ascii=False)


# ------------------------------------------------------------------ the pure parts
def test_the_spread_is_deterministic_small_and_pulls_a_countys_points_apart():
    seat = resolve_region("金堂县").point
    ids_ = [f"C{n:04d}" for n in range(400)]
    moved = [spread(seat, cid) for cid in ids_]
    assert moved == [spread(seat, cid) for cid in ids_]  # the same every time
    assert spread(seat, "C0001") == Point(30.858674, 104.403348)  # and in every process
    km = [distance_km(seat, point) for point in moved]
    assert max(km) <= MAX_SPREAD_KM + 1e-6 and min(km) > 0
    assert 0.9 < sum(km) / len(km) < 1.1  # uniform over the disc: mean 2/3 of the radius
    assert len(set(moved)) == len(ids_)
    east = [point.lon > seat.lon for point in moved]
    north = [point.lat > seat.lat for point in moved]
    assert 0.4 < sum(east) / len(east) < 0.6 and 0.4 < sum(north) / len(north) < 0.6


def test_a_point_is_placed_by_address_then_region_or_not_at_all():
    assert locate("四川省成都市郫都区犀浦街道百草路31号", "金堂县").division.county == "郫都区"
    assert locate("成都市高新区天府大道", "金堂县").by == "region"
    assert locate(None, "双流区").division.county == "双流区"
    assert locate("某地某路", "火星") is None
    lost = Subject("Z1", "王**", "138****0000", "火星", None, None)
    assert point_json(lost, Names()) is None


@pytest.mark.parametrize("value, ok", [
    ("C0001", True), ("WS1a2b3c4", True), ("客户-01", True), ("x" * 64, True),
    ("", False), ("x" * 65, False), ("C 1", False), ("C\t1", False), ("a/b", False),
    ("C\u200b1", False),
])
def test_a_customer_id_is_read_strictly(value, ok):
    if ok:
        assert parse_customer_id(value) == value
    else:
        with pytest.raises(ValueError, match="customer id"):
            parse_customer_id(value)


def test_a_branch_is_read_strictly():
    assert parse_branch(None) is None and parse_branch("") is None
    assert parse_branch("JT") == "JT" and parse_branch("cd_2-x") == "cd_2-x"
    for bad in ("J T", "JT;", "x" * 33, "金堂"):
        with pytest.raises(ValueError, match="branch"):
            parse_branch(bad)


def test_the_bundled_boundaries_are_small_and_cover_the_branches_counties():
    assert GEOJSON.stat().st_size < 400_000
    features = json.loads(GEOJSON.read_text())["features"]
    codes = {f["properties"]["adcode"] for f in features}
    assert len(codes) == len(features) == 183  # Sichuan
    for region in ("金堂县", "双流区", "郫都区", "新都区", "大邑县", "蒲江县", "锦江区"):
        assert resolve_region(region).adcode in codes
    for feature in features:
        for polygon in feature["geometry"]["coordinates"]:
            for ring in polygon:
                assert ring[0] == ring[-1] and len(ring) >= 4
                assert all(math.isclose(round(x, 4), x) for point in ring for x in point)
    assert (MAP_ASSETS / "counties.LICENSE").read_text().count("MIT License") == 1
    assert (MAP_ASSETS / "vendor" / "echarts" / "echarts.min.js").stat().st_size > 500_000
    assert "Apache License" in (MAP_ASSETS / "vendor" / "echarts" / "LICENSE").read_text()


async def test_the_maps_boundaries_and_echarts_are_served_from_the_app_itself(client):
    for path in ("counties.geojson", "counties.LICENSE", "vendor/echarts/echarts.min.js",
                 "vendor/echarts/LICENSE", "vendor/echarts/NOTICE"):
        answer = await client.get(f"/workspace/map-assets/{path}")
        assert answer.status == 200, path
    assert (await client.get("/workspace/map-assets/../pages/map.html")).status in (403, 404)
    page = await client.get("/workspace/map", allow_redirects=False)
    assert page.status == 302  # the page itself: only after logging in


async def test_a_large_area_plots_its_first_customers_and_says_how_many_there_are(
        client, map_db, monkeypatch):
    everyone = (await get_json(client, "/api/map", map_db.who["jt_mgr"]))
    area = [p for p in everyone["points"] if p["status"] == "customer"]
    assert everyone["area_customers"] == {"shown": len(area), "total": len(area), "limit": 2000}
    monkeypatch.setattr(map_api, "AREA_LIMIT", 1)
    capped = await get_json(client, "/api/map", map_db.who["jt_mgr"])
    shown = [p for p in capped["points"] if p["status"] == "customer"]
    assert [p["customer_id"] for p in shown] == [min(p["customer_id"] for p in area)]
    assert capped["area_customers"] == {"shown": 1, "total": len(area), "limit": 1}
    assert len(capped["points"]) - 1 == len(everyone["points"]) - len(area)  # every lead stays
