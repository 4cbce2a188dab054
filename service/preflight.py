"""Start-up checks of `pickup serve`, before uvicorn binds the port: each dependency is opened
once, and a failure becomes ONE log event (`startup_failed`) naming the dependency, what went
wrong, the likely cause and the fix, and the process exits with EXIT_DEPENDENCY. A traceback
helps nobody who deploys: the event carries the error's class and message instead.

Exit codes of `pickup` (README, docs/DEPLOY.md): 0 done; 1 a command failed (bad data file,
database refused a CLI command); 2 invalid configuration or usage; 3 a dependency failed at
start (this module; uvicorn uses 3 for a failed start too).
"""

from __future__ import annotations

import ssl
from dataclasses import asdict, dataclass

import asyncpg
import structlog

from service.bootstrap import open_storage
from service.config import Settings
from service.errors import DataFileError
from service.repositories.postgres import DatabaseUnavailableError

log = structlog.get_logger("service.startup")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DEPENDENCY = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class StartupProblem:
    dependency: str
    problem: str
    likely_cause: str
    fix: str
    error: str

    def log(self) -> None:
        log.error("startup_failed", **asdict(self), exit_code=EXIT_DEPENDENCY)


def _root(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def diagnose_database(exc: DatabaseUnavailableError) -> StartupProblem:
    root = _root(exc)
    problem = str(exc).splitlines()[0]
    cause, fix = (
        "PostgreSQL is down or not reachable from here",
        (
            "check the host and port in DATABASE_URL and that the database is running "
            "(Neon: the project is not suspended); the service retries only at start"
        ),
    )
    if "no pickup tables" in str(exc):
        cause, fix = "the schema was never migrated", "run `pickup db migrate` (Railway: preDeploy)"
    elif isinstance(
        root, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        cause = "wrong user name or password in DATABASE_URL"
        fix = "copy the connection string again from the provider's dashboard"
    elif isinstance(root, asyncpg.InvalidCatalogNameError):
        cause, fix = "the database in DATABASE_URL does not exist", "create it or fix its name"
    elif isinstance(root, ssl.SSLCertVerificationError):
        cause = "the server's TLS certificate is not trusted or does not match the host name"
        fix = (
            "use the provider's host name; with sslmode=verify-full add sslrootcert=system for a "
            "public CA or sslrootcert=<file> for a private one"
        )
    elif isinstance(root, asyncpg.ProtocolViolationError | asyncpg.FeatureNotSupportedError) or (
        "unsupported startup parameter" in str(root)
    ):
        cause = "a transaction pooler (PgBouncer) refused the session settings"
        fix = "set DB_POOLER=transaction (Neon's -pooler hosts are recognised by themselves)"
    elif "sslmode" in str(exc) or "postgresql:// URL" in str(exc):
        cause, fix = (
            "DATABASE_URL is malformed",
            "use postgresql://user:pass@host:5432/db?sslmode=…",
        )
    return StartupProblem("postgres", problem, cause, fix, _error(root))


def redis_misconfigured(exc: BaseException) -> str | None:
    """Why `exc` (from a Redis call) is a permanent misconfiguration, or None when retrying
    may help (refused, timed out: the cache degrades and heals by itself)."""
    # redis-py is imported where Redis is used, not by every worker (~11 MiB without REDIS_URL).
    from redis import exceptions as redis_errors

    text = str(exc).lower()
    chained = exc.__cause__ or exc.__context__
    if isinstance(exc, redis_errors.AuthenticationError) or (
        isinstance(exc, redis_errors.ResponseError)
        and any(w in text for w in ("wrongpass", "noauth", "invalid password", "auth"))
    ):
        return "auth"
    if isinstance(chained, ssl.SSLCertVerificationError) or "certificate verify failed" in text:
        return "tls"
    if isinstance(chained, ssl.SSLError) or ("ssl" in text and "wrong version" in text):
        return "tls"
    return None


async def probe_redis(url: str, timeout_s: float = 5.0) -> BaseException | None:
    """One PING; the error when it shows a permanent misconfiguration, else None."""
    from redis import exceptions as redis_errors
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        await client.ping()
    except redis_errors.RedisError as exc:
        return exc if redis_misconfigured(exc) else None
    except OSError:
        return None
    finally:
        await client.aclose()
    return None


def diagnose_redis(exc: BaseException, where: str) -> StartupProblem:
    problem = f"Redis at {where} refused the connection"
    if redis_misconfigured(exc) == "auth":
        cause = "wrong user name or password in REDIS_URL"
        fix = "copy the rediss:// URL again from the provider (Upstash: user `default`)"
    else:
        cause = "the server's TLS certificate is not trusted or does not match the host name"
        fix = "use the provider's host name with rediss:// (a public CA is trusted by default)"
    return StartupProblem("redis", problem, cause, fix, _error(exc))


async def preflight(settings: Settings) -> StartupProblem | None:
    """Open each configured dependency once; the first permanent failure, or None."""
    probe = settings.model_copy(update={"db_pool_min": 0, "db_pool_max": 1})
    try:
        storage = await open_storage(probe)
    except DatabaseUnavailableError as exc:
        return diagnose_database(exc)
    except DataFileError as exc:
        return StartupProblem(
            "json data file",
            str(exc).splitlines()[0],
            "the file is not pickup data (corrupt, or another program's)",
            "restore it from a backup or move it away; it is never overwritten",
            _error(exc),
        )
    await storage.aclose()
    if settings.redis_url is not None:
        url = settings.redis_url.get_secret_value()
        from service.cache.redis import describe_redis_url

        failure = await probe_redis(url)
        if failure is not None:
            problem = diagnose_redis(failure, describe_redis_url(url))
            if settings.app_env == "production":
                return problem
            # Outside production it is said loudly but does not stop a developer's server.
            problem.log()
    return None
