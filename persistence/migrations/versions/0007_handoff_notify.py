"""The handoff feed's wake-up on PostgreSQL: a statement trigger on each of the two logs the feed
tails (``oc_handoff_events``, ``oc_messages``) sends ``NOTIFY offercall_handoff`` when rows are
appended. PostgreSQL delivers it when the writer's transaction commits (never for one rolled
back), whichever process or tool wrote the rows. The feed still reads the logs: the
notification only says "look now". SQLite has no NOTIFY: there the feed polls, and this
revision does nothing.

Revision ID: 0007
Revises: 0006
Created: 2026-12-10
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CHANNEL = "offercall_handoff"  # persistence.notify.HANDOFF_CHANNEL, as it was at this revision
FUNCTION = "oc_notify_handoff_feed"
TRIGGERS = {"oc_handoff_events": "oc_handoff_events_notify", "oc_messages": "oc_messages_notify"}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
    """)
    # EXECUTE FUNCTION is PostgreSQL 11's spelling; EXECUTE PROCEDURE is older and still accepted
    execute = "FUNCTION" if (bind.dialect.server_version_info or (0,)) >= (11,) else "PROCEDURE"
    for table, trigger in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        op.execute(f"CREATE TRIGGER {trigger} AFTER INSERT ON {table} "
                   f"FOR EACH STATEMENT EXECUTE {execute} {FUNCTION}()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, trigger in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
