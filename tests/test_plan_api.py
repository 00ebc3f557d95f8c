"""The contact plan's reads (``outbound.web.campaign_plans``) on SQLite: who may read them (every
role), where a campaign's customers stand in its plan (the grouped read and its pure view), a
calls-only campaign, and a plan given to the change API refused with the reason, nothing
written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine

from core.access import Permission, allows
from core.clock import utcnow
from core.settings import PROJECT_ROOT
from core.vocabulary import CampaignStatus, Role
from handoff.agents import open_session
from outbound import campaigns
from outbound.campaigns import CampaignConfig, CampaignInfo
from outbound.contact_plans import ContactPlan
from outbound.sms_rules import TEMPLATES
from outbound.web.campaign_views import plan_json
from outbound.whitelist import import_whitelist_file
from persistence.engine import make_engine, session_scope
from persistence.migrator import migrate
from persistence.schema import CampaignTarget
from tests.conftest import QUEUE_NOW
from tests.test_campaign_api import SEEDER, add_staff, app_for

PLAN = {"steps": [{"channel": "sms", "template": "reminder"},
                  {"channel": "call", "wait_hours": 24},
                  {"channel": "branch_lead", "wait_hours": 72}]}
"""As a manager may write it: the first wait and the stop conditions left to their defaults."""


@pytest.fixture(scope="module")
def plan_db(tmp_path_factory) -> Iterator[tuple[str, Engine, dict[str, str]]]:
    """One SQLite database for the module: the sample whitelist and one logged-in account of
    each role (tokens opened directly)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('plans') / 'offercall.db'}"
    engine = make_engine(url)
    migrate(engine)
    import_whitelist_file(engine, PROJECT_ROOT / "data" / "whitelist_sample.csv",
                          today=QUEUE_NOW.date())
    ids = add_staff(engine, [(f"plan_{role}", role, "JT") for role in Role])
    with session_scope(engine) as session:
        tokens = {role: open_session(session, ids[f"plan_{role}"], utcnow()) for role in Role}
    yield url, engine, tokens
    engine.dispose()


@pytest.fixture
async def client(aiohttp_client, tmp_path, plan_db):
    return await aiohttp_client(app_for(tmp_path, plan_db[0]))


