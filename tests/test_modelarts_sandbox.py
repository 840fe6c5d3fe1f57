"""The sandbox's ModelArts face over loopback HTTP: its gateway (signatures, key lock, project id), its shapes,
and the whole workflow through the MCP client on the modelarts provider — specs, BSS prices, a quote, a real
two-node job, logs, events, pools and their workloads, cleanup — with the shared fault switches."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from cloudjobs_mcp.server.app import build_server
from cloudjobs_mcp.server.config import Settings
from cloudjobs_mcp.server.providers.modelarts import signing
from cloudjobs_mcp.server.providers.modelarts.provider import ModelArtsProvider
from cloudjobs_mcp.server.sandbox.modelarts.app import ModelArtsSandbox
from cloudjobs_mcp.server.sandbox.modelarts.runner import RunningModelArts, serve_modelarts
from cloudjobs_mcp.server.sandbox.settings import AccessKey, SandboxSettings
from tests.conftest import Asker, call, call_error, create_args, qargs, quote, wait_done
from tests.sandbox_fixtures import (
    FAST_POLICY,
    FAST_SANDBOX,
    fast_sleep,
    loopback_client,
    run_demo,
    sandbox_command,
    until,
)

pytestmark = pytest.mark.anyio
POOL = "pool-sandbox-train-0a1b2c3d4e5f6a7b8c9d0e1f"
CPU = "modelarts.vm.cpu.8u"


@asynccontextmanager
async def running(tmp_path: Path, **settings: Any) -> AsyncIterator[RunningModelArts]:
    values = {**FAST_SANDBOX, "region": "cn-north-4", **settings}
    async with serve_modelarts(SandboxSettings(state_dir=tmp_path / "sandbox", **values)) as sb:
        yield sb


@asynccontextmanager
async def mcp_client(sb: RunningModelArts, tmp_path: Path, *, asker: Asker | None = None, **overrides: Any):
    cfg = Settings.from_env(
        {}, **{**sb.settings_overrides(), "state_dir": tmp_path / "mcp", "http_timeout_seconds": 10.0, **overrides}
    )
    async with loopback_client(cfg) as http:
        provider = ModelArtsProvider(
            cfg, client=http, env=sb.huawei_env(), home=tmp_path / "home", policy=FAST_POLICY, sleep=fast_sleep
        )
        server = build_server(cfg, provider=provider)
        async with Client(server, elicitation_callback=asker or Asker(), cache=None) as client:  # type: ignore[arg-type]
            yield client


async def signed(
    sb: RunningModelArts,
    method: str,
    path: str,
    *,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    key: AccessKey | None = None,
    project: str | None = None,
    date: str | None = None,
) -> httpx.Response:
    key = key or sb.access_key
    payload = json.dumps(body).encode() if body is not None else b""
    host = sb.url.removeprefix("http://")
    s = signing.sign_request(
        method=method,
        host=host,
        path=path,
        query=query or [],
        headers={"Content-Type": "application/json"} if payload else {},
        body=payload,
        access_key=key.access_key_id,
        secret_key=key.access_key_secret,
        project_id=project,
        security_token=key.security_token,
        date=date,
    )
    async with httpx.AsyncClient(trust_env=False, timeout=10.0) as http:
        return await http.request(method, sb.url + s.path_and_query, headers=s.headers, content=payload or None)


async def test_the_gateway_checks_signatures_and_locks_a_key_after_five_failures(tmp_path: Path) -> None:
    async with running(tmp_path) as sb:
        pid = sb.project_id
        path = f"/v2/{pid}/training-job-flavors"
        good = await signed(sb, "GET", path, query=[("flavor_type", "CPU")], project=pid)
        assert good.status_code == 200 and {f["flavor_type"] for f in good.json()["flavors"]} == {"CPU"}
        wrong = AccessKey(sb.access_key.access_key_id, "not-the-secret")
        for _ in range(5):
            refused = await signed(sb, "GET", path, key=wrong, project=pid)
            assert refused.status_code == 401
            assert refused.json()["error_code"] == "APIG.0301" and refused.headers["X-Request-Id"]
        locked = await signed(sb, "GET", path, project=pid)  # now even the right secret is refused
        assert locked.status_code == 401 and "locked" in locked.json()["error_msg"]
        stale = await signed(sb, "GET", path, key=AccessKey("UNKNOWNAK", "x"), date="20200101T000000Z")
        assert stale.status_code == 401
        other = await signed(sb, "GET", f"/v2/{'0' * 32}/training-job-flavors", key=AccessKey("UNKNOWNAK2", "y"))
        assert other.json()["error_code"] == "APIG.0301"


async def test_project_ids_routes_and_not_found_answer_as_modelarts_does(tmp_path: Path) -> None:
    async with running(tmp_path) as sb:
        pid = sb.project_id
        foreign = await signed(sb, "GET", f"/v2/{'a' * 32}/training-job-flavors")
        assert (foreign.status_code, foreign.json()["error_code"]) == (403, "ModelArts.0212")
        missing = await signed(sb, "GET", f"/v2/{pid}/no-such-api")
        assert (missing.status_code, missing.json()["error_code"]) == (404, "APIG.0101")
        job = await signed(sb, "GET", f"/v2/{pid}/training-jobs/3faf5c03-aaa1-4cbe-879d-24b05d997347", project=pid)
        assert (job.status_code, job.json()["error_code"]) == (400, "ModelArts.2775")
        pool = await signed(sb, "GET", f"/v2/{pid}/pools/pool-nope-000/workloads", project=pid)
        assert pool.json() == {"error_code": "ModelArts.50015001", "error_msg": "Pool pool-nope-000 not found."}
        bad = await signed(sb, "GET", f"/v2/{pid}/pools/{POOL}/workloads", query=[("limit", 501)], project=pid)
        assert (bad.status_code, bad.json()["error_code"]) == (400, "ModelArts.50004000")
        empty = await signed(
            sb, "POST", f"/v2/{pid}/training-jobs", body={"kind": "job", "metadata": {"name": "x"}}, project=pid
        )
        assert empty.json()["error_code"] == "ModelArts.2806"


async def test_the_whole_workflow_through_mcp_on_the_sandbox(tmp_path: Path) -> None:
    asker = Asker()
    async with running(tmp_path) as sb, mcp_client(sb, tmp_path, asker=asker) as client:
        specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU"})
        assert [s["instance_type"] for s in specs["specs"]] == ["modelarts.vm.cpu.2u", CPU]
        image = await call(client, "resolve_image", {"job_type": "PyTorchJob", "chip_type": "CPU"})
        assert image["uri"] == "atelier/pytorch_2_1_cpu:train"
        q = await quote(client, CPU, workers=2, minutes=1, max_minutes=5)
        assert q["per_worker_hourly"] == 2.24 and q["currency"] == "CNY"
        command = "python -c \"import os; print('rank', os.environ['RANK'], 'of', os.environ['WORLD_SIZE'])\""
        created = await call(client, "create_training_job", create_args(CPU, q["quote_id"], command, 2))
        job_id = created["job"]["job_id"]
        assert len(asker.questions) == 1
        again = await call(client, "create_training_job", create_args(CPU, q["quote_id"], command, 2))
        assert again["job"]["job_id"] == job_id  # the same quote: the same job
        done = await wait_done(client, job_id)
        assert done["outcome"] == "succeeded"
        logs = await call(client, "get_job_logs", {"job_id": job_id})
        text = {p["pod_id"]: " ".join(p["lines"]) for p in logs["pods"]}
        assert text == {"worker-0": "rank 0 of 2", "worker-1": "rank 1 of 2"}
        events = await call(client, "get_job_events", {"job_id": job_id, "limit": 200})
        assert any("is running" in e["message"] for e in events["events"])
        job = await call(client, "get_job", {"job_id": job_id})
        assert (job["status"], job["raw_status"]) == ("Succeeded", "Completed")
        listed = await call(client, "list_jobs", {"only_created_here": True})
        assert [j["job_id"] for j in listed["jobs"]] == [job_id]
        cleanup = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True, "dry_run": False})
        assert [a["job_id"] for a in cleanup["actions"]] == [job_id]
        assert await sb.sandbox.job_view(job_id) is None
        creates = [c for c in sb.sandbox.calls if c.action == "CreateTrainingJob"]
        assert [c.status for c in creates] == [201]
        body = next(c.body for c in creates)
        assert body["metadata"]["name"].endswith(q["quote_id"])


async def test_nothing_reaches_the_cloud_without_a_confirmed_quote(tmp_path: Path) -> None:
    async with running(tmp_path) as sb, mcp_client(sb, tmp_path, asker=Asker("decline")) as client:
        error = await call_error(client, "create_training_job", create_args(CPU, "q-00000000000000ff", "true"))
        assert "quote" in error.lower()
        q = await quote(client, CPU)
        declined = await call_error(client, "create_training_job", create_args(CPU, q["quote_id"], "true"))
        assert "declined" in declined.lower() or "not" in declined.lower()
        other = await call_error(
            client, "create_training_job", create_args("modelarts.vm.cpu.2u", q["quote_id"], "true")
        )
        assert "quote" in other.lower()
        assert not [c for c in sb.sandbox.calls if c.action == "CreateTrainingJob"]


async def test_a_create_whose_answer_is_lost_returns_the_one_job_it_made(tmp_path: Path) -> None:
    async with running(tmp_path) as sb, mcp_client(sb, tmp_path) as client:
        sb.faults.fail_503(1, after=True, actions={"CreateTrainingJob"})
        q = await quote(client, CPU)
        created = await call(client, "create_training_job", create_args(CPU, q["quote_id"], "echo hi"))
        views = [c for c in sb.sandbox.calls if c.action == "CreateTrainingJob"]
        assert [c.status for c in views] == [503]  # it happened, the answer was lost, it was not sent again
        listed = await call(client, "list_jobs", {})
        assert [j["job_id"] for j in listed["jobs"]] == [created["job"]["job_id"]]
        await wait_done(client, created["job"]["job_id"])


async def test_pools_their_workloads_and_a_queued_job_through_mcp(tmp_path: Path) -> None:
    async with running(tmp_path) as sb, mcp_client(sb, tmp_path) as client:
        pools = await call(client, "list_pools")
        assert [(p["pool_id"], p["usable_for_training"]) for p in pools["pools"]] == [
            (POOL, True),
            ("pool-sandbox-infer-9f8e7d6c5b4a3f2e1d0c9b8a", False),
        ]
        sb.faults.quota_queue(position=3)
        q = await quote(client, CPU)
        created = await call(
            client, "create_training_job", create_args(CPU, q["quote_id"], "echo pooled", resource_id=POOL)
        )
        job_id = created["job"]["job_id"]
        await until(lambda: sb.sandbox.job_view(job_id), lambda v: v is not None and v.status == "Queuing")
        info = await call(client, "get_workload_info", {"job_id": job_id})
        assert (info["in_quota"], info["quota_id"], info["queue_position"], info["is_scheduled"]) == (
            True,
            POOL,
            3,
            False,
        )
        assert info["pending_seconds"] is not None and info["priority"] == 1
        page = await call(client, "list_pool_workloads", {"pool_name": POOL, "type": ["train"], "status": "Queue"})
        mine = [w for w in page["workloads"] if w["job_id"] == job_id]
        assert mine and mine[0]["queue_position"] == 3 and mine[0]["job_name"].endswith(q["quote_id"])
        assert all(w["workload_type"] == "train" and w["status"] == "Queue" for w in page["workloads"])
        infer = await call(client, "list_pool_workloads", {"pool_name": POOL, "type": ["infer"]})
        assert [w["workload_type"] for w in infer["workloads"]] == ["infer"]
        bad = await call_error(client, "list_pool_workloads", {"pool_name": "Not A Pool"})
        assert "list_pools shows them" in bad
        missing = await call_error(client, "list_pool_workloads", {"pool_name": "pool-missing-000"})
        assert "no resource pool 'pool-missing-000'" in missing
        sb.faults.clear("quota_queue")
        done = await wait_done(client, job_id)
        assert done["outcome"] == "succeeded"


async def test_the_shared_fault_switches_speak_modelarts(tmp_path: Path) -> None:
    async with running(tmp_path) as sb, mcp_client(sb, tmp_path) as client:
        sb.faults.throttle(2)
        specs = await call(client, "list_ecs_specs", {})
        assert specs["specs"]
        throttled = [c for c in sb.sandbox.calls if c.status == 429]
        assert [c.code for c in throttled] == ["APIG.0308", "APIG.0308"]
        sb.faults.image_pull_backoff("no-such-image")
        q = await quote(client, CPU)
        created = await call(
            client, "create_training_job", create_args(CPU, q["quote_id"], "true", image="org/no-such-image:1")
        )
        job_id = created["job"]["job_id"]
        events = await until(
            lambda: call(client, "get_job_events", {"job_id": job_id, "limit": 200}),
            lambda e: any("ErrImagePull" in x["message"] for x in e["events"]),
        )
        pulls = [e for e in events["events"] if "ErrImagePull" in e["message"]]
        assert pulls[0]["source"] == "worker-0" and pulls[0]["message"].startswith("Error: [Pod: modelarts-job-")
        stopped = await call(client, "stop_job", {"job_id": job_id})
        assert stopped["status"] in ("Stopping", "Stopped")
        again = await call(client, "stop_job", {"job_id": job_id})  # 2796 when already over: not an error
        assert again["status"] in ("Stopping", "Stopped")


async def test_other_providers_answer_the_pool_tools_clearly(tmp_path: Path, settings: Settings) -> None:
    server = build_server(settings)
    async with Client(server, cache=None) as client:  # type: ignore[arg-type]
        text = await call_error(client, "list_pools")
        assert "ModelArts feature" in text and "local provider has none" in text
        text = await call_error(client, "list_pool_workloads", {"pool_name": POOL})
        assert "ModelArts feature" in text


# --------------------------------------------------------------------------------------------- CLI

SCRIPT = Path(sys.executable).parent / "cloudjobs-mcp"


def test_demo_with_the_modelarts_sandbox(tmp_path: Path) -> None:
    out = run_demo(tmp_path, "modelarts-sandbox")
    for step in ("ModelArts face", "modelarts.vm.cpu.2u: ", "allows at most 1 node", "CNY 2.24/hour",
                 "atelier/pytorch_2_1_cpu:train", "The server asks the human", "list_pool_workloads",
                 "rank 1 done", "cleanup_jobs", "CreateTrainingJob x1", "demo: the job succeeded"):  # fmt: skip
        assert step in out, step


def test_the_sandbox_command_speaks_modelarts_with_cloud_modelarts(tmp_path: Path) -> None:
    with sandbox_command(tmp_path, "--cloud", "modelarts") as run:
        lines = run.banner
        assert lines[0].startswith("ModelArts sandbox on http://127.0.0.1:")
        env = run.exports
        url = env["HUAWEICLOUD_SDK_REGION_MODELARTS_CN_NORTH_4"]
        assert env["HUAWEICLOUD_SDK_IAM_ENDPOINT"] == url == env["CLOUDJOBS_MODELARTS_BSS_ENDPOINT"]
        assert env["CLOUDJOBS_PROVIDERS"] == "modelarts" and env["CLOUDJOBS_MODELARTS_REGION"] == "cn-north-4"
        pid, ak, sk = env["HUAWEICLOUD_SDK_PROJECT_ID"], env["HUAWEICLOUD_SDK_AK"], env["HUAWEICLOUD_SDK_SK"]
        assert any(pid in line for line in lines if line.startswith("region cn-north-4; project id"))
        s = signing.sign_request(
            method="GET", host=url.removeprefix("http://"), path=f"/v2/{pid}/training-job-flavors", access_key=ak,
            secret_key=sk, project_id=pid,
        )  # fmt: skip
        r = httpx.get(url + s.path_and_query, headers=s.headers, trust_env=False)
        assert r.status_code == 200 and r.json()["total_count"] == 5
        keys = json.loads((tmp_path / "state" / "modelarts-sandbox-keys.json").read_text())
        assert keys["access_keys"][0]["ak"] == ak and keys["project_id"] == pid
    assert run.proc.returncode == 0 and "ModelArts sandbox stopped." in run.out


async def test_modelarts_beside_local_a_bare_job_id_finds_its_provider_and_quotes_whole_hours(tmp_path: Path) -> None:
    async with running(tmp_path) as sb:
        cfg = Settings.from_env(
            {},
            **{
                **sb.settings_overrides(),
                "providers": "local,modelarts",
                "state_dir": tmp_path / "mcp",
                "local_stop_grace_seconds": 1.0,
            },
        )
        async with loopback_client(cfg) as http:
            provider = ModelArtsProvider(
                cfg, client=http, env=sb.huawei_env(), home=tmp_path / "home", policy=FAST_POLICY, sleep=fast_sleep
            )
            server = build_server(cfg, providers={"modelarts": provider})
            async with Client(server, elicitation_callback=Asker(), cache=None) as client:  # type: ignore[arg-type]
                states = await call(client, "list_providers")
                ma = next(p for p in states["providers"] if p["name"] == "modelarts")
                assert (ma["credentials"], ma["api_answered"], ma["region"], ma["currency"]) == (
                    "environment",
                    True,
                    "cn-north-4",
                    "CNY",
                )
                q = await quote(client, CPU, workers=1, minutes=1, max_minutes=5)
                assert (q["provider"], q["max_runtime_minutes"]) == ("modelarts", 60)  # auto_stop counts hours
                assert q["worst_case_total"] == pytest.approx(2.24)
                created = await call(client, "create_training_job", create_args(CPU, q["quote_id"], "echo routed"))
                job_id = created["job"]["job_id"]
                body = next(c.body for c in sb.sandbox.calls if c.action == "CreateTrainingJob")
                assert body["status"]["phase"] == "Creating"
                sent = sb.sandbox.core.store.job(job_id)
                assert sent is not None and sent.body["ModelArts"]["spec"]["auto_stop"] == {
                    "time_unit": "HOURS",
                    "duration": 1,
                }
                done = await wait_done(client, job_id)  # a bare id: the job index knows its provider
                assert done["outcome"] == "succeeded"
                job = await call(client, "get_job", {"job_id": job_id})
                assert job["provider"] == "modelarts" and job["max_runtime_minutes"] == 60
                pools = await call(client, "list_pools")  # the one provider with pools answers
                assert pools["provider"] == "modelarts"
                refused = await call_error(client, "list_pools", {"provider": "local"})
                assert "local provider has none" in refused
                listed = await call(client, "list_jobs", {})
                assert job_id in [j["job_id"] for j in listed["jobs"]]


async def test_without_bss_rights_or_a_table_a_flavor_is_price_unknown_and_a_cap_refuses_it(tmp_path: Path) -> None:
    face = ModelArtsSandbox(SandboxSettings(state_dir=tmp_path / "sandbox", region="cn-north-4", **FAST_SANDBOX),
                            bss_prices=False)  # fmt: skip
    async with serve_modelarts(face) as sb:
        async with mcp_client(sb, tmp_path, max_job_cost=100.0) as client:
            refused = await call_error(client, "estimate_cost", qargs(CPU))
            assert "price unknown" in refused.lower()
        async with mcp_client(sb, tmp_path) as client:
            q = await quote(client, CPU)
            assert "per_worker_hourly" not in q and "price unknown" in q["display_text"].lower()
        assert [c.code for c in sb.sandbox.calls if c.action == "ListOnDemandResourceRatings"] == ["CBC.0151"] * 2
