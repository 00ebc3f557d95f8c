"""A campaign's life: which command moves it from which status to which (pure).

``draft`` → start → ``running`` ⇄ pause / resume ⇄ ``paused``; stop ends a draft, running or
paused campaign for good (``stopped``); the dialer marks a campaign ``done`` when every
customer has a final outcome. Anything else is refused with the reason, and changes nothing.
"""

from __future__ import annotations

from types import MappingProxyType

from core.vocabulary import AuditAction, CampaignStatus, StrEnum


class CampaignCommand(StrEnum):
    """What a manager (or supervisor, for pause) asks of a campaign."""

    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


class TransitionRefused(ValueError):
    """The command makes no sense in the campaign's status."""


S = CampaignStatus
TRANSITIONS: MappingProxyType[CampaignCommand, tuple[frozenset[CampaignStatus], CampaignStatus]] = (
    MappingProxyType({
        CampaignCommand.START: (frozenset({S.DRAFT}), S.RUNNING),
        CampaignCommand.PAUSE: (frozenset({S.RUNNING}), S.PAUSED),
        CampaignCommand.RESUME: (frozenset({S.PAUSED}), S.RUNNING),
        CampaignCommand.STOP: (frozenset({S.DRAFT, S.RUNNING, S.PAUSED}), S.STOPPED),
    }))
"""Each command: the statuses it applies to, and the status it leaves."""

AUDITED_AS = MappingProxyType({
    CampaignCommand.START: AuditAction.CAMPAIGN_STARTED,
    CampaignCommand.PAUSE: AuditAction.CAMPAIGN_PAUSED,
    CampaignCommand.RESUME: AuditAction.CAMPAIGN_RESUMED,
    CampaignCommand.STOP: AuditAction.CAMPAIGN_STOPPED,
})

_WHY = MappingProxyType({
    S.RUNNING: "it is already running",
    S.PAUSED: "it is paused (resume it)",
    S.DRAFT: "it has not been started",
    S.STOPPED: "it was stopped",
    S.DONE: "it is done: every customer has a final outcome",
})


def apply(status: CampaignStatus | str, command: CampaignCommand | str) -> CampaignStatus:
    """The status after ``command``; :class:`TransitionRefused` says why not."""
    try:
        current, wanted = CampaignStatus(status), CampaignCommand(command)
    except ValueError as exc:
        raise TransitionRefused(str(exc)) from None
    applies_to, after = TRANSITIONS[wanted]
    if current not in applies_to:
        raise TransitionRefused(f"cannot {wanted.value} the campaign: {_WHY[current]}")
    return after


def dials(status: CampaignStatus | str) -> bool:
    """Whether dialers place calls for a campaign in this status."""
    return CampaignStatus(status) is S.RUNNING
