"""The whole workflow through the MCP client, on the workload provider against the workload sandbox over
real HTTP: specs, image, a quote from the price table (the platform has no pricing), a confirmed create,
the wait, every pod's logs, cleanup; and what must be refused on the way."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from tests.conftest import Asker, call, call_error, create_args, quote, wait_done
from tests.workload_fixtures import workload_client, workload_sandbox

pytestmark = pytest.mark.anyio

PROGRAM = 'import os; print(f\'rank {os.environ["RANK"]}/{os.environ["WORLD_SIZE"]} loss 0.5\')'
COMMAND = f"{shlex.quote(sys.executable)} -c {shlex.quote(PROGRAM)}"


def price_table(tmp_path: Path) -> Path:
    path = tmp_path / "prices.json"
    rates = {"currency": "USD", "cpu_hour": 0.04, "memory_gb_hour": 0.005, "gpu_hour": {"*": 2.5}}
    path.write_text(json.dumps({"workload": {"*": rates}}))
    return path


@pytest.mark.parametrize("api_key", [True, False], ids=["api-key", "user-login"])
async def test_the_whole_workflow_through_mcp(tmp_path: Path, api_key: bool) -> None:
    asker = Asker()
    async with (
        workload_sandbox(tmp_path) as sb,
        workload_client(sb, tmp_path, api_key=api_key, asker=asker, price_table=price_table(tmp_path)) as client,
    ):
        specs = await call(client, "list_ecs_specs", {"accelerator_type": "CPU", "sort_by": "CPU"})
        names = [s["instance_type"] for s in specs["specs"]]
        assert names[:2] == ["sandbox-cpu:cpu1", "sandbox-cpu:cpu2"]
        image = await call(client, "resolve_image", {"job_type": "PyTorchJob", "chip_type": "CPU"})
        assert image["uri"] == "harbor.sandbox.internal/ai/pytorch:2.5-cpu-py311"

        q = await quote(client, "sandbox-cpu:cpu2", workers=2)
        assert q["per_worker_hourly"] == pytest.approx(2 * 0.04 + 8 * 0.005)
        assert q["currency"] == "USD"
        assert "the workload platform has no pricing of its own" in q["display_text"]

        created = await call(client, "create_training_job", create_args("sandbox-cpu:cpu2", q["quote_id"], COMMAND, 2))
        job = created["job"]
        assert job["provider"] == "workload" and len(asker.questions) == 1
        body = sb.sandbox.workloads[job["job_id"]].body
        assert body["timeout"] == 300 and body["ttlSecondsAfterFinished"] == 86400  # the quote's 5 minutes

        done = await wait_done(client, job["job_id"])
        assert done["outcome"] == "succeeded", done
        logs = await call(client, "get_job_logs", {"job_id": job["job_id"]})
        assert sorted(line for p in logs["pods"] for line in p["lines"]) == ["rank 0/2 loss 0.5", "rank 1/2 loss 0.5"]
        listed = await call(client, "list_jobs", {})
        assert [j["job_id"] for j in listed["jobs"]] == [job["job_id"]]

        cleanup = await call(client, "cleanup_jobs", {"status": "Succeeded", "delete": True, "dry_run": False})
        assert [(a["job_id"], a["action"]) for a in cleanup["actions"]] == [(job["job_id"], "deleted")]
        assert "not found" in (await call_error(client, "get_job", {"job_id": job["job_id"]}))


async def test_no_workload_without_a_matching_confirmed_quote(tmp_path: Path) -> None:
    async with (
        workload_sandbox(tmp_path) as sb,
        workload_client(sb, tmp_path, asker=Asker(action="decline"), price_table=price_table(tmp_path)) as client,
    ):
        await call(client, "list_ecs_specs", {})
        no_quote = await call_error(client, "create_training_job", create_args("sandbox-cpu:cpu2", "", COMMAND))
        assert "quote" in no_quote.lower()
        q = await quote(client, "sandbox-cpu:cpu2", workers=1)
        more = await call_error(
            client, "create_training_job", create_args("sandbox-cpu:cpu2", q["quote_id"], COMMAND, 2)
        )
        assert "worker" in more.lower()
        declined = await call_error(
            client, "create_training_job", create_args("sandbox-cpu:cpu2", q["quote_id"], COMMAND)
        )
        assert "declin" in declined.lower()
        assert sb.sandbox.workloads == {}
        assert not any(c.action == "CreateWorkload" for c in sb.sandbox.calls)


async def test_price_unknown_capacity_and_bad_ids_through_mcp(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_client(sb, tmp_path) as client:
        q = await quote(client, "sandbox-gpu:gpu8")
        assert "per_worker_hourly" not in q  # unknown: not there
        assert "PRICE UNKNOWN" in q["display_text"] and "the workload platform has no pricing" in q["display_text"]
        too_many = await call_error(
            client,
            "estimate_cost",
            {"ecs_spec": "sandbox-gpu:gpu8", "worker_count": 3, "estimated_minutes": 1, "max_runtime_minutes": 5},
        )
        assert "at most 2 workers" in too_many
        missing = await call_error(client, "get_job", {"job_id": "nope-bcdfg"})
        assert "Workload nope-bcdfg not found" in missing and "Primus.01001" in missing
        assert "not a workload id" in await call_error(client, "stop_job", {"job_id": "a/b"})
    async with workload_sandbox(tmp_path / "capped") as sb, workload_client(sb, tmp_path, max_hourly=10) as client:
        refused = await call_error(
            client,
            "estimate_cost",
            {"ecs_spec": "sandbox-cpu:cpu2", "worker_count": 1, "estimated_minutes": 1, "max_runtime_minutes": 5},
        )
        assert "Price unknown" in refused


async def test_a_failed_workload_is_diagnosed_through_mcp(tmp_path: Path) -> None:
    failing = f"{shlex.quote(sys.executable)} -c 'raise SystemExit(\"boom: bad config\")'"
    async with workload_sandbox(tmp_path) as sb, workload_client(sb, tmp_path) as client:
        q = await quote(client, "sandbox-cpu:cpu1")
        job = (await call(client, "create_training_job", create_args("sandbox-cpu:cpu1", q["quote_id"], failing)))[
            "job"
        ]
        done = await wait_done(client, job["job_id"])
        assert done["outcome"] == "failed" and "exited with code 1" in done["message"]
        diagnosis = await call(client, "diagnose_job", {"job_id": job["job_id"]})
        assert diagnosis["verdict"] == "user_code" and "boom: bad config" in diagnosis["evidence"]
        events = await call(client, "get_job_events", {"job_id": job["job_id"]})
        assert any("K8sFailed" in e["message"] for e in events["events"])
        info = await call(client, "get_workload_info", {"job_id": job["job_id"]})
        assert (info["status"], info["workspace_id"], info.get("queue_position")) == ("Failed", "sandbox-cpu", None)
        metrics = await call(client, "get_job_metrics", {"job_id": job["job_id"]})
        assert metrics["usage"] == []  # the Workload API serves none; not an error
