"""The settlement feed: customers' settlement records, from a CSV file (``offercall alerts
import``) or the settlement system's signed API calls (``POST /api/settlements``), stored
once each and judged by the alert rules as they arrive.

All or nothing: a file or request with any bad record, an unknown customer, or a ref already
stored with other figures is refused whole, each problem named (``SettlementsRefused``), and
nothing of it is stored. Idempotent by ``ref``: a record sent again with the same figures is
counted as unchanged and changes nothing, so a file imported twice, or a request retried,
stores and raises nothing more. Two imports at once that share refs both end right: the
insert is ``ON CONFLICT (ref) DO NOTHING`` and what the other one stored is compared after.

After storing, the customers with new records are judged (``lending.alerts.raise_alerts``)
in the same transaction: an alert exists exactly when the records that raised it do. A
signed request's nonce is kept in that transaction too, so a replay is refused and a
refused request can be sent again, fixed, with a new nonce.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from tqdm import tqdm

from core.vocabulary import AuditAction
from lending import alerts
from lending.alert_policy import AlertPolicy
from lending.errors import SettlementsRefused, SignatureError
from lending.settlement_rows import ParsedRows, SettlementRow, parse_csv
from persistence import audit
from persistence.audit import Actor
from persistence.engine import session_scope
from persistence.schema import Customer, SettlementNonce
from persistence.schema import Settlement as SettlementRecord

log = logging.getLogger(__name__)

BATCH = 1000


@dataclass
class Stored:
    """What a file or request did: records new and unchanged, and the alerts they raised."""

    received: int = 0
    new: int = 0
    unchanged: int = 0
    customers: set[str] = field(default_factory=set)
    """The customers with new records."""
    raised: list[alerts.Alert] = field(default_factory=list)

    def summary(self) -> str:
        return (f"settlements: {self.received} received, {self.new} new, {self.unchanged} "
                f"already stored; {len(self.customers)} customers judged, "
                f"{len(self.raised)} alerts raised")


def _chunks(values: Sequence, size: int = BATCH) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _stored_figures(session: Session, refs: Sequence[str]) -> dict[str, tuple]:
    rows = session.execute(
        select(SettlementRecord.ref, SettlementRecord.customer_id, SettlementRecord.settled_on,
               SettlementRecord.amount_fen, SettlementRecord.payer)
        .where(SettlementRecord.ref.in_(list(refs))))
    return {ref: (cid, on, fen, payer) for ref, cid, on, fen, payer in rows}


def _conflict(row: SettlementRow, stored: tuple) -> str:
    cid, on, fen, payer = stored
    return (f"ref {row.ref} is already stored with other figures (customer {cid}, "
            f"{on.isoformat()}, {fen / 100:.2f} yuan, payer {payer})")


def store(session: Session, parsed: ParsedRows, *, source: str, now: datetime,
          progress: tqdm | None = None) -> Stored:
    """Stores the batch's new records; refuses it whole (``SettlementsRefused``, with the
    parse problems and these, in order) when any record is bad, names an unknown customer,
    or reuses a stored ref with other figures."""
    rows = parsed.rows
    problems = list(parsed.problems)
    ids = sorted({row.customer_id for row in rows})
    known: set[str] = set()
    for chunk in _chunks(ids):
        known.update(session.execute(
            select(Customer.customer_id).where(Customer.customer_id.in_(list(chunk)))).scalars())
    stored: dict[str, tuple] = {}
    for chunk in _chunks([row.ref for row in rows]):
        stored.update(_stored_figures(session, chunk))
    result = Stored(received=len(rows))
    fresh: list[SettlementRow] = []
    for row in rows:
        if row.customer_id not in known:
            problems.append((row.where, f"unknown customer {row.customer_id}"))
        elif row.ref in stored:
            if stored[row.ref] != row.figures():
                problems.append((row.where, _conflict(row, stored[row.ref])))
            else:
                result.unchanged += 1
        else:
            fresh.append(row)
    if problems:
        raise SettlementsRefused(_in_order(problems))
    if progress is not None:
        progress.update(result.unchanged)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for batch in _chunks(fresh):
        inserted = session.execute(dialect.insert(SettlementRecord).values([
            {"ref": row.ref, "customer_id": row.customer_id, "settled_on": row.on,
             "amount_fen": row.amount_fen, "payer": row.payer, "source": source[:200],
             "received_at": now} for row in batch]).on_conflict_do_nothing(
                 index_elements=["ref"])).rowcount
        if inserted != len(batch):  # another import stored some of these meanwhile
            _recheck(session, batch)
        result.new += inserted
        result.unchanged += len(batch) - inserted
        result.customers.update(row.customer_id for row in batch)
        if progress is not None:
            progress.update(len(batch))
    return result


def _recheck(session: Session, batch: Sequence[SettlementRow]) -> None:
    """After a concurrent import: every ref of ``batch`` must now be stored with its figures."""
    stored = _stored_figures(session, [row.ref for row in batch])
    problems = [(row.where, _conflict(row, stored[row.ref])) for row in batch
                if stored.get(row.ref) != row.figures()]
    if problems:
        raise SettlementsRefused(problems)


def _in_order(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """By line or index (``line 7`` before ``line 12``; ``settlements[2]``)."""
    def key(problem: tuple[str, str]) -> tuple[int, str]:
        digits = "".join(c for c in problem[0] if c.isdigit())
        return (int(digits) if digits else -1, problem[0])
    return sorted(problems, key=key)


def _judge(session: Session, result: Stored, now: datetime, policy: AlertPolicy) -> None:
    if result.customers:
        result.raised = alerts.raise_alerts(session, now, policy, customer_ids=result.customers)


# ------------------------------------------------------------------ the file
def import_file(engine: Engine, path: Path, *, now: datetime, policy: AlertPolicy,
                actor: Actor, progress: bool = False) -> Stored:
    """Reads, checks and stores a settlement CSV in one transaction, raising the alerts its new
    records bring (audited as ``settlements_imported``). ``SettlementFileError`` when it
    cannot be read, ``SettlementsRefused`` naming every bad row: nothing stored either way."""
    path = Path(path)
    data = path.read_bytes()
    today = policy.today(now)
    lines = data.count(b"\n")
    with tqdm(total=lines or None, unit="row", desc="checking", disable=not progress) as bar:
        parsed = parse_csv(data, today, progress=bar)
    with session_scope(engine) as session, \
            tqdm(total=len(parsed.rows), unit="row", desc="storing", disable=not progress) as bar:
        result = store(session, parsed, source=f"file:{path.name}", now=now, progress=bar)
        _judge(session, result, now, policy)
        audit.record(session, actor, AuditAction.SETTLEMENTS_IMPORTED, "settlement_file",
                     path.name, now, received=result.received, new=result.new,
                     unchanged=result.unchanged, alerts=len(result.raised))
    log.info("lending.settlements.imported file=%s new=%s unchanged=%s alerts=%s", path.name,
             result.new, result.unchanged, len(result.raised))
    return result


# ------------------------------------------------------------------ the API
def remember_nonce(session: Session, nonce: str, now: datetime, window: timedelta) -> None:
    """Keeps a signed request's nonce; ``SignatureError("replayed")`` when it was seen before.
    Nonces older than twice the window are forgotten (their requests are stale anyway)."""
    session.execute(delete(SettlementNonce).where(SettlementNonce.received_at < now - 2 * window))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    kept = session.execute(dialect.insert(SettlementNonce).values(nonce=nonce, received_at=now)
                           .on_conflict_do_nothing(index_elements=["nonce"])).rowcount
    if kept != 1:
        raise SignatureError("replayed", "this request was received before (its nonce is spent)")


def receive(session: Session, parsed: ParsedRows, *, nonce: str, now: datetime,
            policy: AlertPolicy, window: timedelta) -> Stored:
    """One signed API request's records: its nonce kept (a replay refused), the records
    stored, the alerts raised, all in the caller's transaction (see the module docstring)."""
    remember_nonce(session, nonce, now, window)
    result = store(session, parsed, source=f"api:{nonce}", now=now)
    _judge(session, result, now, policy)
    log.info("lending.settlements.received new=%s unchanged=%s alerts=%s", result.new,
             result.unchanged, len(result.raised))
    return result
