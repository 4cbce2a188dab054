"""Fixtures of the reliability suite, and the summary table it prints at the end (table.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.load import open_shop
from tests.reliability.procs import (
    PRODUCTION_SETTINGS,
    Deploy,
    PrivatePostgres,
    Production,
    deployed,
)
from tests.reliability.table import Row, Summary, Table

TABLE = pytest.StashKey[Table]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TABLE] = Table()


@pytest.fixture
def summary(request: pytest.FixtureRequest) -> Summary:
    """`summary(scenario, done=..., held=...)` returns the scenario's row (tests of one scenario
    share it); `row.add(requests=..., failures=...)` counts what this test sent."""
    table = request.config.stash[TABLE]

    def row_for(scenario: str, **fields: Any) -> Row:
        return table.row(request.node.nodeid, scenario, **fields)

    return row_for


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    table = item.config.stash[TABLE]
    scenario = table.scenario_of.get(item.nodeid)
    if scenario is None:
        return report
    outcome = None
    if hasattr(report, "wasxfail"):
        outcome = "xfailed (known bug)" if report.skipped else "XPASSED"
    elif report.failed:
        outcome = "FAILED" if report.when == "call" else f"ERROR in {report.when}"
    elif report.when == "call":
        outcome = report.outcome
    if outcome is not None:
        table.rows[scenario].outcomes[outcome] += 1
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    table = config.stash.get(TABLE, None)
    if table is None or not table.rows:
        return
    terminalreporter.write_sep("=", "reliability summary")
    for line in table.lines():
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """One private PostgreSQL cluster for the session (the machine's server binaries, else the
    pgserver wheel's); each test makes its own database in it. Only the restart scenario stops
    it, and it always starts it again."""
    cluster = PrivatePostgres().init()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def production(
    private_postgres: PrivatePostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Production]:
    """One production-shaped service and its shop for the tests that only read the shop and add
    orders to it (the hostile-input catalogue, the low findings, the pickup code). Nothing that
    edits stores or menus may use it: their slots and items are the shop every later test reads."""
    home = tmp_path_factory.mktemp("production")
    with deployed(home, private_postgres, **PRODUCTION_SETTINGS) as d:
        yield Production(d.service, d.dsn, open_shop(d.service.url))


@pytest.fixture
def deploy(tmp_path: Path, private_postgres: PrivatePostgres) -> Iterator[Deploy]:
    """`deploy(**settings)` starts this test's own service as deployed (two workers, a database
    of its own, a Redis of its own; procs.deployed); everything stops after the test."""
    with ExitStack() as stack:
        yield lambda **settings: stack.enter_context(
            deployed(tmp_path, private_postgres, **settings)
        )
