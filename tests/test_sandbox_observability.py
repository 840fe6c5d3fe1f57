"""Observability against the PAI sandbox, end to end: the MCP tools (get_job_metrics, diagnose_job,
get_workload_info, get_sanity_check_results, get_job_events, get_job_logs, get_job) on the ``pai``
provider, talking over loopback HTTP to an in-process sandbox whose jobs run for real and whose faults
(idle GPUs, failing sanity checks, spot reclaims, quota queues, image pulls) shape what the APIs report."""

from __future__ import annotations

import argparse
import shlex
import sys

import anyio
import httpx
import pytest

from cloudjobs_mcp.server.sandbox.cli import add_arguments
from cloudjobs_mcp.server.sandbox.faults import Faults
from cloudjobs_mcp.server.sandbox.runner import apply_fault_flags
from tests.conftest import call, create_args, quote, wait_done
from tests.sandbox_fixtures import create_job, pai_client, running_sandbox, signed_call, status_of, until

pytestmark = pytest.mark.anyio

PY = shlex.quote(sys.executable)
GPU = "ecs.gn6i-c4g1.xlarge"  # 1 x T4, 4 vCPUs, 15 GiB
BAD_IMAGE = "registry.example.com/team/trainer:does-not-exist"
QUOTA = "quota-sandbox-1"


def script(text: str) -> str:
    return PY + " -c " + shlex.quote(text)


# Busy for ~2 s (one core), printing a falling loss.
BUSY = script(
    "import time\n"
    "t = time.time()\n"
    "i = 0\n"
    "while time.time() - t < 2.0:\n"
    "    sum(range(20000)); i += 1\n"
    "    if i % 200 == 0: print(f'step {i} loss {1.0 / i:.5f}', flush=True)\n"
)
SLEEP = script("import time\nprint('training', flush=True)\ntime.sleep(20)\n")
FAIL = script("print('loading data', flush=True)\nimport json\njson.loads('{not json')\n")


async def job_status(client, job_id: str) -> str:
    return str((await call(client, "get_job", {"job_id": job_id}))["raw_status"])


# -------------------------------------------------------------------------------------- metrics


