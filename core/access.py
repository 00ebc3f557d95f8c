"""Who may do what: the roles' permissions and their reach, as pure rules.

The programme's rule is that whitelist data and campaign settings are for managers and
above (仅允许部门经理以上查看数据和白名单设置); agents work tickets only; a branch manager sees
their own branch only, and an account manager (客户经理) the leads of their branch given to
them. Full phone and ID numbers are shown only to roles that must call or verify the customer
themselves, and every such view is audited (``AuditAction.UNMASKED_VIEWED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from core.vocabulary import Role, StrEnum


class Permission(StrEnum):
    """One thing a page or API call needs."""

    WORK_TICKETS = "work_tickets"
    """The agents' console: claim, chat, close."""
    VIEW_CAMPAIGNS = "view_campaigns"
    """Live status, funnel, reports and exports."""
    VIEW_CAMPAIGN_SETTINGS = "view_campaign_settings"
    MANAGE_CAMPAIGNS = "manage_campaigns"
    """Create, change, start, resume and stop."""
    PAUSE_CAMPAIGNS = "pause_campaigns"
    VIEW_WHITELIST = "view_whitelist"
    IMPORT_WHITELIST = "import_whitelist"
    VIEW_CALL_LOG = "view_call_log"
    """Find a call, play its recording, read its transcript."""
    VIEW_UNMASKED = "view_unmasked"
    """Full phone and ID numbers (each view audited)."""
    VIEW_AUDIT = "view_audit"
    MANAGE_ACCOUNTS = "manage_accounts"
    WORK_LEADS = "work_leads"
    """Claim a branch lead and record its steps (an account manager: their own leads only)."""
    MANAGE_BRANCH_LEADS = "manage_branch_leads"
    """See all of a branch's leads, give them to account managers, see the scorecards."""
    WORK_ALERTS = "work_alerts"
    """See and acknowledge post-loan alerts (an account manager: their own customers' only)."""
    MANAGE_BRANCH_ALERTS = "manage_branch_alerts"
    """See all of a branch's post-loan alerts, escalated ones too, and give them out."""


_P = Permission
ROLE_PERMISSIONS: MappingProxyType[Role, frozenset[Permission]] = MappingProxyType({
    Role.ADMIN: frozenset(Permission),
    Role.CAMPAIGN_MANAGER: frozenset({
        _P.VIEW_CAMPAIGNS, _P.VIEW_CAMPAIGN_SETTINGS, _P.MANAGE_CAMPAIGNS, _P.PAUSE_CAMPAIGNS,
        _P.VIEW_WHITELIST, _P.IMPORT_WHITELIST, _P.VIEW_CALL_LOG, _P.VIEW_AUDIT}),
    Role.SUPERVISOR: frozenset({
        _P.WORK_TICKETS, _P.VIEW_CAMPAIGNS, _P.PAUSE_CAMPAIGNS, _P.VIEW_CALL_LOG}),
    Role.BRANCH_MANAGER: frozenset({
        _P.VIEW_CAMPAIGNS, _P.VIEW_CAMPAIGN_SETTINGS, _P.VIEW_WHITELIST, _P.VIEW_CALL_LOG,
        _P.VIEW_UNMASKED, _P.VIEW_AUDIT, _P.WORK_LEADS, _P.MANAGE_BRANCH_LEADS,
        _P.WORK_ALERTS, _P.MANAGE_BRANCH_ALERTS}),
    Role.ACCOUNT_MANAGER: frozenset({_P.WORK_LEADS, _P.VIEW_UNMASKED, _P.WORK_ALERTS}),
    Role.AGENT: frozenset({_P.WORK_TICKETS}),
})
"""Each role's permissions. A supervisor may pause a campaign on the floor but not start one.
An account manager calls and visits the customers of their leads, so sees their numbers."""

BRANCH_SCOPED = frozenset({Role.BRANCH_MANAGER, Role.ACCOUNT_MANAGER})
"""Roles whose reach stops at their own branch."""


@dataclass(frozen=True)
class Staff:
    """Who is asking: their account id, role and branch."""

    account_id: int
    role: Role
    branch_id: str | None = None


class AccessDenied(PermissionError):
    """The role lacks the permission, or the thing is outside the person's branch."""


def allows(role: Role | str, permission: Permission) -> bool:
    """Whether the role has the permission (an unknown role has none)."""
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def reaches(staff: Staff, branch_id: str | None) -> bool:
    """Whether something belonging to ``branch_id`` is within this person's reach.

    Head-office roles reach every branch; a branch manager or account manager only their own
    (nothing if their account has no branch, and nothing that belongs to no branch)."""
    if staff.role not in BRANCH_SCOPED:
        return True
    return staff.branch_id is not None and branch_id == staff.branch_id


def require(staff: Staff, permission: Permission, branch_id: str | None = None,
            *, branch_scoped: bool = False) -> None:
    """Raises :class:`AccessDenied` unless ``staff`` may do this (to this branch's data when
    ``branch_scoped``)."""
    if not allows(staff.role, permission):
        raise AccessDenied(f"the {staff.role} role may not {permission.value.replace('_', ' ')}")
    if branch_scoped and not reaches(staff, branch_id):
        raise AccessDenied(f"branch {branch_id or '(none)'} is outside this account's branch")
