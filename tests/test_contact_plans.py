"""Contact-plan rules (pure): the plan as a manager writes it, and each customer's next step."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from outbound.contact_plans import (
    CALLS_ONLY,
    ContactPlan,
    PlanError,
    PlanStep,
    Signals,
    decide,
)

START = datetime(2026, 12, 7, 1, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
# 主动授信: SMS on day 1, a pop-up that afternoon, a call on day 2, a branch lead on day 5
PROGRAMME = ContactPlan.from_json({"steps": [
    {"channel": "sms", "template": "offer"},
    {"channel": "popup", "wait_hours": 4},
    {"channel": "call", "wait_hours": 20},
    {"channel": "branch_lead", "wait_hours": 72},
]})


def test_a_plan_reads_as_a_manager_writes_it_and_writes_back_the_same():
    assert PROGRAMME.channels == ("sms", "popup", "call", "branch_lead")
    assert PROGRAMME.steps[2] == PlanStep("call", timedelta(hours=20))
    assert PROGRAMME.stop_on == {"opt_out", "applied", "refused"}
    assert ContactPlan.from_json(PROGRAMME.to_json()) == PROGRAMME


@pytest.mark.parametrize(("data", "problem"), [
    ([], "JSON object"),
    ({"steps": []}, "1 to 10 steps"),
    ({"steps": [{"channel": "fax"}]}, "step 1: a step's channel"),
    ({"steps": [{"channel": "sms"}, {"channel": "call", "wait_hours": -1}]}, "step 2: a step waits"),
    ({"steps": [{"channel": "sms", "wait_hours": "2"}]}, "wait_hours is a number"),
    ({"steps": [{"channel": "sms", "wait_hours": 24 * 61}]}, "60 days"),
    ({"steps": [{"channel": "sms", "colour": "red"}]}, "unknown settings colour"),
    ({"steps": [{"channel": "sms"}], "stop_on": ["applied"]}, "opt-out always stops"),
    ({"steps": [{"channel": "sms"}], "stop_on": ["opt_out", "bored"]}, "unknown stop"),
    ({"steps": [{"channel": "sms"}], "when": "now"}, "unknown plan settings: when"),
    ({"steps": ["sms"]}, "step 1 is not an object"),
    ({"steps": [{"channel": "sms", "template": "jackpot"}]}, "unknown message template"),
    ({"steps": [{"channel": "call", "template": "offer"}]}, "only a text message step"),
])
def test_a_bad_plan_is_refused_naming_what_is_wrong(data, problem):
    with pytest.raises(PlanError, match=problem):
        ContactPlan.from_json(data)


def walk(plan: ContactPlan, signals_at=lambda step, now: Signals(), until=10 * DAY,
         every=timedelta(hours=1)) -> list[tuple[timedelta, str]]:
    """Steps a customer through ``plan`` hour by hour: when each step is taken, and how it ends."""
    taken: list[tuple[timedelta, str]] = []
    next_step, last = 0, None
    now = START
    while now <= START + until:
        decision = decide(plan, next_step, last, START, signals_at(next_step, now), now)
        if decision.verdict == "take":
            taken.append((now - START, plan.steps[decision.step].channel))
            next_step, last = next_step + 1, now
            continue
        if decision.verdict in ("stop", "done"):
            taken.append((now - START, decision.verdict + ":" + decision.reason))
            break
        now += every
    return taken


def test_a_silent_customer_gets_every_step_at_its_time():
    assert walk(PROGRAMME) == [
        (timedelta(0), "sms"), (timedelta(hours=4), "popup"), (timedelta(hours=24), "call"),
        (timedelta(hours=96), "branch_lead"), (timedelta(hours=96), "done:"),
    ]


@pytest.mark.parametrize("reason", ["opt_out", "applied", "refused"])
def test_a_customer_who_answers_after_the_text_gets_nothing_more(reason):
    def after_the_text(step, now):
        return Signals(**{{"opt_out": "opted_out"}.get(reason, reason): step >= 1})
    assert walk(PROGRAMME, after_the_text) == [(timedelta(0), "sms"), (timedelta(0), f"stop:{reason}")]


def test_a_plan_may_go_on_after_a_refusal_but_never_after_an_opt_out():
    keep_going = ContactPlan(PROGRAMME.steps, frozenset({"opt_out"}))
    refused = walk(keep_going, lambda step, now: Signals(refused=step >= 1))
    assert [channel for _, channel in refused] == ["sms", "popup", "call", "branch_lead", "done:"]
    opted = walk(keep_going, lambda step, now: Signals(opted_out=step >= 2))
    assert [channel for _, channel in opted] == ["sms", "popup", "stop:opt_out"]


def test_the_next_step_waits_for_a_running_call_to_finish_then_its_own_wait():
    call_ends = START + timedelta(hours=40)

    def call_running(step, now):
        return Signals(step_running=step == 3 and now < call_ends)
    taken = walk(PROGRAMME, call_running)
    assert taken[3] == (timedelta(hours=96), "branch_lead")  # 72 h after the call was placed
    late_call = walk(PROGRAMME, lambda step, now: Signals(step_running=step == 3 and now < START + 5 * DAY))
    assert late_call[3] == (timedelta(days=5), "branch_lead")


def test_a_wait_says_until_when():
    decision = decide(PROGRAMME, 1, START, START, Signals(), START + timedelta(hours=1))
    assert (decision.verdict, decision.step, decision.not_before) == (
        "wait", 1, START + timedelta(hours=4))


def test_a_campaign_without_a_plan_calls():
    assert walk(CALLS_ONLY) == [(timedelta(0), "call"), (timedelta(0), "done:")]


def test_naive_times_and_steps_out_of_range_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(PROGRAMME, 0, None, START.replace(tzinfo=None), Signals(), START)
    with pytest.raises(ValueError, match="next_step"):
        decide(PROGRAMME, 5, None, START, Signals(), START)
