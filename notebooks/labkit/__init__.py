"""What the audit notebooks share: starting the processes they compare, driving load with
independent tools, scraping /metrics and recording results. It talks to the service only
through its command line and HTTP, never by importing `service`.

Processes, servers and databases come from the repository's `harness/` package (one harness for
the tests and the lab); the repository root is put on `sys.path` here so the kernels, which run
with cwd=notebooks/, can import it."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
