"""Routing rules: status transitions, skills, claim/view rights and queue order."""

from __future__ import annotations

import dataclasses
import itertools
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handoff.routing import (
    CLAIMABLE,
    OPEN,
    STATUSES,
    TRANSITIONS,
    AgentProfile,
    TicketFacts,
    TransitionError,
    branch_staffed,
    can_claim,
    can_transition,
    can_view,
    check_transition,
    eligible_agents,
    has_skills,
    priority_key,
    queue_for,
)
from tests.ticket_builders import T0, ticket


def agent(**overrides) -> AgentProfile:
    """An online Mandarin-speaking agent of branch B1 who sells "loan", unless told otherwise."""
    fields = dict(
        agent_id=7, role="agent", branch_id="B1", products=frozenset({"loan"}),
        languages=frozenset({"mandarin"}), online=True,
    )
    return AgentProfile(**{**fields, **overrides})


def supervisor(**overrides) -> AgentProfile:
    """A supervisor with no branch, no products and no languages."""
    return agent(**{"agent_id": 99, "role": "supervisor", "branch_id": None,
                    "products": frozenset(), "languages": frozenset(), **overrides})


def ago(seconds: float) -> datetime:
    return T0 - timedelta(seconds=seconds)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def cb(ticket_id: int, waited: float, due_in: float | None, **overrides) -> TicketFacts:
    """A callback task waiting ``waited`` s at T0, due in ``due_in`` s (None: no deadline)."""
    deadline = None if due_in is None else later(due_in)
    return ticket(ticket_id=ticket_id, kind="callback", waiting_since=ago(waited),
                  claim_deadline=deadline, **overrides)


# --- status transitions ----------------------------------------------------------------------

# Rows: from; columns: to. "x" allowed, "." refused. Written out by hand, not from TRANSITIONS.
TRANSITION_TABLE = """
            queued  offered  claimed  connected  closed  abandoned  rerouted
queued        .        x        x         x        .         x          x
offered       x        .        x         x        .         x          x
claimed       .        .        .         x        x         x          .
connected     .        .        .         .        x         .          .
closed        .        .        .         .        .         .          .
abandoned     .        .        .         .        .         .          .
rerouted      .        x        x         x        .         x          x
"""


def _parse_table(table: str) -> dict[tuple[str, str], bool]:
    header, *rows = table.strip().splitlines()
    columns = header.split()
    expected = {}
    for row in rows:
        source, *marks = row.split()
        assert len(marks) == len(columns), row
        for target, mark in zip(columns, marks, strict=True):
            assert mark in "x.", row
            expected[source, target] = mark == "x"
    return expected


EXPECTED_TRANSITIONS = _parse_table(TRANSITION_TABLE)


def test_the_table_covers_every_status_pair():
    assert set(EXPECTED_TRANSITIONS) == set(itertools.product(STATUSES, STATUSES))
    assert set(TRANSITIONS) == set(STATUSES)


@pytest.mark.parametrize(("current", "new"), list(itertools.product(STATUSES, STATUSES)))
def test_transition(current, new):
    allowed = EXPECTED_TRANSITIONS[current, new]
    assert can_transition(current, new) is allowed
    if allowed:
        check_transition(current, new)
    else:
        with pytest.raises(TransitionError) as raised:
            check_transition(current, new)
        assert repr(current) in str(raised.value) and repr(new) in str(raised.value)


def test_a_refused_transition_lists_what_is_allowed():
    with pytest.raises(TransitionError, match="may go to: connected, closed, abandoned"):
        check_transition("claimed", "queued")
    with pytest.raises(TransitionError, match="final"):
        check_transition("closed", "queued")


@pytest.mark.parametrize(("current", "new"), [("lost", "queued"), ("queued", "lost"), ("", "")])
def test_unknown_statuses_are_refused(current, new):
    assert not can_transition(current, new)
    with pytest.raises(TransitionError, match="unknown status"):
        check_transition(current, new)


def test_transition_error_is_a_value_error():
    assert issubclass(TransitionError, ValueError)


def test_status_sets():
    assert CLAIMABLE == {"queued", "offered", "rerouted"}
    assert OPEN == {"queued", "offered", "rerouted", "claimed", "connected"}
    final = {s for s in STATUSES if not TRANSITIONS[s]}
    assert final == set(STATUSES) - OPEN == {"closed", "abandoned"}


def test_transitions_cannot_be_changed_at_run_time():
    with pytest.raises(TypeError):
        TRANSITIONS["closed"] = frozenset({"queued"})  # type: ignore[index]


