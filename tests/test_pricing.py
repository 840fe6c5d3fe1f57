"""The price table (CLOUDJOBS_PRICE_TABLE): its format, lookups and clear errors for a bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.models import Spec
from cloudjobs_mcp.server.pricing import PriceTable

CPU = Spec(instance_type="c.large", accelerator="CPU", cpu=4, memory_gb=16)
A10 = Spec(instance_type="g.a10", accelerator="GPU", cpu=8, memory_gb=32, gpu_count=2, gpu_type="NVIDIA A10")
T4 = Spec(instance_type="g.t4", accelerator="GPU", cpu=4, memory_gb=16, gpu_count=1, gpu_type="T4")


def write(tmp_path: Path, body: Any, name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def table(tmp_path: Path, body: Any, name: str = "prices.json") -> PriceTable:
    return PriceTable.from_settings(Settings.from_env({}, price_table=write(tmp_path, body, name)))


def test_a_spec_named_in_the_table_has_its_price_and_the_rest_fall_to_per_resource_rates(tmp_path: Path) -> None:
    rates = {"currency": "usd", "cpu_hour": 0.5, "memory_gb_hour": 0.25, "gpu_hour": {"A10": 3, "*": 2}}
    t = table(tmp_path, {"pai": {"c.large": {"per_hour": 1.25, "currency": "CNY"}, "*": rates}})
    named = t.lookup("pai", CPU)
    assert named is not None and (named.per_worker_hourly, named.currency) == (1.25, "CNY")
    assert "pai.c.large" in named.source and str(tmp_path) in named.source
    per_resource = t.lookup("pai", A10.model_copy(update={"gpu_type": "A10"}))
    assert per_resource is not None and per_resource.currency == "USD"
    assert per_resource.per_worker_hourly == pytest.approx(8 * 0.5 + 32 * 0.25 + 2 * 3)
    default_gpu = t.lookup("pai", T4)
    assert default_gpu is not None and default_gpu.per_worker_hourly == pytest.approx(4 * 0.5 + 16 * 0.25 + 2)
    assert t.lookup("local", CPU) is None  # a provider the table does not name has no price


def test_gpus_are_never_priced_at_zero_by_omission(tmp_path: Path) -> None:
    t = table(tmp_path, {"local": {"*": {"currency": "CNY", "cpu_hour": 0.1}}})
    assert t.lookup("local", T4) is None
    cpu = t.lookup("local", CPU)
    assert cpu is not None and cpu.per_worker_hourly == pytest.approx(0.4)


def test_toml_tables_and_fx_rates_both_ways(tmp_path: Path) -> None:
    text = '[fx_rates]\n"USD/CNY" = 8.0\n\n[pai."c.large"]\nper_hour = 2\ncurrency = "CNY"\n'
    t = table(tmp_path, text, "prices.toml")
    price = t.lookup("pai", CPU)
    assert price is not None and price.per_worker_hourly == 2.0
    assert t.rate("USD", "CNY") == 8.0 and t.rate("CNY", "USD") == 0.125 and t.rate("EUR", "CNY") is None
    assert t.rate("CNY", "CNY") == 1.0


def test_no_table_prices_nothing() -> None:
    t = PriceTable.from_settings(Settings.from_env({}))
    assert t.path is None and t.lookup("pai", CPU) is None and t.rate("USD", "CNY") is None


def test_an_edited_table_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, {"pai": {"c.large": {"per_hour": 1, "currency": "CNY"}}})
    settings = Settings.from_env({}, price_table=path)
    assert PriceTable.from_settings(settings).lookup("pai", CPU).per_worker_hourly == 1.0  # type: ignore[union-attr]
    path.write_text(json.dumps({"pai": {"c.large": {"per_hour": 22.5, "currency": "CNY"}}}))
    assert PriceTable.from_settings(settings).lookup("pai", CPU).per_worker_hourly == 22.5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "name", "problem"),
    [
        ("{not json", "prices.json", "is not valid JSON"),
        ("[pai\nx = 1", "prices.toml", "is not valid TOML"),
        ([1, 2], "prices.json", "top level must be a table"),
        ({"aws": {}}, "prices.json", "unknown provider 'aws' (allowed: local, pai"),
        ({"pai": {"c.large": {"per_hour": -1, "currency": "CNY"}}}, "prices.json", "pai.c.large.per_hour: -1 is not"),
        ({"pai": {"c.large": {"per_hour": 1}}}, "prices.json", "needs exactly per_hour and currency"),
        ({"pai": {"c.large": {"per_hour": 1, "currency": "yuan"}}}, "prices.json", "not a 3-letter currency"),
        ({"pai": {"c.large": 1.5}}, "prices.json", "pai.c.large: must be an object"),
        ({"pai": {"*": {"currency": "CNY"}}}, "prices.json", "needs currency and at least one of"),
        ({"pai": {"*": {"currency": "CNY", "disk_hour": 1}}}, "prices.json", "unknown keys disk_hour"),
        ({"fx_rates": {"USD": 7}}, "prices.json", "'USD' is not a pair"),
        ({"fx_rates": {"USD/CNY": 0}}, "prices.json", "a rate must be above 0"),
    ],
)
def test_a_bad_table_is_a_clear_error_naming_the_file_and_the_problem(
    tmp_path: Path, body: Any, name: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError) as err:
        table(tmp_path, body, name)
    assert str(tmp_path / name) in str(err.value) and problem in str(err.value)
    assert "README" in str(err.value)


def test_a_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as err:
        PriceTable.from_settings(Settings.from_env({"CLOUDJOBS_PRICE_TABLE": str(tmp_path / "none.json")}))
    assert "none.json: cannot read it" in str(err.value)
