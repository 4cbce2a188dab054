"""The deploy drill's own logic: the documented per-environment values, how consistency and lost
orders are counted, and that nothing unmeasured can pass."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from labkit import checks, deploy
from labkit.deploy import GOALS, DrillResult, Outcome, ProfileCheck, Switch
from labkit.proxy import parse_stat, render_config
from labkit.results import Section

ROOT = Path(__file__).resolve().parents[3]
PICKUP = ROOT / ".venv" / "bin" / "pickup"

TABLE = """# Deploying

## Example values per environment

Text before the table.

| key | local | **Railway** |
|---|---|---|
| `APP_ENV` | `production` | `production` |
| `PORT` | `3001` | `8080` |
| `METRICS_TOKEN` | `<secret>` | — |
| `TRUST_PROXY` | `0` |  |

## Next section

| key | other |
|---|---|
| `NOT_READ` | `x` |
"""


def ok(profile: str, **effective: object) -> ProfileCheck:
    return ProfileCheck(profile, True, effective, "")


def test_the_values_table_is_read_per_profile_and_dashes_or_blanks_are_unset() -> None:
    table = deploy.parse_values_table(TABLE)
    assert table == {
        "local": {
            "APP_ENV": "production",
            "PORT": "3001",
            "METRICS_TOKEN": "<secret>",
            "TRUST_PROXY": "0",
        },
        "Railway": {"APP_ENV": "production", "PORT": "8080"},
    }


def test_a_document_without_the_table_is_an_error_not_an_empty_pass() -> None:
    with pytest.raises(ValueError, match="Example values per environment"):
        deploy.parse_values_table("# Deploying\n\nno table here\n")


def test_the_deploy_guide_documents_one_set_of_keys_for_three_environments() -> None:
    table = deploy.parse_values_table((ROOT / "docs" / "DEPLOY.md").read_text())
    assert len(table) == 3
    key_sets = [set(values) for values in table.values()]
    assert all(keys == key_sets[0] for keys in key_sets)
    assert {"APP_ENV", "DATABASE_URL", "REDIS_URL", "PORT"} <= key_sets[0]
    assert all(values["APP_ENV"] == "production" for values in table.values())


def test_each_secret_placeholder_gets_its_own_generated_value() -> None:
    made = iter(["s1", "s2", "s3"])
    filled = deploy.fill_secrets(
        {"A": "<secret>", "B": "redis://default:<secret>@h:6379", "C": "plain"},
        lambda: next(made),
    )
    assert filled == {"A": "s1", "B": "redis://default:s2@h:6379", "C": "plain"}
    assert "<secret>" not in "".join(deploy.fill_secrets({"X": "<secret><secret>"}).values())


def test_consistency_counts_a_key_only_when_every_profile_sets_it_and_reads_it_back() -> None:
    table = {
        "local": {"APP_ENV": "production", "PORT": "3001", "TYPO_KEY": "1", "TRUST_PROXY": "0"},
        "railway": {"APP_ENV": "production", "PORT": "8080", "TYPO_KEY": "1"},
    }
    checks = {
        "local": ok("local", app_env="production", port=3001, trust_proxy=0),
        "railway": ok("railway", app_env="production", port=3001),
    }
    share, rows = deploy.consistency(table, checks, {"app_env", "port", "trust_proxy"})
    why = {r["key"]: r["why"] for r in rows}
    assert why["APP_ENV"] == ""
    assert "railway: reads back 3001" in why["PORT"]
    assert "not a Settings key" in why["TYPO_KEY"]
    assert "railway: no value" in why["TRUST_PROXY"]
    assert share == 25.0


def test_a_key_config_check_does_not_show_is_not_counted_as_read_back() -> None:
    table = {"p": {"APP_ENV": "production", "PORT": "8080"}}
    share, rows = deploy.consistency(
        table, {"p": ok("p", app_env="production")}, {"app_env", "port"}
    )
    assert {r["key"]: r["why"] for r in rows}["PORT"] == "p: config check does not show it"
    assert share == 50.0


def test_a_refused_configuration_makes_its_keys_inconsistent() -> None:
    table = {"a": {"ADMIN_TOKEN": "short", "APP_ENV": "production"}}
    refused = ProfileCheck(
        "a", False, {}, "invalid configuration:\nADMIN_TOKEN: must be at least 16"
    )
    share, rows = deploy.consistency(table, {"a": refused}, {"admin_token", "app_env"})
    assert {r["key"]: r["why"] for r in rows} == {
        "ADMIN_TOKEN": "a: refused",
        "APP_ENV": "a: configuration refused",
    }
    assert share == 0.0


def test_secrets_and_booleans_read_back_as_config_check_shows_them() -> None:
    table = {"p": {"REDIS_URL": "redis://h:6379/0", "SEED_DEMO_DATA": "false"}}
    checks = {"p": ok("p", redis_url="set", seed_demo_data=False)}
    share, _ = deploy.consistency(table, checks, {"redis_url", "seed_demo_data"})
    assert share == 100.0
    checks = {"p": ok("p", redis_url="unset", seed_demo_data=True)}
    share, _ = deploy.consistency(table, checks, {"redis_url", "seed_demo_data"})
    assert share == 0.0


@pytest.mark.skipif(not PICKUP.exists(), reason="needs `make install`")
def test_the_real_config_check_refuses_a_bad_profile_and_the_key_is_named(tmp_path: Path) -> None:
    table = {
        "good": {"APP_ENV": "production", "DATA_BACKEND": "json", "ADMIN_TOKEN": "<secret>"},
        "bad": {"APP_ENV": "production", "DATA_BACKEND": "json", "ADMIN_TOKEN": "short"},
    }
    required = {
        "PORT": "8080",
        "STAFF_API_KEYS": "<secret>",
        "OPENAI_API_KEY": "<secret>",
        "METRICS_TOKEN": "<secret>",
    }
    checks = {
        p: deploy.config_check(PICKUP, deploy.fill_secrets({**v, **required}), p)
        for p, v in table.items()
    }
    assert checks["good"].ok and checks["good"].effective["admin_token"] == "set"
    assert not checks["bad"].ok and "ADMIN_TOKEN" in checks["bad"].problems
    share, rows = deploy.consistency(table, checks, deploy.known_settings_keys(PICKUP))
    assert {r["key"]: r["consistent"] for r in rows}["ADMIN_TOKEN"] is False
    assert share is not None and share < 100


def test_availability_of_nothing_sent_is_unknown_not_perfect() -> None:
    assert deploy.availability(0, 0) is None
    assert deploy.availability(1000, 1) == pytest.approx(99.9)
    assert deploy.availability(1000, 2) == pytest.approx(99.8)


def test_lost_orders_are_the_acknowledged_ones_missing_each_named_once() -> None:
    assert deploy.lost_orders(["b", "a", "b", "c"], ["a", "x"]) == ["b", "c"]
    assert deploy.lost_orders([], ["a"]) == []


def test_locust_totals_sum_every_request_group() -> None:
    stats = [
        {"name": "/v1/stores", "num_requests": 10, "num_failures": 1},
        {"name": "/v1/orders", "num_requests": 5, "num_failures": 0},
    ]
    assert deploy.locust_totals(stats) == (15, 1)


def test_an_empty_sample_is_not_measured_never_a_pass() -> None:
    assert Outcome(GOALS["deploy_failed_requests"], []).verdict == "not_measured"
    assert Outcome(GOALS["deploy_failed_requests"], [0.0]).verdict == "pass"
    assert Outcome(GOALS["deploy_failed_requests"], [1.0]).verdict == "fail"
    assert Outcome(GOALS["deploy_time"], [30.0], reason="haproxy missing").verdict == (
        "not_measured"
    )


def test_every_deploy_target_is_declared_once_in_the_lab_checks() -> None:
    assert {c.id for c in checks.CHECKS.values() if c.section == "deploy"} == set(GOALS)
    assert GOALS["deploy_availability"].goal == "≥ 99.9%"
    assert GOALS["deploy_time"].goal == "≤ 300 s"
    assert GOALS["rollback_time"].meets(120) and not GOALS["rollback_time"].meets(120.5)
    assert GOALS["deploy_orders_lost"].meets(0) and not GOALS["deploy_orders_lost"].meets(1)


def test_a_drill_that_could_not_run_leaves_every_target_not_measured() -> None:
    found = deploy.outcomes(None, "haproxy is not installed", 100.0, None)
    assert {o.goal.id for o in found} == set(GOALS)
    measured = [o.goal.id for o in found if o.verdict != "not_measured"]
    assert measured == ["env_consistency"]
    assert all(o.reason == "haproxy is not installed" for o in found if o.goal.id not in measured)


def drill(**changes: object) -> DrillResult:
    result = DrillResult(deploy.DrillConfig.for_profile("quick"))
    result.requests, result.failures = 1000, 0
    result.acknowledged = [{"id": "o1", "token": "t1"}, {"id": "o2", "token": "t2"}]
    result.switches = [
        Switch("deploy", "new-0", "c" * 40, "b", 3.0, {"migrate": 1.0}, serving_s=40.0),
        Switch("rollback", "previous", "c" * 40, "a", 50.0, serving_s=20.0),
        Switch("data-rollback", "previous", "c" * 40, "b", 80.0, serving_s=15.0),
    ]
    for name, value in changes.items():
        setattr(result, name, value)
    return result


def test_a_clean_drill_passes_every_target_and_a_lost_order_fails_one() -> None:
    verdicts = {o.goal.id: o.verdict for o in deploy.outcomes(drill(), None, 100.0, None)}
    assert verdicts == dict.fromkeys(GOALS, "pass")
    lost = deploy.outcomes(drill(lost_after_data_rollback=["o2"], failures=3), None, 100.0, None)
    verdicts = {o.goal.id: o.verdict for o in lost}
    assert verdicts["data_rollback_orders_lost"] == "fail"
    assert verdicts["deploy_failed_requests"] == "fail"
    assert verdicts["deploy_availability"] == "fail"  # 997 of 1000 is 99.7 %
    assert verdicts["deploy_time"] == "pass"


def test_no_order_acknowledged_means_lost_orders_were_not_measured() -> None:
    found = {o.goal.id: o for o in deploy.outcomes(drill(acknowledged=[]), None, 100.0, None)}
    assert found["deploy_orders_lost"].verdict == "not_measured"
    assert found["data_rollback_orders_lost"].verdict == "not_measured"


def test_a_switch_that_never_served_leaves_its_time_not_measured() -> None:
    result = drill()
    result.switches = result.switches[:1]
    found = {o.goal.id: o for o in deploy.outcomes(result, None, 100.0, None)}
    assert found["deploy_time"].samples == [40.0]
    assert found["rollback_time"].verdict == "not_measured"


def test_recorded_targets_carry_goal_unit_samples_and_verdict(tmp_path: Path) -> None:
    section = Section("deploy", tmp_path, "quick")
    deploy.record(section, deploy.outcomes(drill(failures=2), None, None, "no docs"))
    saved = json.loads(section.save().read_text())
    by_id = {t["id"]: t for t in saved["targets"]}
    assert set(by_id) == set(GOALS)
    failed = by_id["deploy_failed_requests"]
    assert (failed["verdict"], failed["samples"], failed["median"]) == ("fail", [2.0], 2.0)
    assert by_id["env_consistency"]["verdict"] == "not_measured"
    assert by_id["env_consistency"]["reason"] == "no docs"
    timed = by_id["deploy_time"]
    assert (timed["goal"], timed["unit"], timed["samples"], timed["verdict"]) == (
        "≤ 300 s",
        "s",
        [40.0],
        "pass",
    )


TREES = {
    ("HEAD", "service"): "s3",
    ("HEAD", "service/migrations"): "m2",
    ("c3", "service"): "s3",  # docs-only commit: the same service
    ("c3", "service/migrations"): "m2",
    ("c2", "service"): "s2",  # other service code, same migrations: the previous version
    ("c2", "service/migrations"): "m2",
    ("c1", "service"): "s1",
    ("c1", "service/migrations"): "m1",
}


def test_the_previous_version_is_the_newest_other_service_code_with_the_same_migrations() -> None:
    def tree(commit: str, path: str) -> str | None:
        return TREES.get((commit, path))

    assert deploy.choose_previous(["c3", "c2", "c1"], tree) == "c2"
    assert deploy.choose_previous(["c3", "c1"], tree) == "HEAD"  # c1 lacks a migration
    assert deploy.choose_previous([], tree) == "HEAD"
    assert deploy.resolve_previous("v1.2") == "v1.2"


STAT = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,"
    "wretr,wredis,status,hrsp_2xx,hrsp_5xx\n"
    """edge,FRONTEND,,,0,3,1024,40,0,0,0,0,0,,,,,OPEN,,
