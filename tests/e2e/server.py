"""A real `pickup serve` process on a free port, waited for: the harness's `Service`
(harness/procs.py), under the name these tests have always used."""

from __future__ import annotations

from harness.procs import PICKUP, base_env, free_port
from harness.procs import Service as Server

__all__ = ["PICKUP", "Server", "base_env", "free_port"]
