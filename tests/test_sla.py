"""SLA rules: policy checks, widening, live tickets turned into callbacks, callbacks re-routed."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from handoff.routing import CLAIMABLE, STATUSES, TicketFacts
from handoff.sla import (
    ACTIONS,
    SlaPolicy,
    SlaStep,
    callback_deadline,
    callback_promise,
    sla_step,
)
from tests.ticket_builders import T0, ticket

MS = timedelta(milliseconds=1)
POLICY = SlaPolicy()
NOT_CLAIMABLE = [s for s in STATUSES if s not in CLAIMABLE]
# (channel, widen after, callback after) with the default policy
LIMITS = [("voice", 20, 60), ("chat", 60, 300)]


def callback(**overrides) -> TicketFacts:
    """A branch callback task created at T0, to be claimed within an hour."""
    return ticket(**{"kind": "callback", "claim_deadline": T0 + timedelta(hours=1), **overrides})


def step(
    t: TicketFacts, after: timedelta | float, *, staffed: bool = True, policy: SlaPolicy = POLICY
) -> SlaStep | None:
    """The SLA step for ``t`` at T0 + ``after`` (seconds or a timedelta)."""
    if not isinstance(after, timedelta):
        after = timedelta(seconds=after)
    return sla_step(t, T0 + after, policy, branch_staffed=staffed)


def action(t: TicketFacts, after: timedelta | float, **kwargs) -> tuple[str, bool] | None:
    s = step(t, after, **kwargs)
    return None if s is None else (s.action, s.breach)


# --- policy ----------------------------------------------------------------------------------


def test_default_policy():
    assert (POLICY.widen_after("voice"), POLICY.callback_after("voice")) == (20, 60)
    assert (POLICY.widen_after("chat"), POLICY.callback_after("chat")) == (60, 300)
    assert POLICY.callback_claim_s == 172800
    assert POLICY.callback_promise_min == 30


def test_policy_limits_per_channel():
    policy = SlaPolicy(voice_widen_s=5, voice_callback_s=15, chat_widen_s=30, chat_callback_s=90)
    assert [policy.widen_after(c) for c in ("voice", "chat")] == [5, 30]
    assert [policy.callback_after(c) for c in ("voice", "chat")] == [15, 90]


@pytest.mark.parametrize("method", ["widen_after", "callback_after"])
@pytest.mark.parametrize("channel", ["sms", "Voice", ""])
def test_unknown_channel(method, channel):
    with pytest.raises(ValueError, match="channel"):
        getattr(POLICY, method)(channel)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(SlaPolicy)])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "20", None, True])
def test_policy_limits_must_be_positive_numbers(field, value):
    with pytest.raises(ValueError, match=f"SlaPolicy.{field} must be"):
        SlaPolicy(**{field: value})


def test_promise_minutes_must_be_whole():
    with pytest.raises(ValueError, match="callback_promise_min must be whole minutes"):
        SlaPolicy(callback_promise_min=30.5)


@pytest.mark.parametrize("channel", ["voice", "chat"])
@pytest.mark.parametrize("widen", [100, 101, 1000])
def test_widen_must_come_before_callback(channel, widen):
    message = f"{channel}_widen_s .* must be less than {channel}_callback_s"
    with pytest.raises(ValueError, match=message):
        SlaPolicy(**{f"{channel}_widen_s": widen, f"{channel}_callback_s": 100})


def test_fractional_limits_are_fine():
    assert SlaPolicy(voice_widen_s=0.5, voice_callback_s=0.75).widen_after("voice") == 0.5


def test_policy_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        POLICY.voice_widen_s = 1  # type: ignore[misc]


# --- live tickets: time limits ---------------------------------------------------------------


@pytest.mark.parametrize(("channel", "widen", "callback"), LIMITS)
def test_branch_ticket_widens_at_exactly_its_channel_limit(channel, widen, callback):
    t = ticket(channel=channel)
    assert step(t, timedelta(seconds=widen) - MS) is None
    assert action(t, widen) == ("widen", True)
    assert action(t, timedelta(seconds=callback) - MS) == ("widen", True)


@pytest.mark.parametrize(("channel", "widen", "callback"), LIMITS)
@pytest.mark.parametrize("tier", ["branch", "pool"])
def test_live_ticket_becomes_a_callback_at_exactly_its_limit(channel, widen, callback, tier):
    t = ticket(channel=channel, tier=tier)
    assert action(t, callback) == ("to_callback", True)
    assert action(t, callback + 3600) == ("to_callback", True)
    before = action(t, timedelta(seconds=callback) - MS)
    assert before == (("widen", True) if tier == "branch" else None)


@pytest.mark.parametrize(("channel", "widen", "callback"), LIMITS)
def test_pool_ticket_waits_quietly_until_the_callback_limit(channel, widen, callback):
    for staffed in (True, False):
        for branch_id in ("B1", None):
            t = ticket(channel=channel, tier="pool", branch_id=branch_id)
            assert step(t, 0, staffed=staffed) is None
            assert step(t, widen, staffed=staffed) is None
            assert step(t, timedelta(seconds=callback) - MS, staffed=staffed) is None


@pytest.mark.parametrize("staffed", [True, False])
@pytest.mark.parametrize("branch_id", ["B1", None])
def test_callback_limit_wins_whatever_the_staffing_or_region(staffed, branch_id):
    assert action(ticket(branch_id=branch_id), 60, staffed=staffed) == ("to_callback", True)


def test_chat_does_not_use_voice_limits():
    t = ticket(channel="chat")
    assert step(t, 20) is None
    assert action(t, 60) == ("widen", True)
    assert action(t, 299) == ("widen", True)
    assert action(t, 300) == ("to_callback", True)


def test_custom_policy_is_respected():
    policy = SlaPolicy(voice_widen_s=2.5, voice_callback_s=4)
    assert step(ticket(), 2.499, policy=policy) is None
    assert action(ticket(), 2.5, policy=policy) == ("widen", True)
    assert action(ticket(), 4, policy=policy) == ("to_callback", True)


def test_waiting_is_measured_from_waiting_since():
    t = ticket(waiting_since=T0 - timedelta(seconds=15))
    assert step(t, 4.999) is None
    assert action(t, 5) == ("widen", True)


def test_a_ticket_from_the_future_does_not_step():
    # clock skew between processes: a negative wait is no wait
    assert step(ticket(waiting_since=T0 + timedelta(seconds=5)), 0) is None


def test_time_limit_reasons_name_the_wait_and_the_limit():
    assert step(ticket(), 23).reason == (
        "live voice unclaimed for 23 s (limit 20 s): offered to the whole pool"
    )
    assert step(ticket(channel="chat"), 301).reason == (
        "live chat unclaimed for 301 s (limit 300 s): turned into a callback task"
    )


# --- live tickets: nobody to take them at the branch -----------------------------------------


@pytest.mark.parametrize("channel", ["voice", "chat"])
def test_unstaffed_branch_widens_at_once_without_breach(channel):
    s = step(ticket(channel=channel), 0, staffed=False)
    assert (s.action, s.breach) == ("widen", False)
    assert "B1" in s.reason and "nobody" in s.reason


def test_unknown_region_widens_at_once_without_breach():
    for staffed in (True, False):
        s = step(ticket(branch_id=None), 0, staffed=staffed)
        assert (s.action, s.breach) == ("widen", False)
        assert "region unknown" in s.reason


def test_unstaffed_branch_past_the_widen_limit_is_a_breach():
    assert action(ticket(), 20, staffed=False) == ("widen", True)
    assert action(ticket(branch_id=None), 20) == ("widen", True)


def test_staffed_branch_with_time_left_waits():
    assert step(ticket(), 0) is None
    assert step(ticket(), 10) is None


# --- statuses --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", NOT_CLAIMABLE)
@pytest.mark.parametrize(
    "t",
    [ticket(), ticket(branch_id=None), ticket(tier="pool"), callback(claim_deadline=T0)],
    ids=["live-branch", "live-unknown-region", "live-pool", "callback-due"],
)
def test_tickets_that_are_not_claimable_never_step(status, t):
    t = dataclasses.replace(t, status=status, claimed_by=7)
    for after in (0, 20, 60, 3600, 10 * 86400):
        for staffed in (True, False):
            assert step(t, after, staffed=staffed) is None


@pytest.mark.parametrize("status", sorted(CLAIMABLE))
def test_every_claimable_status_steps(status):
    assert action(ticket(status=status), 20) == ("widen", True)
    assert action(ticket(status=status), 60) == ("to_callback", True)
    assert action(callback(status=status), 3600) == ("reroute_callback", True)


# --- callback tasks --------------------------------------------------------------------------


def test_callback_is_rerouted_at_exactly_its_deadline():
    t = callback()
    assert step(t, timedelta(hours=1) - MS) is None
    s = step(t, timedelta(hours=1))
    assert (s.action, s.breach) == ("reroute_callback", True)
    assert "deadline" in s.reason
    assert action(t, timedelta(days=3)) == ("reroute_callback", True)


def test_callback_waits_before_its_deadline_however_old():
    old = callback(waiting_since=T0 - timedelta(days=30), claim_deadline=T0 + timedelta(hours=1))
    assert step(old, 0) is None
    assert step(old, 3599) is None


@pytest.mark.parametrize("staffed", [True, False])
def test_callback_ignores_branch_staffing(staffed):
    assert step(callback(), 0, staffed=staffed) is None
    assert step(callback(branch_id=None), 0, staffed=staffed) is None
    assert action(callback(), 3600, staffed=staffed) == ("reroute_callback", True)


@pytest.mark.parametrize("channel", ["voice", "chat"])
def test_callback_ignores_live_limits(channel):
    assert step(callback(channel=channel), 300) is None


def test_pool_callback_is_never_rerouted():
    assert step(callback(tier="pool"), timedelta(days=10)) is None


def test_callback_without_deadline_is_never_rerouted():
    assert step(callback(claim_deadline=None), timedelta(days=10)) is None


def test_callback_deadline_for_a_new_task():
    assert callback_deadline(T0, POLICY) == T0 + timedelta(days=2)
    assert callback_deadline(T0, SlaPolicy(callback_claim_s=1.5)) == T0 + timedelta(seconds=1.5)


def test_a_new_callback_task_is_rerouted_at_its_deadline():
    t = callback(waiting_since=T0, claim_deadline=callback_deadline(T0, POLICY))
    assert step(t, timedelta(days=2) - MS) is None
    assert action(t, timedelta(days=2)) == ("reroute_callback", True)


# --- the promise and the odds and ends -------------------------------------------------------


def test_callback_promise():
    assert callback_promise(POLICY) == (
        "现在客户经理都在忙，我们的客户经理会在30分钟内给您回电，请保持电话畅通。再见！"
    )
    assert "会在15分钟内给您回电" in callback_promise(SlaPolicy(callback_promise_min=15))


@pytest.mark.parametrize(
    "call",
    [
        lambda now: sla_step(ticket(), now, POLICY, branch_staffed=True),
        lambda now: callback_deadline(now, POLICY),
    ],
    ids=["sla_step", "callback_deadline"],
)
def test_now_must_be_aware(call):
    with pytest.raises(ValueError, match="now must be a timezone-aware"):
        call(datetime(2024, 5, 1, 9, 0))


def test_now_in_another_zone_is_the_same_instant():
    beijing = timezone(timedelta(hours=8))
    assert action(ticket(), 0) is None
    now = (T0 + timedelta(seconds=20)).astimezone(beijing)
    assert sla_step(ticket(), now, POLICY, branch_staffed=True) == SlaStep(
        "widen", "live voice unclaimed for 20 s (limit 20 s): offered to the whole pool", True
    )


def test_every_step_names_a_known_action():
    steps = [
        step(ticket(), 20), step(ticket(), 60), step(ticket(), 0, staffed=False),
        step(ticket(branch_id=None), 0), step(callback(), 3600),
    ]
    assert {s.action for s in steps} == set(ACTIONS)
    assert all(isinstance(s, SlaStep) and s.reason for s in steps)
