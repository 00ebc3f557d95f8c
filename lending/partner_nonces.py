"""The replay check of the partner API: every signed request's nonce is remembered for as long
as its timestamp could pass (``lending.signatures``); the same nonce again from the same
partner is a replay. Written in the transaction of the request's own work, so a request
refused for anything else leaves no nonce behind."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lending.errors import SignatureError
from persistence.schema import PartnerNonce


def remember_nonce(session: Session, partner_id: str, nonce: str, now: datetime,
                   window_s: float) -> None:
    """Records the nonce; :class:`SignatureError` ``replayed`` when the partner used it before.
    Nonces older than twice the window are forgotten (a request that old is stale anyway).
    Two requests with one nonce at once: the second waits for the first's transaction, then
    finds the nonce (PostgreSQL); SQLite has one writer at a time."""
    session.execute(delete(PartnerNonce).where(
        PartnerNonce.partner_id == partner_id,
        PartnerNonce.received_at < now - timedelta(seconds=2 * window_s)))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = session.execute(
        dialect.insert(PartnerNonce)
        .values(partner_id=partner_id, nonce=nonce, received_at=now)
        .on_conflict_do_nothing(index_elements=["partner_id", "nonce"])).rowcount
    if inserted != 1:
        raise SignatureError("replayed", "this nonce was used before: the request is a replay "
                                         "(sign every request, resubmissions too, with a new "
                                         "nonce)")
