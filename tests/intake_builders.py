"""Builders shared by the partner intake tests: an application body that every admission rule
takes, changed field by field, and a partner with a test key."""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from typing import Any

from lending.intake_input import Application, parse_application
from lending.partners import Partner

NOW = datetime(2026, 12, 4, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
TODAY = date(2026, 12, 4)
KEY = "test-partner-key-0123456789abcdefghijklmnop"
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(region: str = "510122", born: str = "19880506", seq: str = "123") -> str:
    """A resident ID number with its right check character."""
    body = region + born + seq
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def months(count: int, amount: float = 80_000, newest: tuple[int, int] = (2026, 11)) -> list[dict]:
    """``count`` consecutive months of settlements, newest first."""
    year, month = newest
    items = []
    for _ in range(count):
        items.append({"month": f"{year:04d}-{month:02d}", "amount_yuan": amount})
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return items


def body(**changes: Any) -> dict[str, Any]:
    """An application body the default rules admit (a 双流区 clinic, 80,000 yuan a month for a
    year, asking 200,000); ``changes`` replace fields, dotted for nested ones
    (``applicant__phone``), ``None`` removes one."""
    application: dict[str, Any] = {
        "application_id": "YB-20261204-0001",
        "requested_amount_yuan": 200_000,
        "applicant": {"name": "赵小兰", "phone": "13600136001", "id_number": id_number()},
        "organisation": {"name": "棠湖社区诊所", "kind": "clinic", "region": "双流区",
                         "address": "四川省成都市双流区东升街道棠湖西路88号",
                         "insurance_code": "H51011600123", "operating_since": "2018-03-01"},
        "consent": {"given": True, "signed_at": "2026-12-01T10:00:00+08:00",
                    "expires_at": "2027-12-01T00:00:00+08:00", "reference": "SQ-8812"},
        "settlement": months(12),
    }
    application = copy.deepcopy(application)
    for key, value in changes.items():
        *path, last = key.split("__")
        place = application
        for step in path:
            place = place[step]
        if value is None:
            place.pop(last, None)
        else:
            place[last] = value
    return application


def application(**changes: Any) -> Application:
    return parse_application(body(**changes))


def partner(**changes: Any) -> Partner:
    fields: dict[str, Any] = dict(id="yibao", name="医保服务平台", secret=KEY,
                                  callback_url="http://127.0.0.1:9/results")
    fields.update(changes)
    return Partner(**fields)
