"""`Session`: the owner of everything the harness starts.

Every process, temporary directory and throwaway database is registered with a session, which
undoes them in reverse order when it closes: at the end of a `with` block, at interpreter exit
(atexit), and, when this process dies without running either (SIGKILL, a killed notebook
kernel), through a reaper: a small stdlib-only child that holds the read end of a pipe. When the
pipe closes, the reaper kills the process groups and drops the databases it was told about.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
REAPER = Path(__file__).with_name("reaper.py")


class Session:
    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._reaper: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None
        self._owner = os.getpid()
        atexit.register(self.close)

    # What the reaper undoes when this process dies before close() ------------------------------

    def _tell(self, line: str) -> None:
        with self._lock:
            if self._owner != os.getpid():  # a forked child does not own the parent's things
                return
            if self._reaper is None or self._reaper.poll() is not None:
                read, self._pipe = os.pipe()
                self._reaper = subprocess.Popen(
                    [sys.executable, str(REAPER)],
                    stdin=read,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C to our terminal does not take it early
                )
                os.close(read)
            assert self._pipe is not None
            with contextlib.suppress(OSError):
                os.write(self._pipe, (line + "\n").encode())

    def guard_group(self, pgid: int) -> None:
        self._tell(f"group {pgid}")

    def release_group(self, pgid: int) -> None:
        self._tell(f"forget-group {pgid}")

    def guard_database(self, admin_dsn: str, name: str) -> None:
        self._tell(f"database {admin_dsn} {name}")

    def release_database(self, admin_dsn: str, name: str) -> None:
        self._tell(f"forget-database {admin_dsn} {name}")

    def guard_path(self, path: Path) -> None:
        self._tell(f"path {path}")

    # What close() undoes ---------------------------------------------------------------------

    def enter(self, context: contextlib.AbstractContextManager[T]) -> T:
        return self._stack.enter_context(context)

    def callback(self, function: Callable[..., Any], *args: Any) -> None:
        self._stack.callback(function, *args)

    def close(self) -> None:
        if self._owner != os.getpid():
            return
        try:
            self._stack.close()
        finally:
            with self._lock:
                if self._pipe is not None:
                    os.write(self._pipe, b"done\n")  # everything was undone: the reaper just exits
                    os.close(self._pipe)
                    self._pipe = None
                if self._reaper is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._reaper.wait(10)
                    self._reaper = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_default: Session | None = None


def session() -> Session:
    """The process-wide session that harness objects register with unless given another."""
    global _default
    if _default is None or _default._owner != os.getpid():
        _default = Session()
    return _default
