"""Who may do what (core.access, pure): the programme's rule that whitelist data and campaign
settings are for managers and above, agents on tickets only, branch managers in their branch,
account managers on their branch's leads."""

from __future__ import annotations

import pytest

from core.access import AccessDenied, Permission, Staff, allows, reaches, require
from core.vocabulary import Role

P = Permission
# The policy as the issue states it, written out here independently of core.access.
EXPECTED = {
    #                         admin  campaign_mgr supervisor branch_mgr account_mgr agent
    P.WORK_TICKETS:           (True,  False,       True,      False,     False,      True),
    P.VIEW_CAMPAIGNS:         (True,  True,        True,      True,      False,      False),
    P.VIEW_CAMPAIGN_SETTINGS: (True,  True,        False,     True,      False,      False),
    P.MANAGE_CAMPAIGNS:       (True,  True,        False,     False,     False,      False),
    P.PAUSE_CAMPAIGNS:        (True,  True,        True,      False,     False,      False),
    P.VIEW_WHITELIST:         (True,  True,        False,     True,      False,      False),
    P.IMPORT_WHITELIST:       (True,  True,        False,     False,     False,      False),
    P.VIEW_CALL_LOG:          (True,  True,        True,      True,      False,      False),
    P.VIEW_UNMASKED:          (True,  False,       False,     True,      True,       False),
    P.VIEW_AUDIT:             (True,  True,        False,     True,      False,      False),
    P.MANAGE_ACCOUNTS:        (True,  False,       False,     False,     False,      False),
    P.WORK_LEADS:             (True,  False,       False,     True,      True,       False),
    P.MANAGE_BRANCH_LEADS:    (True,  False,       False,     True,      False,      False),
    P.WORK_ALERTS:            (True,  False,       False,     True,      True,       False),
    P.MANAGE_BRANCH_ALERTS:   (True,  False,       False,     True,      False,      False),
}
ROLES = (Role.ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPERVISOR, Role.BRANCH_MANAGER,
         Role.ACCOUNT_MANAGER, Role.AGENT)


def test_the_table_covers_every_permission_and_role():
    assert set(EXPECTED) == set(Permission) and set(ROLES) == set(Role)


@pytest.mark.parametrize("permission", list(Permission))
@pytest.mark.parametrize("role", ROLES)
def test_each_role_has_exactly_the_permissions_of_the_policy(role, permission):
    assert allows(role, permission) is EXPECTED[permission][ROLES.index(role)]
    assert allows(str(role), permission) is EXPECTED[permission][ROLES.index(role)]


@pytest.mark.parametrize("role", ["", "root", "Agent", "campaign manager"])
def test_an_unknown_role_may_do_nothing(role):
    assert not any(allows(role, permission) for permission in Permission)


@pytest.mark.parametrize("role", [Role.BRANCH_MANAGER, Role.ACCOUNT_MANAGER])
def test_branch_staff_reach_their_own_branch_only(role):
    jintang = Staff(3, role, "JT")
    assert reaches(jintang, "JT")
    assert not reaches(jintang, "SL") and not reaches(jintang, None)
    assert not reaches(Staff(4, role, None), None)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CAMPAIGN_MANAGER, Role.SUPERVISOR])
def test_head_office_roles_reach_every_branch(role):
    assert reaches(Staff(1, role), "JT") and reaches(Staff(1, role), None)


def test_require_names_what_is_missing_and_passes_what_is_allowed():
    with pytest.raises(AccessDenied, match="agent role may not view whitelist"):
        require(Staff(9, Role.AGENT), P.VIEW_WHITELIST)
    with pytest.raises(AccessDenied, match="branch SL is outside"):
        require(Staff(3, Role.BRANCH_MANAGER, "JT"), P.VIEW_WHITELIST, "SL", branch_scoped=True)
    require(Staff(3, Role.BRANCH_MANAGER, "JT"), P.VIEW_WHITELIST, "JT", branch_scoped=True)
    require(Staff(1, Role.CAMPAIGN_MANAGER), P.MANAGE_CAMPAIGNS)
    with pytest.raises(AccessDenied, match="account_manager role may not manage branch leads"):
        require(Staff(5, Role.ACCOUNT_MANAGER, "JT"), P.MANAGE_BRANCH_LEADS, "JT",
                branch_scoped=True)
    with pytest.raises(AccessDenied, match="branch CD is outside"):
        require(Staff(5, Role.ACCOUNT_MANAGER, "JT"), P.WORK_LEADS, "CD", branch_scoped=True)
    require(Staff(5, Role.ACCOUNT_MANAGER, "JT"), P.WORK_LEADS, "JT", branch_scoped=True)