# --- facts validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("channel", "phone"), ("channel", "Voice"), ("kind", "later"), ("tier", "region"),
     ("status", "done"), ("status", None)],
)
def test_ticket_fields_are_checked(field, value):
    with pytest.raises(ValueError, match=field):
        ticket(**{field: value})


@pytest.mark.parametrize("field", ["waiting_since", "claim_deadline"])
def test_ticket_times_must_be_aware(field):
    with pytest.raises(ValueError, match=f"{field} must be a timezone-aware"):
        ticket(**{field: datetime(2024, 5, 1, 9, 0)})


def test_ticket_times_in_another_zone_are_accepted():
    beijing = timezone(timedelta(hours=8))
    assert ticket(waiting_since=T0.astimezone(beijing)).waiting_since == T0


def test_agent_role_is_checked():
    with pytest.raises(ValueError, match="role"):
        agent(role="admin")


def test_agent_skill_collections_become_frozensets():
    a = agent(products={"loan"}, languages=["mandarin", "cantonese"])
    assert a.products == frozenset({"loan"}) and isinstance(a.products, frozenset)
    assert a.languages == frozenset({"mandarin", "cantonese"})
    hash(a)  # still usable as a dict key / set member


@pytest.mark.parametrize("field", ["products", "languages"])
def test_a_bare_string_is_not_a_skill_set(field):
    with pytest.raises(TypeError, match=field):
        agent(**{field: "mandarin"})


# --- skills ----------------------------------------------------------------------------------


def test_agent_with_the_product_and_language_has_the_skills():
    assert has_skills(agent(), ticket())


def test_star_means_every_product():
    assert has_skills(agent(products=frozenset({"*"})), ticket(product="credit-card"))


def test_missing_product_skill():
    assert not has_skills(agent(products=frozenset({"mortgage"})), ticket(product="loan"))
    assert not has_skills(agent(products=frozenset()), ticket(product="loan"))


def test_a_ticket_without_product_needs_no_product_skill():
    assert has_skills(agent(products=frozenset()), ticket(product=None))


def test_language_must_match_even_for_every_product():
    assert not has_skills(agent(products=frozenset({"*"})), ticket(language="sichuanese"))
    assert not has_skills(agent(), ticket(product=None, language="cantonese"))
    bilingual = agent(languages=frozenset({"mandarin", "sichuanese"}))
    assert has_skills(bilingual, ticket(language="sichuanese"))


# --- claim rights ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_only_claimable_statuses_can_be_claimed(status):
    expected = status in ("queued", "offered", "rerouted")
    assert can_claim(agent(), ticket(status=status)) is expected
    assert can_claim(supervisor(), ticket(status=status)) is expected


def test_branch_ticket_goes_to_its_own_branch_only():
    assert can_claim(agent(branch_id="B1"), ticket(tier="branch", branch_id="B1"))
    assert not can_claim(agent(branch_id="B2"), ticket(tier="branch", branch_id="B1"))
    assert not can_claim(agent(branch_id=None), ticket(tier="branch", branch_id="B1"))


def test_branch_ticket_of_unknown_region_is_open_to_every_branch():
    assert can_claim(agent(branch_id="B2"), ticket(tier="branch", branch_id=None))
    assert can_claim(agent(branch_id=None), ticket(tier="branch", branch_id=None))


def test_pool_ticket_is_open_to_every_branch():
    assert can_claim(agent(branch_id="B2"), ticket(tier="pool", branch_id="B1"))
    assert can_claim(agent(branch_id=None), ticket(tier="pool", branch_id="B1"))


def test_pool_ticket_still_needs_the_skills():
    assert not can_claim(agent(products=frozenset({"mortgage"})), ticket(tier="pool"))
    assert not can_claim(agent(), ticket(tier="pool", language="cantonese"))


def test_own_branch_still_needs_the_skills():
    assert not can_claim(agent(languages=frozenset({"cantonese"})), ticket())


def test_online_status_does_not_matter_for_claiming():
    assert can_claim(agent(online=False), ticket())


@pytest.mark.parametrize("tier", ["branch", "pool"])
@pytest.mark.parametrize("kind", ["live", "callback"])
def test_supervisor_claims_any_claimable_ticket_without_skills_or_branch(tier, kind):
    t = ticket(tier=tier, kind=kind, branch_id="B9", product="gold", language="cantonese")
    assert can_claim(supervisor(), t)
    assert can_claim(supervisor(online=False), t)


