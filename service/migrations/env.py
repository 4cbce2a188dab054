"""Alembic's entry point. service.dbtools opens the connection, takes the migration lock and
starts the transaction, then hands the connection over in `config.attributes["connection"]`."""

from __future__ import annotations

from alembic import context


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None or context.is_offline_mode():
        raise RuntimeError(
            "run migrations with `pickup db migrate` (service.dbtools.migrate), which holds the "
            "migration lock; alembic's own command line is not wired up"
        )
    # No target metadata: the schema lives in hand-written SQL revisions, not in ORM models.
    context.configure(connection=connection, target_metadata=None)
    # dbtools already began the transaction, so this joins it: every pending revision commits
    # or rolls back together (PostgreSQL DDL is transactional).
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
