"""Response prediction: features that never peek at the answer, a model that learns who answers
what (on SYNTHETIC history, whose truth is known), honest cross-validation, A/B arms, and a
draft campaign targeted and run with the model's choices on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
from collections import Counter
from datetime import datetime, timedelta, timezone
from statistics import mean

import pytest
from sqlalchemy import select

from outbound import campaigns, contact_history, synthetic_history
from outbound.arm_results import arm_results
from outbound.campaigns import CampaignConfig, CampaignRefused
from outbound.contact_plans import ContactPlan
from outbound.plan_choice import (
    Choice,
    arm_of,
    at_hour,
    best,
    candidates,
    personal_plan,
    plan_channels,
)
from outbound.plan_runner import PlanRunner
from outbound.response_features import (
    CHANNELS,
    Candidate,
    Contact,
    History,
    Profile,
    training_rows,
)
from outbound.response_model import ModelError, ResponseModel, train
from outbound.targeting import target_campaign
from persistence import audit, store
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import CampaignTarget, PlanStepTaken
from tests.conftest import QUEUE_NOW

UTC = timezone.utc
SHANGHAI = timezone(timedelta(hours=8))
PLAN = {"steps": [{"channel": "sms"}, {"channel": "popup", "wait_hours": 24},
                  {"channel": "call", "wait_hours": 24}, {"channel": "branch_lead",
                                                          "wait_hours": 72}]}


def _contact(customer: str, day: int, responded: bool, channel: str = "sms") -> Contact:
    at = datetime(2026, 11, day, 2, tzinfo=UTC)
    return Contact(customer, channel, at, 10, "A", responded)


def test_a_contacts_features_see_only_the_contacts_before_it():
    profiles = {"C1": Profile("C1", "工薪", "银川")}
    rows, labels, groups = training_rows(profiles, [
        _contact("C1", 3, True, "call"), _contact("C1", 1, False), _contact("C2", 1, True)])
    assert labels == [0, 1] and groups == ["C1", "C1"]  # C2 has no profile: left out
    first, second = rows
    assert (first["prior_contacts"], first["prior_responses"]) == (0, 0)
    assert (second["prior_contacts"], second["prior_responses"]) == (1, 0)
    assert second["prior_on_channel"] == 0 and second["days_since_last"] == 2


def test_arms_are_stable_and_split_by_the_share():
    customers = [f"C{n}" for n in range(10_000)]
    arms = [arm_of("camp", c, 0.3) for c in customers]
    assert 0.28 < arms.count("model") / len(arms) < 0.32
    assert arms == [arm_of("camp", c, 0.3) for c in customers]
    assert {arm_of("camp", c, 0) for c in customers} == {"fixed"}
    assert {arm_of("camp", c, 1) for c in customers} == {"model"}
    with pytest.raises(ValueError):
        arm_of("camp", "C1", 1.5)


def test_a_personal_plan_starts_on_the_chosen_channel_and_keeps_the_waits():
    plan = ContactPlan.from_json({"steps": [
        {"channel": "sms", "template": "reminder"}, {"channel": "popup", "wait_hours": 24},
        {"channel": "call", "wait_hours": 24}]})
    own = personal_plan(plan, "call")
    assert own.channels == ("call", "popup", "sms")
    assert [s.wait for s in own.steps] == [s.wait for s in plan.steps]
    assert own.steps[2].template == "reminder" and own.steps[0].template is None
    assert personal_plan(plan, "sms") == plan
    assert plan_channels(ContactPlan.from_json(PLAN)) == ("sms", "popup", "call")
    with pytest.raises(ValueError, match="no branch_lead step"):
        personal_plan(plan, "branch_lead")


def test_a_step_at_a_chosen_hour_waits_for_that_hour_in_local_time():
    morning = datetime(2026, 12, 1, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    assert at_hour(morning, 9, "Asia/Shanghai") == morning
    assert at_hour(morning, 19, "Asia/Shanghai") == datetime(2026, 12, 1, 19, tzinfo=SHANGHAI)
    assert at_hour(morning, 9 - 1, "Asia/Shanghai") == morning  # within its two hours
    late = datetime(2026, 12, 1, 12, tzinfo=UTC)  # 20:00
    assert at_hour(late, 12, "Asia/Shanghai") == datetime(2026, 12, 2, 12, tzinfo=SHANGHAI)


def test_the_best_candidate_is_the_highest_scored():
    options = candidates(("sms", "call"), ("A", "B"))
    assert len(options) == 16
    scores = [0.1] * 16
    scores[11] = 0.4
    assert best(scores, options) == Choice(options[11].channel, options[11].hour,
                                           options[11].variant, 0.4)
    with pytest.raises(ValueError):
        best([0.1], options)


@pytest.fixture(scope="module")
def synthetic_model() -> ResponseModel:
    history = synthetic_history.generate(3000, seed=7)
    rows, labels, groups = training_rows({p.customer_id: p for p in history.profiles},
                                         history.contacts)
    return train(rows, labels, groups, source="synthetic history (demo)", seed=7)


def test_on_synthetic_history_the_model_ranks_responders_and_its_choices_beat_a_fixed_plan(
        synthetic_model):
    evaluation = synthetic_model.evaluation
    assert evaluation is not None and evaluation.folds == 5
    assert 0.62 < evaluation.auc_mean < 0.8  # the made-up customers are noisy, as real ones
    fresh = synthetic_history.profiles(2000, seed=7, start=500_000)
    options = candidates(CHANNELS, synthetic_history.VARIANTS)
    scores = synthetic_model.score_all(fresh, [History()] * len(fresh), options)
    chosen = [best(list(row), options) for row in scores]

    def truth(profile: Profile, channel: str, hour: int, variant: str) -> float:
        return synthetic_history.true_probability(profile, Candidate(channel, hour, variant),
                                                  History(), seed=7)

    model = mean(truth(p, c.channel, c.hour, c.variant) for p, c in zip(fresh, chosen))
    fixed = mean(truth(p, "sms", 9, "A") for p in fresh)
    assert model > 1.8 * fixed
    by_segment: dict[str, Counter] = {}
    for profile, choice in zip(fresh, chosen):
        by_segment.setdefault(profile.segment, Counter())[choice.channel] += 1
    assert by_segment["退休"].most_common(1)[0][0] == "call"
    assert by_segment["工薪"]["call"] < 0.2 * sum(by_segment["工薪"].values())


def test_too_little_history_is_refused_and_a_foreign_file_is_not_a_model(tmp_path):
    history = synthetic_history.generate(40, seed=1)
    rows, labels, groups = training_rows({p.customer_id: p for p in history.profiles},
                                         history.contacts)
    with pytest.raises(ModelError, match="too little history"):
        train(rows, labels, groups, source="synthetic")
    (tmp_path / "model.joblib").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a response model"):
        ResponseModel.load(tmp_path / "model.joblib")
    with pytest.raises(ModelError, match="no response model"):
        ResponseModel.load(tmp_path / "missing.joblib")


def test_a_saved_model_scores_as_before(synthetic_model, tmp_path):
    profiles = synthetic_history.profiles(50, seed=7, start=900_000)
    options = candidates(CHANNELS, ("A", "B"))
    before = synthetic_model.score_all(profiles, [History()] * 50, options)
    loaded = ResponseModel.load(synthetic_model.save(tmp_path / "response.joblib"))
    assert (loaded.score_all(profiles, [History()] * 50, options) == before).all()
    assert loaded.evaluation == synthetic_model.evaluation


def test_synthetic_history_reads_back_from_the_records_as_it_was_made(engine):
    history = synthetic_history.generate(150, seed=3)
    with session_scope(engine) as session:
        written = contact_history.store_synthetic(session, history, QUEUE_NOW)
    with session_scope(engine) as session:
        read = contact_history.contacts(session)
        profiles = contact_history.profiles(session)
    made = sorted(history.contacts, key=lambda c: (c.customer_id, c.at))
    assert written == len(made) == len(read)
    assert [(c.customer_id, c.channel, c.at, c.hour, c.variant, c.responded) for c in read] == \
        [(c.customer_id, c.channel, c.at, c.hour, c.variant, c.responded) for c in made]
    assert profiles["SYN-000001"].segment == history.profiles[0].segment
    with session_scope(engine) as session:  # made again: replaced, not doubled
        contact_history.store_synthetic(session, history, QUEUE_NOW)
    with session_scope(engine) as session:
        assert len(contact_history.contacts(session)) == len(made)


def _draft(engine, customers: list[str]) -> None:
    config = CampaignConfig(window_start="00:00", window_end="00:00", max_attempts=1, plan=PLAN)
    with session_scope(engine) as session:
        campaigns.create_campaign(session, "plan", "联络计划", "simulated", config, QUEUE_NOW,
                                  actor=Actor.command_line())
        campaigns.add_targets(session, "plan", customers, QUEUE_NOW)


async def test_a_targeted_campaign_runs_each_model_customer_on_their_channel_and_hour(
        engine, synthetic_model):
    history = synthetic_history.generate(120, seed=7, end=QUEUE_NOW - timedelta(days=1))
    with session_scope(engine) as session:
        contact_history.store_synthetic(session, history, QUEUE_NOW - timedelta(days=1))
    customers = [p.customer_id for p in history.profiles]
    _draft(engine, customers)
    seen: list[tuple[int, int]] = []
    summary = target_campaign(engine, "plan", synthetic_model, model_share=0.5,
                              actor=Actor.command_line(), now=QUEUE_NOW, batch=50,
                              progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, 120) and seen[-1] == (120, 120)
    assert summary.customers == 120 and 40 < summary.arms["model"] < 80
    with session_scope(engine) as session:
        targets = {t.customer_id: t for t in session.scalars(select(CampaignTarget))
                   if t.campaign_id == "plan"}
        trail = audit.history(session, "campaign", "plan")
    model_arm = [t for t in targets.values() if t.arm == "model"]
    assert len(model_arm) == summary.arms["model"]
    assert all(t.choice and t.variant == t.choice["variant"] for t in model_arm)
    assert all(t.choice is None for t in targets.values() if t.arm == "fixed")
    assert trail[0].action == "campaign_targeted" and trail[0].detail["customers"] == 120

    with session_scope(engine) as session:
        campaigns.command(session, "plan", "start", Actor.command_line(), QUEUE_NOW)
    with pytest.raises(CampaignRefused, match="only a draft"):
        target_campaign(engine, "plan", synthetic_model, model_share=0.5,
                        actor=Actor.command_line(), now=QUEUE_NOW)

    runner = PlanRunner(engine, sms=None, bank="邮储银行")
    for hours in range(0, 24):  # the first day, hour by hour (QUEUE_NOW is 10:00 local)
        await runner.advance("plan", QUEUE_NOW + timedelta(hours=hours))
    with session_scope(engine) as session:
        first = {s.customer_id: s for s in session.scalars(
            select(PlanStepTaken).where(PlanStepTaken.step_no == 0))}
    for target in model_arm:
        step = first[target.customer_id]
        assert step.channel == target.choice["channel"]
        local = step.taken_at.astimezone(SHANGHAI).hour
        assert target.choice["hour"] <= local < target.choice["hour"] + 2
    fixed = [first[t.customer_id] for t in targets.values() if t.arm == "fixed"]
    assert {s.channel for s in fixed} == {"sms"} and {s.taken_at for s in fixed} == {QUEUE_NOW}

    fixed_ids = [t.customer_id for t in targets.values() if t.arm == "fixed"]
    with session_scope(engine) as session:
        for customer_id in [t.customer_id for t in model_arm[:3]] + fixed_ids[:1]:
            store.start_conversation(session, f"chat-{customer_id}", customer_id, "chat", None)
        store.start_conversation(session, "call-x", fixed_ids[1], "voice", None)  # not a chat
        results = arm_results(session, "plan")
    assert results is not None
    assert results.customers == {"fixed": len(fixed_ids), "model": len(model_arm)}
    assert results.responded == {"fixed": 1, "model": 3}
    assert results.handed_over == {"fixed": 0, "model": 0}
    assert results.response_test.verdict.startswith("Not enough data")


def test_from_the_command_line_a_demo_history_trains_a_model_that_targets_a_campaign(
        tmp_path, monkeypatch, capsys):
    from offercall.cli import main

    monkeypatch.setenv("OFFERCALL_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("OFFERCALL_DATABASE_URL", f"sqlite:///{tmp_path / 'offercall.db'}")
    config = tmp_path / "plan.json"
    config.write_text('{"plan": {"steps": [{"channel": "sms"}, {"channel": "call", '
                      '"wait_hours": 24}]}}', encoding="utf-8")
    assert main(["migrate"]) == 0
    assert main(["response", "train"]) == 2  # no history yet
    assert "too little history" in capsys.readouterr().err
    assert main(["response", "synth", "--customers", "600", "--seed", "5", "--quiet"]) == 0
    assert "SYNTHETIC history (made up, not real customers): 600 customers" in \
        capsys.readouterr().out
    assert main(["response", "train"]) == 0
    out = capsys.readouterr().out
    assert "trained on synthetic history (demo): cross-validated AUC" in out
    assert (tmp_path / "response_model.joblib").exists()
    assert main(["campaign", "create", "retired", "--segment", "退休", "--config",
                 str(config)]) == 0
    capsys.readouterr()
    assert main(["response", "target", "retired", "--share", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "arms: {'model':" in out and "'fixed'" not in out.split("arms:")[1].split("\n")[0]
    channels = ast.literal_eval(out.split("channels ")[1].split("  hours")[0])
    assert channels.get("call", 0) > channels.get("sms", 0)  # the retired answer calls


def test_the_report_judges_the_model_arm_against_the_fixed_arm():
    from outbound.abtest import compare
    from outbound.arm_results import ArmResults
    from outbound.report import CampaignSummary, render_html

    customers, responded, handed = {"fixed": 400, "model": 400}, {"fixed": 20, "model": 60}, \
        {"fixed": 4, "model": 9}
    arms = ArmResults(customers, responded, handed,
                      compare({a: (responded[a], customers[a]) for a in customers}),
                      compare({a: (handed[a], customers[a]) for a in customers}))
    summary = CampaignSummary(id="plan", name="联络计划", status="running",
                              created_at=QUEUE_NOW, variants=["A", "B"])
    page = render_html(summary, [], QUEUE_NOW, arms=arms)
    section = page.split('<section id="arms">')[1].split("</section>")[0]
    assert "<td>固定方案 (fixed plan)</td><td>400</td><td>20 (5.0%)</td>" in section
    assert "<td>模型选择 (model-chosen)</td><td>400</td><td>60 (15.0%)</td>" in section
    assert "model converts better than fixed (15.0% vs 5.0%" in section
    assert '<section id="arms">' not in render_html(summary, [], QUEUE_NOW)