# --- view rights -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_supervisor_sees_every_ticket(status):
    t = ticket(status=status, branch_id="B9", language="cantonese", claimed_by=5)
    assert can_view(supervisor(), t)


@pytest.mark.parametrize("status", STATUSES)
def test_agent_sees_the_tickets_they_claimed_in_any_status(status):
    # even one they could no longer claim: another branch, another language
    t = ticket(status=status, branch_id="B9", language="cantonese", claimed_by=7)
    assert can_view(agent(agent_id=7), t)


@pytest.mark.parametrize("status", ["claimed", "connected", "closed", "abandoned"])
def test_agent_does_not_see_another_agents_claimed_ticket(status):
    assert not can_view(agent(agent_id=7), ticket(status=status, claimed_by=8))


def test_agent_sees_what_they_can_claim_and_nothing_else():
    assert can_view(agent(), ticket(status="offered"))
    assert not can_view(agent(branch_id="B2"), ticket(status="offered"))
    assert not can_view(agent(), ticket(status="closed"))
    assert not can_view(agent(), ticket(status="queued", language="cantonese"))


# --- priority --------------------------------------------------------------------------------


def ids(tickets) -> list[int]:
    return [t.ticket_id for t in tickets]


def by_priority(*tickets: TicketFacts, now: datetime = T0) -> list[int]:
    return ids(sorted(tickets, key=lambda t: priority_key(t, now)))


def test_voice_before_chat_before_callback_whatever_the_wait():
    overdue_callback = cb(1, waited=86400, due_in=-3600)
    chat = ticket(ticket_id=2, channel="chat", waiting_since=ago(600))
    voice = ticket(ticket_id=3, channel="voice", waiting_since=ago(1))
    assert by_priority(overdue_callback, chat, voice) == [3, 2, 1]


def test_callback_chat_and_voice_are_one_class():
    voice_cb = cb(1, waited=60, due_in=7200, channel="voice")
    chat_cb = cb(2, waited=60, due_in=3600, channel="chat")
    assert by_priority(voice_cb, chat_cb) == [2, 1]


@pytest.mark.parametrize("channel", ["voice", "chat"])
def test_longest_waiting_live_ticket_first(channel):
    waits = {1: 5, 2: 50, 3: 0.5}
    tickets = [ticket(ticket_id=i, channel=channel, waiting_since=ago(s)) for i, s in waits.items()]
    assert by_priority(*tickets) == [2, 1, 3]


def test_microseconds_count():
    shorter = ticket(ticket_id=1, waiting_since=ago(10))
    longer = ticket(ticket_id=2, waiting_since=ago(10.000001))
    assert by_priority(shorter, longer) == [2, 1]


def test_callbacks_by_earliest_deadline_then_longest_waiting():
    soon = cb(1, waited=60, due_in=300)
    later_old = cb(2, waited=9000, due_in=3600)
    later_new = cb(3, waited=600, due_in=3600)
    overdue = cb(4, waited=10, due_in=-1)
    assert by_priority(later_new, soon, later_old, overdue) == [4, 1, 2, 3]


def test_callbacks_without_deadline_come_last():
    none_old = cb(1, waited=99999, due_in=None)
    none_new = cb(2, waited=1, due_in=None)
    far = cb(3, waited=0, due_in=30 * 86400)
    assert by_priority(none_new, none_old, far) == [3, 1, 2]


def test_ticket_id_breaks_ties_for_a_stable_order():
    same = [ticket(ticket_id=i) for i in (5, 2, 9, 1)]
    assert by_priority(*same) == [1, 2, 5, 9]
    for seed in range(5):
        shuffled = same[:]
        random.Random(seed).shuffle(shuffled)
        assert by_priority(*shuffled) == [1, 2, 5, 9]


def test_priority_does_not_depend_on_now():
    tickets = [
        cb(1, waited=0, due_in=3600),
        ticket(ticket_id=2, channel="chat", waiting_since=ago(30)),
        ticket(ticket_id=3, waiting_since=ago(3)),
        ticket(ticket_id=4, waiting_since=ago(30)),
    ]
    assert by_priority(*tickets) == by_priority(*tickets, now=later(5 * 3600)) == [4, 3, 2, 1]


def test_priority_needs_an_aware_now():
    with pytest.raises(ValueError, match="now"):
        priority_key(ticket(), datetime(2024, 5, 1, 9, 0))


# --- queue_for -------------------------------------------------------------------------------


