"""Core tables: stores, menu items, orders with their lines, idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-30

Ids are uuid, times timestamptz, money integer minor units guarded by CHECKs. Order lines get
their own table (they are rows with their own constraints and foreign keys). Status history is a
jsonb array on the order: it is only ever read and written with its order, never queried on its
own, so a table would cost a join or a second query on every order read for nothing.
`seq` records insertion order, which is the order the JSON backend lists menus and exports data
in; keeping it makes a backend switch invisible to clients and round trips exact.
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# One statement per op.execute: asyncpg prepares each one, and a prepared statement holds one.
TABLES = [
    """
    CREATE TABLE stores (
        id                uuid PRIMARY KEY,
        seq               bigint GENERATED ALWAYS AS IDENTITY,
        name              text NOT NULL,
        address           text NOT NULL,
        timezone          text NOT NULL,
        slot_minutes      integer NOT NULL CHECK (slot_minutes > 0),
        slot_capacity     integer NOT NULL CHECK (slot_capacity > 0),
        lead_time_minutes integer NOT NULL CHECK (lead_time_minutes >= 0),
        accepting_orders  boolean NOT NULL,
        -- [[weekday, "HH:MM", "HH:MM"], ...] as in the export format
        opening_hours     jsonb NOT NULL CHECK (jsonb_typeof(opening_hours) = 'array')
    )
    """,
    """
    CREATE TABLE menu_items (
        id          uuid PRIMARY KEY,
        seq         bigint GENERATED ALWAYS AS IDENTITY,
        store_id    uuid NOT NULL REFERENCES stores (id),
        name        text NOT NULL,
        description text NOT NULL,
        category    text NOT NULL,
        price_cents integer NOT NULL CHECK (price_cents >= 0),
        currency    text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        available   boolean NOT NULL,
        tags        text[] NOT NULL DEFAULT '{}'
    )
    """,
    """
    CREATE TABLE orders (
        id                uuid PRIMARY KEY,
        seq               bigint GENERATED ALWAYS AS IDENTITY,
        store_id          uuid NOT NULL REFERENCES stores (id),
        customer_name     text NOT NULL,
        customer_phone    text NOT NULL,
        total_cents       integer NOT NULL CHECK (total_cents >= 0),
        currency          text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
        pickup_slot_start timestamptz NOT NULL,
        status            text NOT NULL CHECK (status IN ('placed', 'accepted', 'preparing',
                              'ready', 'picked_up', 'cancelled', 'rejected')),
        pickup_code       text NOT NULL,
        order_token       text NOT NULL,
        note              text,
        created_at        timestamptz NOT NULL,
        updated_at        timestamptz NOT NULL,
        -- [[status, ISO time, actor], ...] oldest first
        history           jsonb NOT NULL CHECK (jsonb_typeof(history) = 'array')
    )
    """,
    """
    CREATE TABLE order_lines (
        order_id         uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        line_no          integer NOT NULL CHECK (line_no > 0),
        menu_item_id     uuid NOT NULL REFERENCES menu_items (id),
        name             text NOT NULL,
        unit_price_cents integer NOT NULL CHECK (unit_price_cents >= 0),
        quantity         integer NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (order_id, line_no)
    )
    """,
    # The primary key is the unique constraint that makes a concurrent duplicate key fail.
    """
    CREATE TABLE idempotency_keys (
        key         text PRIMARY KEY,
        fingerprint text NOT NULL,
        order_id    uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE
    )
    """,
]


def upgrade() -> None:
    for statement in TABLES:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys, order_lines, orders, menu_items, stores")
