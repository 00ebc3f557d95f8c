"""A campaign's life (outbound.lifecycle, pure): every command in every status."""

from __future__ import annotations

import pytest

from core.vocabulary import CampaignStatus as S
from outbound.lifecycle import CampaignCommand as C
from outbound.lifecycle import TransitionRefused, apply, dials

ALLOWED = {
    (S.DRAFT, C.START): S.RUNNING,
    (S.RUNNING, C.PAUSE): S.PAUSED,
    (S.PAUSED, C.RESUME): S.RUNNING,
    (S.DRAFT, C.STOP): S.STOPPED,
    (S.RUNNING, C.STOP): S.STOPPED,
    (S.PAUSED, C.STOP): S.STOPPED,
}


@pytest.mark.parametrize("command", list(C))
@pytest.mark.parametrize("status", list(S))
def test_every_command_in_every_status(status, command):
    if (status, command) in ALLOWED:
        assert apply(status, command) is ALLOWED[status, command]
    else:
        with pytest.raises(TransitionRefused, match=f"cannot {command.value} the campaign: it "):
            apply(status, command)


@pytest.mark.parametrize(("status", "command", "why"), [
    ("running", "start", "already running"),
    ("done", "pause", "it is done"),
    ("stopped", "resume", "it was stopped"),
    ("draft", "pause", "has not been started"),
    ("paused", "start", "resume it"),
])
def test_a_refusal_says_why_in_words_a_manager_understands(status, command, why):
    with pytest.raises(TransitionRefused, match=why):
        apply(status, command)


@pytest.mark.parametrize(("status", "command"), [("archived", "start"), ("draft", "launch")])
def test_unknown_statuses_and_commands_are_refused(status, command):
    with pytest.raises(TransitionRefused):
        apply(status, command)


def test_only_a_running_campaign_is_dialled():
    assert [s for s in S if dials(s)] == [S.RUNNING]
