"""DATABASE_URL as platforms hand it out, and what happens when the server is not there."""

from __future__ import annotations

import socket

import pytest

from service.repositories.postgres import ConnectOptions, DatabaseUnavailableError
from tests.integration.postgres.databases import HOST, PORT, open_repository, scratch_database

pytestmark = pytest.mark.postgres

NEON_URL = (
    "postgresql://alex:s3cr%40t@ep-cool-darkness-123456.eu-central-1.aws.neon.tech/neondb"
    "?sslmode=require&channel_binding=require"
)


def test_a_neon_url_maps_sslmode_to_asyncpg_and_drops_what_asyncpg_cannot_use() -> None:
    options = ConnectOptions.parse(NEON_URL)
    assert options.ssl == "require"
    assert options.dsn == (
        "postgresql://alex:s3cr%40t@ep-cool-darkness-123456.eu-central-1.aws.neon.tech/neondb"
    )
    assert options.where == "ep-cool-darkness-123456.eu-central-1.aws.neon.tech/neondb"


def test_platform_url_spellings_and_libpq_parameters_are_understood() -> None:
    options = ConnectOptions.parse(
        "postgres://u:p@db.internal:6543/app?connect_timeout=3&application_name=pickup"
        "&options=-c%20search_path%3Dpublic"
    )
    assert options.ssl is None  # asyncpg's default, like libpq's: prefer
    assert options.timeout == 3.0
    assert options.dsn == (
        "postgresql://u:p@db.internal:6543/app"
        "?application_name=pickup&options=-c+search_path%3Dpublic"
    )
    assert ConnectOptions.parse("postgresql+asyncpg://h/db").dsn == "postgresql://h/db"


@pytest.mark.parametrize(
    "url",
    ["mysql://u:p@h/db", "postgresql://u:p@h/db?sslmode=sometimes"],
)
def test_a_malformed_url_is_refused_without_echoing_the_password(url: str) -> None:
    with pytest.raises(DatabaseUnavailableError) as caught:
        ConnectOptions.parse(url)
    assert "p@h" not in str(caught.value)


async def test_a_neon_style_url_connects_once_normalised(database: str) -> None:
    # The local server has no TLS, so `prefer` stands in for `require`; channel_binding and
    # connect_timeout would make the server refuse the session if they reached it.
    url = f"{database}?sslmode=prefer&channel_binding=require&connect_timeout=5"
    async with open_repository(url) as repo:
        await repo.ping()


async def test_sslmode_require_really_asks_for_tls(database: str) -> None:
    with pytest.raises(DatabaseUnavailableError, match="SSL"):
        async with open_repository(f"{database}?sslmode=require"):
            pass


async def test_a_database_that_was_never_migrated_is_refused_with_the_fix() -> None:
    async with scratch_database(migrated=False) as dsn:
        with pytest.raises(DatabaseUnavailableError, match="run `pickup db migrate` first"):
            async with open_repository(dsn):
                pass


async def test_an_unreachable_server_is_retried_then_reported_clearly() -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres:hunter2@{HOST}:{port}/pickup"
    with pytest.raises(DatabaseUnavailableError) as caught:
        async with open_repository(url, connect_retries=2):
            pass
    message = str(caught.value)
    assert f"{HOST}:{port}/pickup" in message and "after 3 attempts" in message
    assert "hunter2" not in message


async def test_a_missing_database_fails_at_once_instead_of_retrying() -> None:
    url = f"postgresql://postgres@{HOST}:{PORT}/pickup_no_such_database"
    with pytest.raises(DatabaseUnavailableError, match="refused the connection"):
        async with open_repository(url, connect_retries=50):
            pass
