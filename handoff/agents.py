"""Agent and supervisor accounts: hashed passwords, login sessions and presence.

Passwords are hashed with scrypt (stdlib, salted, memory-hard). A login gives a random
token; only its SHA-256 is stored, so a database leak does not leak sessions.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.access import BRANCH_SCOPED, Permission, allows
from core.staff_phones import valid_phone
from core.vocabulary import Role
from handoff.routing import AgentProfile
from persistence.schema import Agent, AgentSession

ROLES = tuple(Role)
SESSION_HOURS = 12
ONLINE_WITHIN_S = 45  # the console's websocket touches presence every 15 s
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AccountError(ValueError):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class AgentAccount:
    """An agent as the console and the routing see them (never with the password hash)."""

    id: int
    username: str
    display_name: str
    role: str
    branch_id: str | None
    products: tuple[str, ...]
    languages: tuple[str, ...]
    online: bool

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def works_tickets(self) -> bool:
        """Agents and supervisors take tickets; managers' accounts are for the campaign pages."""
        return allows(self.role, Permission.WORK_TICKETS)

    def profile(self) -> AgentProfile:
        """The routing view of this agent: an admin sees and may take every ticket, as a
        supervisor does, and is never routed tickets as an agent is."""
        role = Role.SUPERVISOR if self.role == Role.ADMIN else self.role
        return AgentProfile(
            agent_id=self.id, role=role, branch_id=self.branch_id,
            products=frozenset(self.products), languages=frozenset(self.languages),
            online=self.online,
        )


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` for ``password`` with a fresh salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    parts = [str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]), _b64(salt), _b64(digest)]
    return "scrypt$" + "$".join(parts)


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(), salt=base64.urlsafe_b64decode(salt), dklen=len(expected),
            n=int(n), r=int(r), p=int(p),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_agent(
    session: Session, *, username: str, password: str, display_name: str, role: str = "agent",
    branch_id: str | None = None, products: list[str] | None = None,
    languages: list[str] | None = None, now: datetime,
) -> int:
    """Create an account; returns its id. Usernames are unique."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if role in BRANCH_SCOPED and not branch_id:
        raise AccountError(f"a {role} account needs its branch")
    if not username.strip():
        raise AccountError("a username is required")
    if len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    agent = Agent(
        username=username.strip(), display_name=display_name.strip() or username.strip(),
        password_hash=hash_password(password), role=role, branch_id=branch_id,
        products=list(products or ["*"]), languages=list(languages or ["mandarin"]),
        active=True, created_at=now,
    )
    try:
        with session.begin_nested():
            session.add(agent)
            session.flush()
    except IntegrityError as exc:
        raise AccountError(f"username {username!r} is taken") from exc
    return agent.id


def _account(row: Agent, now: datetime) -> AgentAccount:
    online = row.last_seen_at is not None and now - row.last_seen_at <= timedelta(seconds=ONLINE_WITHIN_S)
    return AgentAccount(
        id=row.id, username=row.username, display_name=row.display_name, role=row.role,
        branch_id=row.branch_id, products=tuple(row.products), languages=tuple(row.languages),
        online=online,
    )


def get_account(session: Session, agent_id: int, now: datetime) -> AgentAccount | None:
    """The active account with this id, or None."""
    row = session.get(Agent, agent_id)
    return _account(row, now) if row is not None and row.active else None


def all_accounts(session: Session, now: datetime) -> list[AgentAccount]:
    """Every active account, by id."""
    rows = session.execute(select(Agent).where(Agent.active.is_(True)).order_by(Agent.id)).scalars()
    return [_account(row, now) for row in rows]


def authenticate(session: Session, username: str, password: str, now: datetime) -> AgentAccount | None:
    """The active account with this username and password, or None (the same work either way)."""
    row = session.execute(
        select(Agent).where(Agent.username == username.strip(), Agent.active.is_(True))
    ).scalar_one_or_none()
    if row is None:
        verify_password(password, hash_password("timing-equaliser"))  # same work either way
        return None
    if not verify_password(password, row.password_hash):
        return None
    return _account(row, now)


def open_session(session: Session, account_id: int, now: datetime) -> str:
    """A new session token for the account (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(AgentSession(
        token_hash=_token_hash(token), agent_id=account_id, created_at=now,
        expires_at=now + timedelta(hours=SESSION_HOURS),
    ))
    session.flush()
    return token


def log_in(session: Session, username: str, password: str, now: datetime) -> tuple[str, AgentAccount] | None:
    """A new session token and the account, or None for a wrong username or password."""
    account = authenticate(session, username, password, now)
    if account is None:
        return None
    return open_session(session, account.id, now), account


def account_for_token(session: Session, token: str, now: datetime) -> AgentAccount | None:
    """The account a live (unexpired, not logged out) session token belongs to."""
    if not token:
        return None
    login = session.get(AgentSession, _token_hash(token))
    if login is None or login.revoked_at is not None or login.expires_at <= now:
        return None
    return get_account(session, login.agent_id, now)


def log_out(session: Session, token: str, now: datetime) -> None:
    """Ends a session; its token is refused from now on."""
    session.execute(
        update(AgentSession).where(AgentSession.token_hash == _token_hash(token)).values(revoked_at=now)
    )


def touch(session: Session, agent_id: int, now: datetime | None) -> None:
    """Marks the agent as online at ``now`` (None: offline, e.g. their console closed)."""
    session.execute(update(Agent).where(Agent.id == agent_id).values(last_seen_at=now))


def load_agents_csv(session: Session, path: Path, now: datetime) -> tuple[int, int]:
    """Creates or updates accounts from a CSV (username, display_name, role, branch_id,
    products, languages, password, and optionally phone, the account's own phone for one-click
    calls; lists separated by ``|``). A password only sets the
    password of a new account. Returns (created, updated)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    created = updated = 0
    for line, row in enumerate(rows, start=2):
        try:
            username = row["username"].strip()
            fields = {
                "display_name": row["display_name"].strip(), "role": row["role"].strip(),
                "branch_id": row["branch_id"].strip() or None,
                "products": [p for p in row["products"].split("|") if p.strip()],
                "languages": [p for p in row["languages"].split("|") if p.strip()],
            }
            phone = (row.get("phone") or "").strip()  # optional: the one-click calls ring it
            phone = valid_phone(phone) if phone else None
        except (KeyError, AttributeError) as exc:
            raise AccountError(f"{path}:{line}: missing column {exc}") from exc
        except ValueError as exc:
            raise AccountError(f"{path}:{line}: {exc}") from exc
        existing = session.execute(select(Agent).where(Agent.username == username)).scalar_one_or_none()
        if existing is None:
            try:
                account_id = add_agent(session, username=username, password=row.get("password") or "",
                                       now=now, **fields)
            except AccountError as exc:
                raise AccountError(f"{path}:{line}: {exc}") from exc
            if phone:
                session.get(Agent, account_id).phone = phone
            created += 1
        else:
            if fields["role"] not in ROLES:
                raise AccountError(f"{path}:{line}: unknown role {fields['role']!r}")
            if fields["role"] in BRANCH_SCOPED and not fields["branch_id"]:
                raise AccountError(f"{path}:{line}: a {fields['role']} account needs its branch")
            for name, value in fields.items():
                setattr(existing, name, value)
            if phone:
                existing.phone = phone
            updated += 1
    session.flush()
    return created, updated
