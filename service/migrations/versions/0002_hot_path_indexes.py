"""Indexes for the hot paths.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30

- a store's menu, in insertion order;
- a store's orders by status and slot, and by slot alone (the staff board), both ending in
  `id` so keyset pages (pickup_slot_start, id) > (...) are read straight from the index;
- live orders per slot (capacity checks and slot availability): a partial index holding only
  the orders that occupy a slot, so the count never touches cancelled or rejected ones. Its
  predicate must match postgres_queries.LIVE exactly, or the planner cannot use it.
Order by id with its lines uses the primary keys of orders and order_lines.
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


INDEXES = [
    "CREATE INDEX menu_items_store_idx ON menu_items (store_id, seq)",
    "CREATE INDEX orders_store_status_slot_idx ON orders (store_id, status, pickup_slot_start, id)",
    "CREATE INDEX orders_store_slot_idx ON orders (store_id, pickup_slot_start, id)",
    "CREATE INDEX orders_live_slot_idx ON orders (store_id, pickup_slot_start) "
    "WHERE status NOT IN ('cancelled', 'rejected')",
]


def upgrade() -> None:
    for statement in INDEXES:
        op.execute(statement)


def downgrade() -> None:
    op.execute(
        "DROP INDEX orders_live_slot_idx, orders_store_slot_idx, orders_store_status_slot_idx, "
        "menu_items_store_idx"
    )
