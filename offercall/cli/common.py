"""What several commands share: logging, and whether a customer is known."""

from __future__ import annotations

import logging

from core.masking import PiiMaskingFilter
from core.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Logs to stderr, with phone and ID numbers masked."""
    handler = logging.StreamHandler()
    handler.addFilter(PiiMaskingFilter())
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        handlers=[handler],
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # `migrate` says what it applied


def customer_exists(settings: Settings, customer_id: str) -> bool:
    """True when the whitelist has ``customer_id`` (the schema must be current)."""
    from persistence import store
    from persistence.engine import open_database, session_scope

    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            return store.get_customer_offer(session, customer_id) is not None
    finally:
        engine.dispose()
