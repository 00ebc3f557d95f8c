"""The partner intake's pure parts: reading an application (every bad field named), the 医保贷
admission rules and the amount offered, the partners' file, and the callbacks' back-off."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from lending.callback_schedule import RetryPolicy, acknowledged
from lending.errors import ApplicationInvalid, PartnerConfigError
from lending.intake_input import OrgKind, parse_application
from lending.intake_rules import (
    AdmissionPolicy,
    ApplicationStatus,
    IntakeFacts,
    age_on,
    consecutive_run,
    decide,
)
from lending.partners import load_partners, parse_partners
from tests.intake_builders import KEY, NOW, TODAY, application, body, id_number, months

SERVED = IntakeFacts(do_not_contact=False, branch_km=2.0)
POLICY = AdmissionPolicy()


def codes(app=None, facts: IntakeFacts = SERVED, policy: AdmissionPolicy = POLICY,
          now: datetime = NOW, today: date = TODAY) -> list[str]:
    decision = decide(app or application(), facts, policy, now, today)
    return [reason.code for reason in decision.reasons]


# ------------------------------------------------------------------ reading
def test_a_good_body_reads_into_an_application_with_the_birth_date_and_months_newest_first():
    app = application(settlement=list(reversed(months(3))))
    assert app.partner_application_id == "YB-20261204-0001"
    assert app.applicant.birth_date == date(1988, 5, 6)
    assert app.organisation.kind == OrgKind.CLINIC
    assert [s.month for s in app.settlements] == [date(2026, 11, 1), date(2026, 10, 1),
                                                  date(2026, 9, 1)]
    assert app.settlements[0].amount_fen == 8_000_000
    assert "13600136001" not in repr(app) and id_number() not in repr(app)


def test_the_digest_is_the_same_however_the_json_is_ordered_and_differs_for_other_data():
    reordered = dict(reversed(list(body().items())))
    assert parse_application(reordered).digest() == application().digest()
    assert application(applicant__phone="+86 136-0013-6001").digest() == application().digest()
    assert application(requested_amount_yuan=200_001).digest() != application().digest()


def test_the_masked_copy_keeps_no_full_name_phone_or_id_number():
    kept = str(application().masked())
    assert "赵小兰" not in kept and "13600136001" not in kept and id_number() not in kept
    assert "赵**" in kept and "136****6001" in kept


@pytest.mark.parametrize("changes, field, says", [
    ({"application_id": "has spaces"}, "application_id", "A-Z a-z 0-9"),
    ({"application_id": None}, "application_id", "missing"),
    ({"requested_amount_yuan": "200000"}, "requested_amount_yuan", "whole number"),
    ({"requested_amount_yuan": 0}, "requested_amount_yuan", "between 1"),
    ({"applicant__phone": "12345"}, "applicant.phone", "mainland mobile"),
    ({"applicant__id_number": id_number()[:-1] + ("0" if id_number()[-1] != "0" else "1")},
     "applicant.id_number", "check character"),
    ({"applicant__id_number": id_number(born="19881306")}, "applicant.id_number", "birth date"),
    ({"applicant__name": ""}, "applicant.name", "empty"),
    ({"applicant": None}, "applicant", "missing"),
    ({"organisation__kind": "hospital"}, "organisation.kind", "clinic, pharmacy"),
    ({"organisation__insurance_code": "h-1"}, "organisation.insurance_code", "capital letters"),
    ({"organisation__operating_since": "2018/03/01"}, "organisation.operating_since", "YYYY-MM-DD"),
    ({"consent__given": "yes"}, "consent.given", "true or false"),
    ({"consent__signed_at": "2026-12-01T10:00:00"}, "consent.signed_at", "offset"),
    ({"consent__expires_at": "2026-11-01T00:00:00+08:00"}, "consent.expires_at", "after signed_at"),
    ({"settlement": {"2026-11": 1}}, "settlement", "list"),
    ({"settlement": [{"month": "2026-13", "amount_yuan": 1}]}, "settlement[0].month", "YYYY-MM"),
    ({"settlement": [{"month": "2026-11", "amount_yuan": -1}]}, "settlement[0].amount_yuan",
     "between 0"),
    ({"settlement": [{"month": "2026-11", "amount_yuan": 1.234}]}, "settlement[0].amount_yuan",
     "two decimals"),
    ({"settlement": months(1) + months(1)}, "settlement[1].month", "listed twice"),
    ({"settlement": months(37)}, "settlement", "more than 36"),
    ({"referrer": "x"}, "referrer", "not a field"),
    ({"applicant__nickname": "x"}, "applicant.nickname", "not a field"),
])
def test_a_bad_field_is_named_with_what_is_wrong(changes, field, says):
    with pytest.raises(ApplicationInvalid) as refused:
        parse_application(body(**changes))
    problems = dict(refused.value.problems)
    assert field in problems, refused.value.problems
    assert says in problems[field]


def test_every_bad_field_is_named_at_once_and_a_non_object_body_is_refused():
    with pytest.raises(ApplicationInvalid) as refused:
        parse_application(body(applicant__phone="1", organisation__kind="bank", consent=None))
    assert {w for w, _ in refused.value.problems} == {"applicant.phone", "organisation.kind",
                                                      "consent"}
    with pytest.raises(ApplicationInvalid):
        parse_application(["not", "an", "object"])


def test_consent_refused_by_the_applicant_reads_without_its_times():
    app = application(consent={"given": False})
    assert app.consent.given is False and app.consent.signed_at is None


# ------------------------------------------------------------------ the rules
def test_an_applicant_meeting_every_rule_is_admitted_with_what_they_asked_for():
    decision = decide(application(), SERVED, POLICY, NOW, TODAY)
    assert decision.status == ApplicationStatus.ADMITTED and decision.reasons == ()
    assert (decision.amount_yuan, decision.limit_yuan, decision.average_fen) == (
        200_000, 240_000, 8_000_000)


def test_the_offer_is_capped_by_the_settlement_limit_and_the_maximum():
    assert decide(application(requested_amount_yuan=300_000), SERVED, POLICY, NOW,
                  TODAY).amount_yuan == 240_000
    rich = application(requested_amount_yuan=900_000, settlement=months(12, amount=1_000_000))
    assert decide(rich, SERVED, POLICY, NOW, TODAY).amount_yuan == 500_000
    uneven = application(settlement=months(6, amount=33_333.33), requested_amount_yuan=99_999)
    assert decide(uneven, SERVED, POLICY, NOW, TODAY).limit_yuan == 99_000  # 3 × 33,333.33, floored


def test_the_limit_averages_the_newest_twelve_consecutive_months_only():
    newest = months(12, amount=50_000)
    older = months(6, amount=500_000, newest=(2025, 11))
    decision = decide(application(settlement=newest + older), SERVED, POLICY, NOW, TODAY)
    assert decision.average_fen == 5_000_000
    gap = months(6, amount=50_000) + months(6, amount=500_000, newest=(2026, 3))
    assert len(consecutive_run(application(settlement=gap).settlements)) == 6
    assert decide(application(settlement=gap), SERVED, POLICY, NOW, TODAY).average_fen == 5_000_000


@pytest.mark.parametrize("changes, facts, code", [
    ({"consent": {"given": False}}, SERVED, "consent_missing"),
    ({"consent__signed_at": "2026-12-05T10:00:00+08:00"}, SERVED, "consent_not_yet_valid"),
    ({"consent__signed_at": "2026-10-01T10:00:00+08:00"}, SERVED, "consent_stale"),
    ({"consent__signed_at": "2026-11-20T10:00:00+08:00",
      "consent__expires_at": "2026-12-04T09:59:00+08:00"}, SERVED, "consent_expired"),
    ({"applicant__id_number": id_number(born="19651203")}, SERVED, "age_out_of_range"),
    ({"organisation__operating_since": "2026-01-01"}, SERVED, "operating_too_short"),
    ({}, IntakeFacts(False, None), "region_not_served"),
    ({}, IntakeFacts(False, 180.0), "region_not_served"),
    ({"settlement": months(5)}, SERVED, "settlement_history_short"),
    ({"settlement": months(12, newest=(2026, 9))}, SERVED, "settlement_stale"),
    ({"settlement": months(12, amount=19_999)}, SERVED, "settlement_too_low"),
    ({"requested_amount_yuan": 9_999}, SERVED, "amount_below_minimum"),
    ({"settlement": []}, SERVED, "settlement_history_short"),
    ({}, IntakeFacts(True, 2.0), "do_not_contact"),
])
def test_each_rule_refuses_with_its_own_reason_in_chinese(changes, facts, code):
    app = application(**changes)
    assert codes(app, facts) == [code]
    decision = decide(app, facts, POLICY, NOW, TODAY)
    assert decision.status == ApplicationStatus.REFUSED and decision.amount_yuan is None
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in r.message) for r in decision.reasons)


def test_ages_are_judged_on_the_banks_date_at_both_ends():
    born_22_today = application(applicant__id_number=id_number(born="20041204"))
    born_22_tomorrow = application(applicant__id_number=id_number(born="20041205"))
    turned_61_today = application(applicant__id_number=id_number(born="19651204"))
    born_61_tomorrow = application(applicant__id_number=id_number(born="19651205"))
    assert codes(born_22_today) == [] and codes(born_22_tomorrow) == ["age_out_of_range"]
    assert codes(turned_61_today) == ["age_out_of_range"] and codes(born_61_tomorrow) == []
    assert age_on(date(2000, 2, 29), date(2022, 2, 28)) == 21


def test_every_failing_rule_is_reported_together_with_the_limit_when_it_can_be_computed():
    app = application(consent={"given": False}, organisation__kind="pharmacy",
                      settlement=months(3, amount=1_000), requested_amount_yuan=5_000)
    policy = AdmissionPolicy(org_kinds=frozenset({OrgKind.CLINIC}))
    decision = decide(app, IntakeFacts(True, None), policy, NOW, TODAY)
    assert [r.code for r in decision.reasons] == [
        "consent_missing", "org_kind_not_served", "region_not_served",
        "settlement_history_short", "settlement_too_low", "amount_below_minimum",
        "limit_below_minimum", "do_not_contact"]
    assert decision.limit_yuan == 3_000


def test_the_thresholds_are_configurable_and_checked_strictly():
    policy = AdmissionPolicy.from_mapping({"min_age": 25, "max_amount_yuan": 100_000,
                                           "settlement_multiple": "2.5",
                                           "org_kinds": ["pharmacy"]})
    assert policy.min_age == 25 and policy.settlement_multiple == Decimal("2.5")
    assert codes(application(), policy=policy) == ["org_kind_not_served"]
    assert decide(application(organisation__kind="pharmacy"), SERVED, policy, NOW,
                  TODAY).amount_yuan == 100_000
    for bad, says in [({"min_age": "25"}, "whole number"), ({"max_age": True}, "whole number"),
                      ({"min_income": 1}, "unknown rules"), ({"min_age": 70}, "min_age"),
                      ({"org_kinds": ["bank"]}, "org_kinds"),
                      ({"settlement_multiple": 0}, "settlement_multiple")]:
        with pytest.raises(ValueError, match=says):
            AdmissionPolicy.from_mapping(bad)


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError):
        decide(application(), SERVED, POLICY, NOW.replace(tzinfo=None), TODAY)


# ------------------------------------------------------------ the partners' file
def _file(**changes):
    entry = {"name": "医保服务平台", "secret": KEY, "callback_url": "https://p.example/cb?x=1",
             "campaigns": ["dec"], "default_campaign": "jan",
             "offer": {"rate_min": 3.85, "rate_max": "6.50", "term_months": 12, "valid_days": 30},
             "rules": {"max_amount_yuan": 300_000}}
    entry.update(changes)
    return {"partners": {"yibao": {k: v for k, v in entry.items() if v is not None}}}


def test_partners_are_read_with_their_offer_rules_and_campaigns_and_the_key_stays_hidden():
    partners = parse_partners(_file(), environ={})
    yibao = partners["yibao"]
    assert yibao.policy.max_amount_yuan == 300_000 and yibao.offer.rate_max == Decimal("6.5")
    assert yibao.campaigns == ("dec", "jan") and yibao.campaign_for(None) == "jan"
    assert yibao.campaign_for("dec") == "dec"
    with pytest.raises(ValueError, match="not one of this partner's"):
        yibao.campaign_for("other")
    assert KEY not in repr(partners) and KEY not in repr(yibao)


def test_a_key_may_come_from_the_environment():
    raw = _file(secret=None, secret_env="YIBAO_KEY")
    assert parse_partners(raw, environ={"YIBAO_KEY": KEY})["yibao"].secret == KEY
    with pytest.raises(PartnerConfigError, match="YIBAO_KEY"):
        parse_partners(raw, environ={})


@pytest.mark.parametrize("changes, says", [
    ({"secret": "short"}, "at least 32"),
    ({"secret_env": "X"}, "exactly one"),
    ({"callback_url": "ftp://p.example/cb"}, "http"),
    ({"offer": {"rate_min": 7, "rate_max": 6}}, "rate_min"),
    ({"offer": {"term_months": "12"}}, "term_months"),
    ({"rules": {"min_age": "x"}}, "min_age"),
    ({"colour": "red"}, "unknown fields"),
    ({"window_s": 5}, "window_s"),
])
def test_a_bad_partners_file_fails_naming_the_partner_and_the_problem(changes, says):
    with pytest.raises(PartnerConfigError, match=f"partner yibao: .*{says}"):
        parse_partners(_file(**changes), environ={})


def test_a_partners_file_that_is_not_yaml_says_where_but_never_quotes_the_key(tmp_path):
    path = tmp_path / "partners.yml"
    path.write_text(f"partners:\n  yibao: {{secret: {KEY}\n", encoding="utf-8")
    with pytest.raises(PartnerConfigError, match="line") as failed:
        load_partners(path)
    assert KEY not in str(failed.value)
    with pytest.raises(PartnerConfigError, match="cannot read"):
        load_partners(tmp_path / "missing.yml")
    assert len(load_partners(None)) == 0


# ------------------------------------------------------------------- back-off
def test_the_back_off_grows_exponentially_to_its_cap_and_gives_up_in_the_end():
    policy = RetryPolicy(base_s=10, factor=2, cap_s=60, give_up_after=timedelta(minutes=5))
    assert [policy.delay(n).total_seconds() for n in range(1, 7)] == [10, 20, 40, 60, 60, 60]
    t0 = datetime(2026, 12, 4, tzinfo=timezone.utc)
    assert policy.next_attempt(1, t0, t0) == t0 + timedelta(seconds=10)
    assert policy.next_attempt(5, t0, t0 + timedelta(minutes=4)) == t0 + timedelta(minutes=5)
    assert policy.next_attempt(6, t0, t0 + timedelta(minutes=4, seconds=1)) is None
    assert policy.delay(10_000).total_seconds() == 60
    with pytest.raises(ValueError):
        RetryPolicy(timeout_s=60, lease_s=30)


def test_only_a_2xx_acknowledges_a_result():
    assert [acknowledged(s) for s in (200, 202, 204, 299, 301, 400, 409, 500)] == [
        True, True, True, True, False, False, False, False]
