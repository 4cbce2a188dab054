"""The deploy drill: a rolling deploy, a rollback and a data rollback under load, behind a real
reverse proxy, measured the way railway.json deploys the service.

- A *release* is a commit's source (`git archive`) with its own virtualenv, installed from the
  package cache as the Dockerfile does (`uv sync --locked --no-default-groups --no-editable`).
- A *deploy* of a release into a proxy slot: build (or, for a rollback, verify the kept
  environment), `pickup db migrate` (railway.json's preDeployCommand), `pickup serve`, wait for
  `/readyz` 200 (the health check), switch the slot in at HAProxy, both serve for the overlap,
  drain the old slot until nothing is in flight, put it in maintenance, SIGTERM the old process
  and give it the draining time before SIGKILL.
- The load is the customer mix of loadtests/ through the proxy, as a Locust subprocess that
  records every acknowledged order (labkit/locustfiles/deploy_load.py).

The pure parts (goals and verdicts, the docs table, consistency, lost orders, availability) are
unit-tested in tests/unit/lab/test_deploy_drill.py; the rest starts real processes, every one of them
stopped by the ExitStack of the function that started it, even when a step fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from labkit import checks
from labkit.checks import Check
from labkit.load import locust_command
from labkit.procs import (
    BIN,
    LAB_ADMIN_TOKEN,
    LAB_METRICS_TOKEN,
    LAB_STAFF_KEY,
    FakeOpenAI,
    Process,
    RedisServer,
    base_env,
    free_port,
    postgres_available,
    redis_available,
    wait_http,
)

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "bin" / "uv"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfiles" / "deploy_load.py"
SECTION = "deploy"

# -- goals: declared once, judged on every sample --------------------------------------------


DEPLOY_CHECKS = (
    "deploy_availability",
    "deploy_failed_requests",
    "deploy_orders_lost",
    "deploy_time",
    "rollback_time",
    "data_rollback_time",
    "data_rollback_orders_lost",
    "env_consistency",
)
GOALS: dict[str, Check] = {id: checks.check(id) for id in DEPLOY_CHECKS}  # declared in checks.py


@dataclass
class Outcome:
    """What one goal measured: its samples (an empty list is "not measured", never a pass)."""

    goal: Check
    samples: list[float] = field(default_factory=list)
    reason: str | None = None  # why it was not measured
    detail: str = ""

    def entry(self) -> dict[str, Any]:
        """The summary entry: samples, median, 95 % interval and verdict (lab's checks)."""
        return checks.evaluate(self.goal, self.samples, reason=self.reason, detail=self.detail)

    @property
    def verdict(self) -> str:
        return str(self.entry()["verdict"])


def record(section: Any, outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """Each outcome into the section's results (`Section.record`); returns the entries."""
    return [
        section.record(o.goal.id, list(o.samples), reason=o.reason, detail=o.detail)
        for o in outcomes
    ]


# -- pure helpers ---------------------------------------------------------------------------


def availability(requests: int, failures: int) -> float | None:
    """Share of requests answered correctly, in %; None when nothing was sent."""
    return 100 * (requests - failures) / requests if requests else None


def lost_orders(acknowledged: Iterable[str], present: Iterable[str]) -> list[str]:
    """Acknowledged order ids that are not present (sorted, each once)."""
    have = set(present)
    return sorted({a for a in acknowledged if a not in have})


def locust_totals(stats: Any) -> tuple[int, int]:
    entries = stats if isinstance(stats, list) else stats.get("stats", [])
    return sum(e["num_requests"] for e in entries), sum(e["num_failures"] for e in entries)


PROFILES_HEADING = "Example values per environment"


def parse_values_table(markdown: str, heading: str = PROFILES_HEADING) -> dict[str, dict[str, str]]:
    """The table under `heading`: | key | profile 1 | profile 2 | ... | -> {profile: {KEY: value}}.

    Cells are `code` or bare; an empty cell or a dash means the profile leaves the key unset.
    """
    section = markdown.split(f"## {heading}", 1)
    if len(section) < 2:
        raise ValueError(f"no '## {heading}' section")
    rows = []
    for line in section[1].splitlines():
        if line.startswith("## "):
            break
        if line.strip().startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    if len(rows) < 3:
        raise ValueError(f"the '{heading}' table has no rows")
    header, body = rows[0], rows[2:]
    profiles = [h.strip("*") for h in header[1:]]
    table: dict[str, dict[str, str]] = {p: {} for p in profiles}
    for row in body:
        key = row[0].strip("`")
        for profile, cell in zip(profiles, row[1:], strict=False):
            value = cell.strip()
            if value.startswith("`") and value.endswith("`"):
                value = value[1:-1]
            if value and value not in ("-", "–", "—"):
                table[profile][key] = value
    return table


SECRET_MARK = "<secret>"


def fill_secrets(
    values: Mapping[str, str], make: Callable[[], str] | None = None
) -> dict[str, str]:
    """Replace each `<secret>` in a value by a generated secret (each occurrence its own)."""
    make = make or (lambda: secrets.token_urlsafe(24))
    return {k: re.sub(re.escape(SECRET_MARK), lambda _: make(), v) for k, v in values.items()}


@dataclass
class ProfileCheck:
    profile: str
    ok: bool
    effective: dict[str, Any]  # `config check`'s JSON (secrets shown as set/unset)
    problems: str  # what `config check` refused, or ""


def _same(documented: str, effective: Any) -> bool:
    if effective in ("set", "unset"):
        return (effective == "set") == bool(documented)
    if isinstance(effective, bool):
        return documented.lower() in (("true", "1", "yes") if effective else ("false", "0", "no"))
    return str(effective) == documented


def consistency(
    table: Mapping[str, Mapping[str, str]], checks: Mapping[str, ProfileCheck], known: set[str]
) -> tuple[float | None, list[dict[str, Any]]]:
    """Share (%) of the documented keys that are consistent, and one row per key.

    A key is consistent when Settings knows it, every profile documents a value for it, and in
    every profile `pickup config check` accepted the configuration without naming the key and
    reads back the documented value (secrets: that it is set).
    """
    keys = sorted({k for values in table.values() for k in values})
    rows = []
    for key in keys:
        why = []
        if key.lower() not in known:
            why.append("not a Settings key (ignored)")
        for profile, values in table.items():
            check = checks[profile]
            if key not in values:
                why.append(f"{profile}: no value")
            elif re.search(rf"\b{re.escape(key)}\b", check.problems):
                why.append(f"{profile}: refused")
            elif not check.ok:
                why.append(f"{profile}: configuration refused")
            elif key.lower() not in check.effective:
                why.append(f"{profile}: config check does not show it")
            elif not _same(values[key], check.effective[key.lower()]):
                why.append(f"{profile}: reads back {check.effective[key.lower()]!r}")
        rows.append({"key": key, "consistent": not why, "why": "; ".join(why)})
    share = 100 * sum(r["consistent"] for r in rows) / len(rows) if rows else None
    return share, rows


def config_check(pickup: Path, values: Mapping[str, str], profile: str) -> ProfileCheck:
    """`pickup config check` with exactly these variables, in an empty folder (no .env)."""
    with tempfile.TemporaryDirectory(prefix="lab-config-") as cwd:
        run = subprocess.run(
            [str(pickup), "config", "check"],
            env=base_env(**values),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
    effective: dict[str, Any] = {}
    if run.returncode == 0:
        effective = json.JSONDecoder().raw_decode(run.stdout.lstrip())[0]
    return ProfileCheck(profile, run.returncode == 0, effective, run.stderr.strip())


def known_settings_keys(pickup: Path) -> set[str]:
    """Every Settings key, from the generated docs (`pickup config docs`)."""
    run = subprocess.run(
        [str(pickup), "config", "docs"], capture_output=True, text=True, timeout=60, check=True
    )
    return {m.lower() for m in re.findall(r"^\| `([A-Z0-9_]+)` \|", run.stdout, flags=re.M)}


def environment_consistency(
    docs: Path = ROOT / "docs" / "DEPLOY.md", pickup: Path = BIN / "pickup"
) -> tuple[float | None, list[dict[str, Any]], dict[str, ProfileCheck]]:
    table = parse_values_table(docs.read_text())
    checks = {p: config_check(pickup, fill_secrets(v), p) for p, v in table.items()}
    share, rows = consistency(table, checks, known_settings_keys(pickup))
    return share, rows, checks


# -- releases and instances -----------------------------------------------------------------


@dataclass
class Release:
    """One version of the service: its source and its own virtualenv."""

    label: str
    ref: str
    commit: str
    home: Path
    build_s: float = 0.0

    @property
    def pickup(self) -> Path:
        return self.home / "venv" / "bin" / "pickup"

    def install(self) -> float:
        """The locked runtime set into this release's venv, offline from the package cache, as
        the Dockerfile's build stage does. Files are hard-linked from uv's cache (uv's default on
        Linux) rather than copied and precompiled as in the image: on this machine's discard-
        mounted disk, deleting three copied venvs takes minutes. Returns the seconds it took."""
        started = time.monotonic()
        run = subprocess.run(
            [
                str(UV),
                "sync",
                "--locked",
                "--no-default-groups",
                "--no-editable",
                "--offline",
                "--quiet",
            ],
            cwd=self.home / "src",
            env=base_env(UV_PROJECT_ENVIRONMENT=self.home / "venv", UV_LINK_MODE="hardlink"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if run.returncode != 0:
            raise RuntimeError(f"uv sync for {self.label} failed: {run.stderr.strip()[-1500:]}")
        return time.monotonic() - started


def uv_available() -> str | None:
    return None if UV.exists() else f"{UV} is missing (make install bootstraps it)"


def checkout(ref: str, home: Path, label: str) -> Release:
    """The commit's source as a deploy builds it (service/, pyproject.toml, uv.lock, README.md)."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{ref}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    src = home / "src"
    src.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", commit, "service", "pyproject.toml", "uv.lock", "README.md"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    return Release(label, ref, commit, home)


def choose_previous(
    candidates: Sequence[str], tree: Callable[[str, str], str | None], head: str = "HEAD"
) -> str:
    """The version a deploy replaces: the newest earlier commit whose service/ differs from
    `head`'s (a real other version) but whose migrations are the same (so the rollback's
    `pickup db migrate` has nothing it does not know); `head` itself when there is none."""
    for commit in candidates:
        if tree(commit, "service") != tree(head, "service") and tree(
            commit, "service/migrations"
        ) == tree(head, "service/migrations"):
            return commit
    return head


def resolve_previous(ref: str, new_ref: str = "HEAD", depth: int = 30) -> str:
    """`auto` -> choose_previous over the last `depth` first-parent commits; else `ref`."""
    if ref != "auto":
        return ref

    def tree(commit: str, path: str) -> str | None:
        run = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{commit}:{path}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        return run.stdout.strip() or None

    listed = subprocess.run(
        ["git", "rev-list", "--first-parent", f"--max-count={depth}", f"{new_ref}~1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return choose_previous(listed.stdout.split(), tree, new_ref)


class Instance(Process):
    """`pickup serve` of one release, in one proxy slot."""

    def __init__(
        self, release: Release, slot: str, port: int, settings: Mapping[str, Any], workdir: Path
    ) -> None:
        self.release, self.slot, self.port = release, slot, port
        self.url = f"http://127.0.0.1:{port}"
        home = workdir / f"{release.label}-{slot}-{port}-{time.monotonic_ns()}"
        home.mkdir(parents=True, exist_ok=True)
        env = base_env(**{"JSON_DATA_PATH": home / "pickup.json", **settings, "PORT": port})
        super().__init__([str(release.pickup), "serve"], env, home, home / "service.log")

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until `/readyz` answers 200 (railway.json's healthcheckTimeout is 120 s)."""
        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-1500:]
                    raise RuntimeError(
                        f"{self.release.label} exited {self.process.returncode}: {tail}"
                    )
                try:
                    if client.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise TimeoutError(f"{self.release.label}: /readyz not 200 within {timeout}s")

    def terminate(self, draining_s: float) -> tuple[float, int | None]:
        """SIGTERM, then SIGKILL after `draining_s`; returns (seconds to exit, exit code)."""
        if self.process is None or self.process.poll() is not None:
            return 0.0, None if self.process is None else self.process.returncode
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            code: int | None = self.process.wait(draining_s)
        except subprocess.TimeoutExpired:
            self.kill()
            code = None
        return time.monotonic() - started, code


def pickup_cli(
    release: Release, args: Sequence[str], settings: Mapping[str, Any], cwd: Path
) -> str:
    run = subprocess.run(
        [str(release.pickup), *args],
        env=base_env(**settings),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if run.returncode != 0:
        raise RuntimeError(
            f"pickup {' '.join(args)} exited {run.returncode}: {run.stderr.strip()[-1500:]}"
        )
    return run.stdout.strip()


# -- the load -------------------------------------------------------------------------------


class Load:
    """Locust's customer mix through the proxy, in the background, until `stop()` (with a time
    cap, so it always ends by itself)."""

    def __init__(self, host: str, out_dir: Path, *, users: int, cap_s: float) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.record_path = out_dir / "record.json"
        self.args = locust_command(
            LOCUSTFILE, host, out_dir, users=users, spawn_rate=users, seconds=cap_s
        )
        self.args += ["--staff-key", LAB_STAFF_KEY, "--deploy-record", str(self.record_path)]
        self.process = Process(self.args, base_env(), ROOT / "loadtests", out_dir / "locust.log")
        self.started = 0.0

    def start(self) -> Load:
        self.process.start()
        self.started = time.monotonic()
        return self

    def stop(self) -> dict[str, Any]:
        """SIGTERM (Locust then writes its reports) and read what it recorded."""
        proc = self.process.process
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.stop()
        stats_path = self.out_dir / "locust.json"
        if not stats_path.exists() or not self.record_path.exists():
            log = (self.out_dir / "locust.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"Locust wrote no results: {log}")
        requests, failures = locust_totals(json.loads(stats_path.read_text()))
        record = json.loads(self.record_path.read_text())
        failures_csv = self.out_dir / "locust_failures.csv"
        return {
            "requests": requests,
            "failures": failures,
            "acknowledged": record["acknowledged"],
            "timeline": record["timeline"],
            "failure_lines": failures_csv.read_text().splitlines()[1:]
            if failures_csv.exists()
            else [],
        }


# -- the drill ------------------------------------------------------------------------------


@dataclass
class Switch:
    """One deploy (or rollback) of a release into a slot, with its phase times in seconds."""

    kind: str  # deploy | rollback | data-rollback
    release: str
    commit: str
    slot: str
    started_at: float  # seconds since the load started
    phases: dict[str, float] = field(default_factory=dict)
    serving_s: float | None = None  # start -> new version serving through the proxy
    old_exit_s: float | None = None  # SIGTERM -> old process gone
    old_exit_code: int | None = None
    sigterm_at: float | None = None  # seconds since the load started


@dataclass
class DrillConfig:
    users: int
    overlap_s: float  # both versions serve (railway.json overlapSeconds)
    draining_s: float  # SIGTERM -> SIGKILL (railway.json drainingSeconds)
    steady_s: float  # load before the first and after the last switch
    rounds: int  # deploy + rollback pairs
    previous_ref: str = "HEAD"
    new_ref: str = "HEAD"

    @classmethod
    def for_profile(
        cls, profile: str, previous_ref: str = "HEAD", new_ref: str = "HEAD"
    ) -> DrillConfig:
        if profile == "quick":
            return cls(6, 1.0, 30.0, 2.0, 1, previous_ref, new_ref)
        return cls(12, 5.0, 30.0, 4.0, 3, previous_ref, new_ref)


@dataclass
class DrillResult:
    config: DrillConfig
    switches: list[Switch] = field(default_factory=list)
    requests: int = 0
    failures: int = 0
    acknowledged: list[dict[str, str]] = field(default_factory=list)
    lost_in_postgres: list[str] = field(default_factory=list)
    lost_after_data_rollback: list[str] = field(default_factory=list)
    export_is_data_file: bool | None = None
    export_orders: int | None = None
    timeline: list[dict[str, int]] = field(default_factory=list)
    failure_lines: list[str] = field(default_factory=list)
    proxy_stats: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)  # each instance's (PostgreSQL)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["acknowledged"] = len(self.acknowledged)
        return data


def unavailable() -> str | None:
    """Why the drill cannot run on this machine, or None."""
    from labkit.proxy import haproxy_available

    for why in (haproxy_available(), uv_available(), postgres_available(), redis_available()):
        if why:
            return why
    return None


def instance_settings(database_url: str, redis_url: str, openai_url: str) -> dict[str, str]:
    """The production shape: APP_ENV=production, PostgreSQL, Redis, behind one trusted proxy."""
    return {
        "APP_ENV": "production",
        "HOST": "127.0.0.1",
        "PORT": "8080",  # each instance gets its own; the CLI steps need one, as Railway injects
        "WEB_CONCURRENCY": "1",
        "DATA_BACKEND": "postgres",
        "DATABASE_URL": database_url,
        "DB_POOL_MAX": "5",
        "REDIS_URL": redis_url,
        "STAFF_API_KEYS": LAB_STAFF_KEY,
        "ADMIN_TOKEN": LAB_ADMIN_TOKEN,
        "METRICS_TOKEN": LAB_METRICS_TOKEN,  # /metrics is never anonymous in production
        "OPENAI_API_KEY": "sk-lab-fake-upstream",
        "OPENAI_BASE_URL": f"{openai_url}/v1",
        "TRUST_PROXY": "1",
        "SEED_DEMO_DATA": "false",
        "RATE_LIMIT_ENABLED": "false",  # one load generator is every client: see loadtests/README
        "ACCESS_LOG": "false",
        "LOG_LEVEL": "warning",
    }


def run_drill(work: Path, config: DrillConfig, log: Callable[[str], None] = print) -> DrillResult:
    """The whole drill; everything it starts is stopped, and its database dropped, on any exit."""
    from labkit.databases import LabDatabase
    from labkit.proxy import HAProxy, describe

    result = DrillResult(config)
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        # The upstream stand-in boots and the release already in production is built while
        # its database is prepared (each takes seconds of CPU on a busy machine).
        fake = FakeOpenAI(work)
        fake.spawn()
        stack.callback(fake.stop)
        previous = checkout(config.previous_ref, work / "release-previous", "previous")
        build = pool.submit(previous.install)
        db = LabDatabase("deploy")
        db.create(seed=["--stores", "5", "--items-per-store", "20", "--orders", "100"])
        stack.callback(db.drop)
        redis = RedisServer(work).start()
        stack.callback(redis.stop)
        wait_http(f"{fake.url}/_control", timeout=120, process=fake)
        settings = result.settings = instance_settings(db.url, redis.url, fake.url)
        previous.build_s = build.result()
        log(f"previous release {previous.commit[:10]} built in {previous.build_s:.1f}s")

        slots = {"a": free_port(), "b": free_port()}
        proxy = HAProxy(work, slots).start()
        stack.callback(proxy.stop)
        live: dict[str, Instance] = {}

        def stop_live() -> None:
            for inst in live.values():
                inst.stop()

        stack.callback(stop_live)
        # The version already in production: started, healthy, in slot a.
        first = Instance(previous, "a", slots["a"], settings, work).start()
        live["a"] = first
        first.wait_ready()
        proxy.set_state("a", "ready")
        proxy.wait_served_by("a")

        load = Load(proxy.url, work / "load", users=config.users, cap_s=900).start()
        stack.callback(load.process.stop)
        t0 = load.started

        def switch(
            kind: str,
            release: Release,
            prepare: tuple[str, Callable[[], float]],
            release_settings: Mapping[str, Any],
        ) -> Switch:
            new_slot = "b" if "a" in live else "a"
            (old_slot,) = live
            started = time.monotonic()
            sw = Switch(kind, release.label, release.commit, new_slot, started - t0)
            sw.phases[prepare[0]] = prepare[1]()
            mark = time.monotonic()
            if release_settings.get("DATA_BACKEND") == "postgres":
                pickup_cli(release, ["db", "migrate"], release_settings, work)
                sw.phases["migrate"] = time.monotonic() - mark
            mark = time.monotonic()
            inst = Instance(release, new_slot, slots[new_slot], release_settings, work).start()
            live[new_slot] = inst
            inst.wait_ready()
            sw.phases["start_to_ready"] = time.monotonic() - mark
            mark = time.monotonic()
            proxy.set_state(new_slot, "ready")
            proxy.wait_served_by(new_slot)
            sw.phases["switch"] = time.monotonic() - mark
            sw.serving_s = time.monotonic() - started
            log(f"{kind}: {release.label} serving in slot {new_slot} after {sw.serving_s:.1f}s")
            time.sleep(config.overlap_s)  # both versions serve, as Railway's overlap
            proxy.set_state(old_slot, "drain")
            sw.phases["drain_wait"] = proxy.wait_idle(old_slot, config.draining_s)
            proxy.set_state(old_slot, "maint")
            sw.sigterm_at = time.monotonic() - t0
            sw.old_exit_s, sw.old_exit_code = live.pop(old_slot).terminate(config.draining_s)
            result.switches.append(sw)
            return sw

        time.sleep(config.steady_s)
        for n in range(config.rounds):
            new = checkout(config.new_ref, work / f"release-new-{n}", f"new-{n}")
            switch("deploy", new, ("uv_sync_fresh_venv", new.install), settings)
            time.sleep(config.steady_s)
            # Back to the kept previous environment (as a platform keeps the previous image):
            # verified against the lock file, not rebuilt.
            switch("rollback", previous, ("uv_sync_verify", previous.install), settings)
            time.sleep(config.steady_s)
        outcome = load.stop()
        result.requests, result.failures = outcome["requests"], outcome["failures"]
        result.acknowledged, result.timeline = outcome["acknowledged"], outcome["timeline"]
        result.failure_lines = outcome["failure_lines"]
        for item in result.timeline:
            item["t"] -= round(time.time() - (time.monotonic() - t0))
        acked = [a["id"] for a in result.acknowledged]
        present = _order_ids(db.url)
        result.lost_in_postgres = lost_orders(acked, present)
        log(
            f"load: {result.requests} requests, {result.failures} failed, {len(acked)} orders acknowledged"
        )

        # Data rollback off PostgreSQL: writes have stopped (the load is over), export, import
        # into the JSON backend's data file, start on DATA_BACKEND=json, switch.
        json_home = work / "json-backend"
        json_home.mkdir()
        backup, data_file = json_home / "backup.json", json_home / "pickup.json"
        json_settings = {
            **{k: v for k, v in settings.items() if k != "DATABASE_URL"},
            "DATA_BACKEND": "json",
            "JSON_DATA_PATH": str(data_file),
        }

        def export_and_import() -> float:
            started = time.monotonic()
            pickup_cli(previous, ["data", "export", str(backup)], settings, json_home)
            pickup_cli(previous, ["data", "import", str(backup)], json_settings, json_home)
            return time.monotonic() - started

        sw = switch("data-rollback", previous, ("export_import", export_and_import), json_settings)
        # Is the export itself a JSON-backend data file? Read it as one.
        as_data = subprocess.run(
            [str(previous.pickup), "data", "export", str(json_home / "reread.json")],
            env=base_env(**{**json_settings, "JSON_DATA_PATH": str(backup)}),
            cwd=json_home,
            capture_output=True,
            text=True,
            timeout=120,
        )
        result.export_is_data_file = as_data.returncode == 0
        orders = re.search(r"(\d+) orders", as_data.stdout)
        result.export_orders = int(orders.group(1)) if orders else None
        result.lost_after_data_rollback = _lost_via_http(proxy.url, result.acknowledged)
        log(f"data rollback: JSON backend serving after {sw.serving_s:.1f}s")
        result.proxy_stats = describe(proxy.stat())
    return result


def _order_ids(dsn: str) -> list[str]:
    from harness.postgres import fetch, run_sync

    return [str(row["id"]) for row in run_sync(fetch(dsn, "SELECT id FROM orders"))]


def _lost_via_http(base_url: str, acknowledged: Sequence[Mapping[str, str]]) -> list[str]:
    """Acknowledged orders the service no longer finds (GET with the customer's order token)."""
    lost = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for order in acknowledged:
            resp = client.get(
                f"/v1/orders/{order['id']}", headers={"X-Order-Token": order["token"]}
            )
            if resp.status_code != 200 or resp.json().get("id") != order["id"]:
                lost.append(order["id"])
    return sorted(lost)


def outcomes(
    result: DrillResult | None,
    reason: str | None,
    env_share: float | None,
    env_reason: str | None,
    env_detail: str = "",
) -> list[Outcome]:
    """The section's targets from one drill (None with a reason when it could not run)."""
    g = GOALS

    def one(goal: Check, value: float | None, detail: str = "") -> Outcome:
        why = reason or (None if value is not None else "empty sample: nothing was measured")
        return Outcome(goal, [] if value is None or reason else [float(value)], why, detail)

    env = Outcome(
        g["env_consistency"], [] if env_share is None else [env_share], env_reason, env_detail
    )
    if env_share is None and env_reason is None:
        env.reason = "empty sample: nothing was measured"
    if result is None:
        return [one(goal, None) for goal in g.values() if goal.id != "env_consistency"] + [env]
    acked = len(result.acknowledged)
    sent = f"{result.failures} failed of {result.requests} requests"
    kinds = {
        k: [s.serving_s for s in result.switches if s.kind == k and s.serving_s is not None]
        for k in ("deploy", "rollback", "data-rollback")
    }

    def timed(goal: Check, kind: str) -> Outcome:
        samples = [float(v) for v in kinds[kind]]
        phases = "; ".join(
            ", ".join(f"{k} {v:.1f}s" for k, v in s.phases.items())
            for s in result.switches
            if s.kind == kind
        )
        return Outcome(
            goal, samples, None if samples else "empty sample: no switch completed", phases
        )

    no_orders = "no order was acknowledged, so none could be lost" if acked == 0 else None
    return [
        one(g["deploy_availability"], availability(result.requests, result.failures), sent),
        one(g["deploy_failed_requests"], result.failures if result.requests else None, sent),
        Outcome(
            g["deploy_orders_lost"],
            [] if no_orders else [float(len(result.lost_in_postgres))],
            no_orders,
            f"{acked} acknowledged; missing: {result.lost_in_postgres[:5]}",
        ),
        timed(g["deploy_time"], "deploy"),
        timed(g["rollback_time"], "rollback"),
        timed(g["data_rollback_time"], "data-rollback"),
        Outcome(
            g["data_rollback_orders_lost"],
            [] if no_orders else [float(len(result.lost_after_data_rollback))],
            no_orders,
            f"{acked} acknowledged; missing: {result.lost_after_data_rollback[:5]}; "
            f"export readable as a JSON data file: {result.export_is_data_file}",
        ),
        env,
    ]


# -- what the notebook shows ----------------------------------------------------------------


def switch_rows(result: DrillResult) -> list[dict[str, Any]]:
    """One row per switch: when, which version, each phase and the old instance's exit."""
    return [
        {
            "kind": s.kind,
            "release": f"{s.release} ({s.commit[:10]})",
            "slot": s.slot,
            "at_s": round(s.started_at, 1),
            **{k: round(v, 2) for k, v in s.phases.items()},
            "serving_s": None if s.serving_s is None else round(s.serving_s, 2),
            "old_exit_s": None if s.old_exit_s is None else round(s.old_exit_s, 2),
            "old_exit": s.old_exit_code,
        }
        for s in result.switches
    ]


def describe_versions(result: DrillResult) -> str:
    commits = {s.kind: s.commit[:10] for s in result.switches}
    previous, new = commits.get("rollback", "?"), commits.get("deploy", "?")
    if previous == new:
        return f"previous and new version are the same commit {new}, installed into two venvs"
    return f"previous version {previous} ({result.config.previous_ref}), new version {new} ({result.config.new_ref})"


def plot_timeline(result: DrillResult, ax: Any) -> None:
    """Requests per second (answered, failed) through the proxy, with each switch marked."""
    t = [p["t"] for p in result.timeline]
    ax.plot(t, [p["ok"] for p in result.timeline], label="answered/s", color="#4C78A8")
    ax.plot(t, [p["failed"] for p in result.timeline], label="failed/s", color="#E45756")
    colours = {"deploy": "#54A24B", "rollback": "#F58518", "data-rollback": "#B279A2"}
    for s in result.switches:
        end = s.started_at + (s.serving_s or 0)
        ax.axvspan(s.started_at, end, alpha=0.15, color=colours.get(s.kind, "grey"))
        ax.text(s.started_at, ax.get_ylim()[1] * 0.92, s.kind, fontsize=8)
        if s.sigterm_at is not None:
            ax.axvline(s.sigterm_at, color="black", linestyle=":", linewidth=1)
    ax.set_xlabel("seconds since the load started (dotted: old instance sent SIGTERM)")
    ax.set_ylabel("requests/s")
    ax.set_title("load through HAProxy during deploy, rollback and data rollback")
    ax.legend(loc="lower right")


RAW_PATTERNS = ("load/locust*", "haproxy/haproxy.*", "*/service.log", "fake-openai.log")


def keep_raw(work: Path, raw_dir: Path) -> None:
    """Locust's reports, HAProxy's configuration and log, every instance's log: into the report."""
    for pattern in RAW_PATTERNS:
        for path in work.glob(pattern):
            if path.is_file():
                target = raw_dir / path.relative_to(work)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(path.read_bytes())
    for path in raw_dir.rglob("*"):
        if path.is_file() and path.suffix not in (".txt", ".csv", ".html", ".log", ".json"):
            path.rename(path.with_name(path.name + ".txt"))  # the report lists these suffixes


def run_section(
    profile: str, raw_dir: Path, previous_ref: str = "HEAD", new_ref: str = "HEAD"
) -> tuple[DrillResult | None, str | None, list[Outcome], list[dict[str, Any]]]:
    """Environment consistency, then the drill when this machine can run it. Returns the drill
    (or None and why not), the outcomes to record and the consistency rows. The work folder
    (two or three venvs) is deleted afterwards; its logs are kept under `raw_dir`."""
    work = Path(tempfile.mkdtemp(prefix="lab-deploy-"))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # A few CLI calls: checked while the drill runs, to keep the section short.
            consistency_run = pool.submit(environment_consistency)
            reason = unavailable()
            result = None
            if reason is None:
                previous = resolve_previous(previous_ref, new_ref)
                config = DrillConfig.for_profile(profile, previous, new_ref)
                result = run_drill(work, config)
            share, env_rows, profiles = consistency_run.result()
    finally:
        keep_raw(work, raw_dir)
        shutil.rmtree(work, ignore_errors=True)
    refused = {p: c.problems for p, c in profiles.items() if not c.ok}
    env_detail = f"profiles {sorted(profiles)}" + (f"; refused: {refused}" if refused else "")
    return result, reason, outcomes(result, reason, share, None, env_detail), env_rows
