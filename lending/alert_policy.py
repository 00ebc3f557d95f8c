"""The post-loan alerts a deployment sets: each rule's threshold and how long an account
manager has to acknowledge an alert before it goes to the branch manager, read from its
settings (``OFFERCALL_ALERT_*``), and the bank's local date the rules judge by."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.settings import Settings, SettingsError
from lending.alert_rules import Thresholds


@dataclass(frozen=True)
class AlertPolicy:
    """The rules' thresholds, the acknowledgement deadline and the bank's time zone."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    ack_within: timedelta = timedelta(hours=48)
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if self.ack_within <= timedelta(0):
            raise ValueError(f"AlertPolicy.ack_within must be positive, got {self.ack_within!r}")
        ZoneInfo(self.timezone)  # an unknown zone fails here, at start-up

    def today(self, now: datetime) -> date:
        """The bank's local date at ``now`` (aware): the day the rules judge as of."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError(f"now must be timezone-aware, got {now!r}")
        return now.astimezone(ZoneInfo(self.timezone)).date()


def alert_policy(settings: Settings) -> AlertPolicy:
    """The policy ``settings`` give; a ``SettingsError`` naming the variable when one is out
    of range."""
    names = {"drop_pct": "OFFERCALL_ALERT_DROP_PCT", "idle_days": "OFFERCALL_ALERT_IDLE_DAYS",
             "payer_share_pct": "OFFERCALL_ALERT_PAYER_SHARE_PCT",
             "payer_min_count": "OFFERCALL_ALERT_PAYER_MIN_COUNT"}
    try:
        thresholds = Thresholds(
            drop_pct=settings.alert_drop_pct, idle_days=settings.alert_idle_days,
            payer_share_pct=settings.alert_payer_share_pct,
            payer_min_count=settings.alert_payer_min_count)
    except ValueError as exc:
        wrong = next((env for name, env in names.items() if f".{name} " in str(exc)),
                     "OFFERCALL_ALERT_*")
        raise SettingsError(f"{wrong}: {exc}") from None
    if not 1 <= settings.alert_ack_hours <= 24 * 365:
        raise SettingsError("OFFERCALL_ALERT_ACK_HOURS must be from 1 to 8760, "
                            f"got {settings.alert_ack_hours}")
    return AlertPolicy(thresholds, timedelta(hours=settings.alert_ack_hours), settings.timezone)
