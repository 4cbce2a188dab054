"""The in-process instrument behind limiter_cost and access_log_cost, run for real (the service's
own protocol and app in a subprocess) on small batches."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from labkit import inproc, setups

from tests.factories import ADMIN_TOKEN, STAFF_KEY


def services(tmp_path: Path) -> dict[str, SimpleNamespace]:
    base = {"APP_ENV": "test", "STAFF_API_KEYS": STAFF_KEY, "ADMIN_TOKEN": ADMIN_TOKEN}
    return {
        name: SimpleNamespace(
            env={**base, **setups.production(**change), "JSON_DATA_PATH": str(tmp_path / name)}
        )
        for name, change in {"production": {}, **setups.TARGETED_LAYERS}.items()
    }


def test_every_configuration_gets_one_sample_per_round_and_a_layer_s_cost_is_their_difference(
    tmp_path: Path,
) -> None:
    found = inproc.run(
        services(tmp_path), "/v1/stores", {}, rounds=3, batch=40, work=tmp_path / "inproc"
    )

    assert set(found) == {"production", *setups.TARGETED_LAYERS}
    assert all(len(v) == 3 and all(x > 0 for x in v) for v in found.values())
    assert len(inproc.differences(found, "production", "rate limiter (off)")) == 3
    # The access lines of the production configuration went to a real file.
    lines = (tmp_path / "inproc" / "inproc-access.log").read_text().splitlines()
    assert sum('"route":"/v1/stores"' in line for line in lines) >= 2 * (3 + 1) * 40 // 4


def test_a_configuration_that_does_not_answer_200_is_an_error_not_a_sample(
    tmp_path: Path,
) -> None:
    with pytest.raises(RuntimeError, match="answered"):
        inproc.run(
            services(tmp_path), "/v1/nothing-here", {}, rounds=1, batch=8, work=tmp_path / "x"
        )
