"""Several providers in one server: local and pai (on the PAI sandbox, over loopback) side by side (and
modelarts, on the sandbox's ModelArts face, for compare_offers),
driven through a real MCP client. Settings, routing by job id, merged listings, compare_offers, and
the cost gate's provider binding and "price unknown" rule."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from cloudjobs_mcp.server import offers
from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.errors import ConfigurationError
from cloudjobs_mcp.server.jobindex import JobIndex
from cloudjobs_mcp.server.providers.local import LocalProvider
from cloudjobs_mcp.server.providers.modelarts.provider import ModelArtsProvider
from cloudjobs_mcp.server.providers.pai.provider import PaiProvider
from cloudjobs_mcp.server.sandbox import RunningSandbox, SandboxSettings
from cloudjobs_mcp.server.sandbox.modelarts.app import ModelArtsSandbox
from cloudjobs_mcp.server.sandbox.modelarts.runner import serve_modelarts
from tests.conftest import Asker, call, call_error, connect, create_args, make_settings, qargs, wait_done
from tests.sandbox_fixtures import (
    FAST_POLICY,
    fast_sleep,
    loopback_client,
    pai_provider,
    pai_settings,
    running_sandbox,
    status_of,
    until,
)

pytestmark = pytest.mark.anyio

PY = shlex.quote(sys.executable)
QUICK = PY + " -c " + shlex.quote("print('hello from a worker')")
SLEEPY = PY + " -c " + shlex.quote("import time; time.sleep(30)")
LOCAL_RATES = {"currency": "USD", "cpu_hour": 0.01, "memory_gb_hour": 0.005}


def price_table(tmp_path: Path, body: dict[str, Any], name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(body))
    return path


@asynccontextmanager
async def multi(
    sandbox: RunningSandbox,
    tmp_path: Path,
    *,
    asker: Asker | None = None,
    pai_env: dict[str, str] | None = None,
    elicit: bool = True,
    **settings: Any,
) -> AsyncIterator[Client]:
    """An MCP client on a server with CLOUDJOBS_PROVIDERS=local,pai (pai on ``sandbox``)."""
    values: dict[str, Any] = {
        "providers": "local,pai",
        "state_dir": tmp_path / "state",
        "local_stop_grace_seconds": 1.0,
    }
    cfg = pai_settings(sandbox, tmp_path, **{**values, **settings})
    async with loopback_client(cfg) as http:
        pai = pai_provider(cfg, sandbox.access_key, http, home=tmp_path / "home")
        if pai_env is not None:  # a pai provider whose credential chain sees only ``pai_env``
            pai = PaiProvider(
                cfg, client=http, env=pai_env, home=tmp_path / "home", policy=FAST_POLICY, sleep=fast_sleep
            )
        server = build_server(cfg, providers={"pai": pai})  # used only where cfg enables pai
        callback = (asker or Asker()) if elicit else None
        async with Client(server, elicitation_callback=callback, cache=None) as client:  # type: ignore[arg-type]
            yield client


async def local_spec(client: Client) -> str:
    specs = await call(client, "list_ecs_specs", {"provider": "local", "sort_by": "CPU", "accelerator_type": "CPU"})
    return specs["specs"][0]["instance_type"]


# -- settings ---------------------------------------------------------------------------------------------
def test_providers_setting_lists_several_and_the_first_is_the_default() -> None:
    s = Settings.from_env({"CLOUDJOBS_PROVIDERS": " pai, local ,pai"})
    assert s.providers == ("pai", "local") and s.provider == "pai"
    assert Settings.from_env({}).providers == ("local",)
    assert Settings.from_env({"CLOUDJOBS_PROVIDER": "pai"}).providers == ("pai",)  # the older alias
    both = Settings.from_env({"CLOUDJOBS_PROVIDER": "pai", "CLOUDJOBS_PROVIDERS": "local"})
    assert both.providers == ("local",) and both.provider == "local"  # CLOUDJOBS_PROVIDERS wins


def test_unknown_provider_names_are_refused_listing_the_allowed_ones() -> None:
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({"CLOUDJOBS_PROVIDERS": "local,aws"})
    assert "CLOUDJOBS_PROVIDERS" in str(err.value) and "'aws'" in str(err.value)
    assert "allowed: local, pai" in str(err.value)


# -- list_providers, list_ecs_specs ------------------------------------------------------------------------
async def test_list_providers_names_credential_sources_and_probes_each_api(tmp_path: Path) -> None:
    async with running_sandbox(tmp_path) as sb, multi(sb, tmp_path) as client:
        states = {p["name"]: p for p in (await call(client, "list_providers"))["providers"]}
    assert list(states) == ["local", "pai"]
    local, pai = states["local"], states["pai"]
    assert local["default"] is True and pai["default"] is False
    assert local["credentials"] == "none needed" and local["api_answered"] is True
    assert pai["label"] == "PAI-DLC" and pai["region"] == "cn-hangzhou" and pai["currency"] == "CNY"
    assert pai["credentials_found"] is True and pai["credentials"] == "environment"
    assert pai["api_answered"] is True and "specs" in pai["api"]
    assert sb.access_key.access_key_secret not in json.dumps(states)


async def test_list_providers_reports_missing_credentials_without_hiding_the_others(tmp_path: Path) -> None:
    env = {"ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}
    async with running_sandbox(tmp_path) as sb, multi(sb, tmp_path, pai_env=env) as client:
        states = {p["name"]: p for p in (await call(client, "list_providers"))["providers"]}
        assert states["local"]["api_answered"] is True
        assert (
            states["pai"]["credentials_found"] is False
            and "No Alibaba Cloud credentials" in states["pai"]["credentials"]
        )
        assert states["pai"]["api_answered"] is False and states["pai"]["api"].startswith("failed:")
        # Every merged listing still shows local and names pai as unavailable.
        specs = await call(client, "list_ecs_specs")
        assert {s["provider"] for s in specs["specs"]} == {"local"} and "pai" in specs["unavailable"]
        jobs = await call(client, "list_jobs")
        assert jobs["jobs"] == [] and "credentials" in jobs["unavailable"]["pai"]


async def test_list_ecs_specs_merges_every_provider_each_row_naming_provider_and_currency(tmp_path: Path) -> None:
    table = price_table(tmp_path, {"local": {"*": LOCAL_RATES}})
    async with running_sandbox(tmp_path) as sb, multi(sb, tmp_path, price_table=table) as client:
        merged = await call(client, "list_ecs_specs", {"limit": 100})
        assert "provider" not in merged and merged.get("unavailable", {}) == {}
        by_provider: dict[str, list[dict[str, Any]]] = {}
        for row in merged["specs"]:
            by_provider.setdefault(row["provider"], []).append(row)
        assert set(by_provider) == {"local", "pai"}
        assert {r["currency"] for r in by_provider["pai"]} == {"CNY"}
        local_row = by_provider["local"][0]
        assert local_row["currency"] == "USD"  # priced by the table's per-resource rates
        expected = local_row["cpu"] * 0.01 + local_row["memory_gb"] * 0.005
        assert local_row["price_per_hour"] == pytest.approx(expected)
        spot = await call(client, "get_spot_price_history", {"instance_type": "ecs.c6.large"})  # found on pai
        assert spot["samples"] > 0 and spot["latest"] is not None
        only_pai = await call(client, "list_ecs_specs", {"provider": "pai"})
        assert only_pai["provider"] == "pai" and {r["provider"] for r in only_pai["specs"]} == {"pai"}
        limited = await call(client, "list_ecs_specs", {"limit": 3})
        assert len(limited["specs"]) == 3 and limited["truncated"] is True
        error = await call_error(client, "list_ecs_specs", {"provider": "aws"})
        assert "Unknown provider 'aws'" in error and "local, pai" in error


# -- compare_offers -----------------------------------------------------------------------------------------
async def test_compare_offers_ranks_within_each_currency_and_converts_only_with_a_configured_rate(
    tmp_path: Path,
) -> None:
    table = price_table(tmp_path, {"local": {"*": LOCAL_RATES}, "fx_rates": {"USD/CNY": 7.0}})
    need = {"min_cpu": 2, "worker_count": 2, "estimated_minutes": 30}  # CI machines have 2 cores
    async with running_sandbox(tmp_path) as sb, multi(sb, tmp_path, price_table=table) as client:
        sb.faults.unpriced("ecs.g6.xlarge")  # listed by ListEcsSpecs, refused by DescribePrice
        apart = await call(client, "compare_offers", need)
        together = await call(client, "compare_offers", {**need, "currency": "CNY"})
        one_provider = await call(client, "compare_offers", {**need, "provider": "pai"})

    offers = apart["offers"]
    assert "ranked_in" not in apart and apart.get("conversions", []) == []
    assert "ranked within each currency" in apart["note"] and "pass currency" in apart["note"]
    priced = [o for o in offers if o.get("job_cost") is not None]
    for currency in ("CNY", "USD"):
        group = [o for o in priced if o["currency"] == currency]
        assert group and [o["rank"] for o in group] == list(range(1, len(group) + 1))
        assert [o["job_cost"] for o in group] == sorted(o["job_cost"] for o in group)
    # Whole-job cost: price × workers × hours (ecs.c6.large: CNY 0.17/hour, the seed's price).
    c6 = next(o for o in offers if o["instance_type"] == "ecs.c6.large")
    assert c6["job_cost"] == pytest.approx(0.17 * 2 * 0.5) and c6["provider"] == "pai" and c6["rank"] == 1
    assert all(o["cpu"] >= 2 for o in offers)
    unpriced = [o for o in offers if o.get("job_cost") is None]
    assert [o["instance_type"] for o in unpriced] == ["ecs.g6.xlarge"] and unpriced[0].get("rank") is None
    assert offers[-1]["instance_type"] == "ecs.g6.xlarge" and unpriced[0]["cost_text"] == "price unknown"

    assert together["ranked_in"] == "CNY" and together["conversions"] == [f"USD→CNY at 7 (fx_rates in {table})"]
    local = [o for o in together["offers"] if o["provider"] == "local"]
    usd = {o["instance_type"]: o for o in priced if o["provider"] == "local"}
    for o in local:
        assert o["currency"] == "CNY" and o["job_cost"] == pytest.approx(usd[o["instance_type"]]["job_cost"] * 7.0)
        assert "converted from USD" in o["cost_text"]
    ranked = [o for o in together["offers"] if o.get("job_cost") is not None]
    assert [o["rank"] for o in ranked] == list(range(1, len(ranked) + 1))
    assert {o["provider"] for o in one_provider["offers"]} == {"pai"}


async def test_compare_offers_across_local_pai_and_modelarts_sandboxes_with_a_price_table(tmp_path: Path) -> None:
    """ModelArts' BSS refuses these credentials (an IAM user without billing rights): its flavors are priced
    by the table, by name or per resource, and a GPU flavor the table has no GPU rate for stays unknown."""
    table = price_table(
        tmp_path,
        {
            "local": {"*": LOCAL_RATES},
            "modelarts": {
                "modelarts.vm.cpu.8u": {"per_hour": 2.0, "currency": "CNY"},
                "*": {"currency": "CNY", "cpu_hour": 0.3, "memory_gb_hour": 0.01},
            },
            "fx_rates": {"USD/CNY": 7.0},
        },
    )
    need = {"min_cpu": 2, "worker_count": 2, "estimated_minutes": 30, "currency": "CNY"}
    face = ModelArtsSandbox(SandboxSettings(state_dir=tmp_path / "ma", region="cn-north-4"), bss_prices=False)
    async with running_sandbox(tmp_path) as sb, serve_modelarts(face) as ma:
        cfg = pai_settings(
            sb,
            tmp_path,
            providers="local,pai,modelarts",
            state_dir=tmp_path / "state",
            price_table=table,
            modelarts_region="cn-north-4",
            modelarts_bss_endpoint=ma.url,
        )
        async with loopback_client(cfg) as http:
            pai = pai_provider(cfg, sb.access_key, http, home=tmp_path / "home")
            modelarts = ModelArtsProvider(
                cfg, client=http, env=ma.huawei_env(), home=tmp_path / "home", policy=FAST_POLICY, sleep=fast_sleep
            )
            server = build_server(cfg, providers={"pai": pai, "modelarts": modelarts})
            async with Client(server, elicitation_callback=Asker(), cache=None) as client:  # type: ignore[arg-type]
                result = await call(client, "compare_offers", need)
                denied = [c for c in ma.sandbox.calls if c.action == "ListOnDemandResourceRatings"]

    offers = result["offers"]
    assert {o["provider"] for o in offers} == {"local", "pai", "modelarts"}
    assert result["ranked_in"] == "CNY" and result["conversions"] == [f"USD→CNY at 7 (fx_rates in {table})"]
    by_name = {(o["provider"], o["instance_type"]): o for o in offers}
    cpu8 = by_name[("modelarts", "modelarts.vm.cpu.8u")]
    assert cpu8["job_cost"] == pytest.approx(2.0 * 2 * 0.5) and "price table" in cpu8["price_source"]
    v100 = by_name[("modelarts", "modelarts.p3.large.public")]
    assert "job_cost" not in v100 and v100["cost_text"] == "price unknown" and "rank" not in v100
    assert ("modelarts", "modelarts.vm.cpu.2u") not in by_name  # one node only: it cannot take 2 workers
    assert [c.code for c in denied] == ["CBC.0151"]  # asked once, refused, never again
    c6 = by_name[("pai", "ecs.c6.large")]
    assert c6["job_cost"] == pytest.approx(0.17 * 2 * 0.5) and c6["currency"] == "CNY"
    ranked = [o for o in offers if "job_cost" in o]
    assert [o["rank"] for o in ranked] == list(range(1, len(ranked) + 1))
    assert [o["job_cost"] for o in ranked] == sorted(o["job_cost"] for o in ranked)
    assert all("job_cost" not in o for o in offers[len(ranked) :])


async def test_compare_offers_never_converts_without_a_rate(tmp_path: Path) -> None:
    table = price_table(tmp_path, {"local": {"*": LOCAL_RATES}})
    async with running_sandbox(tmp_path) as sb, multi(sb, tmp_path, price_table=table) as client:
        result = await call(client, "compare_offers", {"estimated_minutes": 60, "currency": "CNY"})
    assert result.get("conversions", []) == [] and "ranked_in" not in result
    assert {o["currency"] for o in result["offers"] if o["provider"] == "local"} == {"USD"}
    assert "no rate in the price table's fx_rates converts them to CNY" in result["note"]


# -- routing a bare job id ----------------------------------------------------------------------------------
async def test_a_bare_job_id_finds_its_provider_after_a_restart_and_by_asking(tmp_path: Path, state_dir: Path) -> None:
    async with running_sandbox(tmp_path) as sb:
        async with multi(sb, tmp_path) as client:
            q = await call(client, "estimate_cost", qargs("ecs.c6.large"))  # only pai has it: pai is quoted
            assert q["provider"] == "pai"
            pai_job = (await call(client, "create_training_job", create_args("ecs.c6.large", q["quote_id"], QUICK)))[
                "job"
            ]
            spec = await local_spec(client)
            q = await call(client, "estimate_cost", qargs(spec))
            assert q["provider"] == "local"
            local_job = (await call(client, "create_training_job", create_args(spec, q["quote_id"], QUICK)))["job"]
            assert (pai_job["provider"], local_job["provider"]) == ("pai", "local")
        index = JobIndex(tmp_path / "state")
        assert index.get(pai_job["job_id"]) == "pai" and index.get(local_job["job_id"]) == "local"

        async with multi(sb, tmp_path) as client:  # a restarted server: the index routes bare ids
            assert (await call(client, "get_job", {"job_id": local_job["job_id"]}))["provider"] == "local"
            done = await wait_done(client, pai_job["job_id"])
            assert done["outcome"] == "succeeded"
            logs = await call(client, "get_job_logs", {"job_id": local_job["job_id"]})
            assert any("hello from a worker" in line for p in logs["pods"] for line in p["lines"])

        index.forget(pai_job["job_id"])
        async with multi(sb, tmp_path) as client:  # the index lacks it: every provider is asked
            found = await call(client, "get_job", {"job_id": pai_job["job_id"]})
            assert found["provider"] == "pai" and found["job_id"] == pai_job["job_id"]
            assert index.get(pai_job["job_id"]) == "pai"  # and the answer is remembered
            error = await call_error(client, "get_job", {"job_id": "dlc-no-such-job"})
            assert "No job 'dlc-no-such-job' on any enabled provider" in error and "asked local, pai" in error
            listing = await call(client, "list_jobs")
            assert {j["job_id"]: j["provider"] for j in listing["jobs"]} == {
                pai_job["job_id"]: "pai",
                local_job["job_id"]: "local",
            }
            error = await call_error(client, "get_job", {"job_id": pai_job["job_id"], "provider": "nope"})
            assert "Unknown provider 'nope'" in error


# -- the cost gate across providers -------------------------------------------------------------------------
async def test_a_create_goes_to_its_quotes_provider_and_naming_another_is_refused(
    tmp_path: Path, state_dir: Path
) -> None:
    asker = Asker()
    async with running_sandbox(tmp_path) as sb, multi(sb, tmp_path, asker=asker) as client:
        q = await call(client, "estimate_cost", qargs("ecs.c6.large", provider="pai"))
        args = create_args("ecs.c6.large", q["quote_id"], SLEEPY)
        error = await call_error(client, "create_training_job", {**args, "provider": "local"})
        assert "issued for provider pai" in error and "names provider local" in error
        assert asker.questions == []  # refused before anyone was asked
        error = await call_error(client, "estimate_cost", qargs("ecs.c6.large", provider="local"))
        assert "Unknown spec 'ecs.c6.large' on provider local" in error
        created = await call(client, "create_training_job", args)
        job = created["job"]
        assert job["provider"] == "pai" and "PAI-DLC" in asker.questions[0]
        assert await status_of(sb, job["job_id"]) in ("Creating", "Queuing", "Running")
        # A local quote cannot be spent on a pai spec: the quote binds its spec too.
        spec = await local_spec(client)
        local_quote = await call(client, "estimate_cost", qargs(spec, provider="local"))
        error = await call_error(
            client, "create_training_job", create_args("ecs.c6.large", local_quote["quote_id"], QUICK)
        )
        assert "does not match" in error
        stopped = await call(client, "stop_job", {"job_id": job["job_id"]})  # routed to pai by the index
        assert stopped["provider"] == "pai"
        await until(lambda: status_of(sb, job["job_id"]), "Stopped")


async def test_an_unpriced_spec_is_refused_under_a_cap_and_confirmed_in_words_without_one(tmp_path: Path) -> None:
    async with running_sandbox(tmp_path) as sb:
        sb.faults.unpriced("ecs.g6.xlarge")
        async with multi(sb, tmp_path, max_job_cost=1000) as client:
            error = await call_error(client, "estimate_cost", qargs("ecs.g6.xlarge"))
            assert "Price unknown" in error and "CLOUDJOBS_MAX_JOB_COST=1000" in error
        async with multi(sb, tmp_path, max_hourly=1000) as client:
            error = await call_error(client, "estimate_cost", qargs("ecs.g6.xlarge"))
            assert "Price unknown" in error and "CLOUDJOBS_MAX_HOURLY=1000" in error

        asker = Asker()
        async with multi(sb, tmp_path, asker=asker) as client:
            q = await call(client, "estimate_cost", qargs("ecs.g6.xlarge"))
            assert not {"per_worker_hourly", "total_hourly", "worst_case_total"} & set(q)  # unknown: not there
            assert "PRICE UNKNOWN" in q["display_text"] and "Per-worker price: price unknown" in q["display_text"]
            assert "Proceed with creation at an unknown cost?" in q["display_text"]
            assert q["next_step"].startswith("The price is UNKNOWN")
            unconfirmed = await call(client, "estimate_cost", qargs("ecs.g6.xlarge"))

            created = await call(
                client, "create_training_job", create_args("ecs.g6.xlarge", q["quote_id"], QUICK, display_name="u")
            )
            assert created["job"]["provider"] == "pai"
            assert "PRICE UNKNOWN: the cost of this job is not known" in asker.questions[0]

        # A cap set after the quote was issued (a restart with new settings) still refuses it.
        async with multi(sb, tmp_path, max_job_cost=1000) as client:
            error = await call_error(
                client, "create_training_job", create_args("ecs.g6.xlarge", unconfirmed["quote_id"], QUICK)
            )
            assert "Price unknown" in error


async def test_the_price_table_prices_local_over_its_setting(tmp_path: Path) -> None:
    table = price_table(tmp_path, {"local": {"*": LOCAL_RATES}})
    async with (
        running_sandbox(tmp_path) as sb,
        multi(sb, tmp_path, price_table=table, local_price_per_hour=9) as client,
    ):
        spec = await local_spec(client)
        row = (await call(client, "list_ecs_specs", {"provider": "local", "sort_by": "CPU"}))["specs"][0]
        q = await call(client, "estimate_cost", qargs(spec, workers=2, minutes=60, max_minutes=60))
    assert q["currency"] == "USD" and q["per_worker_hourly"] == pytest.approx(row["price_per_hour"])
    assert q["total_hourly"] == pytest.approx(2 * row["price_per_hour"])


async def test_without_elicitation_the_refusal_says_the_price_is_unknown(tmp_path: Path) -> None:
    async with running_sandbox(tmp_path) as sb:
        sb.faults.unpriced("ecs.g6.xlarge")
        async with multi(sb, tmp_path, elicit=False) as client:
            q = await call(client, "estimate_cost", qargs("ecs.g6.xlarge"))
            args = create_args("ecs.g6.xlarge", q["quote_id"], QUICK)
            error = await call_error(client, "create_training_job", args)
            assert "Not confirmed" in error and "PRICE UNKNOWN" in error
            created = await call(client, "create_training_job", {**args, "confirmed": True})
            assert created["confirmation"] == "argument" and created["job"]["provider"] == "pai"


async def test_a_quote_for_a_provider_no_longer_enabled_creates_nothing(tmp_path: Path, state_dir: Path) -> None:
    async with running_sandbox(tmp_path) as sb:
        async with multi(sb, tmp_path) as client:
            q = await call(client, "estimate_cost", qargs("ecs.c6.large"))
        async with multi(sb, tmp_path, providers="local") as client:  # restarted with pai switched off
            error = await call_error(client, "create_training_job", create_args("ecs.c6.large", q["quote_id"], QUICK))
            assert "issued for provider pai, which this server no longer enables (local)" in error
            assert (await call(client, "list_jobs"))["jobs"] == []
        async with multi(sb, tmp_path) as client:
            assert (await call(client, "list_jobs", {"provider": "pai"}))["jobs"] == []  # nothing was made


async def test_cleanup_covers_every_provider_and_reports_the_one_that_failed(tmp_path: Path, state_dir: Path) -> None:
    async with running_sandbox(tmp_path) as sb:
        async with multi(sb, tmp_path) as client:
            spec = await local_spec(client)
            ids = {}
            for name, s in (("pai", "ecs.c6.large"), ("local", spec)):
                q = await call(client, "estimate_cost", qargs(s, provider=name))
                created = await call(client, "create_training_job", create_args(s, q["quote_id"], QUICK))
                ids[name] = created["job"]["job_id"]
                assert (await wait_done(client, ids[name]))["outcome"] == "succeeded"
        index = JobIndex(tmp_path / "state")
        index.forget(ids["pai"])
        async with multi(sb, tmp_path) as client:
            listing = await call(client, "list_jobs", {"status": "Succeeded"})
            assert {j["provider"] for j in listing["jobs"]} == {"pai", "local"}
            assert index.get(ids["pai"]) == "pai"  # a listing remembers what it shows
            dry = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True})
            assert {(a["job_id"], a["provider"], a["action"]) for a in dry["actions"]} == {
                (ids["pai"], "pai", "would_delete"),
                (ids["local"], "local", "would_delete"),
            }
        env = {"ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true"}  # pai now fails: its credentials are gone
        async with multi(sb, tmp_path, pai_env=env) as client:
            done = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True, "dry_run": False})
            assert [(a["job_id"], a["action"]) for a in done["actions"]] == [(ids["local"], "deleted")]
            assert "pai" in done["unavailable"] and "Not cleaned (could not be asked): pai" in done["summary"]
            error = await call_error(client, "get_job", {"job_id": "dlc-unknown"})
            assert "not found on local" in error and "pai could not be asked" in error
        async with multi(sb, tmp_path) as client:  # pai back: its job is still there, untouched
            assert (await call(client, "get_job", {"job_id": ids["pai"]}))["status"] == "Succeeded"


async def test_a_provider_that_does_not_answer_is_reported_within_the_probe_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offers, "PROBE_SECONDS", 0.5)
    async with running_sandbox(tmp_path) as sb, multi(sb, tmp_path) as client:
        await local_spec(client)  # this machine detected once, before the clock runs
        sb.faults.latency(1.5, count=1, actions={"ListEcsSpecs"})
        with anyio.fail_after(1.4):  # cut at the probe timeout, not at the slow answer
            states = {p["name"]: p for p in (await call(client, "list_providers"))["providers"]}
    assert states["local"]["api_answered"] is True
    assert states["pai"]["api_answered"] is False and states["pai"]["api"] == "no answer within 0.5 s"
    assert states["pai"]["credentials_found"] is True


class Twin(LocalProvider):
    """This machine under a second provider name: two providers offering specs of the same names."""

    name = "pai"


async def test_a_spec_name_on_several_providers_needs_the_provider_named(tmp_path: Path, state_dir: Path) -> None:
    settings = make_settings(tmp_path, providers="local,pai")
    async with connect(settings, providers={"pai": Twin(settings)}) as client:
        spec = await local_spec(client)
        error = await call_error(client, "estimate_cost", qargs(spec))
        assert f"Spec {spec!r} exists on several providers (local, pai): pass provider" in error
        assert (await call(client, "estimate_cost", qargs(spec, provider="local")))["provider"] == "local"
        error = await call_error(client, "estimate_cost", qargs("no-such-spec"))
        assert "Unknown spec 'no-such-spec' on every enabled provider (local, pai)" in error
