"""`make loadtest`: one Locust run that works the first time, its results in their own folder.

Without a host (`-H`/`--host` in the Locust arguments, or `--target`), it starts its own
`pickup serve` on a free loopback port with the *load profile*: the production stack (rate
limiter on and counting, metrics, access log written) with budgets no single generator address
can exhaust, demo data in a throwaway folder and a staff key for every store, which it hands to
Locust. With a host, it drives that server as it is (mind its rate limits: 100 requests per
client per 15 minutes by default).

Writes reports/loadtest/<UTC timestamp>/: locust_stats.csv (and the other CSVs), locust.html,
counters.json, locust.log (the printed summary) and, for its own server, server.log. Prints
Locust's summary table at the end and exits with Locust's status.

    python loadtests/run.py [--target URL] [--workers N] [--master-port P] [-- LOCUST ARGS]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository's harness, which the tests and the lab use too

from harness.procs import Service, base_env  # noqa: E402
from harness.profiles import DEPLOYED_DUTIES  # noqa: E402

BIN = Path(sys.executable).parent
CONFIG = ROOT / "loadtests" / "locust.conf"
STAFF_KEY = "loadtest-staff-key-000000000001"
LOAD_PROFILE = {
    "APP_ENV": "development",
    "HOST": "127.0.0.1",
    **DEPLOYED_DUTIES,
    "STAFF_API_KEYS": STAFF_KEY,
}


def gives_host(args: list[str]) -> bool:
    return any(a in ("-H", "--host") or a.startswith("--host=") for a in args)


def start_server(data: Path) -> Service:
    """`pickup serve` with the load profile on a free port, owned by the harness session (so
    it is stopped when this run ends, however it ends)."""
    env = base_env(**LOAD_PROFILE, JSON_DATA_PATH=data / "pickup.json")
    server: Service = Service(env, data).start()
    return server


def run_locust(command: list[str], log: Path) -> int:
    """Runs Locust, showing and keeping everything it prints (its summary table included)."""
    with log.open("w") as kept:
        process = subprocess.Popen(  # noqa: S603 - Locust with the caller's own arguments
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            sys.stdout.write(line)
            kept.write(line)
        return process.wait()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="", help="URL of a running service (default: own)")
    parser.add_argument("--workers", type=int, default=0, help="distributed: N local workers")
    parser.add_argument("--master-port", type=int, default=5557)
    parser.add_argument("--out", default="", help="results folder (default: a new timestamped one)")
    parser.add_argument("locust_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    extra = [a for a in args.locust_args if a != "--"]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else ROOT / "reports" / "loadtest" / stamp
    out.mkdir(parents=True, exist_ok=True)
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    server = None
    data = Path(tempfile.mkdtemp(prefix="loadtest-data-"))
    try:
        if args.target:
            extra = ["--host", args.target, *extra]
        elif not gives_host(extra):
            server = start_server(data)
            print(
                f"loadtest: started pickup serve at {server.url} with the load profile", flush=True
            )
            extra = ["--host", server.url, *extra]
            if "--staff-key" not in extra:
                extra = ["--staff-key", STAFF_KEY, *extra]
        outputs = [
            "--csv",
            str(out / "locust"),
            "--html",
            str(out / "locust.html"),
            "--counters-file",
            str(out / "counters.json"),
        ]
        locust = [str(BIN / "locust"), "--config", str(CONFIG)]
        workers = []
        if args.workers > 0:
            port = str(args.master_port)
            for _ in range(args.workers):
                workers.append(
                    subprocess.Popen([*locust, "--worker", "--master-port", port], cwd=ROOT)  # noqa: S603
                )
            master = [
                "--master",
                "--master-bind-port",
                port,
                "--expect-workers",
                str(args.workers),
                "--expect-workers-max-wait",
                "30",
            ]
            status = run_locust([*locust, *master, *extra, *outputs], out / "locust.log")
            for worker in workers:
                worker.wait(60)
        else:
            status = run_locust([*locust, *extra, *outputs], out / "locust.log")
    finally:
        if server is not None:
            server.stop()
            shutil.copy(server.log_path, out / "server.log")
        shutil.rmtree(data, ignore_errors=True)
    print(
        f"loadtest: results in {shown}/ (locust_stats.csv, locust.html, counters.json, "
        f"locust.log{', server.log' if server is not None else ''}); Locust exited {status}"
    )
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
