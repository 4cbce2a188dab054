"""The production backend: PostgreSQL through one asyncpg pool (see repository.py)."""

from service.repositories.postgres.connection import ConnectOptions, DatabaseUnavailableError
from service.repositories.postgres.repository import PostgresRepository, StatementObserver
from service.repositories.postgres.sql import OPTIMIZED, Queries

__all__ = [
    "OPTIMIZED",
    "ConnectOptions",
    "DatabaseUnavailableError",
    "PostgresRepository",
    "Queries",
    "StatementObserver",
]