async def test_metrics_of_a_dlc_job_and_idle_gpus(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        sb.faults.idle_gpus("idle")
        cpu_job = await create_job(client, BUSY, display_name="busy-cpu")
        idle = await create_job(client, SLEEP, spec=GPU, display_name="idle-gpu")
        busy = await create_job(client, SLEEP, spec=GPU, display_name="busy-gpu")
        for job in (idle, busy):
            await until(lambda job=job: status_of(sb, job["job_id"]), "Running")
        await anyio.sleep(0.5)  # a few samples

        # GPUs allocated but idle: the warning, on the job with the fault only.
        idle_metrics = await call(client, "get_job_metrics", {"job_id": idle["job_id"], "step": 1})
        assert idle_metrics["status"] == "Running"
        pod = idle_metrics["usage"][0]
        assert {"cpu", "memory", "gpu_core", "gpu_memory"} <= set(pod["metrics"])
        assert pod["metrics"]["gpu_core"]["max"] <= 3.0
        assert any("GPUs allocated but idle" in w for w in idle_metrics["warnings"]), idle_metrics["warnings"]
        busy_metrics = await call(client, "get_job_metrics", {"job_id": busy["job_id"], "step": 1})
        gpu_core = busy_metrics["usage"][0]["metrics"]["gpu_core"]
        assert 60.0 <= gpu_core["mean"] <= 90.0 and not any("idle" in w for w in busy_metrics["warnings"])
        diagnosis = await call(client, "diagnose_job", {"job_id": idle["job_id"]})
        assert diagnosis["verdict"] == "healthy" and any("GPUs allocated but idle" in w for w in diagnosis["warnings"])

        # The CPU job: real CPU and memory samples of its pod, in % of the spec's 2 vCPUs / 4 GiB.
        done = await wait_done(client, cpu_job["job_id"])
        assert done["outcome"] == "succeeded", done
        metrics = await call(client, "get_job_metrics", {"job_id": cpu_job["job_id"], "step": 1})
        (usage,) = metrics["usage"]
        assert set(usage["metrics"]) == {"cpu", "memory"}  # no GPU series for a CPU spec
        cpu, memory = usage["metrics"]["cpu"], usage["metrics"]["memory"]
        assert cpu["samples"] >= 2 and 10.0 <= cpu["max"] <= 100.0, cpu  # one busy core of two
        assert 0.0 < memory["max"] < 50.0, memory
        assert metrics["warnings"] == []
        loss = next(t for t in metrics["training"] if t["name"] == "loss")
        assert loss["summary"]["latest"] < loss["first"]

        # The wire shape: epoch-ms Time, float Value, one series per pod; GPU series empty on a CPU spec.
        raw = await signed_call(
            sb,
            "GetJobMetrics",
            "GET",
            f"/api/v1/jobs/{cpu_job['job_id']}/metrics",
            query={"MetricType": "GpuCoreUsage", "TimeStep": "1s"},
        )
        assert raw.json()["PodMetrics"] == [{"PodId": usage["pod_id"], "Metrics": []}]
        bad = await signed_call(sb, "GetJobMetrics", "GET", f"/api/v1/jobs/{cpu_job['job_id']}/metrics")
        assert (bad.status_code, bad.json()["Code"]) == (400, "MissingParameter")


# ------------------------------------------------------------------------------------ diagnoses


async def test_diagnose_job_verdicts_from_real_sandbox_jobs(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        sb.faults.image_pull_backoff("does-not-exist", pull_seconds=0.1, backoff_seconds=0.3)
        sb.faults.sanity_check_failure("DeviceCheck", "sanity-bad", check_seconds=0.4)
        sb.faults.spot_reclaim(0.4, "spot")
        held = sb.faults.quota_queue(3, "queued")
        pull = await create_job(client, "echo hi", image=BAD_IMAGE, display_name="pull-bad")
        sanity = await create_job(client, "echo never", spec=GPU, sanity_check=True, display_name="sanity-bad")
        spot = await create_job(client, SLEEP, display_name="spot-job")
        queued = await create_job(client, "echo scheduled", resource_id=QUOTA, priority=4, display_name="queued")
        user = await create_job(client, FAIL, display_name="user-code")
        public = await create_job(client, "echo public", display_name="public")

        assert (await wait_done(client, user["job_id"]))["outcome"] == "failed"
        verdict = await call(client, "diagnose_job", {"job_id": user["job_id"]})
        assert verdict["verdict"] == "user_code" and any("JSONDecodeError" in line for line in verdict["evidence"])

        await until(lambda: status_of(sb, sanity["job_id"]), "Failed")
        verdict = await call(client, "diagnose_job", {"job_id": sanity["job_id"]})
        assert verdict["verdict"] == "sanity_check_failed", verdict
        assert verdict["reason_code"] == "SanityCheckFailed" and "DeviceCheck" in verdict["reason"]
        assert any("DeviceCheck: Failed" in e and "TFLOPS" in e for e in verdict["evidence"])
        checks = await call(client, "get_sanity_check_results", {"job_id": sanity["job_id"]})
        assert checks["enabled"] and checks["passed"] is False
        assert [(c["phase"], c["status"]) for c in checks["results"]] == [
            ("CheckInit", "Succeeded"),
            ("DeviceCheck", "Failed"),
        ]
        logs = await call(client, "get_job_logs", {"job_id": sanity["job_id"]})
        assert "never" not in str(logs["pods"])  # failed before the command ran

        await until(lambda: status_of(sb, spot["job_id"]), "Failed")
        verdict = await call(client, "diagnose_job", {"job_id": spot["job_id"]})
        assert verdict["verdict"] == "spot_reclaim" and verdict["reason_code"] == "SpotInstanceReclaimed"
        events = await call(client, "get_job_events", {"job_id": spot["job_id"], "limit": 200})
        texts = [e["message"].lower() for e in events["events"]]
        assert any("spot" in t and "reclaim" in t for t in texts) and not any("stopped by user" in t for t in texts)

        await until(lambda: status_of(sb, pull["job_id"]), "EnvPreparing")
        await anyio.sleep(0.3)
        verdict = await call(client, "diagnose_job", {"job_id": pull["job_id"]})
        assert verdict["verdict"] == "image_pull" and any(
            "ImagePullBackOff" in e or "pull" in e for e in verdict["evidence"]
        )

        # The quota queue: Queuing at position 3, not scheduled, until the fault is cleared.
        await anyio.sleep(0.5)
        assert await job_status(client, queued["job_id"]) == "Queuing"
        verdict = await call(client, "diagnose_job", {"job_id": queued["job_id"]})
        assert verdict["verdict"] == "queue_quota", verdict
        info = await call(client, "get_workload_info", {"job_id": queued["job_id"]})
        assert (info["in_quota"], info["queue_position"], info["is_scheduled"]) == (True, 3, False), info
        assert info["quota_id"] == QUOTA and info["priority"] == 4 and info["workload_type"] == "dlc"
        assert "position 3" in info["note"] and info["enqueued_at"]
        sb.faults.discard(held)
        assert (await wait_done(client, queued["job_id"]))["outcome"] == "succeeded"
        info = await call(client, "get_workload_info", {"job_id": queued["job_id"]})
        assert (info["in_quota"], info["is_scheduled"], info.get("queue_position")) == (True, True, None), info

        info = await call(client, "get_workload_info", {"job_id": public["job_id"]})
        assert info["in_quota"] is False and "not queued in a resource quota" in info["note"]

        # An unknown quota is refused by CreateJob; ListQuotaWorkloads keeps the history.
        q = await quote(client, "ecs.c6.large")
        args = create_args("ecs.c6.large", q["quote_id"], "echo", display_name="no-quota", resource_id="quota-nope")
        error = await client.call_tool("create_training_job", args)
        assert error.is_error and "quota-nope" in str(error.content)
        listed = await signed_call(
            sb,
            "ListQuotaWorkloads",
            "GET",
            f"/api/v1/quotas/{QUOTA}/workloads",
            version="2022-01-12",
            query={"WithHistoricalData": "true"},
        )
        (entry,) = listed.json()["Workloads"]
        assert entry["WorkloadId"] == queued["job_id"] and entry["Status"] == "Dequeued" and entry["GmtDequeuedTime"]


# ------------------------------------------------------------------------------- sanity checks


async def test_sanity_check_results_of_a_passing_job(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        job = await create_job(
            client,
            "echo checked",
            workers=2,
            sanity_check=True,
            sanity_check_args="min_free_gb=0",
            priority=7,
            display_name="checked",
        )
        assert (await wait_done(client, job["job_id"]))["outcome"] == "succeeded"
        assert (await call(client, "get_job", {"job_id": job["job_id"]}))["priority"] == 7
        checks = await call(client, "get_sanity_check_results", {"job_id": job["job_id"]})
        assert checks["enabled"] and checks["passed"] is True
        assert [c["phase"] for c in checks["results"]] == [
            "CheckInit",
            "SingleNodeCommCheck",
            "TwoNodeCommCheck",
            "AllNodeCommCheck",
        ]
        assert all(c["check_number"] == 1 and c["started_at"] for c in checks["results"])
        raw = (await signed_call(sb, "GetJob", "GET", f"/api/v1/jobs/{job['job_id']}")).json()
        assert (raw["Settings"]["EnableSanityCheck"], raw["Settings"]["SanityCheckArgs"]) == (True, "min_free_gb=0")
        assert "SanityChecking" in [h["Status"] for h in raw["StatusHistory"]] and raw["Priority"] == 7
        listed = (
            await signed_call(
                sb, "ListJobSanityCheckResults", "GET", f"/api/v1/jobs/{job['job_id']}/sanitycheckresults"
            )
        ).json()
        assert "RequestID" in listed and "RequestId" not in listed and listed["TotalCount"] == 1
        assert isinstance(listed["SanityCheckResults"][0], list)
        one = await signed_call(
            sb,
            "GetJobSanityCheckResult",
            "GET",
            f"/api/v1/jobs/{job['job_id']}/sanitycheckresult",
            query={"SanityCheckNumber": "1", "SanityCheckPhase": "CheckInit"},
        )
        assert [i["Phase"] for i in one.json()["SanityCheckResult"]] == ["CheckInit"]
        plain = await create_job(client, "echo plain", display_name="plain")
        checks = await call(client, "get_sanity_check_results", {"job_id": plain["job_id"]})
        assert (checks["enabled"], checks.get("passed"), checks["results"]) == (False, None, [])

        # A real pre-flight failure (no fault): the command's interpreter does not exist.
        broken = await create_job(client, "no-such-trainer --epochs 1", sanity_check=True, display_name="broken")
        assert (await wait_done(client, broken["job_id"]))["outcome"] == "failed"
        checks = await call(client, "get_sanity_check_results", {"job_id": broken["job_id"]})
        failed = [c for c in checks["results"] if c["status"] == "Failed"]
        assert checks["passed"] is False and [c["phase"] for c in failed] == ["CheckInit"]
        assert "no-such-trainer" in failed[0]["message"]
        verdict = await call(client, "diagnose_job", {"job_id": broken["job_id"]})
        assert verdict["verdict"] == "sanity_check_failed" and verdict["reason_code"] == "SanityCheckFailed"


# ------------------------------------------------------------------------------- training jobs


async def test_training_jobs_through_the_mcp_tools(tmp_path):
    async with running_sandbox(tmp_path) as sb, pai_client(sb, tmp_path) as client:
        failing = sb.sandbox.create_training_job(
            "tj-failing",
            script(
                "print('epoch 1 loss 0.9', flush=True)\nimport time\ntime.sleep(0.6)\n"
                "raise RuntimeError('shard 3 bad')\n"
            ),
            metric_definitions=[{"Name": "loss", "Regex": r"loss ([0-9.]+)"}],
        )
        sleeper = sb.sandbox.create_training_job("tj-quota", SLEEP, ecs_count=2, resource_id=QUOTA, sanity_check=True)
        assert failing.startswith("train") and sleeper.startswith("train")

        done = await wait_done(client, failing)
        assert (done["outcome"], done["raw_status"]) == ("failed", "Failed"), done
        job = await call(client, "get_job", {"job_id": failing})
        assert [p["pod_id"] for p in job["pods"]] == [f"{failing}-worker-0"]
        assert job["ecs_spec"] == "ecs.c6.large" and job["worker_count"] == 1
        assert job["reason_code"] == "PodFailed" and job["started_at"] and job["finished_at"]

        events = await call(client, "get_job_events", {"job_id": failing, "limit": 200})
        sources = {e["source"] for e in events["events"]}
        assert {failing, f"{failing}-worker-0"} <= sources
        assert any(f"Job {failing} failed" in e["message"] for e in events["events"])
        logs = await call(client, "get_job_logs", {"job_id": failing})
        assert "shard 3 bad" in str(logs) and "epoch 1 loss 0.9" in str(logs)
        metrics = await call(client, "get_job_metrics", {"job_id": failing, "step": 10})
        assert [u["pod_id"] for u in metrics["usage"]] == [f"{failing}-worker-0"]
        assert "cpu" in metrics["usage"][0]["metrics"]
        verdict = await call(client, "diagnose_job", {"job_id": failing})
        assert verdict["verdict"] == "user_code", verdict
        assert verdict["error_info"] and "PodFailed" in verdict["error_info"] and "shard 3 bad" in verdict["error_info"]

        # A training job on a quota, with a sanity check: queue entry, sanity results via its DLC job, stop.
        await until(lambda: status_of(sb, sleeper), "Running")
        pods = (await call(client, "get_job", {"job_id": sleeper}))["pods"]
        assert [p["pod_id"] for p in pods] == [f"{sleeper}-master-0", f"{sleeper}-worker-0"]
        info = await call(client, "get_workload_info", {"job_id": sleeper})
        assert (info["in_quota"], info["quota_id"], info["is_scheduled"]) == (True, QUOTA, True), info
        checks = await call(client, "get_sanity_check_results", {"job_id": sleeper})
        assert checks["passed"] is True and checks["results"][0]["phase"] == "CheckInit"
        stopped = await call(client, "stop_job", {"job_id": sleeper})
        assert stopped["job_id"] == sleeper
        final = await wait_done(client, sleeper)
        assert (final["raw_status"], final["status"]) == ("Terminated", "Stopped"), final
        await call(client, "delete_job", {"job_id": failing})
        missing = await client.call_tool("get_job", {"job_id": failing})
        assert missing.is_error


# ----------------------------------------------------------------------------- fault switches


async def test_the_new_faults_through_the_admin_route_and_the_cli(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(
        ["--quota", "q-a", "--quota", "q-b", "--fault", '{"kind": "quota_queue", "position": 2}', "--fault",
         '{"kind": "spot_reclaim", "after_seconds": 5, "display_name_substring": "spot"}']
    )  # fmt: skip
    faults = Faults()
    apply_fault_flags(faults, args)
    assert [(f["kind"], f.get("position"), f.get("after_seconds")) for f in faults.describe()] == [
        ("quota_queue", 2, None),
        ("spot_reclaim", None, 5.0),
    ]
    assert args.quota == ["q-a", "q-b"]

    async with running_sandbox(tmp_path) as sb, httpx.AsyncClient(trust_env=False) as http:
        admin = f"{sb.url}/_sandbox/faults"
        specs = [
            {"kind": "sanity_check_failure", "phase": "CheckInit", "display_name_substring": "never"},
            {"kind": "idle_gpus", "display_name_substring": "never"},
            {"kind": "spot_reclaim", "after_seconds": 2, "display_name_substring": "never"},
            {"kind": "quota_queue", "position": 2},
        ]
        described = (await http.post(admin, json=specs)).json()["faults"]
        assert [f["kind"] for f in described] == [s["kind"] for s in specs] and all(f["id"] for f in described)
        for bad in ({"kind": "sanity_check_failure", "phase": "Nope"}, {"kind": "quota_queue", "position": 0}):
            r = await http.post(admin, json=bad)
            assert r.status_code == 400 and "must be" in r.json()["error"]
        assert (await http.get(f"{sb.url}/_sandbox/info")).json()["quotas"] == [QUOTA]

        # The quota_queue fault holds a quota job until its DELETE ?id=; a public job is not held.
        workspace = sb.sandbox.create_workspace("ws_admin")
        spec = {"Type": "Worker", "Image": "img:1", "PodCount": 1, "ResourceConfig": {"CPU": "2", "Memory": "4Gi"}}
        body = {"DisplayName": "held", "JobType": "PyTorchJob", "JobSpecs": [spec], "UserCommand": "echo held",
                "WorkspaceId": workspace, "ResourceId": QUOTA}  # fmt: skip
        held = (await signed_call(sb, "CreateJob", "POST", "/api/v1/jobs", body=body)).json()["JobId"]
        unknown = await signed_call(sb, "CreateJob", "POST", "/api/v1/jobs", body={**body, "ResourceId": "quota-x"})
        assert unknown.status_code == 400 and "quota-x" in unknown.json()["Message"]
        await anyio.sleep(0.6)
        job = (await signed_call(sb, "GetJob", "GET", f"/api/v1/jobs/{held}")).json()
        assert job["Status"] == "Queuing" and "position 2" in job["ReasonMessage"] and job["ResourceId"] == QUOTA
        queue = f"{sb.url}/_sandbox/faults?id={described[3]['id']}"
        assert [f["kind"] for f in (await http.delete(queue)).json()["faults"]] == [s["kind"] for s in specs[:3]]
        await until(lambda: status_of(sb, held), "Succeeded")
