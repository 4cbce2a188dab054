from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.config import Settings, load_settings
from service.config_keys import env_keys_markdown
from service.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "a-real-secret-value-0123456789"


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
    assert named == {"PORT", "DATA_BACKEND", "STAFF_API_KEYS", "ADMIN_TOKEN", "OPENAI_API_KEY"}


def test_production_reports_invalid_and_missing_keys_together() -> None:
    found = problems({"APP_ENV": "production", "PORT": "eighty", "DATA_BACKEND": "postgres"})
    named = {p.split(":")[0] for p in found}
    assert {"PORT", "DATABASE_URL", "ADMIN_TOKEN", "OPENAI_API_KEY", "STAFF_API_KEYS"} <= named


def test_a_complete_production_configuration_is_accepted() -> None:
    settings = load_settings(
        {
            "APP_ENV": "production",
            "PORT": "8080",
            "DATA_BACKEND": "postgres",
            "DATABASE_URL": "postgresql://u:p@db:5432/pickup",
            "STAFF_API_KEYS": GOOD_SECRET,
            "ADMIN_TOKEN": GOOD_SECRET,
            "OPENAI_API_KEY": "sk-test-0123456789",
        }
    )
    assert settings.port == 8080


PRODUCTION = {
    "APP_ENV": "production",
    "PORT": "8080",
    "DATA_BACKEND": "postgres",
    "DATABASE_URL": "postgresql://u:p@db:5432/pickup",
    "STAFF_API_KEYS": GOOD_SECRET,
    "ADMIN_TOKEN": GOOD_SECRET,
    "OPENAI_API_KEY": "sk-test-0123456789",
}


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
