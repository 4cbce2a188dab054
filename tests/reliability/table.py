"""The summary table the suite prints at the end: one row per scenario.

Each test adds to its scenario's row (`summary(scenario)` in a test): what was done to the
system, how many requests were sent, how many broke what the scenario expects, and what held.
conftest.py feeds each test's outcome into its row and prints the table after the run.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

KNOWN_BUGS = "known bugs (strict xfail)"


@dataclass
class Row:
    scenario: str
    done: str = ""
    requests: int = 0
    failures: int = 0
    held: str = ""
    pins_known_bugs: bool = False  # its failures reproduce bugs on purpose (strict xfail)
    outcomes: Counter[str] = field(default_factory=Counter)

    def add(self, *, requests: int = 0, failures: int = 0) -> None:
        self.requests += requests
        self.failures += failures

    def result(self) -> str:
        if not self.outcomes:
            return "not run"
        if set(self.outcomes) == {"passed"}:
            return "passed" if self.outcomes["passed"] == 1 else f"{self.outcomes['passed']} passed"
        return ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items()))


@dataclass
class Table:
    rows: dict[str, Row] = field(default_factory=dict)
    scenario_of: dict[str, str] = field(default_factory=dict)  # test node id -> scenario

    def row(self, nodeid: str, scenario: str, **fields: Any) -> Row:
        self.scenario_of[nodeid] = scenario
        row = self.rows.setdefault(scenario, Row(scenario))
        for name, value in fields.items():
            setattr(row, name, value)
        return row

    def lines(self) -> Iterator[str]:
        headers = ("scenario", "what was done", "requests", "failures", "what held", "result")
        widths = (26, 46, 8, 8, 50, 14)
        rule = "-+-".join("-" * w for w in widths)
        yield " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
        yield rule
        # In the order they ran, the known-bug reproductions last.
        rows = sorted(self.rows.values(), key=lambda r: r.pins_known_bugs)
        for row in rows:
            cells = [
                textwrap.wrap(row.scenario, widths[0]),
                textwrap.wrap(row.done, widths[1]),
                [str(row.requests)],
                [str(row.failures)],
                textwrap.wrap(row.held, widths[4]),
                textwrap.wrap(row.result(), widths[5]),
            ]
            for n in range(max(len(c) for c in cells)):
                parts = [(c[n] if n < len(c) else "") for c in cells]
                yield " | ".join(
                    p.rjust(w) if i in (2, 3) else p.ljust(w)
                    for i, (p, w) in enumerate(zip(parts, widths, strict=True))
                ).rstrip()
            yield rule
        sent = sum(r.requests for r in rows)
        failed = sum(r.failures for r in rows if not r.pins_known_bugs)
        known = sum(r.failures for r in rows if r.pins_known_bugs)
        yield (
            f"{len(rows)} scenarios, {sent} requests sent: {failed} broke what the scenario "
            f"expects, {known} reproduced known bugs (strict xfail)"
        )


Summary = Callable[..., Row]


def known_bug(summary: Summary, requests: int) -> None:
    """Count a strict-xfail reproduction of a known bug in the table's known-bugs row."""
    row = summary(
        KNOWN_BUGS,
        done="deterministic reproductions of what the fuzz run, the catalogue and the crash "
        "rounds found",
        held="nothing yet: each test fails until its bug is fixed (reasons in the xfail marks)",
        pins_known_bugs=True,
    )
    row.add(requests=requests, failures=requests)


FIXED_BUGS = "bugs found here, since fixed"


def fixed_bug(summary: Summary, requests: int) -> None:
    """Count a reproduction of a bug this suite found and the service has since fixed."""
    row = summary(
        FIXED_BUGS,
        done="the reproductions of what the fuzz run, the catalogue and the crash rounds found",
        held="each now gets the behaviour the test states (the fixes' commits say how)",
    )
    row.add(requests=requests, failures=0)
