"""Branches: the branch nearest a customer's region (pure, then from the database), and the
branch table loaded from its CSV."""

from __future__ import annotations

import pytest

from core.settings import PROJECT_ROOT
from persistence import branches
from persistence.branches import nearest_branch
from persistence.engine import session_scope

DISTANCES = {
    "成都": {"B-CD2": 12.5, "B-CD1": 3.0, "B-CQ": 300.0},
    "绵阳": {"B-MY": 5.0, "B-CD1": 5.0, "B-AA": 7.0},
    "雅安": {},
}


def test_nearest_branch_is_the_closest():
    assert nearest_branch("成都", DISTANCES) == "B-CD1"


def test_nearest_branch_tie_goes_to_the_smallest_branch_id():
    assert nearest_branch("绵阳", DISTANCES) == "B-CD1"


@pytest.mark.parametrize("region", ["上海", "", "成都市"])
def test_nearest_branch_of_an_unknown_region_is_none(region):
    assert nearest_branch(region, DISTANCES) is None


def test_nearest_branch_of_a_region_without_branches_is_none():
    assert nearest_branch("雅安", DISTANCES) is None
    assert nearest_branch("成都", {}) is None


@pytest.mark.parametrize("region", [" 成都", "成都 ", "\t成都\n"])
def test_nearest_branch_strips_the_asked_region(region):
    assert nearest_branch(region, DISTANCES) == "B-CD1"


def test_nearest_branch_strips_the_known_regions():
    assert nearest_branch("绵阳", {" 绵阳 ": {"B-MY": 1.0}}) == "B-MY"


def test_nearest_branch_works_with_integer_distances():
    assert nearest_branch("x", {"x": {"b": 2, "a": 2.0, "c": 1}}) == "c"


def test_the_loaded_table_gives_every_region_its_nearest_branch(engine):
    with session_scope(engine) as session:
        rows = branches.load_branches(session, PROJECT_ROOT / "data" / "branches.csv")
    with session_scope(engine) as session:
        assert rows > 0
        assert branches.nearest_branch_of(session, "金堂县") == "JT"
        assert branches.nearest_branch_of(session, " 新都区 ") == "CD", "营业部 is nearer than 郫都"
        assert branches.nearest_branch_of(session, "上海") is None
        assert branches.nearest_branch_of(session, None) is None
        table = branches.nearest_branches(session)
        assert table["金堂县"] == "JT" and table["新都区"] == "CD"
        assert branches.branch_names(session)["JT"]


def test_a_branch_file_without_its_columns_is_refused(engine, tmp_path):
    bad = tmp_path / "branches.csv"
    bad.write_text("region,branch\n金堂县,JT\n", encoding="utf-8")
    with session_scope(engine) as session, pytest.raises(ValueError, match="missing columns"):
        branches.load_branches(session, bad)
