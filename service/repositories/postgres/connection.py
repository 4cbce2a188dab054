"""Connecting to PostgreSQL: DATABASE_URL parsing, start-up retries, and which driver errors
mean what. Driver, server and socket errors are translated at the repository's boundary into
ServiceUnavailableError (503) with a fixed message; the details go to the log, never to clients.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Literal, TypeVar, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import structlog

from service.domain.errors import ServiceUnavailableError

T = TypeVar("T")
log = structlog.get_logger("service.postgres")

# Everything that means "the database could not serve this request". PickupError never matches.
DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
# The connection died under the query (restart, failover, pg_terminate_backend). When the
# server's goodbye reaches an idle connection just as a query starts, asyncpg reports the
# collision as an InternalClientError; that connection is gone too.
LOST_CONNECTION = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InternalClientError,
)
# What an import can get wrong in the data itself; reported as a bad dataset, not an outage.
BAD_DATASET = (
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.DataError,
    asyncpg.CardinalityViolationError,
    ValueError,
)
# Connect failures that retrying cannot fix: wrong credentials, no such database, bad TLS setup,
# a certificate that is untrusted or names another host (an OSError, so it must come first).
FATAL_AT_CONNECT = (
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.ClientConfigurationError,
    ssl.SSLCertVerificationError,
)
ACQUIRE_TIMEOUT_S = 10.0  # a request waiting longer than this for a connection gets a 503
CLIENT_TIMEOUT_MARGIN_S = 5.0  # client-side deadline beyond the server's statement_timeout
DEFAULT_CONNECT_TIMEOUT_S = 5.0
FIRST_RETRY_DELAY_S, MAX_RETRY_DELAY_S = 0.25, 5.0

PoolerMode = Literal["auto", "direct", "transaction"]
SSLMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[SSLMode, ...] = get_args(SSLMode)
# libpq client settings with no asyncpg equivalent. Left in the URL, asyncpg would pass them to
# the server as run-time settings and the server would refuse the session: Neon's URLs carry
# `channel_binding=require` (asyncpg negotiates SCRAM by itself).
LIBPQ_ONLY = frozenset(
    {
        "channel_binding",
        "gssencmode",
        "sslcompression",
        "sslsni",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "fallback_application_name",
    }
)


class DatabaseUnavailableError(Exception):
    """Raised at start-up when PostgreSQL is unreachable after every retry, refuses us, or
    DATABASE_URL is malformed. The message names the server but never the password."""


def system_trust() -> ssl.SSLContext:
    """Verify the server's certificate against the system's CAs and its name (verify-full)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def behind_transaction_pooler(url: str, pooler: PoolerMode = "auto") -> bool:
    """Whether `url` reaches PostgreSQL through a transaction pooler (PgBouncer in transaction
    mode): said by DB_POOLER, or with `auto` guessed from Neon's pooled host names, which carry
    `-pooler` (ep-cool-name-123456-pooler.eu-central-1.aws.neon.tech)."""
    if pooler != "auto":
        return pooler == "transaction"
    host = (urlsplit(url).hostname or "").split(".")[0]
    return host.endswith("-pooler")


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """DATABASE_URL turned into asyncpg's arguments; `where` names the server, without secrets."""

    dsn: str
    ssl: SSLMode | SSLContext | None
    timeout: float
    where: str
    # Behind a transaction pooler each transaction may run on another server connection: no
    # session state (startup settings, named prepared statements) survives between them.
    pooled: bool = False

    @classmethod
    def parse(cls, url: str, pooler: PoolerMode = "auto") -> ConnectOptions:
        parts = urlsplit(url)
        # postgres:// (Heroku, Railway) and postgresql+asyncpg:// (SQLAlchemy) mean the same.
        if parts.scheme.partition("+")[0] not in ("postgres", "postgresql"):
            raise DatabaseUnavailableError("DATABASE_URL must be a postgresql:// URL")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        # libpq's sslmode values are exactly the modes asyncpg's ssl= argument accepts.
        mode = query.pop("sslmode", None)
        sslmode = next((m for m in SSL_MODES if m == mode), None)
        if mode is not None and sslmode is None:
            raise DatabaseUnavailableError(f"DATABASE_URL: sslmode must be one of {SSL_MODES}")
        tls: SSLMode | ssl.SSLContext | None = sslmode
        if query.get("sslrootcert") == "system":
            # libpq's idiom for "the system's trusted CAs" (asyncpg would look for a file named
            # `system`); like libpq it implies, and insists on, verify-full.
            del query["sslrootcert"]
            if sslmode not in (None, "verify-full"):
                raise DatabaseUnavailableError(
                    "DATABASE_URL: sslrootcert=system needs sslmode=verify-full (or no sslmode)"
                )
            tls = system_trust()
        # libpq's connect_timeout is whole seconds, 0 meaning "wait for ever": we keep a bound.
        timeout = query.pop("connect_timeout", "")
        seconds = float(timeout) if timeout.isdigit() and int(timeout) > 0 else None
        kept = {k: v for k, v in query.items() if k not in LIBPQ_ONLY}
        return cls(
            dsn=urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept), "")),
            ssl=tls,
            timeout=seconds or DEFAULT_CONNECT_TIMEOUT_S,
            where=f"{parts.netloc.rpartition('@')[2] or 'localhost'}{parts.path}",
            pooled=behind_transaction_pooler(url, pooler),
        )

    @property
    def statement_cache_size(self) -> int:
        # asyncpg's cache names its statements; a transaction pooler hands the next transaction
        # another server, where the name is missing or already taken by another client.
        return 0 if self.pooled else 100

    async def connect(self, *, retries: int) -> asyncpg.Connection:
        return await self.retrying(
            lambda: asyncpg.connect(
                self.dsn,
                ssl=self.ssl,
                timeout=self.timeout,
                statement_cache_size=self.statement_cache_size,
            ),
            retries=retries,
        )

    async def retrying(self, start: Callable[[], Awaitable[T]], *, retries: int) -> T:
        """Run `start` until it succeeds, backing off exponentially between attempts."""
        failures, delay = 0, FIRST_RETRY_DELAY_S
        while True:
            try:
                return await start()
            except FATAL_AT_CONNECT as exc:
                raise DatabaseUnavailableError(
                    f"PostgreSQL at {self.where} refused the connection: {exc}"
                ) from exc
            except DATABASE_ERRORS as exc:
                failures += 1
                if failures > retries:
                    raise DatabaseUnavailableError(
                        f"cannot reach PostgreSQL at {self.where} after {failures} attempts: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                log.warning(
                    "database_connect_retry",
                    where=self.where,
                    attempt=failures,
                    error=type(exc).__name__,
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RETRY_DELAY_S)


def unavailable(operation: str, exc: BaseException) -> ServiceUnavailableError:
    """The 503 a failed unit of work answers; what failed goes to the log, never to clients."""
    log.warning(
        "database_error",
        operation=operation,
        error_type=type(exc).__name__,
        sqlstate=getattr(exc, "sqlstate", None),
        error=str(exc),
    )
    return ServiceUnavailableError("the database is unavailable; please retry shortly")