app,a,0,0,2,4,,30,0,0,,0,,0,0,1,0,UP,29,0
app,b,0,0,0,1,,10,0,0,,0,,0,0,0,0,MAINT,10,0
app,BACKEND,0,0,2,4,103,40,0,0,0,0,,0,0,1,0,UP,39,0
"""
)


def test_haproxy_stat_rows_are_the_backend_servers_only() -> None:
    servers = parse_stat(STAT)
    assert sorted(servers) == ["a", "b"]
    assert (servers["a"]["status"], servers["a"]["scur"]) == ("UP", "2")
    assert servers["b"]["status"] == "MAINT"
    with pytest.raises(ValueError):
        parse_stat("Unknown command\n")


def test_every_slot_starts_out_of_service_and_responses_name_their_slot(tmp_path: Path) -> None:
    text = render_config(listen_port=18080, socket_path=tmp_path / "s.sock", slots={"a": 1, "b": 2})
    assert "server a 127.0.0.1:1 check disabled" in text
    assert "server b 127.0.0.1:2 check disabled" in text
    assert f"stats socket {tmp_path / 's.sock'} mode 600 level admin" in text
    assert "bind 127.0.0.1:18080" in text
    assert "X-Served-By %s" in text


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed")
def test_haproxy_accepts_the_rendered_configuration(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        render_config(listen_port=18080, socket_path=tmp_path / "s.sock", slots={"a": 1, "b": 2})
    )
    check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