def bearer(tokens: dict[str, str], role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def seed(engine: Engine, plan: dict | None, customers: tuple[str, ...]) -> str:
    """A draft campaign with ``plan`` over ``customers``; its id."""
    campaign_id = f"p-{uuid.uuid4().hex[:10]}"
    with session_scope(engine) as session:
        now = utcnow()
        campaigns.create_campaign(session, campaign_id, campaign_id, "simulated",
                                  CampaignConfig.from_json({"plan": plan}), now, actor=SEEDER)
        campaigns.add_targets(session, campaign_id, list(customers), now)
    return campaign_id


def place(engine: Engine, campaign_id: str, customer_id: str, step: int, status: str) -> None:
    with session_scope(engine) as session:
        session.execute(update(CampaignTarget).where(
            CampaignTarget.campaign_id == campaign_id, CampaignTarget.customer_id == customer_id)
            .values(plan_step=step, status=status))


@pytest.mark.parametrize("path", ["/api/plan-options", "/api/campaigns/{id}/plan"])
async def test_the_plan_reads_answer_each_role_as_its_permissions_say(client, plan_db, path):
    _, engine, tokens = plan_db
    wanted = path.format(id=seed(engine, PLAN, ("C0001",)))
    assert (await client.get(wanted)).status == 401
    assert (await client.get(wanted, headers={"Authorization": "Bearer forged"})).status == 401
    for role in Role:
        answer = await client.get(wanted, headers=bearer(tokens, role))
        expected = 200 if allows(role, Permission.VIEW_CAMPAIGN_SETTINGS) else 403
        assert answer.status == expected, role
    unknown = await client.get("/api/campaigns/nope/plan", headers=bearer(tokens, Role.ADMIN))
    assert unknown.status == 404


async def test_the_options_are_what_the_server_checks_a_plan_against(client, plan_db):
    answer = await (await client.get("/api/plan-options",
                                     headers=bearer(plan_db[2], Role.CAMPAIGN_MANAGER))).json()
    assert answer == {"channels": ["sms", "popup", "call", "branch_lead"],
                      "templates": dict(TEMPLATES),
                      "stop_on": ["opt_out", "applied", "refused"], "always_stop_on": ["opt_out"],
                      "max_steps": 10, "max_wait_hours": 1440.0}


async def test_a_started_plan_shows_how_many_customers_are_at_each_step(client, plan_db):
    _, engine, tokens = plan_db
    campaign_id = seed(engine, PLAN, ("C0001", "C0002", "C0003", "C0004", "C0005"))
    place(engine, campaign_id, "C0002", 1, "planned")   # texted, waiting for the call
    place(engine, campaign_id, "C0003", 2, "dialing")   # the call step, being dialled
    place(engine, campaign_id, "C0004", 2, "pending")   # ...and due for a retry
    place(engine, campaign_id, "C0005", 3, "done")      # handed to a branch: through
    answer = await client.get(f"/api/campaigns/{campaign_id}/plan",
                              headers=bearer(tokens, Role.BRANCH_MANAGER))
    assert await answer.json() == {
        "id": campaign_id, "status": "draft",
        "plan": {"steps": [{"channel": "sms", "wait_hours": 0.0, "template": "reminder"},
                           {"channel": "call", "wait_hours": 24.0},
                           {"channel": "branch_lead", "wait_hours": 72.0}],
                 "stop_on": ["applied", "opt_out", "refused"]},
        "positions": [{"waiting": 1, "dialling": 0}, {"waiting": 1, "dialling": 2},
                      {"waiting": 0, "dialling": 0}],
        "finished": 1, "elsewhere": 0}

    calls_only = seed(engine, None, ("C0001",))
    answer = await client.get(f"/api/campaigns/{calls_only}/plan",
                              headers=bearer(tokens, Role.CAMPAIGN_MANAGER))
    assert await answer.json() == {"id": calls_only, "status": "draft", "plan": None}


@pytest.mark.parametrize(("positions", "steps", "finished", "elsewhere"), [
    ({}, [(0, 0), (0, 0)], 0, 0),
    ({(0, "planned"): 3, (0, "planning"): 1}, [(4, 0), (0, 0)], 0, 0),
    ({(1, "claiming"): 2, (2, "pending"): 1}, [(0, 2), (0, 1)], 0, 0),
    ({(2, "planned"): 1, (0, "pending"): 1, (1, "done"): 5}, [(0, 0), (0, 0)], 5, 2),
], ids=["nobody", "waiting", "dialling", "through-and-out-of-plan"])
def test_positions_are_read_as_waiting_for_a_step_or_dialling_its_call(
        positions, steps, finished, elsewhere):
    plan = ContactPlan.from_json({"steps": [{"channel": "call"}, {"channel": "call"}]})
    info = CampaignInfo("c", "c", CampaignStatus.RUNNING, "simulated", CampaignConfig(),
                        QUEUE_NOW - timedelta(days=1))
    view = plan_json(info, plan, positions)
    assert [(at["waiting"], at["dialling"]) for at in view["positions"]] == steps
    assert (view["finished"], view["elsewhere"]) == (finished, elsewhere)


async def test_a_wrong_plan_is_refused_with_the_reason_and_nothing_written(client, plan_db):
    _, engine, tokens = plan_db
    campaign_id = seed(engine, None, ("C0001",))
    mgr = bearer(tokens, Role.CAMPAIGN_MANAGER)
    wrong = {"steps": [{"channel": "sms"}, {"channel": "popup", "wait_hours": 61 * 24}]}
    refused = await client.patch(f"/api/campaigns/{campaign_id}", headers=mgr,
                                 json={"config": {"plan": wrong}})
    assert refused.status == 400
    assert "bad contact plan: step 2: a step waits 0 to 60 days" in (await refused.json())["error"]
    with session_scope(engine) as session:
        assert campaigns.get_campaign(session, campaign_id).config.plan is None
    saved = await client.patch(f"/api/campaigns/{campaign_id}", headers=mgr,
                               json={"config": {"plan": PLAN}})
    assert (saved.status, (await saved.json())["config"]["plan"]) == (200, PLAN)
    with session_scope(engine) as session:
        assert campaigns.get_campaign(session, campaign_id).config.plan == PLAN
