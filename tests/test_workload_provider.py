"""The workload provider against the workload sandbox over loopback HTTP: specs, capacity, create, logs,
batch operations, clone, errors. (The MCP-level workflow is in test_workload_workflow.py.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from cloudjobs_mcp.server.errors import CapacityUnavailable, InvalidRequest, NotFound
from cloudjobs_mcp.server.models import Job, JobRequest, JobStatus
from cloudjobs_mcp.server.providers.workload import WorkloadProvider
from tests.workload_fixtures import workload_provider, workload_sandbox

pytestmark = pytest.mark.anyio

PY = sys.executable


def request(spec: str = "sandbox-cpu:cpu2", command: str = "echo hi", workers: int = 1, **kw: Any) -> JobRequest:
    values: dict[str, Any] = {
        "display_name": "wl-test",
        "user_command": command,
        "job_type": "PyTorchJob",
        "ecs_spec": spec,
        "worker_count": workers,
        "max_runtime_minutes": 5,
    }
    values.update(kw)
    return JobRequest(**values)


async def create(p: WorkloadProvider, req: JobRequest) -> Job:
    specs = {s.instance_type: s for s in await p.list_specs()}
    p.validate_request(req, specs[req.ecs_spec])
    return await p.create_job(req)


async def finished(p: WorkloadProvider, job_id: str, limit: float = 20) -> Job:
    with anyio.fail_after(limit):
        while True:
            job = await p.get_job(job_id)
            if job.status.is_terminal:
                return job
            await anyio.sleep(0.05)


def posts(sb: Any, action: str) -> int:
    return sum(1 for c in sb.sandbox.calls if c.action == action)


async def test_specs_are_workspaces_times_flavors_times_what_a_node_can_allocate(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        specs = {s.instance_type: s for s in await p.list_specs()}
        # The CPU flavor allocates 30 of its 32 CPUs and 120 of its 128 GiB: slices up to that.
        assert list(s for s in specs if s.startswith("sandbox-cpu:")) == [
            "sandbox-cpu:cpu1",
            "sandbox-cpu:cpu2",
            "sandbox-cpu:cpu4",
            "sandbox-cpu:cpu8",
            "sandbox-cpu:cpu16",
            "sandbox-cpu:cpu30",
        ]
        assert specs["sandbox-cpu:cpu30"].memory_gb == 120 and specs["sandbox-cpu:cpu2"].memory_gb == 8
        gpu = specs["sandbox-gpu:gpu8"]
        assert (gpu.accelerator, gpu.gpu_count, gpu.gpu_type, gpu.cpu) == ("GPU", 8, "AMD MI300X", 250)
        assert gpu.gpu_memory_gb == 192 and specs["sandbox-gpu:gpu1"].cpu == 31
        assert await p.list_specs("GPU") == [s for s in specs.values() if s.accelerator == "GPU"]
        # A workspace without healthy nodes: its specs are listed, not available.
        sb.sandbox.set_nodes("sandbox-gpu", 0)
        assert not any(s.available for s in await p.list_specs("GPU"))


async def test_more_workers_than_nodes_is_refused_before_the_platform_answers_503(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        specs = {s.instance_type: s for s in await p.list_specs()}
        with pytest.raises(InvalidRequest, match=r"more than workspace sandbox-cpu has nodes \(4\).*at most 4"):
            p.validate_request(request(workers=5), specs["sandbox-cpu:cpu2"])
        assert posts(sb, "CreateWorkload") == 0


async def test_capacity_503_is_a_clear_answer_and_is_not_retried(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        specs = {s.instance_type: s for s in await p.list_specs()}
        p.validate_request(request(workers=3), specs["sandbox-cpu:cpu2"])  # the quote saw 4 nodes
        sb.sandbox.set_nodes("sandbox-cpu", 2)  # two went away since
        with pytest.raises(CapacityUnavailable) as caught:
            await p.create_job(request(workers=3))
        text = str(caught.value)
        assert "Primus.00008" in text and "Insufficient resource" in text and "not an outage" in text
        assert posts(sb, "CreateWorkload") == 1  # an answer about capacity: never sent again
        assert sb.sandbox.workloads == {}


async def test_a_lost_create_answer_finds_the_workload_by_its_quote_instead_of_creating_twice(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path, mirror_lag_seconds=0.25) as sb, workload_provider(sb, tmp_path) as p:
        await p.list_specs()
        # The platform creates the workload, then the answer is lost (a 503 from the gateway).
        sb.sandbox.faults.fail_503(1, after=True, actions={"CreateWorkload"})
        job = await p.create_job(request(tags={"cloudjobs-quote": "q-lost-1", "cloudjobs-mcp": "true"}))
        assert list(sb.sandbox.workloads) == [job.job_id]
        assert posts(sb, "CreateWorkload") == 1
        # A retried create of the same quote looks it up first and submits nothing.
        again = await p.create_job(request(tags={"cloudjobs-quote": "q-lost-1", "cloudjobs-mcp": "true"}))
        assert again.job_id == job.job_id and posts(sb, "CreateWorkload") == 1
        assert (await p.find_job_by_tag("cloudjobs-quote", "q-lost-1")).job_id == job.job_id  # type: ignore[union-attr]
        assert await p.find_job_by_tag("cloudjobs-quote", "q-lost") is None  # a prefix is not the tag


async def test_get_tolerates_the_short_404_right_after_create(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path, mirror_lag_seconds=1.0) as sb, workload_provider(sb, tmp_path) as p:
        await p.list_specs()
        job = await create(p, request(command="sleep 0.2"))
        assert job.status == JobStatus.CREATING and job.job_id in sb.sandbox.workloads
        assert (await p.get_job(job.job_id)).status == JobStatus.CREATING  # the mirror still answers 404
        done = await finished(p, job.job_id)
        assert done.status == JobStatus.SUCCEEDED and done.raw_status == "Succeeded"
        with pytest.raises(NotFound, match=r"Primus.01001 \(workload not found\).*Workload nope-bcdfg not found"):
            await p.get_job("nope-bcdfg")  # someone else's or unknown: no tolerance


async def test_the_create_body_is_what_the_platform_expects(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path, workload_ttl_seconds=7200) as p:
        await p.list_specs()
        cmd = 'echo "rank=$RANK world=$WORLD_SIZE lr=$HP_LR x=$X"'
        job = await create(
            p,
            request(
                "sandbox-gpu:gpu2",
                cmd,
                workers=2,
                envs={"X": "1"},
                hyperparameters={"lr": "0.1"},
                max_runtime_minutes=1.5,
                tags={"cloudjobs-quote": "q-body"},
            ),
        )
        body = sb.sandbox.workloads[job.job_id].body
        assert body["groupVersionKind"] == {"kind": "PyTorchJob", "version": "v1"}
        assert body["entryPoint"] == "ZWNobyAicmFuaz0kUkFOSyB3b3JsZD0kV09STERfU0laRSBscj0kSFBfTFIgeD0kWCI="
        assert body["resource"] == {
            "cpu": "62",
            "gpu": "2",
            "memory": "475Gi",
            "replica": 2,
            "sharedMemory": "237Gi",
            "ephemeralStorage": "50Gi",
        }
        assert (body["timeout"], body["ttlSecondsAfterFinished"]) == (90, 7200)
        assert body["env"] == {"X": "1", "HP_LR": "0.1"}
        assert "cloudjobs-quote=q-body;" in body["description"]
        assert body["image"] == "harbor.sandbox.internal/ai/pytorch:2.5-rocm6.3-py311"  # ROCm for a GPU spec
        done = await finished(p, job.job_id)
        logs = [await p.pod_logs(job.job_id, pod.pod_id) for pod in done.pods]
        assert [page.lines for page in logs] == [["rank=0 world=2 lr=0.1 x=1"], ["rank=1 world=2 lr=0.1 x=1"]]
        assert [pod.role for pod in done.pods] == ["Master", "Worker"]


async def test_an_explicit_image_passes_through_unchecked(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        job = await create(p, request(image="registry.example.org/team/custom:1.0"))
        assert sb.sandbox.workloads[job.job_id].body["image"] == "registry.example.org/team/custom:1.0"
        specs = {s.instance_type: s for s in await p.list_specs()}
        with pytest.raises(InvalidRequest, match="not an image reference"):
            p.validate_request(request(image="not an image"), specs["sandbox-cpu:cpu2"])


async def test_bad_names_kinds_and_ids_are_refused_clearly(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        specs = {s.instance_type: s for s in await p.list_specs()}
        spec = specs["sandbox-cpu:cpu2"]
        with pytest.raises(InvalidRequest, match=r"lower-case letters.*e.g. 'my-job-1'"):
            p.validate_request(request(display_name="My_Job.1"), spec)
        with pytest.raises(InvalidRequest, match="use PyTorchJob"):
            p.validate_request(request(job_type="TFJob"), spec)
        with pytest.raises(InvalidRequest, match="priority must be 0"):
            p.validate_request(request(priority=5), spec)
        with pytest.raises(InvalidRequest, match="not a workload id"):
            await p.get_job("a/b")
        with pytest.raises(NotFound, match="Workload missing-xxxxx not found"):
            await p.stop_job("missing-xxxxx")
        with pytest.raises(NotFound):
            await p.delete_job("missing-xxxxx")  # the platform answers 200 for it; the provider says NotFound
        # A body the platform's webhook refuses: 400 Primus.00002 with each problem named.
        headers = {"authorization": f"Bearer {sb.sandbox.api_key}"}
        async with httpx.AsyncClient(trust_env=False) as http:
            r = await http.post(f"{sb.url}/api/v1/workloads", headers=headers, json={"displayName": "x1"})
            assert r.status_code == 400
            assert r.json() == {
                "errorCode": "Primus.00002",
                "errorMessage": 'Bad request. admission webhook "vworkload.kb.io" denied the request: Bad request. '
                "[the workspace is empty, the image is empty, the entryPoint is empty, the cpu is empty, "
                "the memory is empty, the replica is invalid]",
            }
            r = await http.post(f"{sb.url}/api/v1/workloads", headers=headers, content=b"{not json")
            assert (r.status_code, r.json()["errorCode"]) == (400, "Primus.00002")


async def test_batch_stop_and_delete_report_each_workload(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        done = await create(p, request(command="echo done"))
        running = await create(p, request(command="sleep 60"))
        await finished(p, done.job_id)
        with anyio.fail_after(10):
            while (await p.get_job(running.job_id)).status != JobStatus.RUNNING:
                await anyio.sleep(0.05)
        stopped = await p.stop_jobs([running.job_id, done.job_id, "ghost-bcdfg"])
        assert [(o.job_id, o.outcome) for o in stopped] == [
            (running.job_id, "stopped"),
            (done.job_id, "already_finished"),
            ("ghost-bcdfg", "not_found"),
        ]
        assert stopped[0].status == "Stopped" and "Workload ghost-bcdfg not found" in stopped[2].detail
        # The finished one was never sent: a seed-era build would have overwritten Succeeded with Stopped.
        assert (await p.get_job(done.job_id)).status == JobStatus.SUCCEEDED
        deleted = await p.delete_jobs([running.job_id, done.job_id, "ghost-bcdfg"])
        assert [(o.job_id, o.outcome) for o in deleted] == [
            (running.job_id, "deleted"),
            (done.job_id, "deleted"),
            ("ghost-bcdfg", "not_found"),
        ]
        assert await p.list_jobs() == []
        with pytest.raises(InvalidRequest):
            await p.stop_jobs([])


async def test_stopping_a_finished_workload_keeps_its_phase(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        job = await create(p, request(command="exit 3"))
        failed = await finished(p, job.job_id)
        assert failed.status == JobStatus.FAILED and failed.pods[0].exit_code == 3
        assert (await p.stop_job(job.job_id)).status == JobStatus.FAILED
        assert posts(sb, "StopWorkload") == 0
        assert await p.error_info(job.job_id) == failed.reason


async def test_clone_finds_the_new_workload_the_platform_does_not_name(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        original = await create(p, request(command="echo cloned-run", tags={"cloudjobs-quote": "q-clone"}))
        await finished(p, original.job_id)
        await anyio.sleep(1.0)  # creation times have whole seconds: the clone is visibly later
        clone = await p.clone_job(original.job_id)
        assert clone.job_id != original.job_id and clone.name == original.name
        assert clone.job_id.startswith("wl-test-") and len(clone.job_id) == len("wl-test-") + 5
        done = await finished(p, clone.job_id)
        assert done.status == JobStatus.SUCCEEDED
        assert (await p.pod_logs(clone.job_id, done.pods[0].pod_id)).lines == ["cloned-run"]
        # The clone copies the description: the quote still finds the original (the oldest), not the clone.
        assert (await p.find_job_by_tag("cloudjobs-quote", "q-clone")).job_id == original.job_id  # type: ignore[union-attr]


async def test_pod_containers_and_service_while_the_workload_exists(tmp_path: Path) -> None:
    async with (
        workload_sandbox(tmp_path, ttl_seconds=1) as sb,
        workload_provider(sb, tmp_path, workload_ttl_seconds=1) as p,
    ):
        job = await finished(p, (await create(p, request())).job_id)
        pod = job.pods[0].pod_id
        assert await p.pod_containers(job.job_id, pod) == ["pytorch"]
        service = await p.service(job.job_id)
        assert service["ports"][0]["port"] == 23456 and service["type"] == "ClusterIP"
        await anyio.sleep(1.2)
        with pytest.raises(NotFound, match="gone from the cluster"):
            await p.service(job.job_id)


async def test_timeout_from_the_quote_ends_the_workload_stopped(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        job = await create(p, request(command="sleep 30", max_runtime_minutes=0.01))  # 0.6 s → 1 s
        assert sb.sandbox.workloads[job.job_id].body["timeout"] == 1
        done = await finished(p, job.job_id)
        assert (done.status, done.reason) == (JobStatus.STOPPED, "the workload has timed out")


async def test_queue_position_and_pending_reason(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        sb.sandbox.hold("Insufficient total amd.com/gpu resources")
        first = await create(p, request("sandbox-gpu:gpu8"))
        second = await create(p, request("sandbox-gpu:gpu8"))
        await anyio.sleep(0.4)
        info = await p.workload_info(second.job_id)
        assert (info.queue_position, info.status, info.is_scheduled) == (2, "Pending", False)
        assert info.note == "Insufficient total amd.com/gpu resources"
        job = await p.get_job(first.job_id)
        assert (job.status, job.raw_status, job.reason) == (JobStatus.QUEUING, "Pending", info.note)
        assert (await p.workload_info(first.job_id)).queue_position == 1
        assert [j.job_id for j in await p.list_jobs(JobStatus.QUEUING)] == [second.job_id, first.job_id]
        sb.sandbox.hold(None)
        assert (await finished(p, first.job_id)).status == JobStatus.SUCCEEDED


async def test_list_pages_filters_and_newest_first(tmp_path: Path) -> None:
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        ids = [(await create(p, request(tags={"cloudjobs-quote": f"q-{i}"}))).job_id for i in range(3)]
        for i in ids:
            await finished(p, i)
        listed = [j.job_id for j in await p.list_jobs()]
        assert sorted(listed) == sorted(ids)
        created = [j.created_at for j in await p.list_jobs()]
        assert created == sorted(created, reverse=True)  # newest first
        assert len(await p.list_jobs(limit=2)) == 2
        assert [j.job_id for j in await p.list_jobs(tags={"cloudjobs-quote": "q-1"})] == [ids[1]]
        assert {j.job_id for j in await p.list_jobs(JobStatus.SUCCEEDED)} == set(ids)
        assert await p.list_jobs(JobStatus.FAILED) == []  # the platform's items: null
        import cloudjobs_mcp.server.providers.workload.provider as mod

        old = mod.PAGE
        mod.PAGE = 1  # page through offset/limit one item at a time
        try:
            assert {j.job_id for j in await p.list_jobs()} == set(ids)
        finally:
            mod.PAGE = old
