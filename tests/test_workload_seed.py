"""Where seed 003 (the Workload API document) and the platform's code differ, the sandbox and the provider
follow the code (shared/reference/workload-platform.md); each test names the seed statement it contradicts."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from cloudjobs_mcp.server.models import JobStatus
from cloudjobs_mcp.server.providers.workload import mapping
from tests.test_workload_provider import create, finished, request
from tests.workload_fixtures import workload_provider, workload_sandbox

pytestmark = pytest.mark.anyio


async def raw(sb: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {sb.sandbox.api_key}"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        return await http.request(method, sb.url + path, headers=headers, **kw)


async def test_seed_endpoint_prefix_api_custom_is_not_the_platforms(tmp_path: Path) -> None:
    """Seed: "Endpoint: POST /api/custom/workloads". Code: PrimusRouterCustomRootPath = "api/v1"."""
    async with workload_sandbox(tmp_path) as sb:
        assert (await raw(sb, "GET", "/api/v1/workloads")).status_code == 200
        missing = await raw(sb, "GET", "/api/custom/workloads")
        assert missing.status_code == 404 and missing.json()["errorCode"] == "Primus.00005"
    # A server built from the seed: the provider follows CLOUDJOBS_WORKLOAD_API_PREFIX=/api/custom.
    async with workload_sandbox(tmp_path / "seed", api_prefix="/api/custom") as sb:
        assert sb.settings_overrides()["workload_api_prefix"] == "/api/custom"
        async with workload_provider(sb, tmp_path) as p:
            job = await finished(p, (await create(p, request())).job_id)
            assert job.status == JobStatus.SUCCEEDED
            assert all(c.path.startswith("/api/custom/") for c in sb.sandbox.calls)


async def test_seed_no_content_204_is_200_with_null(tmp_path: Path) -> None:
    """Seed: stop/delete/batch/clone "Response: No content (204)". Code: 200 with the body ``null``."""
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        job = await create(p, request(command="sleep 30"))
        for method, path, body in [
            ("POST", f"/api/v1/workloads/{job.job_id}/stop", None),
            ("POST", "/api/v1/workloads/clone", {"workloadIds": [job.job_id]}),
            ("POST", "/api/v1/workloads/stop", {"workloadIds": [job.job_id]}),
            ("DELETE", f"/api/v1/workloads/{job.job_id}", None),
            ("DELETE", "/api/v1/workloads/never-existed", None),  # unknown ids too
        ]:
            r = await raw(sb, method, path, json=body)
            assert (r.status_code, r.content) == (200, b"null"), path
        await p.stop_jobs([j.job_id for j in await p.list_jobs()] or [job.job_id])


async def test_seed_error_and_list_shapes(tmp_path: Path) -> None:
    """Seed README: errors ``{"code", "message"}``; list shows ``items: [...]``. Code: ``{errorCode,
    errorMessage}``, and ``items`` is ``null`` when nothing matches."""
    async with workload_sandbox(tmp_path) as sb:
        r = await raw(sb, "GET", "/api/v1/workloads/unknown-bcdfg")
        assert r.status_code == 404 and set(r.json()) == {"errorCode", "errorMessage"}
        assert r.json()["errorCode"] == "Primus.01001"
        assert (await raw(sb, "GET", "/api/v1/workloads")).json() == {"totalCount": 0, "items": None}
        r = await raw(sb, "GET", "/api/v1/workloads", params={"order": "sideways"})
        assert (r.status_code, r.json()["errorCode"]) == (400, "Primus.00002")
        unauthenticated = await httpx.AsyncClient(trust_env=False).get(sb.url + "/api/v1/workloads")
        assert unauthenticated.json() == {"errorCode": "Primus.00009", "errorMessage": "token not present"}


async def test_seed_times_ids_conditions_and_pods(tmp_path: Path) -> None:
    """Seed: times ``2025-01-15T10:30:00.000Z``, id ``my-training-job-abc123`` (6 chars), condition
    ``{"type": "Dispatched", "reason": "Dispatch0"}``, pods with ``nodeName``. Code: ``YYYY-MM-DDTHH:MM:SS``
    (UTC, no zone), a 5-character suffix, ``AdminDispatched``/``K8s*`` with reason ``run_<n>_times``,
    pods with ``k8sNodeName``/``adminNodeName``; ``entryPoint`` comes back decoded (the seed is right there)."""
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        job = await finished(p, (await create(p, request(command="echo seed"))).job_id)
        assert re.fullmatch(r"wl-test-[bcdfghjklmnpqrstvwxz2456789]{5}", job.job_id)
        body = (await raw(sb, "GET", f"/api/v1/workloads/{job.job_id}")).json()
        for key in ("creationTime", "startTime", "endTime"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", body[key]), body[key]
        assert re.fullmatch(r"(\d+h)?(\d+m)?\d+s", body["runtime"])
        assert "Dispatched" not in [c["type"] for c in body["conditions"]]
        assert {"AdminDispatched", "K8sSucceeded"} <= {c["type"] for c in body["conditions"]}
        assert all(c["reason"] == "run_1_times" for c in body["conditions"])
        pod = body["pods"][0]
        assert "nodeName" not in pod and pod["k8sNodeName"] and pod["containers"][0]["exitCode"] == 0
        assert body["entryPoint"] == "echo seed" and body["secondsUntilTimeout"] == 0


async def test_seed_required_fields_and_entry_point(tmp_path: Path) -> None:
    """Seed: ``workspaceId`` and ``entryPoint`` optional. Code: the webhook refuses an empty workspace and an
    empty entryPoint (except Authoring); a plain command is base64-encoded by the server only when it is not
    already valid base64, so the provider always sends base64."""
    async with workload_sandbox(tmp_path) as sb:
        r = await raw(
            sb,
            "POST",
            "/api/v1/workloads",
            json={"displayName": "seed-body", "image": "i:1", "resource": {"cpu": "1", "memory": "1Gi", "replica": 1}},
        )
        assert r.status_code == 400
        assert (
            "the workspace is empty" in r.json()["errorMessage"]
            and "the entryPoint is empty" in r.json()["errorMessage"]
        )
        assert mapping.encode_entry_point("true") == "dHJ1ZQ=="  # "true" itself is valid base64: never sent plain


async def test_seed_images_avail_and_service_shapes(tmp_path: Path) -> None:
    """Seed-era docs: images ``{totalCount, images}``, avail ``{"availableCount": N}``, service
    ``{serviceName, clusterIP, ports}``. Code: ``/images?flat=true`` is a bare array, avail is a node's
    allocatable per resource, the service is a Kubernetes ServiceSpec (``clusterIP``, ``type``, ``selector``)."""
    async with workload_sandbox(tmp_path) as sb, workload_provider(sb, tmp_path) as p:
        images = (await raw(sb, "GET", "/api/v1/images", params={"flat": "true"})).json()
        assert isinstance(images, list) and {"id", "tag", "description", "created_at", "created_by"} <= set(images[0])
        avail = (await raw(sb, "GET", "/api/v1/nodeflavors/mi300x-8/avail")).json()
        assert "availableCount" not in avail and avail["amd.com/gpu"] == 8 and avail["cpu"] == 250
        job = await create(p, request(command="sleep 5"))
        await anyio.sleep(0.5)
        service = (await raw(sb, "GET", f"/api/v1/workloads/{job.job_id}/service")).json()
        assert "serviceName" not in service and {"clusterIP", "type", "selector", "ports"} <= set(service)
        await p.stop_job(job.job_id)


def test_seed_status_table_omits_not_ready_and_timeout_ends_stopped() -> None:
    """Seed status table: Pending, Running, Succeeded, Failed, Stopped, Updating. Code adds NotReady
    (Deployment/StatefulSet); a timed-out workload ends Stopped, not Failed (tested on the sandbox in
    test_workload_provider.test_timeout_from_the_quote_ends_the_workload_stopped)."""
    assert mapping.status_of("NotReady") == JobStatus.RUNNING
    assert mapping.status_of("Pending") == JobStatus.QUEUING and mapping.status_of("") == JobStatus.CREATING
    assert mapping.status_of("Updating") == JobStatus.RUNNING
    assert mapping.parse_duration("1h2m3s") == 3723 and mapping.parse_duration("0s") == 0
    # HEAD renames: duration for runtime, queuePosition for schedulerOrder, resources[] for resource.
    item = {
        "workloadId": "w-1",
        "phase": "Pending",
        "queuePosition": 3,
        "duration": "5s",
        "resources": [{"cpu": "4", "memory": "8Gi", "replica": 2}],
        "workspaceId": "ws",
    }
    job = mapping.job_from(item, "workload")
    assert (job.duration_seconds, job.worker_count, job.ecs_spec) == (5, 2, "ws:cpu4")
    assert mapping.queue_position(item) == 3