def test_queue_holds_only_what_the_agent_can_claim_in_priority_order():
    tickets = [
        cb(1, waited=0, due_in=3600),
        ticket(ticket_id=2, status="claimed", claimed_by=7),
        ticket(ticket_id=3, branch_id="B2"),
        ticket(ticket_id=4, channel="chat", status="offered", waiting_since=ago(40)),
        ticket(ticket_id=5, tier="pool", branch_id="B2", status="rerouted", waiting_since=ago(30)),
        ticket(ticket_id=6, language="cantonese"),
        ticket(ticket_id=7, status="closed"),
        ticket(ticket_id=8, waiting_since=ago(2)),
    ]
    assert ids(queue_for(agent(), tickets, T0)) == [5, 8, 4, 1]
    assert ids(queue_for(agent(), iter(tickets), T0)) == [5, 8, 4, 1]


def test_supervisor_queue_holds_every_claimable_ticket():
    tickets = [ticket(ticket_id=i, status=s, branch_id="B9") for i, s in enumerate(STATUSES)]
    assert {t.status for t in queue_for(supervisor(), tickets, T0)} == CLAIMABLE


def test_empty_queue():
    assert queue_for(agent(), [], T0) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.builds(
    ticket,
    ticket_id=st.integers(1, 50),
    channel=st.sampled_from(["voice", "chat"]),
    kind=st.sampled_from(["live", "callback"]),
    tier=st.sampled_from(["branch", "pool"]),
    status=st.sampled_from(STATUSES),
    branch_id=st.sampled_from(["B1", "B2", None]),
    waiting_since=st.integers(0, 600).map(ago),
    claim_deadline=st.one_of(st.none(), st.integers(-600, 600).map(later)),
), max_size=12), st.randoms())
def test_queue_properties(tickets, rnd):
    queue = queue_for(agent(), tickets, T0)
    assert sorted(map(id, queue)) == sorted(id(t) for t in tickets if can_claim(agent(), t))
    keys = [priority_key(t, T0) for t in queue]
    assert keys == sorted(keys)
    assert all(a[0] <= 1 for a in keys[: sum(t.kind == "live" for t in queue)])  # live ones lead
    shuffled = tickets[:]
    rnd.shuffle(shuffled)
    assert [priority_key(t, T0) for t in queue_for(agent(), shuffled, T0)] == keys


# --- capacity --------------------------------------------------------------------------------


def test_eligible_agents_are_online_capable_agents_by_id():
    agents = [
        agent(agent_id=30),
        agent(agent_id=10, online=False),
        supervisor(agent_id=5),
        agent(agent_id=20, branch_id="B2"),
        agent(agent_id=25, languages=frozenset({"cantonese"})),
        agent(agent_id=3, products=frozenset({"*"})),
    ]
    assert [a.agent_id for a in eligible_agents(ticket(), agents)] == [3, 30]
    assert [a.agent_id for a in eligible_agents(ticket(tier="pool"), iter(agents))] == [3, 20, 30]


def test_no_eligible_agents_for_a_ticket_that_is_not_claimable():
    assert eligible_agents(ticket(status="claimed"), [agent()]) == []


def test_supervisors_alone_are_no_capacity():
    assert eligible_agents(ticket(), [supervisor()]) == []


def test_branch_staffed_by_an_online_skilled_agent_of_the_branch():
    assert branch_staffed(ticket(), [agent(branch_id="B2"), agent()])


@pytest.mark.parametrize(
    "who",
    [
        agent(online=False),
        supervisor(branch_id="B1", products=frozenset({"*"}), languages=frozenset({"mandarin"})),
        agent(branch_id="B2"),
        agent(products=frozenset({"mortgage"})),
        agent(languages=frozenset({"cantonese"})),
    ],
    ids=["offline", "supervisor", "other-branch", "other-product", "other-language"],
)
def test_branch_not_staffed(who):
    assert not branch_staffed(ticket(), [who])


def test_branch_staffed_ignores_the_ticket_status_and_tier():
    # a question about people, not about this ticket's state
    assert branch_staffed(ticket(status="claimed", tier="pool"), [agent()])


def test_unknown_branch_is_never_staffed():
    assert not branch_staffed(ticket(branch_id=None), [agent(branch_id=None), agent()])


def test_no_agents_no_staff():
    assert not branch_staffed(ticket(), [])


def test_profiles_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        agent().online = False  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ticket().status = "closed"  # type: ignore[misc]
