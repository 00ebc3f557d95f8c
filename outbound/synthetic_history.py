"""SYNTHETIC contact history for demonstrations and tests. It is made up; it is not data of any
bank or customer, and figures measured on it say nothing about real customers.

Why it exists: response prediction learns from an installation's own contact history, which a
new installation does not have. This generator makes a plausible one so the whole loop (train,
cross-validate, score, choose plans, compare arms) can be run and shown.

How customers behave here (the ground truth, :func:`true_probability`), loosely after the
主动授信 programme's rural and town customers:

- four segments with their own base response: 农户 (farmers), 个体工商户 (small business),
  工薪 (salaried), 退休 (retired);
- channels suit segments differently: farmers and the retired answer calls and rarely use the
  app; the salaried read texts and the app; small business owners open the app;
- so do hours: farmers in the evening after the fields, the retired in the morning, the
  salaried at lunch or in the evening, small business mid-afternoon;
- script variant B (short, rate first) suits the salaried and small business; A (warm,
  explained) suits farmers and the retired;
- larger offers draw a little more response; each unanswered contact tires a customer a
  little; one who responded before is likelier to again;
- a small fixed effect per county.

History contacts were made by a *random* policy (uniform channel, hour and variant), as a
bank's own A/B testing would give: that is what lets a model tell the effects apart.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from outbound.response_features import (
    CHANNELS,
    SLOTS,
    Candidate,
    Contact,
    History,
    Profile,
    nearest_slot,
)

SEGMENTS = ("农户", "个体工商户", "工薪", "退休")
SEGMENT_SHARE = (0.35, 0.2, 0.3, 0.15)
REGIONS = ("宁夏回族自治区/银川市/永宁县", "宁夏回族自治区/银川市/贺兰县",
           "宁夏回族自治区/吴忠市/青铜峡市", "宁夏回族自治区/吴忠市/利通区",
           "宁夏回族自治区/中卫市/沙坡头区", "宁夏回族自治区/中卫市/中宁县",
           "宁夏回族自治区/固原市/原州区", "宁夏回族自治区/石嘴山市/平罗县")
VARIANTS = ("A", "B")
CUSTOMER_PREFIX = "SYN-"
"""Every synthetic customer's id starts with this, so they are never mistaken for real ones."""

_BASE = {"农户": -2.5, "个体工商户": -2.3, "工薪": -2.4, "退休": -2.7}
_CHANNEL = {
    "农户": {"call": 0.9, "sms": -0.2, "popup": -0.9},
    "个体工商户": {"call": 0.1, "sms": 0.0, "popup": 0.7},
    "工薪": {"call": -0.5, "sms": 0.5, "popup": 0.4},
    "退休": {"call": 1.0, "sms": -0.1, "popup": -1.3},
}
_HOUR = {
    "农户": {9: -0.5, 12: 0.2, 15: -0.5, 19: 0.7},
    "个体工商户": {9: -0.2, 12: 0.0, 15: 0.5, 19: -0.3},
    "工薪": {9: -0.4, 12: 0.4, 15: -0.5, 19: 0.6},
    "退休": {9: 0.7, 12: -0.1, 15: 0.2, 19: -0.5},
}
_VARIANT_B = {"农户": -0.35, "个体工商户": 0.3, "工薪": 0.35, "退休": -0.4}


@dataclass(frozen=True)
class SyntheticHistory:
    profiles: list[Profile]
    contacts: list[Contact]
    seed: int


def _region_effect(region: str, seed: int) -> float:
    return random.Random(f"{seed}:{region}").uniform(-0.2, 0.2)


def true_probability(profile: Profile, candidate: Candidate, history: History,
                     seed: int = 0) -> float:
    """The made-up chance that ``profile`` responds to ``candidate`` (see the module text)."""
    segment = profile.segment
    logit = _BASE[segment] + _CHANNEL[segment][candidate.channel]
    logit += _HOUR[segment][nearest_slot(candidate.hour)]
    logit += _VARIANT_B[segment] if candidate.variant == "B" else 0.0
    if profile.amount_yuan:
        logit += 0.3 * math.log(profile.amount_yuan / 80_000)
    logit += _region_effect(profile.region, seed)
    logit += -0.15 * (history.contacts - history.responses) + 0.8 * min(history.responses, 1)
    return 1 / (1 + math.exp(-logit))


def profiles(count: int, seed: int = 0, start: int = 0) -> list[Profile]:
    """``count`` made-up customers (ids ``SYN-000001``…)."""
    rng = random.Random(f"profiles:{seed}:{start}")
    made = []
    for number in range(start + 1, start + count + 1):
        segment = rng.choices(SEGMENTS, SEGMENT_SHARE)[0]
        amount = rng.choice((30_000, 50_000, 80_000, 100_000, 150_000, 200_000))
        made.append(Profile(f"{CUSTOMER_PREFIX}{number:06d}", segment, rng.choice(REGIONS),
                            rng.choice(("M", "F")), amount,
                            round(rng.uniform(3.45, 4.35), 2), rng.choice((12, 24, 36))))
    return made


def generate(customers: int, seed: int = 0, contacts_per_customer: tuple[int, int] = (1, 4),
             end: datetime | None = None, days: int = 180) -> SyntheticHistory:
    """Made-up customers and ``days`` of contacts ending at ``end``, by a random policy, each
    answered or not by :func:`true_probability`."""
    end = end or datetime(2026, 11, 30, tzinfo=timezone.utc)
    if end.utcoffset() is None:
        raise ValueError("end must be timezone-aware")
    rng = random.Random(f"contacts:{seed}")
    made = profiles(customers, seed)
    contacts: list[Contact] = []
    local = timezone(timedelta(hours=8))
    for profile in made:
        own: list[Contact] = []
        day_offsets = sorted(rng.sample(range(days), rng.randint(*contacts_per_customer)))
        for offset in day_offsets:
            candidate = Candidate(rng.choice(CHANNELS), rng.choice(SLOTS), rng.choice(VARIANTS))
            hour = candidate.hour + rng.randint(0, 1)
            day = (end - timedelta(days=days - offset)).astimezone(local)
            at = day.replace(hour=hour, minute=rng.randint(0, 59), second=0, microsecond=0)
            history = History.of(own, at)
            responded = rng.random() < true_probability(profile, candidate, history, seed)
            own.append(Contact(profile.customer_id, candidate.channel,
                               at.astimezone(timezone.utc), hour, candidate.variant, responded))
        contacts.extend(own)
    return SyntheticHistory(made, contacts, seed)
