from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.config import Settings, load_settings
from service.config_keys import env_keys_markdown
from service.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "a-real-secret-value-0123456789"
# Production needs distinct, random-looking issued secrets (admin, staff, metrics).
ADMIN_SECRET = "7f1c9e2ab85d4036be91c4d7a20f8e63"
METRICS_SECRET = "Hq4vN8sLw2pXk7RtZ3mB"
STORE_ID = "7d0c5f64-6a42-4a8b-9a2e-0f1b2c3d4e5f"


def problems(values: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(values)
    return caught.value.problems


def test_development_runs_with_no_configuration_at_all() -> None:
    settings = load_settings({})
    assert (settings.app_env, settings.port, settings.data_backend) == ("development", 3001, "json")


def test_production_names_every_missing_key_at_once() -> None:
    found = problems({"APP_ENV": "production"})
    named = {p.split(":")[0] for p in found}
    # METRICS_TOKEN: /metrics is served by default and must not be anonymous in production.
    assert named == {
        "PORT",
        "DATA_BACKEND",
        "STAFF_API_KEYS",
        "ADMIN_TOKEN",
        "OPENAI_API_KEY",
        "METRICS_TOKEN",
    }


def test_production_reports_invalid_and_missing_keys_together() -> None:
    found = problems({"APP_ENV": "production", "PORT": "eighty", "DATA_BACKEND": "postgres"})
    named = {p.split(":")[0] for p in found}
    assert {"PORT", "DATABASE_URL", "ADMIN_TOKEN", "OPENAI_API_KEY", "STAFF_API_KEYS"} <= named


PRODUCTION = {
    "APP_ENV": "production",
    "PORT": "8080",
    "DATA_BACKEND": "postgres",
    "DATABASE_URL": "postgresql://u:p@db:5432/pickup",
    "STAFF_API_KEYS": GOOD_SECRET,
    "ADMIN_TOKEN": ADMIN_SECRET,
    "METRICS_TOKEN": METRICS_SECRET,
    "OPENAI_API_KEY": "sk-test-0123456789",
}


def test_a_complete_production_configuration_is_accepted() -> None:
    settings = load_settings(PRODUCTION)
    assert settings.port == 8080


WEAK_SECRETS = [
    "aaaaaaaaaaaaaaaa",
    "password12345678",
    "changemechangeme",
    "P@ssw0rd!P@ssw0rd!",
    "qwertyuiopasdfgh",
    "abcdefghijklmnop",
    "1234567890123456",
    "abcabcabcabcabca",
    "1q2w3e4r5t6y7u8i",
    "zaq12wsxcde34rfv",
    "iloveyou12345678",
    "adminadminadmin!",
    "letmeinletmeinletmein",
]


@pytest.mark.parametrize("weak", WEAK_SECRETS)
@pytest.mark.parametrize("key", ["ADMIN_TOKEN", "STAFF_API_KEYS", "METRICS_TOKEN"])
def test_production_refuses_guessable_secrets_without_printing_them(key: str, weak: str) -> None:
    found = problems({**PRODUCTION, key: weak})
    assert [p.split(":")[0] for p in found] == [key]
    assert "guessable" in found[0]
    assert weak not in " ".join(found)


def test_a_weak_store_scoped_staff_key_is_refused_too() -> None:
    keys = f"{GOOD_SECRET},{STORE_ID}:password12345678"
    found = problems({**PRODUCTION, "STAFF_API_KEYS": keys})
    assert [p.split(":")[0] for p in found] == ["STAFF_API_KEYS"]


@pytest.mark.parametrize("secret", [GOOD_SECRET, ADMIN_SECRET, METRICS_SECRET])
def test_random_looking_secrets_pass_the_production_policy(secret: str) -> None:
    assert load_settings({**PRODUCTION, "METRICS_TOKEN": secret}).metrics_token is not None


def test_production_refuses_an_admin_token_that_is_also_a_staff_key() -> None:
    found = problems({**PRODUCTION, "STAFF_API_KEYS": f"{STORE_ID}:{ADMIN_SECRET}"})
    assert [p.split(":")[0] for p in found] == ["ADMIN_TOKEN"]
    assert ADMIN_SECRET not in " ".join(found)


@pytest.mark.parametrize("store", ["store-1", "../x", "12345", STORE_ID[:-1]])
def test_production_refuses_a_staff_key_scoped_to_something_that_is_not_a_store_id(
    store: str,
) -> None:
    found = problems({**PRODUCTION, "STAFF_API_KEYS": f"{GOOD_SECRET},{store}:{METRICS_SECRET}x"})
    assert [p.split(":")[0] for p in found] == ["STAFF_API_KEYS"]
    assert "store" in found[0]


def test_a_store_scope_in_any_uuid_spelling_is_made_canonical() -> None:
    settings = load_settings({**PRODUCTION, "STAFF_API_KEYS": f"{STORE_ID.upper()}:{GOOD_SECRET}"})
    assert settings.staff_keys() == [(STORE_ID, GOOD_SECRET)]


def test_production_requires_a_metrics_token_while_metrics_are_served() -> None:
    without = {k: v for k, v in PRODUCTION.items() if k != "METRICS_TOKEN"}
    assert [p.split(":")[0] for p in problems(without)] == ["METRICS_TOKEN"]
    assert load_settings({**without, "METRICS_ENABLED": "false"}).metrics_token is None


def test_production_refuses_several_workers_without_redis_and_reports_it_with_the_rest() -> None:
    found = problems({**PRODUCTION, "WEB_CONCURRENCY": "4", "ADMIN_TOKEN": "aaaaaaaaaaaaaaaa"})
    assert {p.split(":")[0] for p in found} == {"WEB_CONCURRENCY", "ADMIN_TOKEN"}
    shared = load_settings({**PRODUCTION, "WEB_CONCURRENCY": "4", "REDIS_URL": "redis://r:6379/0"})
    assert shared.warnings() == []


def test_several_workers_without_redis_are_warned_about_outside_production() -> None:
    settings = load_settings({**PRODUCTION, "APP_ENV": "test", "WEB_CONCURRENCY": "4"})
    (warning,) = settings.warnings()
    assert "REDIS_URL" in warning and "stale" in warning


@pytest.mark.parametrize(
    ("key", "value"), [("QUERY_PROFILE", "naive"), ("RESPONSE_ENCODER", "stdlib")]
)
def test_lab_only_switches_are_refused_in_production_and_allowed_elsewhere(
    key: str, value: str
) -> None:
    found = problems({**PRODUCTION, key: value})
    assert [p.split(":")[0] for p in found] == [key]
    assert "refused in production" in found[0]
    assert load_settings({**PRODUCTION, "APP_ENV": "test", key: value}).app_env == "test"


def test_env_keys_doc_is_what_pickup_config_docs_prints() -> None:
    assert (ROOT / "docs" / "env-keys.md").read_text() == env_keys_markdown()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", env_keys_markdown(), flags=re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("key", ["STAFF_API_KEYS", "ADMIN_TOKEN", "OPENAI_API_KEY"])
def test_placeholder_secrets_are_refused_outside_development(key: str) -> None:
    found = problems({"APP_ENV": "test", key: "changeme"})
    assert any(p.startswith(f"{key}:") for p in found)


def test_secret_values_never_appear_in_error_messages() -> None:
    secret = "super-secret-but-too-short"
    with pytest.raises(ConfigError) as caught:
        load_settings(
            {
                "APP_ENV": "production",
                "ADMIN_TOKEN": "x",
                "STAFF_API_KEYS": "short",
                "OPENAI_API_KEY": secret,
                "PORT": secret,
            }
        )
    assert secret not in str(caught.value)
    assert "short" not in str(caught.value).replace("at least", "")


def test_json_backend_refuses_more_than_one_worker() -> None:
    found = problems({"WEB_CONCURRENCY": "2"})
    assert any("one writer" in p for p in found)


def test_postgres_backend_needs_a_database_url() -> None:
    assert any(p.startswith("DATABASE_URL") for p in problems({"DATA_BACKEND": "postgres"}))


def test_empty_values_count_as_unset() -> None:
    assert load_settings({"OPENAI_API_KEY": "", "PORT": ""}).openai_api_key is None


def test_staff_keys_parse_global_and_store_scoped_entries() -> None:
    settings = load_settings({"STAFF_API_KEYS": f"{GOOD_SECRET}, store-1:{GOOD_SECRET}x"})
    assert settings.staff_keys() == [(None, GOOD_SECRET), ("store-1", GOOD_SECRET + "x")]


def test_describe_hides_every_secret() -> None:
    settings = load_settings({"ADMIN_TOKEN": GOOD_SECRET, "STAFF_API_KEYS": GOOD_SECRET})
    shown = settings.describe()
    assert GOOD_SECRET not in str(shown)
    assert shown["admin_token"] == "set" and shown["openai_api_key"] == "unset"


def test_env_example_lists_exactly_the_settings_keys() -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_env_example_values_load_as_a_valid_development_configuration() -> None:
    text = (ROOT / ".env.example").read_text()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.M))
    assert load_settings(values).app_env == "development"


def test_dotenv_file_is_read_when_present(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=4321\nLOG_LEVEL=debug\n")
    settings = load_settings(None, env_file=env_file)
    assert settings.log_level == "debug"


def test_demo_data_loads_by_default_only_outside_production() -> None:
    assert load_settings({}).loads_demo_data
    assert load_settings({"APP_ENV": "test"}).loads_demo_data
    assert not load_settings(PRODUCTION).loads_demo_data
    assert not load_settings({"SEED_DEMO_DATA": "false"}).loads_demo_data
    assert not load_settings({**PRODUCTION, "SEED_DEMO_DATA": "false"}).loads_demo_data


def test_demo_data_is_refused_in_production() -> None:
    found = problems({**PRODUCTION, "SEED_DEMO_DATA": "true"})
    assert [p.split(":")[0] for p in found] == ["SEED_DEMO_DATA"]
