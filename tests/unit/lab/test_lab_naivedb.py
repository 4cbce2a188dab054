from __future__ import annotations

import pytest
from labkit.naivedb import rollback_steps

STATUS = """current: 0003 (head)
pending: 0
  applied  0001  Core tables.
  applied  0002  Indexes for the hot paths.
  applied  0003  Something later.
"""


def test_the_naive_schema_rolls_back_everything_after_the_core_tables() -> None:
    assert rollback_steps(STATUS) == 2
    assert rollback_steps(STATUS.replace("  applied  0003  Something later.\n", "")) == 1


def test_a_database_without_the_core_tables_is_refused() -> None:
    with pytest.raises(ValueError, match="0001"):
        rollback_steps("current: none (empty database)\npending: 2\n  pending  0001  Core\n")
