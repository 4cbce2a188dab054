"""Alembic migrations for the PostgreSQL backend; run them with `pickup db migrate`
(service.dbtools), which needs no alembic.ini."""
